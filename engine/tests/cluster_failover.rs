//! A real three-zone cluster of six `squall-server` processes on loopback: writers and strongly
//! consistent readers go through several nodes while every process of one zone is killed with
//! SIGKILL. Writes must resume within a few seconds, no acknowledged write may be lost, no
//! strongly consistent read may return a value older than one already acknowledged, and the
//! killed zone, restarted, must catch up. A partition is split under the load before the kill.

mod cluster_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_common::{call, call_until_ok, create_table, number_of, Cluster};
use serde_json::{json, Value};

const ZONES: u64 = 3;
const NODES: u64 = 6;
const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 16;
/// Load before the kill, and after it.
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(2);
const LOAD_AFTER_KILL: Duration = Duration::from_secs(8);
/// Longest acceptable gap in successful writes around the kill.
const FAILOVER_MAX: Duration = Duration::from_secs(6);
/// Most operations per writer, so the load is bounded on a fast machine.
const OPS_PER_WRITER_MAX: usize = 20_000;
const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

fn version_of(response: &Value) -> Option<u64> {
    number_of(response, "v").map(|v| v as u64)
}

fn get(addr: SocketAddr, key: &str, consistent: bool) -> std::io::Result<(u16, Value)> {
    call(addr, "GetItem", &json!({"TableName": "kvtable", "Key": {"pk": {"S": key}}, "ConsistentRead": consistent}))
}

#[derive(Default)]
struct Observed {
    /// Highest acknowledged version per key.
    acknowledged: BTreeMap<String, u64>,
    /// Highest version attempted per key (acknowledged or not).
    attempted: BTreeMap<String, u64>,
    /// Writer and time of each acknowledged write.
    write_times: Vec<(usize, Instant)>,
    /// Stale strong reads: (key, read version, acknowledged before the read).
    stale_reads: Vec<(String, Option<u64>, u64)>,
    strong_reads_ok: usize,
}

