//! The load runner: offers a workload's operations to a [`DynamoApi`] in an open loop (arrivals
//! at a target rate, constant or Poisson, with ramps) or a closed loop (N clients, each waiting
//! for its answer and an optional think time), and records every operation's latency by outcome.
//!
//! Open loop and coordinated omission: every operation has an intended start, its slot in the
//! arrival schedule. When the system under test stalls, operations queue behind the in-flight
//! bound and go out late; their latency is still measured from the intended start, so the stall
//! appears in the percentiles as a user arriving on schedule would have seen it. The runner also
//! keeps the uncorrected measure (from the moment the request was sent) for comparison.
//!
//! Architecture Invariant: time comes only from `tokio::time` (simulated under madsim), tasks are
//! `tokio` tasks, randomness comes from the seed; every loop is bounded by the run's duration and
//! operation count, and waiting for the last answers by `drain_timeout`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::api::DynamoApi;
use crate::keygen::{next_f64, seeded_rng};
use crate::op::{execute, execute_load, Op};
use crate::recorder::{Outcome, Recorder, RecorderError};
use crate::scenario::Workload;

/// RNG stream of the Poisson inter-arrival gaps (scenario streams use other numbers).
pub const STREAM_ARRIVALS: u64 = 101;
/// Most operations in flight at once in an open loop unless set otherwise.
pub const IN_FLIGHT_MAX_DEFAULT: usize = 1024;

/// How arrival times are spaced in an open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Evenly, 1/rate apart.
    Constant,
    /// A Poisson process: exponential gaps of mean 1/rate.
    Poisson,
}

/// A stretch of the arrival schedule whose rate goes linearly from `rate_start` to `rate_end`
/// operations per second (a constant rate when they are equal, a ramp otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateSegment {
    /// Length of the stretch.
    pub duration: Duration,
    /// Rate at its start, operations per second.
    pub rate_start: f64,
    /// Rate at its end, operations per second.
    pub rate_end: f64,
}

impl RateSegment {
    /// A constant rate.
    pub fn constant(duration: Duration, rate: f64) -> Self {
        RateSegment { duration, rate_start: rate, rate_end: rate }
    }
}

/// Open or closed loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LoopMode {
    /// Operations arrive on a schedule regardless of answers.
    Open {
        /// Spacing of arrivals.
        arrivals: Arrivals,
        /// The schedule; the run lasts their total duration unless stopped earlier.
        schedule: Vec<RateSegment>,
        /// Most operations in flight at once; arrivals beyond it wait (and their latency counts
        /// the wait).
        in_flight_max: usize,
    },
    /// N clients, each issuing its next operation after the previous answer and the think time.
    Closed {
        /// Number of clients.
        clients: usize,
        /// Pause between an answer and the client's next operation.
        think_time: Duration,
        /// How long the run lasts.
        duration: Duration,
    },
}

/// What to run and for how long.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSettings {
    /// Open or closed loop.
    pub mode: LoopMode,
    /// Operations (counting the warm-up) at most; `None` for as many as the duration allows.
    pub operations_max: Option<u64>,
    /// Operations scheduled during this first part of the run are executed but not recorded.
    pub warmup: Duration,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// How long to wait for the answers still outstanding when the schedule ends.
    pub drain_timeout: Duration,
}

impl RunSettings {
    /// The length of the schedule (open loop) or the run (closed loop).
    pub fn duration(&self) -> Duration {
        match &self.mode {
            LoopMode::Open { schedule, .. } => schedule.iter().map(|segment| segment.duration).sum(),
            LoopMode::Closed { duration, .. } => *duration,
        }
    }
}

/// Misuse of the runner.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Settings that cannot run.
    #[error("invalid run settings: {0}")]
    Settings(String),
    /// The recorder refused its times.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

/// Counters the runner updates as it goes, for progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Operations issued.
    pub issued: AtomicU64,
    /// Operations finished, any outcome.
    pub completed: AtomicU64,
    /// Operations that did not succeed.
    pub failed: AtomicU64,
    /// Set to stop issuing new operations early (Ctrl-C).
    pub stop: AtomicBool,
}

