//! Crash test for `RocksStore`: no acknowledged `Sync` write is lost when the process is killed.
//!
//! The test re-executes its own binary as a child process (selected by `SQUALL_CRASH_CHILD`,
//! which names the store directory). The child writes `Sync` batches in a loop and prints
//! `ack <i>` after each `write` returns. The parent reads acknowledgements until it has enough
//! or time runs out, kills the child with SIGKILL at that arbitrary point, reopens the store and
//! checks that:
//!
//! - every acknowledged batch is present with its exact values;
//! - the batches present form a prefix of those written (no holes), each batch whole.
//!
//! Rounds reuse the same directory, so later rounds also recover the earlier rounds' data from
//! SST files, memtables flushed mid-run and WAL tails cut by the kill.
//!
//! SIGKILL is a process crash, not a power failure: the kernel keeps the page cache, so this
//! test cannot tell a missing fsync from a present one. Power failure is modelled by `MemStore`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use squall_engine::storage::{Direction, Durability, KvStore, RocksConfig, RocksStore, WriteBatch};

const TEST_NAME: &str = "acknowledged_sync_writes_survive_sigkill";
/// Set in the child: the directory of the store to write.
const CHILD_ENV: &str = "SQUALL_CRASH_CHILD";
/// Set in the child: the round number, which prefixes its keys.
const ROUND_ENV: &str = "SQUALL_CRASH_ROUND";
/// The kill point of each round, in acknowledged batches; varied so kills land at different
/// places relative to memtable flushes.
const ROUND_ACKS: [u64; 4] = [2000, 333, 1500, 1];
/// A round kills its child after this long even if it has too few acknowledgements.
const ROUND_TIME_MAX: Duration = Duration::from_secs(10);
/// A child that is never killed stops by itself after this many batches or this long.
const CHILD_BATCHES_MAX: u64 = 1_000_000;
const CHILD_TIME_MAX: Duration = Duration::from_secs(60);
/// A small memtable so the child flushes SST files while it runs.
const CHILD_WRITE_BUFFER_BYTES: usize = 256 << 10;

fn config() -> RocksConfig {
    RocksConfig {
        block_cache_bytes: 8 << 20,
        write_buffer_bytes: CHILD_WRITE_BUFFER_BYTES,
    }
}

fn key(round: u32, i: u64, part: &str) -> Vec<u8> {
    format!("r{round:02}/{i:010}/{part}").into_bytes()
}

/// A value of 50 to 449 bytes that names its batch.
fn value(round: u32, i: u64, part: &str) -> Vec<u8> {
    let tag = format!("{round}:{i}:{part};");
    let len = 50 + (i.wrapping_mul(37) % 400) as usize;
    tag.bytes().cycle().take(len).collect()
}

#[test]
fn acknowledged_sync_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV)
            .expect("round")
            .parse()
            .expect("round number");
        child(Path::new(&dir), round);
        return;
    }

    let dir = tempfile::tempdir().expect("create temp dir");
    let mut acked_per_round: BTreeMap<u32, u64> = BTreeMap::new();
    for (round, &acks_wanted) in (0u32..).zip(ROUND_ACKS.iter()) {
        let (acked, elapsed) = run_child(dir.path(), round, acks_wanted);
        assert!(acked > 0, "round {round}: the child acknowledged nothing");
        let rate = acked as f64 / elapsed.as_secs_f64().max(1e-9);
        eprintln!("round {round}: {acked} acknowledged sync batches in {elapsed:?} ({rate:.0}/s)");
        acked_per_round.insert(round, acked);

        let store = RocksStore::open_with(dir.path(), &config()).expect("reopen after kill");
        for (&r, &acked) in &acked_per_round {
            verify_round(&store, r, acked);
        }
    }
}

/// Runs one child until `acks_wanted` acknowledgements or the time limit, kills it and returns
/// how many batches it acknowledged and over how long.
fn run_child(dir: &Path, round: u32, acks_wanted: u64) -> (u64, Duration) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (sender, receiver) = mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(number) = line.strip_prefix("ack ") {
                let i: u64 = number.trim().parse().expect("ack number");
                if sender.send(i).is_err() {
                    break;
                }
            }
        }
    });

    let start = Instant::now();
    let deadline = start + ROUND_TIME_MAX;
    let mut acked = 0u64;
    let record = |i: u64, acked: &mut u64| {
        assert_eq!(i, *acked, "acknowledgements arrive in order");
        *acked += 1;
    };
    while acked < acks_wanted {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(i) => record(i, &mut acked),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait for child");
                panic!("round {round}: child ended by itself after {acked} acks: {status}");
            }
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no clean close.
    child.kill().expect("kill child");
    let status = child.wait().expect("wait for child");
    assert!(
        !status.success(),
        "round {round}: the child was not killed: {status}"
    );
    let elapsed = start.elapsed();
    // Acknowledgements already printed before the kill count too.
    reader.join().expect("reader thread");
    for i in receiver.try_iter() {
        record(i, &mut acked);
    }
    (acked, elapsed)
}

/// Checks one round's batches: all acknowledged ones present, and the ones present a prefix.
fn verify_round(store: &RocksStore, round: u32, acked: u64) {
    let lower = format!("r{round:02}/").into_bytes();
    let upper = format!("r{round:02}0").into_bytes(); // '0' follows '/'
    let pairs = store
        .scan(
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            Direction::Forward,
            usize::MAX,
        )
        .expect("scan round");
    assert!(
        pairs.len() % 2 == 0,
        "round {round}: a batch is torn ({} keys)",
        pairs.len()
    );
    let batches = (pairs.len() / 2) as u64;
    assert!(
        batches >= acked,
        "round {round}: {acked} acknowledged, only {batches} recovered"
    );
    for (i, chunk) in (0u64..).zip(pairs.chunks(2)) {
        for (pair, part) in chunk.iter().zip(["a", "b"]) {
            assert_eq!(
                pair.0,
                key(round, i, part),
                "round {round}: hole or stray key"
            );
            assert!(
                pair.1 == value(round, i, part),
                "round {round}: wrong value at {i}/{part}"
            );
        }
    }
}

/// The child: writes two-key `Sync` batches and acknowledges each once `write` has returned.
fn child(dir: &Path, round: u32) {
    let store = RocksStore::open_with(dir, &config()).expect("child: open store");
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    // The test harness may have left "test <name> ... " without a line end.
    writeln!(out).expect("child: write stdout");
    for i in 0..CHILD_BATCHES_MAX {
        if start.elapsed() > CHILD_TIME_MAX {
            break;
        }
        let mut batch = WriteBatch::new();
        for part in ["a", "b"] {
            batch.put(key(round, i, part), value(round, i, part));
        }
        store.write(batch, Durability::Sync).expect("child: write");
        // A closed pipe means the parent is gone: stop.
        if writeln!(out, "ack {i}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}
