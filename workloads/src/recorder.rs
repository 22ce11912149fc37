//! Latency recording: one HdrHistogram per (operation, outcome), a per-second time series, and the
//! standard `.hgrm` and JSON outputs.
//!
//! Pure: every time is a u64 microsecond value the caller passes in (from `tokio::time` in a real
//! or simulated run); nothing here reads a clock.
//!
//! Coordinated omission: in an open-loop run the caller passes each operation's *intended* start
//! (its slot in the arrival schedule), not the moment it was sent, so a stall that delays sending
//! shows up in the latencies of every operation it delayed (wrk2's approach).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Lowest latency the histograms discern, in microseconds.
pub const LATENCY_US_MIN: u64 = 1;
/// Highest latency recorded, in microseconds (60 s); larger latencies are recorded as this value
/// and counted in [`Summary::clamped`].
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant decimal digits of the per-(operation, outcome) histograms.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Significant digits of the per-second histograms: two digits (1% resolution) keep each second at
/// about 20 KB instead of about 200 KB.
pub const SERIES_SIGNIFICANT_DIGITS: u8 = 2;
/// Longest time series, in seconds after the start (7 days). Operations completing later are still
/// in the histograms, counted in [`Summary::beyond_series`].
pub const SERIES_SECONDS_MAX: u64 = 7 * 24 * 3600;
/// Percentile ticks per half distance in `.hgrm` output (HdrHistogram's default, 5).
pub const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;
/// `.hgrm` values are in milliseconds: microseconds divided by this (HdrHistogram's
/// `outputValueUnitScalingRatio`, as wrk2 uses it).
pub const HGRM_VALUE_UNIT_SCALING_RATIO: f64 = 1000.0;

const MICROS_PER_SECOND: u64 = 1_000_000;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Succeeded.
    Ok,
    /// Failed with an error other than throttling.
    Error,
    /// Rejected for capacity (DynamoDB's ProvisionedThroughputExceeded, ThrottlingException).
    Throttled,
    /// No answer within the client's timeout.
    Timeout,
}

impl Outcome {
    /// Every outcome, in output order.
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Error, Outcome::Throttled, Outcome::Timeout];

    /// Lower-case name used in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Misuse of the recorder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecorderError {
    /// The warm-up would end before the run starts.
    #[error("warm-up end {warmup_end_us} µs is before the start {start_us} µs")]
    WarmupBeforeStart {
        /// Run start.
        start_us: u64,
        /// Warm-up end.
        warmup_end_us: u64,
    },
    /// Recorders with different start or warm-up end cannot be merged: their seconds differ.
    #[error("cannot merge recorders with different start or warm-up times")]
    MismatchedTimes,
}

/// One second of the time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondSummary {
    /// Seconds since the start (completions in [second, second + 1)).
    pub second: u64,
    /// Successful operations completed in this second: the throughput in operations per second.
    pub ok: u64,
    /// Operations that failed with an error.
    pub error: u64,
    /// Operations that were throttled.
    pub throttled: u64,
    /// Operations that timed out.
    pub timeout: u64,
    /// Median latency of the successful operations, in microseconds (0 when there were none).
    pub p50_us: u64,
    /// 99th percentile latency of the successful operations, in microseconds.
    pub p99_us: u64,
}

/// Latency statistics of one (operation, outcome).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Operations recorded.
    pub count: u64,
    /// Operations per second over the measured window.
    pub throughput_ops_per_s: f64,
    /// Median, in microseconds.
    pub p50_us: u64,
    /// 90th percentile, in microseconds.
    pub p90_us: u64,
    /// 99th percentile, in microseconds.
    pub p99_us: u64,
    /// 99.9th percentile, in microseconds.
    pub p999_us: u64,
    /// Largest latency, in microseconds.
    pub max_us: u64,
    /// Mean latency, in microseconds.
    pub mean_us: f64,
}

/// Statistics of one operation type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationSummary {
    /// Operations recorded, all outcomes.
    pub count: u64,
    /// Operations that did not succeed (error, throttled or timeout).
    pub errors: u64,
    /// Per outcome, only outcomes that occurred.
    pub outcomes: BTreeMap<Outcome, LatencySummary>,
}

