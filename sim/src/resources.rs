//! The resource model of a simulated node: its CPU, its disk and the network between hosts,
//! from a profile file, turned into simulated time.
//!
//! Simulated time stands still while code computes, and RocksDB's calls cost no simulated time
//! at all, so without this model a request would take only network time and one node could serve
//! any load: simulated latencies and capacity figures would mean nothing. Each node gets a
//! [`NodeResources`] (the engine's `ResourceModel`): the engine tells it the work it did, and
//! waits for the time that work takes on the modelled hardware, queued behind whatever that
//! hardware is already doing.
//!
//! - **CPU**: `cores` servers, first come first served. A request costs its operation's service
//!   time plus a cost per KiB of body where it is received; each applied replicated entry costs
//!   `apply_entry_us` plus a cost per KiB on every replica.
//! - **Disk**: `queue_depth` servers (an SSD works on several commands at once) with at most
//!   `iops_max` commands started per second; a read, a buffered write and a sync each take a
//!   latency drawn from their log-normal distribution plus their bytes over the bandwidth.
//! - **Network**: one-way latency between any two hosts, drawn uniformly from a range (the
//!   simulator's network draws it per packet). Every replica of a partition is in a different
//!   zone, so raft traffic always crosses zones; the default is a cross-zone figure. Each node's
//!   link sends at `bandwidth_mb_s`: a peer transport batch or an HTTP response waits for the
//!   bytes queued before it and its own to leave; bytes received are counted, and the busier
//!   direction over the bandwidth is the node's network utilisation.
//!
//! The queues are plain state ([`Servers`]) that compute when work finishes from when it
//! arrives, tested without I/O; [`NodeResources`] only adds the clock and the sleep.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use squall_engine::resources::{Payment, ResourceModel, Stage, Work};
use squall_workloads::keygen::{next_f64, seeded_rng};

/// The built-in profile, with the sources of its figures (`sim/profiles/default.toml`).
pub const DEFAULT_PROFILE_TOML: &str = include_str!("../profiles/default.toml");
/// Largest profile file read.
const PROFILE_BYTES_MAX: usize = 64 << 10;
/// Operations of one kind whose latency is drawn one by one; beyond it the mean of the draws
/// stands for the rest, so one huge scan costs one loop of bounded length.
const DRAWS_PER_PAYMENT_MAX: u64 = 64;
/// z-score of the 99th percentile of a normal distribution.
const Z_P99: f64 = 2.326_347_874;

/// A latency distribution: log-normal with this median and 99th percentile (disk latencies
/// have a long right tail; two quantiles are what vendors and benchmarks publish).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Median, microseconds.
    pub median_us: f64,
    /// 99th percentile, microseconds (at least the median).
    pub p99_us: f64,
}

impl Latency {
    /// A draw, in nanoseconds, from the uniform `u` in [0, 1).
    pub fn draw_ns(&self, u: f64) -> u64 {
        let sigma = (self.p99_us / self.median_us).ln() / Z_P99;
        let z = standard_normal_quantile(u.clamp(1e-12, 1.0 - 1e-12));
        (self.median_us * (sigma * z).exp() * 1_000.0).round() as u64
    }

    fn validate(&self, what: &str) -> Result<(), String> {
        if !(self.median_us.is_finite() && self.median_us > 0.0) {
            return Err(format!("{what}: median_us must be above 0"));
        }
        if !(self.p99_us.is_finite() && self.p99_us >= self.median_us) {
            return Err(format!("{what}: p99_us must be at least median_us"));
        }
        Ok(())
    }
}

/// The inverse of the standard normal distribution function (Acklam's rational approximation,
/// relative error below 1.2e-9), so a uniform draw becomes a normal one without a dependency.
fn standard_normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.024_25;
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -standard_normal_quantile(1.0 - p)
    }
}

/// CPU of one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuProfile {
    /// Cores serving requests.
    pub cores: u32,
    /// Service time of a request whose operation is not listed in `operation_us`.
    pub request_us: f64,
    /// Service time of a request, by DynamoDB operation.
    #[serde(default)]
    pub operation_us: BTreeMap<String, f64>,
    /// Service time per KiB of request body.
    pub request_per_kib_us: f64,
    /// Service time of applying one replicated entry on a replica.
    pub apply_entry_us: f64,
    /// Service time per KiB of applied entries.
    pub apply_per_kib_us: f64,
}

