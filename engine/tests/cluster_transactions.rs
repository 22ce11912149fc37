//! Transactions across partitions of a real three-node cluster: concurrent transfers between
//! accounts spread over four partitions keep the total balance, never overdraw, leave no item
//! locked, and a cancelled transaction reports its reasons at the right positions; reads of
//! every account in one TransactGetItems meanwhile never see a transfer half done; a repeated
//! client request token takes effect once, whichever node receives it.

mod cluster_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_common::{call, call_until_ok, create_table, number_of, Cluster};
use serde_json::{json, Value};

const ACCOUNTS: u64 = 12;
const OPENING_BALANCE: i64 = 100;
const TRANSFERERS: u64 = 4;
const TRANSFERS_PER_TRANSFERER: u64 = 60;
const LOAD_MAX: Duration = Duration::from_secs(60);

fn account(n: u64) -> String {
    format!("acct-{n}")
}

fn transfer(from: &str, to: &str, amount: i64) -> Value {
    json!({"TransactItems": [
        {"Update": {"TableName": "bank", "Key": {"pk": {"S": from}},
                    "UpdateExpression": "SET balance = balance - :a",
                    "ConditionExpression": "balance >= :a",
                    "ExpressionAttributeValues": {":a": {"N": amount.to_string()}}}},
        {"Update": {"TableName": "bank", "Key": {"pk": {"S": to}},
                    "UpdateExpression": "SET balance = balance + :a",
                    "ExpressionAttributeValues": {":a": {"N": amount.to_string()}}}}
    ]})
}

fn balance(cluster: &Cluster, node: u64, n: u64) -> i64 {
    let response = call_until_ok(
        cluster.api(node),
        "GetItem",
        &json!({"TableName": "bank", "Key": {"pk": {"S": account(n)}}, "ConsistentRead": true}),
        Duration::from_secs(10),
    );
    number_of(&response, "balance").expect("account has a balance")
}