/// The JSON summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Length of the measured window (warm-up end to the end the caller gave), in seconds.
    pub measured_seconds: f64,
    /// Operations left out because they were scheduled during the warm-up.
    pub warmup_excluded: u64,
    /// Latencies above [`LATENCY_US_MAX`], recorded as that value.
    pub clamped: u64,
    /// Completions too late for the time series (after [`SERIES_SECONDS_MAX`]).
    pub beyond_series: u64,
    /// Per operation type.
    pub operations: BTreeMap<String, OperationSummary>,
}

/// One second's counts and latencies.
#[derive(Debug, Clone)]
struct Second {
    counts: [u64; 4],
    /// Latencies of the successful operations.
    ok_latency_us: Histogram<u64>,
}

/// Records operation latencies for one run (or one worker of a run; see [`Recorder::merge`]).
#[derive(Debug, Clone)]
pub struct Recorder {
    start_us: u64,
    warmup_end_us: u64,
    histograms: BTreeMap<String, [Option<Histogram<u64>>; 4]>,
    seconds: BTreeMap<u64, Second>,
    warmup_excluded: u64,
    clamped: u64,
    beyond_series: u64,
}

fn new_histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, significant_digits)
        .expect("constant histogram bounds are valid")
}

impl Recorder {
    /// A recorder for a run that starts at `start_us`; operations whose (intended) start is before
    /// `warmup_end_us` are not recorded.
    pub fn new(start_us: u64, warmup_end_us: u64) -> Result<Self, RecorderError> {
        if warmup_end_us < start_us {
            return Err(RecorderError::WarmupBeforeStart { start_us, warmup_end_us });
        }
        Ok(Self {
            start_us,
            warmup_end_us,
            histograms: BTreeMap::new(),
            seconds: BTreeMap::new(),
            warmup_excluded: 0,
            clamped: 0,
            beyond_series: 0,
        })
    }

    /// Records an operation that was due to start at `intended_start_us` and ended at `end_us`; the
    /// latency is measured from the intended start (coordinated-omission correction). Returns false
    /// when the operation belongs to the warm-up and was left out.
    ///
    /// An operation belongs to the warm-up when it was scheduled before the warm-up end, even if it
    /// completes after: the measured set is exactly the operations scheduled in the measured window.
    pub fn record(&mut self, operation: &str, outcome: Outcome, intended_start_us: u64, end_us: u64) -> bool {
        if intended_start_us < self.warmup_end_us {
            self.warmup_excluded += 1;
            return false;
        }
        // An end before the start can only come from a caller's clock mix-up; it counts as 0 µs.
        let mut latency_us = end_us.saturating_sub(intended_start_us);
        if latency_us > LATENCY_US_MAX {
            self.clamped += 1;
            latency_us = LATENCY_US_MAX;
        }
        let histograms = match self.histograms.get_mut(operation) {
            Some(histograms) => histograms,
            None => self.histograms.entry(operation.to_owned()).or_default(),
        };
        histograms[outcome.index()]
            .get_or_insert_with(|| new_histogram(SIGNIFICANT_DIGITS))
            .saturating_record(latency_us);

        let second = end_us.saturating_sub(self.start_us) / MICROS_PER_SECOND;
        if second >= SERIES_SECONDS_MAX {
            self.beyond_series += 1;
            return true;
        }
        let entry = self
            .seconds
            .entry(second)
            .or_insert_with(|| Second { counts: [0; 4], ok_latency_us: new_histogram(SERIES_SIGNIFICANT_DIGITS) });
        entry.counts[outcome.index()] += 1;
        if outcome == Outcome::Ok {
            entry.ok_latency_us.saturating_record(latency_us);
        }
        true
    }

    /// Records a latency measured by the caller (closed loop, where the start is the send time),
    /// for an operation that ended at `end_us`. Same as [`Recorder::record`] with the start
    /// `end_us - latency_us`.
    pub fn record_latency(&mut self, operation: &str, outcome: Outcome, latency_us: u64, end_us: u64) -> bool {
        self.record(operation, outcome, end_us.saturating_sub(latency_us), end_us)
    }

