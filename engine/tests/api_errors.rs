//! Error behaviour as clients see it: DynamoDB's exception types, messages and HTTP statuses,
//! through the AWS SDK and over raw HTTP for input no SDK would send.

#![cfg(not(madsim))]

mod common;

use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use common::*;

const ITEM_SIZE_MAX: usize = 400 * 1024;

#[tokio::test]
async fn missing_key_attribute() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_keys", Some(("sk", ScalarAttributeType::N))).await;
    expect_validation(
        client.put_item().table_name("e_keys").item("pk", s("a")).item("v", n(1)).send().await,
        "One or more parameter values were invalid: Missing the key sk in the item",
    );
    expect_validation(
        client.get_item().table_name("e_keys").key("pk", s("a")).send().await,
        "The provided key element does not match the schema",
    );
    // Extra attributes in a key are refused as well.
    expect_validation(
        client.get_item().table_name("e_keys").key("pk", s("a")).key("sk", n(1)).key("v", n(1)).send().await,
        "The provided key element does not match the schema",
    );
    expect_validation(
        client.delete_item().table_name("e_keys").key("sk", n(1)).send().await,
        "The provided key element does not match the schema",
    );
}

#[tokio::test]
async fn wrong_key_type() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_types", None).await;
    expect_validation(
        client.put_item().table_name("e_types").item("pk", n(1)).send().await,
        "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
    );
    expect_validation(
        client.get_item().table_name("e_types").key("pk", n(1)).send().await,
        "The provided key element does not match the schema",
    );
    expect_error(
        client
            .update_item()
            .table_name("e_types")
            .key("pk", AttributeValue::Bool(true))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "ValidationException",
    );
}

#[tokio::test]
async fn item_size_limit() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_size", None).await;
    // Exactly 400 KB counting names and values ("pk" + "k" + "data" + payload) is allowed.
    let fixed = "pk".len() + "k".len() + "data".len();
    client
        .put_item()
        .table_name("e_size")
        .item("pk", s("k"))
        .item("data", s(&"x".repeat(ITEM_SIZE_MAX - fixed)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("an item of exactly 400 KB is allowed: {}", err_text(&e)));
    expect_validation(
        client
            .put_item()
            .table_name("e_size")
            .item("pk", s("k2"))
            .item("data", s(&"x".repeat(ITEM_SIZE_MAX)))
            .send()
            .await,
        "Item size has exceeded the maximum allowed size",
    );
    // Growing an item past the limit by an update is refused too, and changes nothing.
    put(&client, "e_size", item(&[("pk", s("grow")), ("data", s(&"x".repeat(300 * 1024)))])).await;
    let err = expect_error(
        client
            .update_item()
            .table_name("e_size")
            .key("pk", s("grow"))
            .update_expression("SET more = :m")
            .expression_attribute_values(":m", s(&"y".repeat(200 * 1024)))
            .send()
            .await,
        "ValidationException",
    );
    assert!(err.message.contains("Item size"), "{:?}", err.message);
    let got = get(&client, "e_size", item(&[("pk", s("grow"))])).await.unwrap();
    assert!(!got.contains_key("more"));
    assert_eq!(get(&client, "e_size", item(&[("pk", s("k2"))])).await, None);
}

#[tokio::test]
async fn empty_string_key() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_empty", Some(("sk", ScalarAttributeType::S))).await;
    let err = expect_error(
        client.put_item().table_name("e_empty").item("pk", s("")).item("sk", s("x")).send().await,
        "ValidationException",
    );
    assert!(err.message.contains("empty string"), "{:?}", err.message);
    let err = expect_error(
        client.put_item().table_name("e_empty").item("pk", s("x")).item("sk", s("")).send().await,
        "ValidationException",
    );
    assert!(err.message.contains("empty string"), "{:?}", err.message);
    let err = expect_error(
        client.get_item().table_name("e_empty").key("pk", s("")).key("sk", s("x")).send().await,
        "ValidationException",
    );
    assert!(err.message.contains("empty string"), "{:?}", err.message);
    // Empty strings outside keys are fine.
    put(&client, "e_empty", item(&[("pk", s("x")), ("sk", s("y")), ("v", s(""))])).await;
}