#[test]
fn transfers_across_partitions_keep_the_total_and_leave_nothing_locked() {
    let cluster = Cluster::start("127.24.0.", 3, 3, 4);
    create_table(cluster.api(1), "bank");
    for n in 0..ACCOUNTS {
        call_until_ok(
            cluster.api(1 + n % 3),
            "PutItem",
            &json!({"TableName": "bank", "Item": {"pk": {"S": account(n)}, "balance": {"N": OPENING_BALANCE.to_string()}}}),
            Duration::from_secs(10),
        );
    }

    // A transfer whose debit cannot be paid is cancelled with the reason at its position.
    let (status, response) =
        call(cluster.api(2), "TransactWriteItems", &transfer(&account(0), &account(7), 1_000)).unwrap();
    assert_eq!(status, 400, "{response}");
    assert!(response["__type"].as_str().unwrap().ends_with("TransactionCanceledException"), "{response}");
    let codes: Vec<&str> =
        response["CancellationReasons"].as_array().unwrap().iter().map(|r| r["Code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["ConditionalCheckFailed", "None"]);

    let committed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..TRANSFERERS)
        .map(|worker| {
            let committed = committed.clone();
            let addr = cluster.api(1 + worker % 3);
            std::thread::spawn(move || {
                let mut state = worker * 7919 + 1;
                for _ in 0..TRANSFERS_PER_TRANSFERER {
                    if started.elapsed() > LOAD_MAX {
                        break;
                    }
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let from = (state >> 33) % ACCOUNTS;
                    let to = (from + 1 + (state >> 40) % (ACCOUNTS - 1)) % ACCOUNTS;
                    let amount = 1 + ((state >> 20) % 40) as i64;
                    match call(addr, "TransactWriteItems", &transfer(&account(from), &account(to), amount)) {
                        Ok((200, _)) => {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        // Cancelled (no funds, or a conflict with another transfer): nothing moved.
                        Ok((400, r))
                            if r["__type"].as_str().unwrap_or("").ends_with("TransactionCanceledException") => {}
                        other => panic!("transfer failed unexpectedly: {other:?}"),
                    }
                }
            })
        })
        .collect();
    // Meanwhile a reader reads every account in one TransactGetItems over the four partitions:
    // a read that succeeds sees each transfer whole or not at all, so the total never moves.
    let reader = {
        let addr = cluster.api(3);
        std::thread::spawn(move || {
            let gets: Vec<Value> = (0..ACCOUNTS)
                .map(|n| json!({"Get": {"TableName": "bank", "Key": {"pk": {"S": account(n)}}}}))
                .collect();
            let (mut whole, mut cancelled) = (0u64, 0u64);
            while started.elapsed() < LOAD_MAX && whole < 200 {
                match call(addr, "TransactGetItems", &json!({"TransactItems": gets})) {
                    Ok((200, answer)) => {
                        let total: i64 = answer["Responses"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r["Item"]["balance"]["N"].as_str().unwrap().parse::<i64>().unwrap())
                            .sum();
                        assert_eq!(total, OPENING_BALANCE * ACCOUNTS as i64, "a torn read: {answer}");
                        whole += 1;
                    }
                    Ok((400, r)) if r["__type"].as_str().unwrap_or("").ends_with("TransactionCanceledException") => {
                        cancelled += 1;
                    }
                    other => panic!("read failed unexpectedly: {other:?}"),
                }
            }
            (whole, cancelled)
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    let (whole, _cancelled) = reader.join().unwrap();
    assert!(whole > 0, "no read of all accounts succeeded");
    assert!(committed.load(Ordering::Relaxed) > 0, "no transfer committed");

    let balances: Vec<i64> = (0..ACCOUNTS).map(|n| balance(&cluster, 1 + n % 3, n)).collect();
    assert!(balances.iter().all(|b| *b >= 0), "an account went negative: {balances:?}");
    assert_eq!(balances.iter().sum::<i64>(), OPENING_BALANCE * ACCOUNTS as i64, "{balances:?}");

    // No transaction left an item locked: every account takes a plain write.
    for n in 0..ACCOUNTS {
        let (status, response) = call(
            cluster.api(2),
            "UpdateItem",
            &json!({"TableName": "bank", "Key": {"pk": {"S": account(n)}}, "UpdateExpression": "SET touched = :t",
                    "ExpressionAttributeValues": {":t": {"BOOL": true}}}),
        )
        .unwrap();
        assert_eq!(status, 200, "account {n} still locked: {response}");
    }
}

/// A transaction bumping a counter on each of `keys`, with a client request token.
fn bump(keys: &[String], token: &str) -> Value {
    let actions: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"Update": {"TableName": "bank", "Key": {"pk": {"S": k}},
                              "UpdateExpression": "ADD hits :one",
                              "ExpressionAttributeValues": {":one": {"N": "1"}}}})
        })
        .collect();
    json!({"TransactItems": actions, "ClientRequestToken": token})
}

#[test]
fn a_repeated_client_request_token_takes_effect_once_across_partitions_and_nodes() {
    let cluster = Cluster::start("127.26.0.", 3, 3, 4);
    create_table(cluster.api(1), "bank");
    // Eight items over four partitions: the transaction spans partitions (two-phase commit),
    // and each single-item one runs in one partition's log.
    let keys: Vec<String> = (0..8).map(account).collect();
    let ok = |node: u64, request: &Value| {
        call_until_ok(cluster.api(node), "TransactWriteItems", request, Duration::from_secs(10))
    };
    for node in 1..=3 {
        ok(node, &bump(&keys, "spread-token"));
        ok(node, &bump(&keys[..1], "single-token"));
    }
    let hits = |n: u64| {
        let response = call_until_ok(
            cluster.api(1 + n % 3),
            "GetItem",
            &json!({"TableName": "bank", "Key": {"pk": {"S": account(n)}}, "ConsistentRead": true}),
            Duration::from_secs(10),
        );
        number_of(&response, "hits").expect("a counter")
    };
    let counted: Vec<i64> = (0..8).map(hits).collect();
    assert_eq!(counted, [2, 1, 1, 1, 1, 1, 1, 1], "each token took effect once");

    // The same token with other parameters (with the same first item) is refused, through any
    // node, and changes nothing.
    let mut other = bump(&keys[..1], "single-token");
    other["TransactItems"][0]["Update"]["ExpressionAttributeValues"][":one"] = json!({"N": "5"});
    for (node, request) in [(2, bump(&keys[..3], "spread-token")), (3, other)] {
        let (status, response) = call(cluster.api(node), "TransactWriteItems", &request).unwrap();
        assert_eq!(status, 400, "{response}");
        assert!(response["__type"].as_str().unwrap().ends_with("IdempotentParameterMismatchException"), "{response}");
    }
    let counted: Vec<i64> = (0..8).map(hits).collect();
    assert_eq!(counted, [2, 1, 1, 1, 1, 1, 1, 1]);
    // A new token is a new call.
    ok(1, &bump(&keys, "another-token"));
    assert_eq!((0..8).map(hits).collect::<Vec<i64>>(), [3, 2, 2, 2, 2, 2, 2, 2]);
}
