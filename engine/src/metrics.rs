//! A node's operational metrics, served at `GET /metrics` in Prometheus' text format: requests
//! by operation and outcome with their latency, and the latency of the node's storage writes
//! by durability (a synced write's time is the write-ahead log's fsync on this machine, the
//! figure a capacity model needs most and the one a disk in trouble shows first).
//!
//! Latencies go into [`LatencyHistogram`]s: fixed log-linear buckets of atomic counters, so
//! recording is a few atomic additions on the request path, never a lock, and a quantile is
//! read to within [`BUCKET_ERROR_MAX`]. Quantiles are over the node's whole life (a Prometheus
//! summary); rates come from the counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::storage::{Direction, Durability, KvPair, KvStore, StorageError, WriteBatch};

/// Sub-buckets per doubling of latency: each bucket spans 1/16 of its power of two.
const SUB_BUCKETS: usize = 16;
/// Powers of two of microseconds covered: up to 2^28 us (about 4.5 minutes); longer latencies
/// count in the last bucket.
const POWERS: usize = 28;
/// Largest relative error of a quantile read from the buckets (a bucket's width over its lower
/// bound, halved by reporting its midpoint).
pub const BUCKET_ERROR_MAX: f64 = 0.5 / SUB_BUCKETS as f64;
/// Quantiles served for every latency.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];
/// Distinct operation names tracked; requests naming further ones (unknown operations a client
/// made up) count as `other`, so clients cannot grow the node's memory without bound.
pub const OPERATIONS_MAX: usize = 64;

/// Latencies in fixed log-linear buckets of microseconds.
pub struct LatencyHistogram {
    /// Bucket 0 holds latencies under one microsecond; then `SUB_BUCKETS` per power of two.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            buckets: (0..1 + POWERS * SUB_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

/// The bucket of `us` microseconds.
fn bucket_of(us: u64) -> usize {
    if us == 0 {
        return 0;
    }
    let power = (63 - us.leading_zeros()) as usize;
    if power >= POWERS {
        return POWERS * SUB_BUCKETS;
    }
    // The bits below the leading one pick the sub-bucket.
    let sub = if power >= 4 {
        (us >> (power - 4)) as usize & (SUB_BUCKETS - 1)
    } else {
        ((us << (4 - power)) as usize) & (SUB_BUCKETS - 1)
    };
    1 + power * SUB_BUCKETS + sub
}

/// The lower and upper bounds of bucket `index`, in microseconds.
fn bucket_bounds_us(index: usize) -> (f64, f64) {
    if index == 0 {
        return (0.0, 1.0);
    }
    let power = (index - 1) / SUB_BUCKETS;
    let sub = (index - 1) % SUB_BUCKETS;
    let base = (1u64 << power) as f64;
    let width = base / SUB_BUCKETS as f64;
    (base + sub as f64 * width, base + (sub + 1) as f64 * width)
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Their sum, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }

    /// The latency, in microseconds, at quantile `q` (0 to 1): the midpoint of the bucket that
    /// holds it. None before anything was counted.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: the smallest latency with at least q of all at
        // or below it.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bucket_bounds_us(index);
                return Some((low + high) / 2.0);
            }
        }
        unreachable!("the ranks sum to the total")
    }
}

/// A request's outcome, as metrics count it: `ok`, or the error's short `__type`.
pub type Outcome = String;

/// Everything a node measures about itself.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<String, OperationMetrics>>,
    sync_writes: LatencyHistogram,
    buffered_writes: LatencyHistogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("sync_writes", &self.sync_writes.count()).finish_non_exhaustive()
    }
}

/// Requests of one operation.
#[derive(Default)]
struct OperationMetrics {
    outcomes: BTreeMap<Outcome, u64>,
    latency: Arc<LatencyHistogram>,
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts a request of `operation` that ended with `outcome` after `latency`.
    pub fn record_request(&self, operation: &str, outcome: &str, latency: Duration) {
        let histogram = {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            let name = if requests.contains_key(operation) || requests.len() < OPERATIONS_MAX - 1 {
                operation
            } else {
                "other"
            };
            let entry = requests.entry(name.to_string()).or_default();
            *entry.outcomes.entry(outcome.to_string()).or_default() += 1;
            entry.latency.clone()
        };
        histogram.record(latency);
    }

    /// Counts a storage write with `durability` that took `latency`.
    pub fn record_write(&self, durability: Durability, latency: Duration) {
        match durability {
            Durability::Sync => self.sync_writes.record(latency),
            Durability::Buffered => self.buffered_writes.record(latency),
        }
    }

    /// The latency of synced storage writes.
    pub fn sync_writes(&self) -> &LatencyHistogram {
        &self.sync_writes
    }

    /// Everything, in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP squall_requests_total API requests by operation and outcome (ok or the error's type).\n");
        out.push_str("# TYPE squall_requests_total counter\n");
        for (operation, metrics) in requests.iter() {
            for (outcome, count) in &metrics.outcomes {
                let _ =
                    writeln!(out, "squall_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} {count}");
            }
        }
        out.push_str(
            "# HELP squall_request_seconds API request latency at this node, from its body read to its answer.\n",
        );
        out.push_str("# TYPE squall_request_seconds summary\n");
        for (operation, metrics) in requests.iter() {
            summary(&mut out, "squall_request_seconds", &format!("operation=\"{operation}\""), &metrics.latency);
        }
        drop(requests);
        out.push_str("# HELP squall_storage_write_seconds Storage write latency by durability (sync includes the log's fsync).\n");
        out.push_str("# TYPE squall_storage_write_seconds summary\n");
        summary(&mut out, "squall_storage_write_seconds", "durability=\"sync\"", &self.sync_writes);
        summary(&mut out, "squall_storage_write_seconds", "durability=\"buffered\"", &self.buffered_writes);
        out
    }
}