#[tokio::test]
async fn key_size_limits() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_keysize", Some(("sk", ScalarAttributeType::S))).await;
    // Partition keys up to 2048 bytes, sort keys up to 1024 bytes.
    put(&client, "e_keysize", item(&[("pk", s(&"p".repeat(2048))), ("sk", s(&"s".repeat(1024)))])).await;
    let err = expect_error(
        client.put_item().table_name("e_keysize").item("pk", s(&"p".repeat(2049))).item("sk", s("x")).send().await,
        "ValidationException",
    );
    assert!(err.message.contains("2048"), "{:?}", err.message);
    let err = expect_error(
        client.put_item().table_name("e_keysize").item("pk", s("x")).item("sk", s(&"s".repeat(1025))).send().await,
        "ValidationException",
    );
    assert!(err.message.contains("1024"), "{:?}", err.message);
}

#[tokio::test]
async fn expression_attribute_placeholders() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_expr", None).await;
    put(&client, "e_expr", item(&[("pk", s("a")), ("v", n(1))])).await;
    expect_validation(
        client
            .update_item()
            .table_name("e_expr")
            .key("pk", s("a"))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n(2))
            .expression_attribute_values(":unused", n(3))
            .send()
            .await,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
    );
    expect_validation(
        client
            .get_item()
            .table_name("e_expr")
            .key("pk", s("a"))
            .projection_expression("v")
            .expression_attribute_names("#x", "x")
            .send()
            .await,
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}",
    );
    expect_validation(
        client.put_item().table_name("e_expr").item("pk", s("a")).condition_expression("v = :missing").send().await,
        "An expression attribute value used in expression is not defined",
    );
    expect_validation(
        client
            .put_item()
            .table_name("e_expr")
            .item("pk", s("a"))
            .condition_expression("#missing = :v")
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "An expression attribute name used in the document path is not defined",
    );
    // Expression values and names without any expression.
    expect_validation(
        client
            .delete_item()
            .table_name("e_expr")
            .key("pk", s("a"))
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "ExpressionAttributeValues can only be specified when using expressions",
    );
}

#[tokio::test]
async fn reserved_word_without_placeholder() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_reserved", None).await;
    put(&client, "e_reserved", item(&[("pk", s("a")), ("status", s("on"))])).await;
    expect_validation(
        client
            .update_item()
            .table_name("e_reserved")
            .key("pk", s("a"))
            .update_expression("SET status = :v")
            .expression_attribute_values(":v", s("off"))
            .send()
            .await,
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
    );
    expect_validation(
        client.get_item().table_name("e_reserved").key("pk", s("a")).projection_expression("name").send().await,
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name",
    );
    // With a placeholder it works.
    client
        .update_item()
        .table_name("e_reserved")
        .key("pk", s("a"))
        .update_expression("SET #s = :v")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":v", s("off"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", err_text(&e)));
}

#[tokio::test]
async fn invalid_expression_syntax() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_syntax", None).await;
    put(&client, "e_syntax", item(&[("pk", s("a")), ("v", n(1))])).await;
    let update = |expr: &'static str| {
        client
            .update_item()
            .table_name("e_syntax")
            .key("pk", s("a"))
            .update_expression(expr)
            .expression_attribute_values(":v", n(1))
            .send()
    };
    expect_validation(update("SET v = = :v").await, "Invalid UpdateExpression: Syntax error");
    expect_validation(update("SET v :v").await, "Invalid UpdateExpression: Syntax error");
    expect_validation(update("FROB v = :v").await, "Invalid UpdateExpression: Syntax error");
    // The same path twice.
    let err = expect_error(update("SET v = :v REMOVE v").await, "ValidationException");
    assert!(err.message.starts_with("Invalid UpdateExpression: Two document paths overlap"), "{:?}", err.message);
    // An unknown function.
    let err = expect_error(update("SET v = no_such_fn(:v)").await, "ValidationException");
    assert!(err.message.starts_with("Invalid UpdateExpression"), "{:?}", err.message);

    expect_validation(
        client.put_item().table_name("e_syntax").item("pk", s("a")).condition_expression("v = ").send().await,
        "Invalid ConditionExpression: Syntax error",
    );
    expect_validation(
        client
            .put_item()
            .table_name("e_syntax")
            .item("pk", s("a"))
            .condition_expression("v = :v AND")
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "Invalid ConditionExpression: Syntax error",
    );
    expect_validation(
        client.get_item().table_name("e_syntax").key("pk", s("a")).projection_expression("v,,pk").send().await,
        "Invalid ProjectionExpression: Syntax error",
    );
    expect_validation(
        client
            .scan()
            .table_name("e_syntax")
            .filter_expression("v BETWEEN :v")
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "Invalid FilterExpression: Syntax error",
    );
    // Nothing changed.
    assert_eq!(get(&client, "e_syntax", item(&[("pk", s("a"))])).await, Some(item(&[("pk", s("a")), ("v", n(1))])));
}