/// Disk of one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskProfile {
    /// Commands the device works on at once.
    pub queue_depth: u32,
    /// Most commands started per second.
    pub iops_max: f64,
    /// Sequential bandwidth, MB/s (10^6 bytes).
    pub bandwidth_mb_s: f64,
    /// A read that misses the caches.
    pub read: Latency,
    /// A buffered write (into the write-ahead log's buffer).
    pub write: Latency,
    /// A sync (fsync of the write-ahead log).
    pub sync: Latency,
}

/// The network between hosts: one-way latencies per kind of link, each uniform between its two
/// figures (microseconds), and each node's link bandwidth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkProfile {
    /// Between two hosts of one zone: shortest one-way latency.
    pub intra_zone_us_min: u64,
    /// Between two hosts of one zone: longest one-way latency.
    pub intra_zone_us_max: u64,
    /// Between hosts of two zones: shortest one-way latency.
    pub cross_zone_us_min: u64,
    /// Between hosts of two zones: longest one-way latency.
    pub cross_zone_us_max: u64,
    /// Between a client and a node: shortest one-way latency.
    pub client_us_min: u64,
    /// Between a client and a node: longest one-way latency.
    pub client_us_max: u64,
    /// Bandwidth of a node's network link in each direction, MB/s (10^6 bytes); a node's
    /// sends queue for it. 1,250 MB/s (10 Gb/s) when the profile does not say.
    #[serde(default = "default_network_bandwidth_mb_s")]
    pub bandwidth_mb_s: f64,
}

impl NetworkProfile {
    /// The simulated network's latencies.
    pub fn latencies(&self) -> crate::net::Latencies {
        crate::net::Latencies {
            same_host_us: (SAME_HOST_US, SAME_HOST_US),
            intra_zone_us: (self.intra_zone_us_min, self.intra_zone_us_max),
            cross_zone_us: (self.cross_zone_us_min, self.cross_zone_us_max),
            client_us: (self.client_us_min, self.client_us_max),
        }
    }
}

/// One-way latency between two processes on one host (a loopback hop), microseconds.
pub const SAME_HOST_US: u64 = 10;

fn default_network_bandwidth_mb_s() -> f64 {
    1_250.0
}

/// A node's hardware and the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name, for reports.
    pub name: String,
    /// CPU.
    pub cpu: CpuProfile,
    /// Disk.
    pub disk: DiskProfile,
    /// Network.
    pub network: NetworkProfile,
}

impl Profile {
    /// The built-in profile.
    pub fn builtin() -> Profile {
        Profile::parse(DEFAULT_PROFILE_TOML).expect("the built-in profile is valid")
    }

