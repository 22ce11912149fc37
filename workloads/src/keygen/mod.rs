//! YCSB's key and number generators, reproduced from YCSB's core package (`site.ycsb.generator`,
//! `site.ycsb.Utils`, `CoreWorkload.buildKeyName`).
//!
//! Everything here is pure: a generator holds only its parameters and counters, and every random
//! choice draws from a [`ChaCha8Rng`](rand_chacha::ChaCha8Rng) the caller passes in. The same seed therefore gives the same
//! numbers in a real run and under the madsim simulator.
//!
//! Where YCSB's Java draws from `ThreadLocalRandom`, these generators draw from the caller's RNG
//! with the same shape of draw (`nextDouble` as 53 random bits, `nextInt` as 32 random bits), so the
//! distributions are YCSB's; the exact sequences cannot be YCSB's because YCSB's RNG is unseeded.

mod counter;
mod fnv;
mod hotspot;
mod latest;
mod rng;
mod scan_length;
mod uniform;
mod zipfian;

pub use counter::{AcknowledgeError, AcknowledgedCounterGenerator, CounterGenerator, ACKNOWLEDGE_WINDOW_SIZE};
pub use fnv::{fnv1a_64, fnvhash64, key_name, FNV_OFFSET_BASIS_64, FNV_PRIME_64, KEY_PREFIX};
pub use hotspot::HotspotIntegerGenerator;
pub use latest::SkewedLatestGenerator;
pub use rng::{next_f64, next_u32, seeded_rng, uniform_below};
pub use scan_length::ScanLengthGenerator;
pub use uniform::UniformGenerator;
pub use zipfian::{
    zeta, ScrambledZipfianGenerator, ZipfianGenerator, SCRAMBLED_ITEM_COUNT, SCRAMBLED_ZETAN, ZIPFIAN_CONSTANT,
};

#[cfg(test)]
mod stats_tests;
