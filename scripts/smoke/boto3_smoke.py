#!/usr/bin/env python3
"""Smoke test of a DynamoDB-compatible endpoint with boto3, as an application would use it.

Usage: boto3_smoke.py [ENDPOINT]   (default: $SQUALL_ENDPOINT, else http://127.0.0.1:8000)

Exercises the low-level client (create_table, waiters, put/get, describe, list, paginators,
errors) and the resource API (Table.put_item/get_item/query/update_item/delete_item with
boto3.dynamodb.conditions, batch_writer, scan). Prints one line per check and a summary;
exits 1 if any check failed.
"""

import os
import sys
import time
import traceback
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import Binary
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get(
    "SQUALL_ENDPOINT", "http://127.0.0.1:8000"
)
TABLE = f"smoke_boto3_{os.getpid()}_{int(time.time())}"
GSI_WAIT_S = 20

SESSION_ARGS = dict(
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
    config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
)
client = boto3.client("dynamodb", **SESSION_ARGS)
resource = boto3.resource("dynamodb", **SESSION_ARGS)

results = []  # (name, ok, detail)
STEPS = []


def check(fn):
    """Registers a step; steps run in file order."""
    STEPS.append(fn)
    return fn


def run_step(fn):
    """Runs one named step and records whether it passed."""
    name = fn.__name__.replace("_", " ")
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        detail = f"{type(e).__name__}: {e}"
        results.append((name, False, detail))
        print(f"FAIL  {name}: {detail}")
        traceback.print_exc(limit=3)
    else:
        results.append((name, True, ""))
        print(f"ok    {name}")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def error_code(e):
    return e.response.get("Error", {}).get("Code")


@check
def create_table_and_wait():
    out = client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    expect(out["TableDescription"]["TableName"] == TABLE, out)
    client.get_waiter("table_exists").wait(
        TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    desc = client.describe_table(TableName=TABLE)["Table"]
    expect(desc["TableStatus"] == "ACTIVE", desc["TableStatus"])
    expect(desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", desc)
    expect([k["AttributeName"] for k in desc["KeySchema"]] == ["pk", "sk"], desc["KeySchema"])
    expect(desc["GlobalSecondaryIndexes"][0]["IndexName"] == "by_status", desc)


@check
def describe_limits_reports_the_table_quota():
    limits = client.describe_limits()
    expect(limits["TableMaxReadCapacityUnits"] == 40000, f"table read quota: {limits}")
    expect(limits["TableMaxWriteCapacityUnits"] == 40000, f"table write quota: {limits}")
    expect(limits["AccountMaxReadCapacityUnits"] >= limits["TableMaxReadCapacityUnits"], f"account: {limits}")


@check
def list_tables_includes_table():
    names = []
    for page in client.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 2}):
        names.extend(page["TableNames"])
    expect(TABLE in names, names)


@check
def low_level_put_and_get():
    item = {
        "pk": {"S": "low"},
        "sk": {"N": "1"},
        "n": {"N": "1E+2"},
        "b": {"B": b"\x00\x01\xff"},
        "ss": {"SS": ["a", "b"]},
        "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}}},
    }
    client.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
    got = client.get_item(TableName=TABLE, Key={"pk": {"S": "low"}, "sk": {"N": "1"}}, ConsistentRead=True)
    it = got["Item"]
    expect(it["n"] == {"N": "100"}, it["n"])
    expect(it["b"] == {"B": b"\x00\x01\xff"}, it["b"])
    expect(sorted(it["ss"]["SS"]) == ["a", "b"], it["ss"])
    expect(it["m"]["M"]["l"]["L"][1] == {"BOOL": True}, it["m"])
    try:
        client.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
        raise AssertionError("second conditional put succeeded")
    except ClientError as e:
        expect(error_code(e) == "ConditionalCheckFailedException", e.response)


@check
def resource_put_and_get():
    table = resource.Table(TABLE)
    table.put_item(
        Item={
            "pk": "user#1",
            "sk": 0,
            "name": "Ada",
            "score": Decimal("12.5"),
            "tags": {"x", "y"},
            "blob": Binary(b"\x10\x20"),
            "profile": {"langs": ["en", "fr"], "age": 36},
        }
    )
    got = table.get_item(Key={"pk": "user#1", "sk": 0}, ConsistentRead=True)["Item"]
    expect(got["name"] == "Ada", got)
    expect(got["score"] == Decimal("12.5"), got["score"])
    expect(got["tags"] == {"x", "y"}, got["tags"])
    expect(got["blob"] == Binary(b"\x10\x20"), got["blob"])
    expect(got["profile"]["langs"] == ["en", "fr"], got["profile"])
    expect(got["profile"]["age"] == 36, got["profile"])
    missing = table.get_item(Key={"pk": "user#1", "sk": 999})
    expect("Item" not in missing, missing)


@check
def batch_writer_many_items():
    table = resource.Table(TABLE)
    with table.batch_writer() as batch:
        for i in range(1, 61):
            batch.put_item(
                Item={
                    "pk": "user#1",
                    "sk": i,
                    "status": "active" if i % 2 == 0 else "idle",
                    "payload": "p" * 100,
                }
            )
    count = table.query(KeyConditionExpression=Key("pk").eq("user#1"), Select="COUNT")["Count"]
    expect(count == 61, f"61 items under user#1 (one from put_item), got {count}")