/// The result of a run.
#[derive(Debug)]
pub struct RunReport<W> {
    /// The workload, with every acknowledgement it was given.
    pub workload: W,
    /// Latencies from each operation's intended start.
    pub recorder: Recorder,
    /// Latencies from the moment each request was sent (no coordinated-omission correction).
    pub uncorrected: Recorder,
    /// End of the run, microseconds after its start (the last answer, or the schedule end).
    pub end_us: u64,
    /// Warm-up end, microseconds after the start.
    pub warmup_end_us: u64,
    /// Operations issued.
    pub issued: u64,
    /// Operations whose answer did not arrive within the drain timeout (not recorded).
    pub abandoned: u64,
}

/// State the run's tasks share. The workload and recorders are taken out when the run ends;
/// an operation still running after the drain timeout then finds them gone and is not recorded.
struct Shared<W> {
    workload: Mutex<Option<W>>,
    recorders: Mutex<Option<(Recorder, Recorder)>>,
    progress: Arc<Progress>,
    base: Instant,
}

impl<W: Workload> Shared<W> {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    fn next_op(&self, load: bool) -> Option<Op> {
        let mut workload = self.workload.lock().expect("workload lock");
        let workload = workload.as_mut()?;
        if load {
            workload.next_load()
        } else {
            Some(workload.next_op())
        }
    }

