//! YCSB's hotspot distribution (`HotspotIntegerGenerator`): a fraction of the operations go to a
//! fraction of the items at the low end of the range, uniformly within each set.

use rand_chacha::ChaCha8Rng;

use super::rng::{next_f64, uniform_below};

/// Hot set = the first `⌊n · hotset_fraction⌋` items of `lower..=upper`; each draw goes to the hot
/// set with probability `hot_operation_fraction`, else to the cold set, uniformly inside the set.
#[derive(Debug, Clone)]
pub struct HotspotIntegerGenerator {
    lower: u64,
    hot_interval: u64,
    cold_interval: u64,
    hot_operation_fraction: f64,
}

impl HotspotIntegerGenerator {
    /// Hotspot over `lower..=upper`. Both fractions must lie in [0, 1]; YCSB silently replaces an
    /// out-of-range fraction with 0, the workload spec rejects it instead.
    pub fn new(lower: u64, upper: u64, hotset_fraction: f64, hot_operation_fraction: f64) -> Self {
        assert!(upper >= lower, "hotspot range {lower}..={upper} is empty");
        assert!((0.0..=1.0).contains(&hotset_fraction), "hot set fraction {hotset_fraction} outside [0, 1]");
        assert!(
            (0.0..=1.0).contains(&hot_operation_fraction),
            "hot operation fraction {hot_operation_fraction} outside [0, 1]"
        );
        let interval = upper - lower + 1;
        // YCSB truncates toward zero: `(int) (interval * hotsetFraction)`.
        let hot_interval = ((interval as f64 * hotset_fraction) as u64).min(interval);
        Self { lower, hot_interval, cold_interval: interval - hot_interval, hot_operation_fraction }
    }

    /// Number of items in the hot set (the first items of the range).
    pub fn hot_interval(&self) -> u64 {
        self.hot_interval
    }

    /// The next value.
    ///
    /// YCSB divides by zero when one of the sets is empty; here an empty set is never chosen.
    pub fn next_value(&self, rng: &mut ChaCha8Rng) -> u64 {
        let hot = next_f64(rng) < self.hot_operation_fraction;
        if (hot && self.hot_interval > 0) || self.cold_interval == 0 {
            self.lower + uniform_below(rng, self.hot_interval)
        } else {
            self.lower + self.hot_interval + uniform_below(rng, self.cold_interval)
        }
    }
}
