//! Key popularity over `0..n` for the scenarios, built from YCSB's generators in [`crate::keygen`].

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::keygen::{HotspotIntegerGenerator, ScrambledZipfianGenerator, SkewedLatestGenerator, UniformGenerator};

/// How often each key of `0..n` is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", deny_unknown_fields)]
pub enum KeyDistribution {
    /// Every key equally often.
    Uniform,
    /// YCSB's scrambled zipfian (θ = 0.99): a few keys, scattered over the range, are hot.
    Zipfian,
    /// The most recently added keys are the hottest (YCSB's latest).
    Latest,
    /// `operation_fraction` of the choices go to the first `data_fraction` of the keys.
    Hotspot {
        /// Share of the keys that are hot.
        data_fraction: f64,
        /// Share of the choices that go to the hot keys.
        operation_fraction: f64,
    },
}

impl KeyDistribution {
    /// Checks the fractions of a hotspot.
    pub fn validate(&self) -> Result<(), String> {
        if let KeyDistribution::Hotspot { data_fraction, operation_fraction } = self {
            for (name, value) in [("data_fraction", data_fraction), ("operation_fraction", operation_fraction)] {
                if !(0.0..=1.0).contains(value) {
                    return Err(format!("hotspot {name} {value} is not between 0 and 1"));
                }
            }
        }
        Ok(())
    }
}

/// A chooser of keys in `0..n` with a given distribution.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Uniform.
    Uniform(UniformGenerator),
    /// Scrambled zipfian.
    Zipfian(ScrambledZipfianGenerator),
    /// Latest; the range grows with [`KeyChooser::next_key`]'s `n`.
    Latest(SkewedLatestGenerator),
    /// Hotspot.
    Hotspot(HotspotIntegerGenerator),
}

impl KeyChooser {
    /// A chooser over `0..n` (`n` ≥ 1).
    pub fn new(distribution: KeyDistribution, n: u64) -> Self {
        let last = n.max(1) - 1;
        match distribution {
            KeyDistribution::Uniform => KeyChooser::Uniform(UniformGenerator::new(0, last)),
            KeyDistribution::Zipfian => KeyChooser::Zipfian(ScrambledZipfianGenerator::new(0, last)),
            KeyDistribution::Latest => KeyChooser::Latest(SkewedLatestGenerator::new(last)),
            KeyDistribution::Hotspot { data_fraction, operation_fraction } => {
                KeyChooser::Hotspot(HotspotIntegerGenerator::new(0, last, data_fraction, operation_fraction))
            }
        }
    }

    /// A key in `0..n`; `n` is the current key count, used by `Latest` (others keep the range
    /// they were built with, clamped to `n`).
    pub fn next_key(&mut self, rng: &mut ChaCha8Rng, n: u64) -> u64 {
        let last = n.max(1) - 1;
        match self {
            KeyChooser::Uniform(generator) => generator.next_value(rng).min(last),
            KeyChooser::Zipfian(generator) => generator.next_value(rng).min(last),
            KeyChooser::Latest(generator) => generator.next_value(rng, last),
            KeyChooser::Hotspot(generator) => generator.next_value(rng).min(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::seeded_rng;

    #[test]
    fn choices_stay_in_range_and_zipfian_is_skewed() {
        let mut rng = seeded_rng(1, 1);
        for distribution in [
            KeyDistribution::Uniform,
            KeyDistribution::Zipfian,
            KeyDistribution::Latest,
            KeyDistribution::Hotspot { data_fraction: 0.1, operation_fraction: 0.9 },
        ] {
            let mut chooser = KeyChooser::new(distribution, 100);
            let mut counts = [0u32; 100];
            for _ in 0..10_000 {
                counts[chooser.next_key(&mut rng, 100) as usize] += 1;
            }
            let hottest = *counts.iter().max().unwrap();
            match distribution {
                KeyDistribution::Uniform => assert!(hottest < 200, "{distribution:?}: {hottest}"),
                _ => assert!(hottest > 300, "{distribution:?}: {hottest}"),
            }
        }
    }
}