    async fn run_one<A: DynamoApi>(&self, api: &A, op: Op, intended_us: u64, load: bool) {
        let sent_us = self.now_us();
        // The load phase puts every item in place, throttled or not; the run phase measures
        // throttling as an outcome.
        let result = if load { execute_load(api, &op).await } else { execute(api, &op).await };
        let end_us = self.now_us();
        let Some(outcome) = self.workload.lock().expect("workload lock").as_mut().map(|w| w.complete(&op, &result))
        else {
            return;
        };
        if let Some((corrected, uncorrected)) = self.recorders.lock().expect("recorder lock").as_mut() {
            corrected.record(op.name, outcome, intended_us, end_us);
            uncorrected.record(op.name, outcome, sent_us, end_us);
        }
        self.progress.completed.fetch_add(1, Ordering::Relaxed);
        if outcome != Outcome::Ok {
            self.progress.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs the workload's run phase under `settings`.
pub async fn run<A: DynamoApi, W: Workload>(
    api: A,
    workload: W,
    settings: &RunSettings,
    progress: Arc<Progress>,
) -> Result<RunReport<W>, RunError> {
    drive(api, workload, settings, progress, false).await
}

/// Runs the workload's load phase (every operation of [`Workload::next_load`]) in a closed loop
/// of `clients`, bounded by `duration`; no warm-up. Throttled calls are sent again
/// ([`crate::op::execute_load`]).
pub async fn load<A: DynamoApi, W: Workload>(
    api: A,
    workload: W,
    clients: usize,
    duration: Duration,
    progress: Arc<Progress>,
) -> Result<RunReport<W>, RunError> {
    let settings = RunSettings {
        mode: LoopMode::Closed { clients, think_time: Duration::ZERO, duration },
        operations_max: None,
        warmup: Duration::ZERO,
        seed: 0,
        drain_timeout: duration,
    };
    drive(api, workload, &settings, progress, true).await
}

async fn drive<A: DynamoApi, W: Workload>(
    api: A,
    workload: W,
    settings: &RunSettings,
    progress: Arc<Progress>,
    load: bool,
) -> Result<RunReport<W>, RunError> {
    validate(settings)?;
    let warmup_end_us = settings.warmup.as_micros() as u64;
    let shared = Arc::new(Shared {
        workload: Mutex::new(Some(workload)),
        recorders: Mutex::new(Some((Recorder::new(0, warmup_end_us)?, Recorder::new(0, warmup_end_us)?))),
        progress: progress.clone(),
        base: Instant::now(),
    });
    let duration_us = settings.duration().as_micros() as u64;
    let operations_max = settings.operations_max.unwrap_or(u64::MAX);
    let drain_deadline = shared.base + settings.duration() + settings.drain_timeout;
    let remaining = || drain_deadline.saturating_duration_since(Instant::now());
    let mut abandoned = 0u64;
    match &settings.mode {
        LoopMode::Open { arrivals, schedule, in_flight_max } => {
            // Each operation holds a slot while it runs, so holding every slot means none runs.
            let slots = Arc::new(Semaphore::new(*in_flight_max));
            let mut rng = seeded_rng(settings.seed, STREAM_ARRIVALS);
            let mut next_us = 0u64;
            let mut issued = 0u64;
            while issued < operations_max && !progress.stop.load(Ordering::Relaxed) {
                let Some(at_us) = next_arrival(schedule, *arrivals, &mut rng, next_us) else {
                    break;
                };
                next_us = at_us;
                if next_us >= duration_us {
                    break;
                }
                // Arrivals already due go out at once: a timer rounds a short sleep up to its
                // resolution (a millisecond in the simulator), which would otherwise cap the
                // offered rate at one arrival per tick.
                let due = shared.base + Duration::from_micros(next_us);
                if due > Instant::now() {
                    tokio::time::sleep_until(due).await;
                }
                // An overloaded endpoint can leave a backlog of due arrivals; past the drain
                // deadline they are no longer offered, so the run still ends in bounded time.
                let Ok(Ok(permit)) = tokio::time::timeout(remaining(), slots.clone().acquire_owned()).await else {
                    break;
                };
                let Some(op) = shared.next_op(load) else {
                    break;
                };
                issued += 1;
                progress.issued.fetch_add(1, Ordering::Relaxed);
                let (shared, api, intended_us) = (shared.clone(), api.clone(), next_us);
                tokio::spawn(async move {
                    shared.run_one(&api, op, intended_us, load).await;
                    drop(permit);
                });
            }
            // Operations end with their answer or the client's timeout; waiting is bounded again.
            let all = u32::try_from(*in_flight_max).unwrap_or(u32::MAX);
            if tokio::time::timeout(remaining(), slots.acquire_many(all)).await.is_err() {
                abandoned = (*in_flight_max - slots.available_permits()) as u64;
            }
        }
        LoopMode::Closed { clients, think_time, .. } => {
            let budget = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::with_capacity(*clients);
            for _ in 0..*clients {
                let (shared, api, budget, think_time) = (shared.clone(), api.clone(), budget.clone(), *think_time);
                tasks.push(tokio::spawn(async move {
                    loop {
                        if shared.progress.stop.load(Ordering::Relaxed) || shared.now_us() >= duration_us {
                            break;
                        }
                        if budget.fetch_add(1, Ordering::Relaxed) >= operations_max {
                            break;
                        }
                        let Some(op) = shared.next_op(load) else {
                            break;
                        };
                        shared.progress.issued.fetch_add(1, Ordering::Relaxed);
                        let start_us = shared.now_us();
                        shared.run_one(&api, op, start_us, load).await;
                        if !think_time.is_zero() {
                            tokio::time::sleep(think_time).await;
                        }
                    }
                }));
            }
            // Clients stop by themselves at the deadline, after their current operation.
            for task in tasks {
                let abort = task.abort_handle();
                if tokio::time::timeout(remaining(), task).await.is_err() {
                    abort.abort();
                    abandoned += 1;
                }
            }
        }
    }
    let end_us = shared.now_us();
    let issued = progress.issued.load(Ordering::Relaxed);
    let (recorder, uncorrected) = shared.recorders.lock().expect("recorder lock").take().expect("taken once");
    let workload = shared.workload.lock().expect("workload lock").take().expect("taken once");
    Ok(RunReport { workload, recorder, uncorrected, end_us, warmup_end_us, issued, abandoned })
}

fn validate(settings: &RunSettings) -> Result<(), RunError> {
    let bad = |message: String| Err(RunError::Settings(message));
    match &settings.mode {
        LoopMode::Open { schedule, in_flight_max, .. } => {
            if schedule.is_empty() {
                return bad("an open loop needs at least one rate segment".into());
            }
            if *in_flight_max == 0 {
                return bad("in-flight bound must be at least 1".into());
            }
            for segment in schedule {
                let rates = [segment.rate_start, segment.rate_end];
                if rates.iter().any(|rate| !rate.is_finite() || *rate < 0.0) {
                    return bad(format!("rates must be finite and not negative, got {rates:?}"));
                }
            }
        }
        LoopMode::Closed { clients, .. } => {
            if *clients == 0 {
                return bad("a closed loop needs at least one client".into());
            }
        }
    }
    if settings.warmup > settings.duration() {
        return bad(format!("warm-up {:?} is longer than the run {:?}", settings.warmup, settings.duration()));
    }
    Ok(())
}

/// The arrival after the one at `previous_us` (0 at the start of the schedule), or `None` past
/// the schedule's end.
///
/// Arrivals are spaced by the schedule's intensity: the next arrival is where the integral of the
/// rate since the previous one reaches 1 (constant arrivals) or an exponential draw of mean 1
/// (Poisson arrivals; this time change makes a ramp an inhomogeneous Poisson process). A ramp
/// that starts at rate 0 therefore still starts, and segments of rate 0 have no arrivals.
pub fn next_arrival(
    schedule: &[RateSegment],
    arrivals: Arrivals,
    rng: &mut ChaCha8Rng,
    previous_us: u64,
) -> Option<u64> {
    let mut area = match arrivals {
        Arrivals::Constant => 1.0,
        // Inverse transform of the exponential distribution; 1 - u is in (0, 1].
        Arrivals::Poisson => -(1.0 - next_f64(rng)).ln(),
    };
    let previous_s = previous_us as f64 / 1e6;
    let mut segment_start_s = 0.0;
    for segment in schedule {
        let length_s = segment.duration.as_secs_f64();
        let segment_end_s = segment_start_s + length_s;
        if previous_s >= segment_end_s || length_s <= 0.0 {
            segment_start_s = segment_end_s;
            continue;
        }
        let offset_s = (previous_s - segment_start_s).max(0.0);
        let slope = (segment.rate_end - segment.rate_start) / length_s;
        let rate = segment.rate_start + slope * offset_s;
        let area_to_end = (rate + segment.rate_end) / 2.0 * (length_s - offset_s);
        if area > area_to_end {
            area -= area_to_end;
            segment_start_s = segment_end_s;
            continue;
        }
        // Solve rate·τ + slope·τ²/2 = area in the form that stays exact when slope is 0.
        let tau_s = 2.0 * area / (rate + (rate * rate + 2.0 * slope * area).max(0.0).sqrt());
        let at_s = segment_start_s + offset_s + tau_s;
        return Some((at_s * 1e6).round() as u64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(schedule: &[RateSegment], kind: Arrivals) -> Vec<u64> {
        let mut rng = seeded_rng(7, STREAM_ARRIVALS);
        let mut times = Vec::new();
        let mut at = 0u64;
        let total: u64 = schedule.iter().map(|s| s.duration.as_micros() as u64).sum();
        while let Some(next) = next_arrival(schedule, kind, &mut rng, at) {
            if next >= total || times.len() > 1_000_000 {
                break;
            }
            assert!(next >= at, "arrivals must move forward: {at} then {next}");
            times.push(next);
            at = next;
        }
        times
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let times = arrivals(&[RateSegment::constant(Duration::from_secs(1), 1000.0)], Arrivals::Constant);
        assert!((999..=1000).contains(&times.len()), "{}", times.len());
        assert_eq!(&times[..3], &[1000, 2000, 3000]);
    }

    #[test]
    fn poisson_arrivals_have_the_rate_on_average() {
        let times = arrivals(&[RateSegment::constant(Duration::from_secs(10), 1000.0)], Arrivals::Poisson);
        assert!((9_500..=10_500).contains(&times.len()), "{}", times.len());
        // Exponential gaps: their standard deviation equals their mean (1 ms).
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let deviation = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((deviation / mean - 1.0).abs() < 0.05, "mean {mean} deviation {deviation}");
    }

    #[test]
    fn ramps_and_pauses_shape_the_schedule() {
        let schedule = [
            RateSegment { duration: Duration::from_secs(2), rate_start: 0.0, rate_end: 1000.0 },
            RateSegment::constant(Duration::from_secs(1), 0.0),
            RateSegment::constant(Duration::from_secs(1), 500.0),
        ];
        let times = arrivals(&schedule, Arrivals::Constant);
        let in_range = |from: u64, to: u64| times.iter().filter(|&&t| t >= from && t < to).count();
        // A linear ramp from 0 to 1000/s over 2 s offers about 1000 operations, most in its
        // second half.
        let ramp = in_range(0, 2_000_000);
        assert!((900..=1100).contains(&ramp), "{ramp}");
        assert!(in_range(1_000_000, 2_000_000) > 2 * in_range(0, 1_000_000));
        assert_eq!(in_range(2_000_000, 3_000_000), 0, "the pause has no arrivals");
        assert!((499..=501).contains(&in_range(3_000_000, 4_000_000)));
    }
}