/// One summary's quantile, sum and count lines.
fn summary(out: &mut String, name: &str, labels: &str, histogram: &LatencyHistogram) {
    for q in QUANTILES {
        if let Some(us) = histogram.quantile_us(q) {
            let _ = writeln!(out, "{name}{{{labels},quantile=\"{q}\"}} {}", us / 1e6);
        }
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum_us() as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count());
}

/// A `KvStore` wrapper that times every write into a node's [`Metrics`]. It changes nothing
/// about what the store does or answers.
pub struct TimedStore {
    inner: Arc<dyn KvStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    /// Times the writes of `inner` into `metrics`.
    pub fn new(inner: Arc<dyn KvStore>, metrics: Arc<Metrics>) -> TimedStore {
        TimedStore { inner, metrics }
    }
}

impl KvStore for TimedStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        lower: std::ops::Bound<&[u8]>,
        upper: std::ops::Bound<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<KvPair>, StorageError> {
        self.inner.scan(lower, upper, direction, limit)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StorageError> {
        let started = tokio::time::Instant::now();
        let result = self.inner.write(batch, durability);
        self.metrics.record_write(durability, started.elapsed());
        result
    }

    fn sync(&self) -> Result<(), StorageError> {
        let started = tokio::time::Instant::now();
        let result = self.inner.sync();
        self.metrics.record_write(Durability::Sync, started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_hold_their_values() {
        let mut previous_high = 0.0;
        for index in 0..1 + POWERS * SUB_BUCKETS {
            let (low, high) = bucket_bounds_us(index);
            assert_eq!(low, previous_high, "bucket {index} starts where the one before ends");
            assert!(high > low);
            previous_high = high;
        }
        for us in [0, 1, 2, 3, 7, 15, 16, 17, 100, 146, 999, 1_000, 12_345, 1 << 20, (1 << 28) - 1] {
            let (low, high) = bucket_bounds_us(bucket_of(us));
            assert!(low <= us as f64 && (us as f64) < high, "{us} us in bucket [{low}, {high})");
        }
        assert_eq!(bucket_of(u64::MAX), POWERS * SUB_BUCKETS, "beyond the range counts in the last bucket");
    }

    #[test]
    fn quantiles_are_within_the_bucket_error() {
        let histogram = LatencyHistogram::default();
        assert_eq!(histogram.quantile_us(0.5), None);
        // 1..=10_000 us, one each: the q quantile is 10_000 q.
        for us in 1..=10_000u64 {
            histogram.record(Duration::from_micros(us));
        }
        assert_eq!(histogram.count(), 10_000);
        assert_eq!(histogram.sum_us(), 10_000 * 10_001 / 2);
        for q in [0.01, 0.5, 0.9, 0.99, 0.999] {
            let expected = 10_000.0 * q;
            let got = histogram.quantile_us(q).unwrap();
            assert!((got - expected).abs() / expected <= BUCKET_ERROR_MAX + 1e-3, "q {q}: {got} against {expected}");
        }
    }

    #[test]
    fn the_rendering_counts_requests_and_writes() {
        let metrics = Metrics::new();
        metrics.record_request("GetItem", "ok", Duration::from_micros(300));
        metrics.record_request("GetItem", "ok", Duration::from_micros(500));
        metrics.record_request("PutItem", "ValidationException", Duration::from_micros(50));
        metrics.record_write(Durability::Sync, Duration::from_micros(150));
        let text = metrics.render();
        assert!(text.contains("squall_requests_total{operation=\"GetItem\",outcome=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("squall_requests_total{operation=\"PutItem\",outcome=\"ValidationException\"} 1\n"));
        assert!(text.contains("squall_request_seconds_count{operation=\"GetItem\"} 2\n"));
        assert!(text.contains("squall_request_seconds_sum{operation=\"GetItem\"} 0.0008\n"), "{text}");
        assert!(text.contains("squall_storage_write_seconds_count{durability=\"sync\"} 1\n"));
        assert!(text.contains("squall_storage_write_seconds{durability=\"sync\",quantile=\"0.5\"} 0.000"));
        assert!(text.contains("squall_storage_write_seconds_count{durability=\"buffered\"} 0\n"));
        // Every sample line is a name, optional labels and a number.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn made_up_operations_share_one_name_past_the_limit() {
        let metrics = Metrics::new();
        for i in 0..OPERATIONS_MAX * 2 {
            metrics.record_request(&format!("Made{i}"), "UnknownOperationException", Duration::from_micros(1));
        }
        metrics.record_request("Made0", "UnknownOperationException", Duration::from_micros(1));
        let requests = metrics.requests.lock().unwrap();
        assert_eq!(requests.len(), OPERATIONS_MAX);
        assert_eq!(requests["Made0"].outcomes["UnknownOperationException"], 2, "a known name keeps counting");
        assert_eq!(requests["other"].outcomes["UnknownOperationException"], (OPERATIONS_MAX + 1) as u64);
    }

    #[test]
    fn a_timed_store_times_its_writes_and_answers_as_the_inner_one() {
        let metrics = Metrics::new();
        let store = TimedStore::new(Arc::new(crate::storage::MemStore::new()), metrics.clone());
        let mut batch = WriteBatch::new();
        batch.put(b"k".to_vec(), b"v".to_vec());
        store.write(batch, Durability::Sync).unwrap();
        store.write(WriteBatch::new(), Durability::Buffered).unwrap();
        store.sync().unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(metrics.sync_writes().count(), 2);
        assert_eq!(metrics.buffered_writes.count(), 1);
    }
}