    /// Reads a profile file.
    pub fn read(path: &Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        Profile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and validates profile TOML.
    pub fn parse(text: &str) -> Result<Profile, String> {
        if text.len() > PROFILE_BYTES_MAX {
            return Err(format!("a profile is at most {PROFILE_BYTES_MAX} bytes"));
        }
        let profile: Profile = toml::from_str(text).map_err(|e| e.to_string())?;
        profile.validate()?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), String> {
        let positive = |value: f64, what: &str| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be a number of at least 0"))
            }
        };
        if self.cpu.cores == 0 {
            return Err("cpu.cores must be at least 1".into());
        }
        positive(self.cpu.request_us, "cpu.request_us")?;
        positive(self.cpu.request_per_kib_us, "cpu.request_per_kib_us")?;
        positive(self.cpu.apply_entry_us, "cpu.apply_entry_us")?;
        positive(self.cpu.apply_per_kib_us, "cpu.apply_per_kib_us")?;
        for (operation, us) in &self.cpu.operation_us {
            positive(*us, &format!("cpu.operation_us.{operation}"))?;
        }
        if self.disk.queue_depth == 0 {
            return Err("disk.queue_depth must be at least 1".into());
        }
        if !(self.disk.iops_max.is_finite() && self.disk.iops_max > 0.0) {
            return Err("disk.iops_max must be above 0".into());
        }
        if !(self.disk.bandwidth_mb_s.is_finite() && self.disk.bandwidth_mb_s > 0.0) {
            return Err("disk.bandwidth_mb_s must be above 0".into());
        }
        self.disk.read.validate("disk.read")?;
        self.disk.write.validate("disk.write")?;
        self.disk.sync.validate("disk.sync")?;
        let network = &self.network;
        for (name, min, max) in [
            ("intra_zone", network.intra_zone_us_min, network.intra_zone_us_max),
            ("cross_zone", network.cross_zone_us_min, network.cross_zone_us_max),
            ("client", network.client_us_min, network.client_us_max),
        ] {
            if min == 0 || max < min {
                return Err(format!("network: {name}_us_min must be above 0 and at most {name}_us_max"));
            }
        }
        if !(self.network.bandwidth_mb_s.is_finite() && self.network.bandwidth_mb_s > 0.0) {
            return Err("network.bandwidth_mb_s must be above 0".into());
        }
        Ok(())
    }

    /// CPU time of a stage, in nanoseconds.
    pub fn cpu_ns(&self, stage: Stage<'_>) -> u64 {
        let us = match stage {
            Stage::Request { operation, body_bytes } => {
                let base = self.cpu.operation_us.get(operation).copied().unwrap_or(self.cpu.request_us);
                base + self.cpu.request_per_kib_us * body_bytes as f64 / 1024.0
            }
            Stage::Local => 0.0,
            Stage::Replicate { entries_applied, applied_bytes } => {
                self.cpu.apply_entry_us * entries_applied as f64
                    + self.cpu.apply_per_kib_us * applied_bytes as f64 / 1024.0
            }
        };
        (us * 1_000.0).round() as u64
    }

    /// Nanoseconds `bytes` take at the disk's bandwidth.
    fn transfer_ns(&self, bytes: u64) -> u64 {
        (bytes as f64 / (self.disk.bandwidth_mb_s * 1e6) * 1e9).round() as u64
    }

    /// Nanoseconds `bytes` take at the network link's bandwidth.
    pub fn network_transfer_ns(&self, bytes: u64) -> u64 {
        (bytes as f64 / (self.network.bandwidth_mb_s * 1e6) * 1e9).round() as u64
    }
}

/// `k` identical servers taking work first come, first served: the time each piece of work
/// finishes, from the time it arrives and how long it takes. Pure state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Servers {
    free_at_ns: Vec<u64>,
    /// Earliest start of the next command (a rate limit), and the spacing between starts.
    next_start_ns: u64,
    spacing_ns: u64,
}

impl Servers {
    /// `count` servers, starting at most one piece of work every `spacing_ns`.
    pub fn new(count: u32, spacing_ns: u64) -> Servers {
        assert!(count > 0, "at least one server");
        Servers { free_at_ns: vec![0; count as usize], next_start_ns: 0, spacing_ns }
    }

    /// Work arriving at `arrival_ns` and taking `service_ns`: when it finishes.
    pub fn admit(&mut self, arrival_ns: u64, service_ns: u64) -> u64 {
        let (index, free_at) =
            self.free_at_ns.iter().copied().enumerate().min_by_key(|&(i, t)| (t, i)).expect("at least one server");
        let start = arrival_ns.max(free_at).max(self.next_start_ns);
        self.next_start_ns = start + self.spacing_ns;
        let end = start + service_ns;
        self.free_at_ns[index] = end;
        debug_assert!(end >= arrival_ns, "work finishes after it arrives");
        end
    }

    /// Nanoseconds of work queued or running at `now_ns`, summed over the servers.
    pub fn backlog_ns(&self, now_ns: u64) -> u64 {
        self.free_at_ns.iter().map(|t| t.saturating_sub(now_ns)).sum()
    }
}

/// The modelled hardware of one node: time spent and what is still queued.
struct Hardware {
    cpu: Servers,
    disk: Servers,
    /// The sending side of the network link; receiving is counted, not queued.
    link: Servers,
    rng: ChaCha8Rng,
    /// Totals, for reports.
    usage: Usage,
}