    /// Adds another recorder's records (e.g. another worker's). Both must have the same start and
    /// warm-up end.
    pub fn merge(&mut self, other: &Recorder) -> Result<(), RecorderError> {
        if (self.start_us, self.warmup_end_us) != (other.start_us, other.warmup_end_us) {
            return Err(RecorderError::MismatchedTimes);
        }
        for (operation, theirs) in &other.histograms {
            let ours = self.histograms.entry(operation.clone()).or_default();
            for (mine, their) in ours.iter_mut().zip(theirs) {
                if let Some(their) = their {
                    mine.get_or_insert_with(|| new_histogram(SIGNIFICANT_DIGITS))
                        .add(their)
                        .expect("histograms with the same bounds add");
                }
            }
        }
        for (&second, theirs) in &other.seconds {
            let ours = self
                .seconds
                .entry(second)
                .or_insert_with(|| Second { counts: [0; 4], ok_latency_us: new_histogram(SERIES_SIGNIFICANT_DIGITS) });
            for (mine, their) in ours.counts.iter_mut().zip(theirs.counts) {
                *mine += their;
            }
            ours.ok_latency_us.add(&theirs.ok_latency_us).expect("histograms with the same bounds add");
        }
        self.warmup_excluded += other.warmup_excluded;
        self.clamped += other.clamped;
        self.beyond_series += other.beyond_series;
        Ok(())
    }

    /// Operation names recorded so far, sorted.
    pub fn operations(&self) -> impl Iterator<Item = &str> {
        self.histograms.keys().map(String::as_str)
    }

    /// The histogram of one (operation, outcome), in microseconds, if anything was recorded.
    pub fn histogram(&self, operation: &str, outcome: Outcome) -> Option<&Histogram<u64>> {
        self.histograms.get(operation)?[outcome.index()].as_ref()
    }

    /// The per-second time series, in order, seconds without completions left out.
    pub fn series(&self) -> Vec<SecondSummary> {
        self.seconds
            .iter()
            .map(|(&second, stats)| {
                let quantile =
                    |q: f64| if stats.ok_latency_us.is_empty() { 0 } else { stats.ok_latency_us.value_at_quantile(q) };
                SecondSummary {
                    second,
                    ok: stats.counts[Outcome::Ok.index()],
                    error: stats.counts[Outcome::Error.index()],
                    throttled: stats.counts[Outcome::Throttled.index()],
                    timeout: stats.counts[Outcome::Timeout.index()],
                    p50_us: quantile(0.5),
                    p99_us: quantile(0.99),
                }
            })
            .collect()
    }

    /// The `.hgrm` percentile distribution of one (operation, outcome), if anything was recorded.
    pub fn hgrm(&self, operation: &str, outcome: Outcome) -> Option<String> {
        self.histogram(operation, outcome).map(percentile_distribution)
    }

    /// The summary of the run, measured from the warm-up end to `end_us` (the caller's end of
    /// the run), which sets the throughputs.
    pub fn summary(&self, end_us: u64) -> Summary {
        let measured_seconds = end_us.saturating_sub(self.warmup_end_us) as f64 / MICROS_PER_SECOND as f64;
        let operations = self
            .histograms
            .iter()
            .map(|(operation, histograms)| {
                let outcomes: BTreeMap<Outcome, LatencySummary> = Outcome::ALL
                    .into_iter()
                    .zip(histograms)
                    .filter_map(|(outcome, histogram)| {
                        histogram.as_ref().map(|histogram| (outcome, latency_summary(histogram, measured_seconds)))
                    })
                    .collect();
                let count = outcomes.values().map(|latency| latency.count).sum();
                let errors = outcomes
                    .iter()
                    .filter(|&(&outcome, _)| outcome != Outcome::Ok)
                    .map(|(_, latency)| latency.count)
                    .sum();
                (operation.clone(), OperationSummary { count, errors, outcomes })
            })
            .collect();
        Summary {
            measured_seconds,
            warmup_excluded: self.warmup_excluded,
            clamped: self.clamped,
            beyond_series: self.beyond_series,
            operations,
        }
    }

