//! The timeline of a run and its hash.
//!
//! Every event of a run (a fault starting or healing, a phase change, each client operation
//! and its outcome) is one line stamped with simulated time. The trace hash is FNV-1a 64 over
//! the canonical bytes of every line in order — the time in nanoseconds as 8 little-endian
//! bytes, then the text, then a newline — so two runs have the same hash exactly when they
//! produced the same events at the same simulated instants.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64-bit hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(FNV_OFFSET_BASIS)
    }
}

impl Fnv64 {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Which events are printed as they happen (all are hashed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Every event.
    All,
    /// Faults, phases and violations; client operations are hashed but not printed.
    Faults,
    /// Nothing.
    Nothing,
}

/// The kind of an event, for filtering what is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A client operation.
    Op,
    /// Anything else: faults, phases, nodes starting, violations.
    Cluster,
}

#[derive(Debug)]
struct Inner {
    hash: Fnv64,
    events: u64,
    echo: Echo,
    out: Vec<u8>,
}

/// A shared, append-only timeline. Cheap to clone; clones append to the same log.
#[derive(Clone, Debug)]
pub struct Timeline {
    inner: Arc<Mutex<Inner>>,
}

/// Bytes of printed timeline buffered before they are written to stdout.
const ECHO_BUFFER_BYTES: usize = 64 << 10;

impl Timeline {
    /// An empty timeline that prints what `echo` selects to stdout.
    pub fn new(echo: Echo) -> Timeline {
        Timeline { inner: Arc::new(Mutex::new(Inner { hash: Fnv64::default(), events: 0, echo, out: Vec::new() })) }
    }

    /// Appends an event at `time_ns` of simulated time.
    pub fn record(&self, time_ns: u64, kind: EventKind, text: &str) {
        let mut inner = self.lock();
        inner.hash.write(&time_ns.to_le_bytes());
        inner.hash.write(text.as_bytes());
        inner.hash.write(b"\n");
        inner.events += 1;
        let shown = match inner.echo {
            Echo::All => true,
            Echo::Faults => kind == EventKind::Cluster,
            Echo::Nothing => false,
        };
        if shown {
            let line = format!("[{:>4}.{:06}] {text}\n", time_ns / 1_000_000_000, time_ns % 1_000_000_000 / 1_000);
            inner.out.extend_from_slice(line.as_bytes());
            if inner.out.len() >= ECHO_BUFFER_BYTES {
                flush(&mut inner.out);
            }
        }
    }

    /// Writes out whatever printed lines are still buffered.
    pub fn flush(&self) {
        flush(&mut self.lock().out);
    }

    /// The trace hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.lock().hash.finish()
    }

    /// Events recorded so far.
    pub fn events(&self) -> u64 {
        self.lock().events
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn flush(out: &mut Vec<u8>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out);
    let _ = stdout.flush();
    out.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_published_vectors() {
        // FNV-1a 64 test vectors from the FNV reference (Noll): "" and "a" and "foobar".
        let hash = |text: &str| {
            let mut h = Fnv64::default();
            h.write(text.as_bytes());
            h.finish()
        };
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_hash_covers_time_text_and_order() {
        let run = |events: &[(u64, &str)]| {
            let timeline = Timeline::new(Echo::Nothing);
            for (time, text) in events {
                timeline.record(*time, EventKind::Op, text);
            }
            timeline.hash()
        };
        let base = run(&[(1, "a"), (2, "b")]);
        assert_eq!(base, run(&[(1, "a"), (2, "b")]));
        assert_ne!(base, run(&[(2, "b"), (1, "a")]));
        assert_ne!(base, run(&[(1, "a"), (3, "b")]));
        assert_ne!(base, run(&[(1, "a"), (2, "c")]));
        // Line boundaries count: "ab" is not "a" then "b".
        assert_ne!(run(&[(1, "ab")]), run(&[(1, "a"), (1, "b")]));
    }
}