/// What a node's hardware did over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// CPU busy time, nanoseconds.
    pub cpu_busy_ns: u64,
    /// Disk busy time (summed over the queue's servers), nanoseconds.
    pub disk_busy_ns: u64,
    /// Disk commands: reads, writes and syncs.
    pub disk_commands: u64,
    /// Syncs.
    pub syncs: u64,
    /// Bytes sent on the network (peer transport and HTTP responses).
    pub network_sent_bytes: u64,
    /// Bytes received from the network (peer transport and HTTP requests).
    pub network_received_bytes: u64,
}

impl Usage {
    /// What was done between `earlier` (a snapshot of the same node) and this snapshot.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            cpu_busy_ns: self.cpu_busy_ns.saturating_sub(earlier.cpu_busy_ns),
            disk_busy_ns: self.disk_busy_ns.saturating_sub(earlier.disk_busy_ns),
            disk_commands: self.disk_commands.saturating_sub(earlier.disk_commands),
            syncs: self.syncs.saturating_sub(earlier.syncs),
            network_sent_bytes: self.network_sent_bytes.saturating_sub(earlier.network_sent_bytes),
            network_received_bytes: self.network_received_bytes.saturating_sub(earlier.network_received_bytes),
        }
    }

    /// The share of `span_ns` the busier direction of the network link was in use.
    pub fn network_utilisation(&self, profile: &Profile, span_ns: f64) -> f64 {
        let busiest = self.network_sent_bytes.max(self.network_received_bytes);
        profile.network_transfer_ns(busiest) as f64 / span_ns
    }
}

impl Hardware {
    /// When `stage` with `work`, arriving at `now_ns`, is done: CPU first, then the disk
    /// commands in order (reads, writes, then syncs, as a write path does).
    fn finish_ns(&mut self, profile: &Profile, now_ns: u64, stage: Stage<'_>, work: Work) -> u64 {
        let cpu_ns = profile.cpu_ns(stage);
        let mut done = if cpu_ns > 0 { self.cpu.admit(now_ns, cpu_ns) } else { now_ns };
        self.usage.cpu_busy_ns += cpu_ns;
        let kinds = [
            (work.reads, work.read_bytes, profile.disk.read),
            (work.writes, work.write_bytes, profile.disk.write),
            (work.syncs, 0, profile.disk.sync),
        ];
        for (commands, bytes, latency) in kinds {
            if commands == 0 {
                continue;
            }
            let draws = commands.min(DRAWS_PER_PAYMENT_MAX);
            let drawn: Vec<u64> = (0..draws).map(|_| latency.draw_ns(next_f64(&mut self.rng))).collect();
            let mean = drawn.iter().sum::<u64>() / draws;
            let transfer = profile.transfer_ns(bytes) / commands;
            for command in 0..commands {
                let latency = drawn.get(command as usize).copied().unwrap_or(mean);
                done = self.disk.admit(done, latency + transfer);
                self.usage.disk_busy_ns += latency + transfer;
            }
            self.usage.disk_commands += commands;
        }
        self.usage.syncs += work.syncs;
        done
    }
}

/// The engine's resource model for one simulated node.
#[derive(Clone)]
pub struct NodeResources {
    profile: Arc<Profile>,
    hardware: Arc<Mutex<Hardware>>,
    epoch: tokio::time::Instant,
}

impl NodeResources {
    /// The hardware of a node, drawing its latencies from `seed`'s stream `stream`.
    pub fn new(profile: Arc<Profile>, seed: u64, stream: u64) -> NodeResources {
        let spacing_ns = (1e9 / profile.disk.iops_max).round() as u64;
        let hardware = Hardware {
            cpu: Servers::new(profile.cpu.cores, 0),
            disk: Servers::new(profile.disk.queue_depth, spacing_ns),
            link: Servers::new(1, 0),
            rng: seeded_rng(seed, stream),
            usage: Usage::default(),
        };
        NodeResources { profile, hardware: Arc::new(Mutex::new(hardware)), epoch: tokio::time::Instant::now() }
    }