#[tokio::test]
async fn updating_a_key_attribute() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_keyupd", None).await;
    put(&client, "e_keyupd", item(&[("pk", s("a"))])).await;
    expect_validation(
        client
            .update_item()
            .table_name("e_keyupd")
            .key("pk", s("a"))
            .update_expression("SET pk = :v")
            .expression_attribute_values(":v", s("b"))
            .send()
            .await,
        "One or more parameter values were invalid: Cannot update attribute pk. \
         This attribute is part of the key",
    );
    expect_validation(
        client.update_item().table_name("e_keyupd").key("pk", s("a")).update_expression("REMOVE pk").send().await,
        "Cannot update attribute pk. This attribute is part of the key",
    );
}

#[tokio::test]
async fn invalid_numbers_and_sets() {
    let server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_nums", None).await;
    let put_attr = |v: AttributeValue| client.put_item().table_name("e_nums").item("pk", s("a")).item("v", v).send();
    // 39 significant digits.
    expect_error(put_attr(n("123456789012345678901234567890123456789")).await, "ValidationException");
    expect_error(put_attr(n("1E+126")).await, "ValidationException");
    expect_error(put_attr(n("1E-131")).await, "ValidationException");
    expect_error(put_attr(n("twelve")).await, "ValidationException");
    expect_error(put_attr(n("")).await, "ValidationException");
    expect_error(put_attr(AttributeValue::Ss(vec![])).await, "ValidationException");
    expect_error(put_attr(AttributeValue::Ss(vec!["x".into(), "x".into()])).await, "ValidationException");
    expect_error(put_attr(AttributeValue::Ns(vec!["1".into(), "1.0".into()])).await, "ValidationException");
    assert_eq!(get(&client, "e_nums", item(&[("pk", s("a"))])).await, None);
    // The extremes of the range are fine.
    put_attr(n("9.9999999999999999999999999999999999999E+125")).await.unwrap();
    put_attr(n("1E-130")).await.unwrap();
}

