//! Uniform integers (YCSB's `UniformLongGenerator`).

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

use super::rng::uniform_below;

/// Uniform over `lower..=upper`.
#[derive(Debug, Clone)]
pub struct UniformGenerator {
    lower: u64,
    upper: u64,
}

impl UniformGenerator {
    /// Uniform over `lower..=upper` (both included, as in YCSB).
    pub fn new(lower: u64, upper: u64) -> Self {
        assert!(upper >= lower, "uniform range {lower}..={upper} is empty");
        Self { lower, upper }
    }

    /// The next value.
    pub fn next_value(&self, rng: &mut ChaCha8Rng) -> u64 {
        match (self.upper - self.lower).checked_add(1) {
            Some(span) => self.lower + uniform_below(rng, span),
            // The whole u64 range: every 64-bit draw is a value.
            None => rng.next_u64(),
        }
    }
}