    /// What the hardware did so far.
    pub fn usage(&self) -> Usage {
        self.hardware.lock().unwrap_or_else(|p| p.into_inner()).usage
    }
}

/// Sleeps `duration` exactly. madsim's `sleep` never sleeps less than a timer tick (a
/// millisecond, as tokio's), which would charge each stage of every request a millisecond
/// whatever the hardware; a `Sleep` whose deadline is set directly (`Sleep::reset`) wakes at
/// that deadline to the nanosecond.
pub async fn sleep_exactly(duration: Duration) {
    let mut sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
    sleep.as_mut().reset(tokio::time::Instant::now() + duration);
    sleep.await;
}

impl NodeResources {
    /// The wait until the hardware is done with what `finish_ns` (given the hardware and the
    /// time now, in nanoseconds since the node started) queued on it.
    fn wait_for(&self, finish_ns: impl FnOnce(&mut Hardware, u64) -> u64) -> Payment {
        let now_ns = tokio::time::Instant::now().saturating_duration_since(self.epoch).as_nanos() as u64;
        let wait = {
            let mut hardware = self.hardware.lock().unwrap_or_else(|p| p.into_inner());
            let done_ns = finish_ns(&mut hardware, now_ns);
            Duration::from_nanos(done_ns.saturating_sub(now_ns))
        };
        Box::pin(async move {
            if !wait.is_zero() {
                sleep_exactly(wait).await;
            }
        })
    }
}

impl ResourceModel for NodeResources {
    fn pay(&self, stage: Stage<'_>, work: Work) -> Payment {
        self.wait_for(|hardware, now_ns| hardware.finish_ns(&self.profile, now_ns, stage, work))
    }

    fn transmit(&self, bytes: u64) -> Payment {
        self.wait_for(|hardware, now_ns| {
            hardware.usage.network_sent_bytes += bytes;
            hardware.link.admit(now_ns, self.profile.network_transfer_ns(bytes))
        })
    }