#[test]
fn a_zone_outage_loses_nothing_and_the_zone_catches_up() {
    let mut cluster = Cluster::start("127.23.0.", ZONES, NODES, 4);
    create_table(cluster.api(2), "kvtable");
    let addrs: Vec<SocketAddr> = (0..=NODES).map(|id| cluster.api(id.max(1))).collect();

    let observed = Arc::new(Mutex::new(Observed::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let observed = observed.clone();
            let stop = stop.clone();
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                // Each writer owns its keys, so it knows the newest acknowledged version of each.
                let mut own: BTreeMap<String, u64> = BTreeMap::new();
                let mut via = writer as u64;
                for n in 0..OPS_PER_WRITER_MAX {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{writer}-k{}", n % KEYS_PER_WRITER);
                    let version = n as u64 + 1;
                    let write_node = via % NODES + 1;
                    let read_node = (via + 1) % NODES + 1;
                    observed.lock().unwrap().attempted.insert(key.clone(), version);
                    let put =
                        json!({"TableName": "kvtable", "Item": {"pk": {"S": key}, "v": {"N": version.to_string()}}});
                    match call(addrs[write_node as usize], "PutItem", &put) {
                        Ok((200, _)) => {
                            own.insert(key.clone(), version);
                            let mut o = observed.lock().unwrap();
                            o.acknowledged.insert(key.clone(), version);
                            o.write_times.push((writer, Instant::now()));
                        }
                        // A refused connection (a killed node) or an error: try another node.
                        _ => {
                            via += 1;
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    }
                    // A strong read of one of this writer's keys through another node.
                    let read_key = format!("w{writer}-k{}", (n * 7) % KEYS_PER_WRITER);
                    let floor = own.get(&read_key).copied().unwrap_or(0);
                    if let Ok((200, response)) = get(addrs[read_node as usize], &read_key, true) {
                        let seen = version_of(&response);
                        let mut o = observed.lock().unwrap();
                        o.strong_reads_ok += 1;
                        if seen.unwrap_or(0) < floor {
                            o.stale_reads.push((read_key, seen, floor));
                        }
                    } else {
                        via += 1;
                    }
                }
            })
        })
        .collect();

    // A partition splits under the load, before the zone goes down. Its split point is taken
    // from its items, so wait (boundedly) until every writer's keys have all been written once.
    std::thread::sleep(LOAD_BEFORE_KILL / 2);
    let all_keys = WRITERS * KEYS_PER_WRITER;
    let deadline = Instant::now() + CATCH_UP_WAIT;
    while observed.lock().unwrap().acknowledged.len() < all_keys {
        assert!(Instant::now() < deadline, "the writers never wrote every key once");
        std::thread::sleep(Duration::from_millis(50));
    }
    let split =
        call_until_ok(cluster.api(2), "SquallAdmin.SplitPartition", &json!({"TableName": "kvtable"}), CATCH_UP_WAIT);
    assert_eq!(split["Children"].as_array().map(Vec::len), Some(2), "{split}");
    std::thread::sleep(LOAD_BEFORE_KILL / 2);
    let killed: Vec<u64> = (1..=NODES).filter(|id| cluster.zone_of(*id) == 0).collect();
    let kill_time = Instant::now();
    for id in &killed {
        cluster.kill(*id);
    }
    std::thread::sleep(LOAD_AFTER_KILL);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    let observed = observed.lock().unwrap();
    assert!(observed.stale_reads.is_empty(), "stale strong reads: {:?}", observed.stale_reads);
    assert!(observed.strong_reads_ok > 0, "no strong read succeeded");
    let before = observed.write_times.iter().filter(|(_, t)| *t < kill_time).count();
    let after = observed.write_times.iter().filter(|(_, t)| *t >= kill_time).count();
    assert!(before > 0, "no write succeeded before the kill");
    assert!(after > 0, "no write succeeded after the zone was killed");
    // Failover time: the longest pause of any writer between two acknowledged writes around
    // and after the kill (a writer stalls while its partition has no leader).
    let mut longest_pause = Duration::ZERO;
    for writer in 0..WRITERS {
        let mut times: Vec<Instant> =
            observed.write_times.iter().filter(|(w, _)| *w == writer).map(|(_, t)| *t).collect();
        times.push(kill_time + LOAD_AFTER_KILL);
        for pair in times.windows(2).filter(|p| p[1] >= kill_time) {
            longest_pause = longest_pause.max(pair[1].duration_since(pair[0]));
        }
    }
    eprintln!(
        "writes before the kill {before}, after {after}; strong reads {}; longest writer pause {longest_pause:?}",
        observed.strong_reads_ok
    );
    assert!(longest_pause < FAILOVER_MAX, "a writer made no progress for {longest_pause:?}");

    // Every acknowledged write is there, read strongly through a surviving node.
    let survivor = cluster.api(2);
    for (key, acked) in &observed.acknowledged {
        let response = call_until_ok(
            survivor,
            "GetItem",
            &json!({"TableName": "kvtable", "Key": {"pk": {"S": key}}, "ConsistentRead": true}),
            Duration::from_secs(10),
        );
        let seen = version_of(&response).unwrap_or(0);
        let attempted = observed.attempted[key];
        assert!(seen >= *acked && seen <= attempted, "{key}: read {seen}, acknowledged {acked}, attempted {attempted}");
    }

    // The killed zone restarts and catches up: its own replicas serve the latest values.
    for id in &killed {
        cluster.start_node(*id);
    }
    let deadline = Instant::now() + CATCH_UP_WAIT;
    for id in &killed {
        for (key, acked) in &observed.acknowledged {
            loop {
                let seen = get(cluster.api(*id), key, false).ok().and_then(|(s, r)| (s == 200).then(|| version_of(&r)));
                if seen.flatten().unwrap_or(0) >= *acked {
                    break;
                }
                assert!(Instant::now() < deadline, "node {id} did not catch up on {key} (acknowledged {acked})");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