    /// [`Recorder::summary`] as pretty-printed JSON.
    pub fn summary_json(&self, end_us: u64) -> String {
        serde_json::to_string_pretty(&self.summary(end_us)).expect("the summary serialises")
    }
}

fn latency_summary(histogram: &Histogram<u64>, measured_seconds: f64) -> LatencySummary {
    let count = histogram.len();
    LatencySummary {
        count,
        throughput_ops_per_s: if measured_seconds > 0.0 { count as f64 / measured_seconds } else { 0.0 },
        p50_us: histogram.value_at_quantile(0.5),
        p90_us: histogram.value_at_quantile(0.9),
        p99_us: histogram.value_at_quantile(0.99),
        p999_us: histogram.value_at_quantile(0.999),
        max_us: histogram.max(),
        mean_us: histogram.mean(),
    }
}

/// HdrHistogram's standard percentile distribution (Java's `outputPercentileDistribution` with 5
/// ticks per half distance and a value scaling ratio of 1000, so microseconds print as
/// milliseconds), the `.hgrm` format that HdrHistogram's plotter and wrk2 read:
///
/// ```text
///        Value     Percentile TotalCount 1/(1-Percentile)
///
///        0.100 0.000000000000          1           1.00
///        ...
/// #[Mean    =        0.500, StdDeviation   =        0.289]
/// #[Max     =        1.000, Total count    =         1000]
/// #[Buckets =           19, SubBuckets     =         2048]
/// ```
pub fn percentile_distribution(histogram: &Histogram<u64>) -> String {
    let digits = usize::from(histogram.sigfig());
    let scale = HGRM_VALUE_UNIT_SCALING_RATIO;
    let mut out = String::new();
    let _ = write!(out, "{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if !histogram.is_empty() {
        let mut total_count = 0u64;
        for step in histogram.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
            total_count += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / scale;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.digits$} {quantile:2.12} {total_count:10} {:14.2}",
                    1.0 / (1.0 - quantile)
                );
            } else {
                let _ = writeln!(out, "{value:12.digits$} {quantile:2.12} {total_count:10}");
            }
        }
    }
    let (mean, deviation) =
        if histogram.is_empty() { (0.0, 0.0) } else { (histogram.mean() / scale, histogram.stdev() / scale) };
    let _ = writeln!(out, "#[Mean    = {mean:12.digits$}, StdDeviation   = {deviation:12.digits$}]");
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        histogram.max() as f64 / scale,
        histogram.len()
    );
    // HdrHistogram's sub-bucket count: the power of two covering 2·10^digits values at unit
    // resolution (the crate does not expose it).
    let sub_buckets = (2 * 10u64.pow(u32::from(histogram.sigfig()))).next_power_of_two();
    let _ = writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", histogram.buckets(), sub_buckets);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND_US: u64 = 1_000_000;

    #[test]
    fn warmup_end_must_not_precede_start() {
        assert_eq!(
            Recorder::new(10, 5).unwrap_err(),
            RecorderError::WarmupBeforeStart { start_us: 10, warmup_end_us: 5 }
        );
    }

    #[test]
    fn latency_is_measured_from_the_intended_start() {
        let mut recorder = Recorder::new(0, 0).unwrap();
        // Sent 40 ms late because of a stall, answered 2 ms after sending: 42 ms from the schedule.
        assert!(recorder.record("READ", Outcome::Ok, 1_000_000, 1_042_000));
        let histogram = recorder.histogram("READ", Outcome::Ok).unwrap();
        assert_eq!(histogram.len(), 1);
        assert!(histogram.equivalent(histogram.max(), 42_000));
        // The plain API takes the latency as measured.
        assert!(recorder.record_latency("READ", Outcome::Ok, 2_000, 1_050_000));
        assert!(recorder
            .histogram("READ", Outcome::Ok)
            .unwrap()
            .equivalent(recorder.histogram("READ", Outcome::Ok).unwrap().min(), 2_000));
        assert!(recorder.histogram("READ", Outcome::Error).is_none());
    }

    #[test]
    fn warmup_operations_go_nowhere() {
        let mut recorder = Recorder::new(0, 5 * SECOND_US).unwrap();
        // Scheduled during the warm-up, completed after it: still warm-up.
        assert!(!recorder.record("READ", Outcome::Ok, 4 * SECOND_US, 6 * SECOND_US));
        assert!(!recorder.record_latency("READ", Outcome::Ok, 10, 3 * SECOND_US));
        assert!(recorder.record("READ", Outcome::Ok, 5 * SECOND_US, 5 * SECOND_US + 100));
        assert_eq!(recorder.histogram("READ", Outcome::Ok).unwrap().len(), 1);
        assert_eq!(recorder.series().len(), 1);
        assert_eq!(recorder.summary(6 * SECOND_US).warmup_excluded, 2);
    }

    #[test]
    fn latencies_beyond_the_range_are_clamped_and_counted() {
        let mut recorder = Recorder::new(0, 0).unwrap();
        recorder.record("SCAN", Outcome::Timeout, 0, 90 * SECOND_US);
        recorder.record("SCAN", Outcome::Ok, 10, 5);
        let summary = recorder.summary(100 * SECOND_US);
        assert_eq!(summary.clamped, 1);
        let timeout = &summary.operations["SCAN"].outcomes[&Outcome::Timeout];
        assert!(timeout.max_us >= LATENCY_US_MAX && timeout.max_us <= LATENCY_US_MAX + LATENCY_US_MAX / 1000);
        assert_eq!(summary.operations["SCAN"].outcomes[&Outcome::Ok].max_us, 0, "end before start counts as 0");
    }

    #[test]
    fn time_series_counts_each_second() {
        let mut recorder = Recorder::new(10 * SECOND_US, 10 * SECOND_US).unwrap();
        let start = 10 * SECOND_US;
        for i in 0..100u64 {
            // Second 0: 100 successes of 1..100 ms.
            recorder.record_latency("READ", Outcome::Ok, (i + 1) * 1_000, start + 500_000);
        }
        recorder.record_latency("UPDATE", Outcome::Throttled, 10, start + 2 * SECOND_US + 1);
        recorder.record_latency("UPDATE", Outcome::Timeout, 10, start + 2 * SECOND_US + 2);
        recorder.record_latency("UPDATE", Outcome::Error, 10, start + 2 * SECOND_US + 3);
        let series = recorder.series();
        assert_eq!(series.len(), 2, "seconds without completions are left out");
        assert_eq!((series[0].second, series[0].ok, series[0].error), (0, 100, 0));
        // Two significant digits: within 1%.
        assert!(series[0].p50_us.abs_diff(50_000) <= 500, "{}", series[0].p50_us);
        assert!(series[0].p99_us.abs_diff(99_000) <= 990, "{}", series[0].p99_us);
        assert_eq!(
            (series[1].second, series[1].ok, series[1].error, series[1].throttled, series[1].timeout),
            (2, 0, 1, 1, 1)
        );
        assert_eq!((series[1].p50_us, series[1].p99_us), (0, 0));
    }

    #[test]
    fn merged_recorders_equal_one_recorder() {
        let mut whole = Recorder::new(0, 0).unwrap();
        let mut left = Recorder::new(0, 0).unwrap();
        let mut right = Recorder::new(0, 0).unwrap();
        for i in 0..1_000u64 {
            let outcome = Outcome::ALL[(i % 4) as usize];
            let operation = if i % 3 == 0 { "READ" } else { "UPDATE" };
            let end = i * 7_919;
            whole.record_latency(operation, outcome, i * 13, end);
            let half = if i % 2 == 0 { &mut left } else { &mut right };
            half.record_latency(operation, outcome, i * 13, end);
        }
        left.merge(&right).unwrap();
        assert_eq!(left.summary(8 * SECOND_US), whole.summary(8 * SECOND_US));
        assert_eq!(left.series(), whole.series());
        assert_eq!(left.hgrm("READ", Outcome::Ok), whole.hgrm("READ", Outcome::Ok));
        let other = Recorder::new(0, 1).unwrap();
        assert_eq!(left.merge(&other), Err(RecorderError::MismatchedTimes));
    }

    #[test]
    fn summary_has_percentiles_throughput_and_errors() {
        let mut recorder = Recorder::new(0, SECOND_US).unwrap();
        // 10 s measured window; 1000 reads of 1..=1000 µs, 10 errors.
        for i in 1..=1000u64 {
            recorder.record("READ", Outcome::Ok, SECOND_US + i * 1000, SECOND_US + i * 1000 + i);
        }
        for i in 0..10u64 {
            recorder.record("READ", Outcome::Error, 2 * SECOND_US + i, 2 * SECOND_US + i + 5);
        }
        let summary = recorder.summary(11 * SECOND_US);
        assert_eq!(summary.measured_seconds, 10.0);
        let read = &summary.operations["READ"];
        assert_eq!((read.count, read.errors), (1010, 10));
        let ok = &read.outcomes[&Outcome::Ok];
        // Values below 2048 are exact at three significant digits.
        assert_eq!(
            (ok.count, ok.p50_us, ok.p90_us, ok.p99_us, ok.p999_us, ok.max_us),
            (1000, 500, 900, 990, 999, 1000)
        );
        assert!((ok.mean_us - 500.5).abs() < 1e-9);
        assert!((ok.throughput_ops_per_s - 100.0).abs() < 1e-9);
        assert_eq!(read.outcomes[&Outcome::Error].count, 10);
        let json = recorder.summary_json(11 * SECOND_US);
        let parsed: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, summary);
        assert!(json.contains("\"p999_us\": 999"), "{json}");
        assert!(json.contains("\"error\""), "outcomes are keyed by their lower-case names: {json}");
    }

    /// The layout of HdrHistogram's `outputPercentileDistribution(out, 5, 1000.0)`, checked line by
    /// line on a histogram small enough to work out by hand: four values, 1, 2, 3 and 4 ms.
    #[test]
    fn hgrm_matches_hdrhistograms_format() {
        let mut recorder = Recorder::new(0, 0).unwrap();
        for ms in 1..=4u64 {
            recorder.record_latency("READ", Outcome::Ok, ms * 1000, 10 * SECOND_US);
        }
        let text = recorder.hgrm("READ", Outcome::Ok).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[1], "");
        // Percentile ticks 0, 10, 20 % are all at the first value (which holds 25 %).
        assert_eq!(lines[2], "       1.000 0.000000000000          1           1.00");
        assert_eq!(lines[3], "       1.000 0.100000000000          1           1.11");
        assert_eq!(lines[4], "       1.000 0.200000000000          1           1.25");
        assert_eq!(lines[5], "       2.000 0.300000000000          2           1.43");
        // The last row, at 100 %, has no 1/(1-Percentile) column.
        // Values print as the highest value equivalent to the bucket (4000 µs shares a 2 µs
        // bucket with 4001 µs), as in Java.
        let last_row = lines[lines.len() - 4];
        assert_eq!(last_row, "       4.001 1.000000000000          4");
        // 3000 and 4000 µs are not exact at 3 digits: their buckets are 2 µs wide, and the mean
        // uses each bucket's middle: (1000 + 2000 + 3001 + 4001) / 4 = 2500.5 µs.
        assert_eq!(lines[lines.len() - 3], "#[Mean    =        2.501, StdDeviation   =        1.118]");
        assert_eq!(lines[lines.len() - 2], "#[Max     =        4.001, Total count    =            4]");
        // 2048 sub-buckets cover 0..2048 µs; each further bucket doubles the range, and 60 s needs
        // 2048 · 2^15 > 6·10^7: 16 buckets.
        assert_eq!(lines[lines.len() - 1], "#[Buckets =           16, SubBuckets     =         2048]");
    }

    #[test]
    fn hgrm_of_an_empty_histogram_has_header_and_footer() {
        let text = percentile_distribution(&new_histogram(SIGNIFICANT_DIGITS));
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("#[Mean    =        0.000, StdDeviation   =        0.000]"));
    }
}