    fn receive(&self, bytes: u64) {
        self.hardware.lock().unwrap_or_else(|p| p.into_inner()).usage.network_received_bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_profile_is_valid_and_documented() {
        let profile = Profile::builtin();
        assert!(profile.cpu.cores >= 1);
        assert!(DEFAULT_PROFILE_TOML.contains("# Sources"), "the built-in profile names its sources");
    }

    #[test]
    fn bad_profiles_are_refused_with_the_field_named() {
        let with = |from: &str, to: &str| DEFAULT_PROFILE_TOML.replacen(from, to, 1);
        let error = Profile::parse(&with("cores = ", "cores = 0 #")).unwrap_err();
        assert!(error.contains("cpu.cores"), "{error}");
        assert!(Profile::parse(&with("[disk]", "[disk]\nsurprise = 1")).is_err());
        assert!(Profile::parse("name = 'x'").is_err());
    }

    #[test]
    fn network_utilisation_is_the_busier_direction_over_the_bandwidth() {
        let mut profile = Profile::builtin();
        profile.network.bandwidth_mb_s = 100.0;
        assert_eq!(profile.network_transfer_ns(1_000_000), 10_000_000, "1 MB at 100 MB/s takes 10 ms");
        let usage = Usage { network_sent_bytes: 20_000_000, network_received_bytes: 50_000_000, ..Usage::default() };
        // 50 MB received in one second at 100 MB/s: half the link.
        assert!((usage.network_utilisation(&profile, 1e9) - 0.5).abs() < 1e-9);
        let earlier = Usage { network_sent_bytes: 5, network_received_bytes: 7, ..Usage::default() };
        let since = usage.since(&earlier);
        assert_eq!((since.network_sent_bytes, since.network_received_bytes), (19_999_995, 49_999_993));
        let without_bandwidth = DEFAULT_PROFILE_TOML.replace("bandwidth_mb_s = 1250.0", "");
        assert_eq!(Profile::parse(&without_bandwidth).unwrap().network.bandwidth_mb_s, 1_250.0, "a default applies");
        let zero = DEFAULT_PROFILE_TOML.replace("bandwidth_mb_s = 1250.0", "bandwidth_mb_s = 0.0");
        assert!(Profile::parse(&zero).unwrap_err().contains("network.bandwidth_mb_s"));
    }

    #[test]
    fn one_server_queues_work_in_arrival_order() {
        let mut cpu = Servers::new(1, 0);
        assert_eq!(cpu.admit(0, 10), 10);
        assert_eq!(cpu.admit(0, 10), 20, "the second waits for the first");
        assert_eq!(cpu.admit(100, 5), 105, "an idle server starts at once");
        assert_eq!(cpu.backlog_ns(100), 5);
    }

    #[test]
    fn more_servers_work_in_parallel_and_a_rate_limit_spaces_starts() {
        let mut cpu = Servers::new(2, 0);
        assert_eq!(cpu.admit(0, 10), 10);
        assert_eq!(cpu.admit(0, 10), 10);
        assert_eq!(cpu.admit(0, 10), 20);
        let mut disk = Servers::new(4, 100);
        let ends: Vec<u64> = (0..4).map(|_| disk.admit(0, 10)).collect();
        assert_eq!(ends, [10, 110, 210, 310], "at most one start every 100 ns");
    }

    #[test]
    fn latency_draws_have_the_median_and_tail_asked_for() {
        let latency = Latency { median_us: 100.0, p99_us: 1_000.0 };
        let mut rng = seeded_rng(5, 1);
        let mut draws: Vec<u64> = (0..20_000).map(|_| latency.draw_ns(next_f64(&mut rng))).collect();
        draws.sort_unstable();
        let median = draws[draws.len() / 2] as f64 / 1_000.0;
        let p99 = draws[draws.len() * 99 / 100] as f64 / 1_000.0;
        assert!((median / 100.0 - 1.0).abs() < 0.05, "median {median} us");
        assert!((p99 / 1_000.0 - 1.0).abs() < 0.15, "p99 {p99} us");
        assert!((standard_normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((standard_normal_quantile(0.01) + Z_P99).abs() < 1e-6);
    }

    #[test]
    fn a_write_path_costs_cpu_then_its_disk_commands() {
        let mut profile = Profile::builtin();
        profile.cpu.cores = 1;
        profile.cpu.apply_entry_us = 10.0;
        profile.cpu.apply_per_kib_us = 0.0;
        profile.disk.sync = Latency { median_us: 200.0, p99_us: 200.0 };
        profile.disk.write = Latency { median_us: 5.0, p99_us: 5.0 };
        profile.disk.queue_depth = 1;
        profile.disk.iops_max = 1e9;
        profile.disk.bandwidth_mb_s = 1e12;
        let mut hardware = Hardware {
            cpu: Servers::new(1, 0),
            disk: Servers::new(1, 1),
            link: Servers::new(1, 0),
            rng: seeded_rng(1, 1),
            usage: Usage::default(),
        };
        let stage = Stage::Replicate { entries_applied: 2, applied_bytes: 0 };
        let work = Work { writes: 1, syncs: 1, ..Work::default() };
        let done = hardware.finish_ns(&profile, 1_000, stage, work);
        // 20 us of CPU, then a 5 us write and a 200 us sync on the one disk queue.
        assert_eq!(done, 1_000 + 20_000 + 5_000 + 200_000);
        // A second Ready arriving at once waits for the CPU and the disk.
        let again = hardware.finish_ns(&profile, 1_000, stage, work);
        assert_eq!(again, done + 5_000 + 200_000, "its CPU work overlapped the first's disk work");
        assert_eq!(hardware.usage.syncs, 2);
        assert_eq!(hardware.usage.disk_commands, 4);
    }

    #[test]
    fn request_costs_follow_the_operation_and_the_body() {
        let mut profile = Profile::builtin();
        profile.cpu.request_us = 10.0;
        profile.cpu.request_per_kib_us = 1.0;
        profile.cpu.operation_us.insert("Query".into(), 30.0);
        assert_eq!(profile.cpu_ns(Stage::Request { operation: "ListTables", body_bytes: 2048 }), 12_000);
        assert_eq!(profile.cpu_ns(Stage::Request { operation: "Query", body_bytes: 0 }), 30_000);
        assert_eq!(profile.cpu_ns(Stage::Local), 0);
    }
}