@check
def resource_query_with_conditions():
    table = resource.Table(TABLE)
    out = table.query(
        KeyConditionExpression=Key("pk").eq("user#1") & Key("sk").between(10, 20),
        FilterExpression=Attr("status").eq("active"),
        ScanIndexForward=False,
    )
    sks = [int(i["sk"]) for i in out["Items"]]
    expect(sks == [20, 18, 16, 14, 12, 10], sks)
    expect(out["ScannedCount"] == 11, out["ScannedCount"])
    out = table.query(KeyConditionExpression=Key("pk").eq("user#1") & Key("sk").lt(3))
    expect([int(i["sk"]) for i in out["Items"]] == [0, 1, 2], out["Items"])

    # Manual paging with Limit / ExclusiveStartKey.
    seen, start = [], None
    while True:
        kwargs = {"KeyConditionExpression": Key("pk").eq("user#1"), "Limit": 7}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = table.query(**kwargs)
        seen.extend(int(i["sk"]) for i in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    expect(seen == list(range(0, 61)), seen)


@check
def query_global_secondary_index():
    table = resource.Table(TABLE)
    deadline = time.time() + GSI_WAIT_S
    while True:
        out = table.query(
            IndexName="by_status",
            KeyConditionExpression=Key("status").eq("active") & Key("sk").gte(50),
        )
        sks = [int(i["sk"]) for i in out["Items"]]
        if sks == [50, 52, 54, 56, 58, 60]:
            break
        if time.time() > deadline:
            raise AssertionError(f"GSI query returned {sks}")
        time.sleep(0.2)


@check
def update_item_expressions():
    table = resource.Table(TABLE)
    out = table.update_item(
        Key={"pk": "user#1", "sk": 0},
        # BLOB is a reserved word, so it needs a placeholder.
        UpdateExpression="SET score = score + :inc, #p.langs = list_append(#p.langs, :more) "
        "REMOVE #b ADD visits :one",
        ConditionExpression=Attr("name").eq("Ada"),
        ExpressionAttributeNames={"#p": "profile", "#b": "blob"},
        ExpressionAttributeValues={":inc": Decimal("0.5"), ":more": ["de"], ":one": 1},
        ReturnValues="ALL_NEW",
    )
    attrs = out["Attributes"]
    expect(attrs["score"] == Decimal("13"), attrs["score"])
    expect(attrs["profile"]["langs"] == ["en", "fr", "de"], attrs["profile"])
    expect(attrs["visits"] == 1, attrs)
    expect("blob" not in attrs, attrs)
    try:
        table.update_item(
            Key={"pk": "user#1", "sk": 0},
            UpdateExpression="SET score = :z",
            ConditionExpression=Attr("name").eq("Bob"),
            ExpressionAttributeValues={":z": 0},
        )
        raise AssertionError("update with a false condition succeeded")
    except ClientError as e:
        expect(error_code(e) == "ConditionalCheckFailedException", e.response)


@check
def delete_item_returns_old():
    table = resource.Table(TABLE)
    out = table.delete_item(Key={"pk": "user#1", "sk": 60}, ReturnValues="ALL_OLD")
    expect(out["Attributes"]["status"] == "active", out)
    expect("Item" not in table.get_item(Key={"pk": "user#1", "sk": 60}, ConsistentRead=True), "deleted")


@check
def scan_paginator_and_resource_scan():
    total = 0
    pks = set()
    for page in client.get_paginator("scan").paginate(TableName=TABLE, PaginationConfig={"PageSize": 7}):
        total += page["Count"]
        pks.update((i["pk"]["S"], i["sk"]["N"]) for i in page["Items"])
    expect(total == 61 and len(pks) == 61, f"60 user items and 1 low-level item; scan saw {total} items, {len(pks)} distinct")
    table = resource.Table(TABLE)
    out = table.scan(FilterExpression=Attr("status").eq("idle") & Attr("sk").lt(10))
    expect(sorted(int(i["sk"]) for i in out["Items"]) == [1, 3, 5, 7, 9], out["Items"])


@check
def errors_have_dynamodb_codes():
    try:
        client.get_item(TableName=TABLE + "_missing", Key={"pk": {"S": "x"}})
        raise AssertionError("get_item on a missing table succeeded")
    except ClientError as e:
        expect(error_code(e) == "ResourceNotFoundException", e.response)
    try:
        client.put_item(TableName=TABLE, Item={"pk": {"S": "no sort key"}})
        raise AssertionError("put_item without the sort key succeeded")
    except ClientError as e:
        expect(error_code(e) == "ValidationException", e.response)
        expect(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response)


@check
def delete_table_and_wait():
    client.delete_table(TableName=TABLE)
    client.get_waiter("table_not_exists").wait(
        TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    expect(TABLE not in client.list_tables()["TableNames"], "table still listed")


def main():
    print(f"boto3 {boto3.__version__} against {ENDPOINT}, table {TABLE}")
    for fn in STEPS:
        run_step(fn)
    failed = [r for r in results if not r[1]]
    print()
    print(f"boto3 smoke against {ENDPOINT}: {len(results) - len(failed)}/{len(results)} checks passed")
    for name, _, detail in failed:
        print(f"  failed: {name}: {detail}")
    if failed:
        try:
            client.delete_table(TableName=TABLE)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