#[tokio::test]
async fn missing_table_is_resource_not_found() {
    let server = TestServer::start();
    let client = server.client();
    let t = "no_such_table";
    expect_error(client.get_item().table_name(t).key("pk", s("a")).send().await, "ResourceNotFoundException");
    expect_error(client.put_item().table_name(t).item("pk", s("a")).send().await, "ResourceNotFoundException");
    expect_error(client.delete_item().table_name(t).key("pk", s("a")).send().await, "ResourceNotFoundException");
    expect_error(
        client
            .update_item()
            .table_name(t)
            .key("pk", s("a"))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n(1))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_error(
        client
            .query()
            .table_name(t)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("a"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_error(client.scan().table_name(t).send().await, "ResourceNotFoundException");
    expect_error(client.delete_table().table_name(t).send().await, "ResourceNotFoundException");
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

const ERROR_PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";

/// DynamoDB reports request validation failures from its request framework's namespace
/// (`com.amazon.coral.validate#ValidationException`); emulators often use the service's own.
#[track_caller]
fn assert_validation_type(kind: &str) {
    assert!(
        kind == "com.amazon.coral.validate#ValidationException" || kind == format!("{ERROR_PREFIX}ValidationException"),
        "__type {kind:?} is a ValidationException"
    );
}

/// Checks the shape every DynamoDB error response shares and returns `(__type, message)`.
#[track_caller]
fn assert_error_shape(resp: &RawResponse, status: u16) -> (String, String) {
    assert_eq!(resp.status, status, "status; body {:?}", resp.body_text());
    let json = resp.json();
    let kind = json["__type"].as_str().unwrap_or_else(|| panic!("__type in {json}")).to_string();
    assert!(kind.contains('#'), "__type {kind:?} is namespace#Name");
    // DynamoDB spells it `message`; a few older errors use `Message`. Clients accept both.
    let message = json
        .get("message")
        .or_else(|| json.get("Message"))
        .and_then(|m| m.as_str())
        .unwrap_or_else(|| panic!("message in {json}"))
        .to_string();
    assert!(!message.trim().is_empty(), "empty message in {json}");
    assert_crc32(resp);
    (kind, message)
}

#[track_caller]
fn assert_crc32(resp: &RawResponse) {
    let header =
        resp.header("x-amz-crc32").unwrap_or_else(|| panic!("x-amz-crc32 header missing; headers {:?}", resp.headers));
    let expected = crc32fast::hash(&resp.body);
    assert_eq!(header, expected.to_string(), "x-amz-crc32 is the CRC32 of the body");
}

#[tokio::test]
async fn malformed_json_is_serialization_exception() {
    let server = TestServer::start();
    for body in [&b"{not json"[..], b"", b"[1,2,3]", b"\"TableName\"", b"{\"TableName\": 5}"] {
        let resp = server
            .raw_request(&[("X-Amz-Target", "DynamoDB_20120810.DescribeTable"), JSON_CONTENT_TYPE, UNSIGNED_AUTH], body)
            .unwrap();
        let (kind, _) = assert_error_shape(&resp, 400);
        // An empty body or a wrong member type may be reported as a validation failure instead.
        assert!(
            kind.ends_with("#SerializationException")
                || ((body.is_empty() || body.starts_with(b"{\"")) && kind.ends_with("#ValidationException")),
            "body {:?}: __type {kind:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn unknown_operation() {
    let server = TestServer::start();
    let resp = server.raw_call("FlyToTheMoon", b"{}");
    let (kind, _) = assert_error_shape(&resp, 400);
    assert!(kind.ends_with("#UnknownOperationException"), "{kind:?}");

    // A target for another service or API version is unknown too.
    let resp = server
        .raw_request(&[("X-Amz-Target", "DynamoDB_20111205.ListTables"), JSON_CONTENT_TYPE, UNSIGNED_AUTH], b"{}")
        .unwrap();
    let (kind, _) = assert_error_shape(&resp, 400);
    assert!(kind.ends_with("#UnknownOperationException"), "{kind:?}");

    // No target at all is refused with a 400 as well.
    let resp = server.raw_request(&[JSON_CONTENT_TYPE, UNSIGNED_AUTH], b"{}").unwrap();
    assert_error_shape(&resp, 400);
}

#[tokio::test]
async fn error_bodies_use_dynamodb_types() {
    let server = TestServer::start();
    let resp = server.raw_call("GetItem", br#"{"TableName":"missing","Key":{"pk":{"S":"a"}}}"#);
    let (kind, _) = assert_error_shape(&resp, 400);
    assert_eq!(kind, format!("{ERROR_PREFIX}ResourceNotFoundException"));

    let resp = server.raw_call(
        "CreateTable",
        br#"{"TableName":"raw_t","BillingMode":"PAY_PER_REQUEST",
            "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],
            "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}]}"#,
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_crc32(&resp);
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/x-amz-json-1.0"), "content-type {ct:?}");

    let resp = server.raw_call(
        "CreateTable",
        br#"{"TableName":"raw_t","BillingMode":"PAY_PER_REQUEST",
            "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],
            "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}]}"#,
    );
    let (kind, _) = assert_error_shape(&resp, 400);
    assert_eq!(kind, format!("{ERROR_PREFIX}ResourceInUseException"));

    // An attribute value with two types set.
    let resp = server.raw_call("PutItem", br#"{"TableName":"raw_t","Item":{"pk":{"S":"a","N":"1"}}}"#);
    let (kind, message) = assert_error_shape(&resp, 400);
    assert_validation_type(&kind);
    assert!(message.contains("Supplied AttributeValue has more than one datatypes set"), "{message:?}");
    // An attribute value with no type.
    let resp = server.raw_call("PutItem", br#"{"TableName":"raw_t","Item":{"pk":{}}}"#);
    let (kind, _) = assert_error_shape(&resp, 400);
    assert_validation_type(&kind);
    // A required member missing.
    let resp = server.raw_call("PutItem", br#"{"TableName":"raw_t"}"#);
    let (kind, _) = assert_error_shape(&resp, 400);
    assert_validation_type(&kind);

    let resp = server.raw_call(
        "PutItem",
        br#"{"TableName":"raw_t","Item":{"pk":{"S":"a"}},"ConditionExpression":"attribute_exists(pk)"}"#,
    );
    let (kind, message) = assert_error_shape(&resp, 400);
    assert_eq!(kind, format!("{ERROR_PREFIX}ConditionalCheckFailedException"));
    assert_eq!(message, "The conditional request failed");
}

#[tokio::test]
async fn success_responses_carry_crc32_and_request_id() {
    let server = TestServer::start();
    let resp = server.raw_call("ListTables", b"{}");
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_crc32(&resp);
    assert_eq!(resp.json()["TableNames"], serde_json::json!([]));
    let id = resp.header("x-amzn-requestid").unwrap_or_default();
    assert!(!id.is_empty(), "x-amzn-RequestId header; headers {:?}", resp.headers);
    let resp2 = server.raw_call("ListTables", b"{}");
    assert_ne!(resp2.header("x-amzn-requestid"), Some(id), "request ids are unique");
}

#[tokio::test]
async fn oversized_body_is_refused_and_server_keeps_serving() {
    let mut server = TestServer::start();
    let client = server.client();
    create_table(&client, "e_huge", None).await;

    let payload = "z".repeat(20 * 1024 * 1024);
    let body = format!(r#"{{"TableName":"e_huge","Item":{{"pk":{{"S":"a"}},"data":{{"S":"{payload}"}}}}}}"#);
    let target = "DynamoDB_20120810.PutItem";
    match server.raw_request(&[("X-Amz-Target", target), JSON_CONTENT_TYPE, UNSIGNED_AUTH], body.as_bytes()) {
        Ok(resp) => {
            assert!(
                resp.status == 400 || resp.status == 413,
                "a 20 MB request is refused, got {} {:?}",
                resp.status,
                &resp.body_text().chars().take(300).collect::<String>()
            );
            if resp.status == 400 {
                assert_error_shape(&resp, 400);
            }
        }
        // Closing the connection without reading the whole body is a clean refusal too.
        Err(e) => eprintln!("oversized request: connection ended with {e}"),
    }
    assert!(server.is_running(), "the server survives an oversized request");
    assert_eq!(get(&client, "e_huge", item(&[("pk", s("a"))])).await, None);
    let tables = client.list_tables().send().await.unwrap_or_else(|e| panic!("{}", err_text(&e)));
    assert_eq!(tables.table_names(), ["e_huge".to_string()]);
    put(&client, "e_huge", item(&[("pk", s("b"))])).await;
}

#[tokio::test]
async fn any_credentials_are_accepted() {
    let server = TestServer::start();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("eu-west-3"))
        .endpoint_url(server.url())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIAOTHER",
            "other-secret",
            Some("session-token".into()),
            None,
            "static",
        ))
        .build();
    let other = aws_sdk_dynamodb::Client::from_conf(config);
    create_table(&other, "e_creds", None).await;
    // A raw request with no Authorization header at all is served as well.
    let resp = server
        .raw_request(
            &[("X-Amz-Target", "DynamoDB_20120810.DescribeTable"), JSON_CONTENT_TYPE],
            br#"{"TableName":"e_creds"}"#,
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.json()["Table"]["TableStatus"], "ACTIVE");
}
