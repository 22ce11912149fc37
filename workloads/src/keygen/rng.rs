//! The random primitives every generator draws through, so that the shape of each draw is in one
//! place: a double is 53 random bits (as Java's `Random.nextDouble`), an int is 32 random bits.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Scale from a 53-bit integer to a double in `[0, 1)`: 2^-53.
const F64_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// Creates the RNG for one random stream of one run.
///
/// Each independent kind of choice (operation, key, field, value bytes, ...) gets its own ChaCha
/// stream of the same seed, so that changing one parameter (say the field length) does not shift
/// the keys that every later operation picks.
pub fn seeded_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A double uniform in `[0, 1)` built from 53 random bits, the same construction as Java's
/// `Random.nextDouble`, which YCSB's generators call.
pub fn next_f64(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * F64_UNIT
}

/// 32 random bits, what YCSB's `RandomByteIterator` takes from `Random.nextInt()` per 6 bytes.
pub fn next_u32(rng: &mut ChaCha8Rng) -> u32 {
    rng.next_u32()
}

/// A value uniform in `[0, bound)`; `bound` must be at least 1.
///
/// YCSB computes `Math.abs(nextLong()) % bound`, which has a modulo bias of at most bound / 2^63;
/// rejection sampling removes that bias and otherwise gives the same distribution.
pub fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    assert!(bound >= 1, "uniform_below needs a non-empty range");
    // The largest multiple of `bound` that fits in u64 space; draws at or above it are rejected.
    // Each draw is accepted with probability > 1/2, so the loop ends quickly; the cap only guards
    // against a broken RNG.
    let zone = u64::MAX - (u64::MAX % bound + 1) % bound;
    const DRAWS_MAX: u32 = 1_000;
    for _ in 0..DRAWS_MAX {
        let x = rng.next_u64();
        if x <= zone {
            return x % bound;
        }
    }
    unreachable!("rejection sampling failed {DRAWS_MAX} times: the RNG is broken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_seed_differ_and_repeat() {
        let a: Vec<u64> = (0..4).map(|_| seeded_rng(7, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed and stream repeat");
        let mut s1 = seeded_rng(7, 1);
        let mut s2 = seeded_rng(7, 2);
        let mut s3 = seeded_rng(8, 1);
        let x1: Vec<u64> = (0..4).map(|_| s1.next_u64()).collect();
        let x2: Vec<u64> = (0..4).map(|_| s2.next_u64()).collect();
        let x3: Vec<u64> = (0..4).map(|_| s3.next_u64()).collect();
        assert_ne!(x1, x2);
        assert_ne!(x1, x3);
    }

    #[test]
    fn next_f64_is_in_unit_interval() {
        let mut rng = seeded_rng(1, 0);
        for _ in 0..10_000 {
            let u = next_f64(&mut rng);
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let mut rng = seeded_rng(1, 0);
        for bound in [1u64, 2, 3, 7, 1000, u64::MAX / 3 * 2, u64::MAX] {
            for _ in 0..1000 {
                assert!(uniform_below(&mut rng, bound) < bound);
            }
        }
    }
}
