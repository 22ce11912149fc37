//! YCSB's zipfian generators: the algorithm of Gray et al., "Quickly Generating Billion-Record
//! Synthetic Databases" (SIGMOD 1994), as YCSB's `ZipfianGenerator` implements it, and YCSB's
//! `ScrambledZipfianGenerator`, which spreads the popular items over the key space with FNV.

use rand_chacha::ChaCha8Rng;

use super::fnv::fnvhash64;
use super::rng::next_f64;

/// YCSB's zipfian constant θ (`ZipfianGenerator.ZIPFIAN_CONSTANT`).
pub const ZIPFIAN_CONSTANT: f64 = 0.99;

/// The item space of YCSB's scrambled zipfian (`ScrambledZipfianGenerator.ITEM_COUNT`).
pub const SCRAMBLED_ITEM_COUNT: u64 = 10_000_000_000;

/// YCSB's precomputed ζ(10^10, 0.99) (`ScrambledZipfianGenerator.ZETAN`), so that no one sums ten
/// billion terms.
pub const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

/// ζ(n, θ) continued from `initial_sum` = ζ(start, θ): the sum of 1/i^θ for i in start+1..=n.
///
/// Summed in YCSB's order (ascending i) so that the floating-point result matches YCSB's.
pub fn zeta(start: u64, n: u64, theta: f64, initial_sum: f64) -> f64 {
    (start..n).fold(initial_sum, |sum, i| sum + 1.0 / ((i + 1) as f64).powf(theta))
}

/// Zipfian over `min..=max`: `min` is the most popular item, `min + 1` the next, and so on.
///
/// The draw is Gray et al.'s closed form: with u uniform in [0, 1), u·ζ(n) < 1 gives rank 0,
/// u·ζ(n) < 1 + 0.5^θ gives rank 1, and otherwise rank ⌊n·(η·u − η + 1)^α⌋ with α = 1/(1−θ) and
/// η = (1 − (2/n)^(1−θ)) / (1 − ζ(2)/ζ(n)). Ranks 0 and 1 get their exact zipfian probabilities;
/// higher ranks get a continuous approximation (rank k gets about (k + ½)^−θ instead of (k + 1)^−θ,
/// a few per cent too much for the first ranks after 1 and converging as k grows) — YCSB's
/// behaviour, kept on purpose.
#[derive(Debug, Clone)]
pub struct ZipfianGenerator {
    /// Number of items given at construction, `max - min + 1`.
    items: u64,
    /// The smallest (most popular) value.
    base: u64,
    theta: f64,
    /// ζ(2, θ), fixed.
    zeta2theta: f64,
    /// 1 / (1 − θ).
    alpha: f64,
    /// ζ(count_for_zeta, θ).
    zetan: f64,
    eta: f64,
    /// The item count `zetan` was computed for.
    count_for_zeta: u64,
}

impl ZipfianGenerator {
    /// Zipfian over `min..=max` with YCSB's θ = 0.99; computes ζ(n) by summing n terms.
    pub fn new(min: u64, max: u64) -> Self {
        Self::with_constant(min, max, ZIPFIAN_CONSTANT)
    }

    /// Zipfian over `min..=max` with constant `theta` (0 < θ < 1); computes ζ(n) by summing n terms.
    pub fn with_constant(min: u64, max: u64, theta: f64) -> Self {
        assert!(max >= min, "zipfian range {min}..={max} is empty");
        Self::with_zetan(min, max, theta, zeta(0, max - min + 1, theta, 0.0))
    }

    /// Zipfian over `min..=max` with constant `theta` and a precomputed ζ(n, θ).
    pub fn with_zetan(min: u64, max: u64, theta: f64, zetan: f64) -> Self {
        assert!(max >= min, "zipfian range {min}..={max} is empty");
        assert!(theta > 0.0 && theta < 1.0, "zipfian constant {theta} outside (0, 1)");
        let items = max - min + 1;
        let zeta2theta = zeta(0, 2, theta, 0.0);
        Self {
            items,
            base: min,
            theta,
            zeta2theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: eta(items, theta, zeta2theta, zetan),
            count_for_zeta: items,
        }
    }

    /// Number of items given at construction.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// ζ(n, θ) for the item count most recently drawn from.
    pub fn zetan(&self) -> f64 {
        self.zetan
    }

    /// The next value over the construction-time item count (YCSB's `nextValue`).
    pub fn next_value(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        self.next_with_item_count(rng, self.items)
    }

    /// The next value over `item_count` items (YCSB's `nextLong(itemcount)`), used where the item
    /// count grows during a run ("latest").
    ///
    /// When the count grew, ζ is extended incrementally from the previous count, as YCSB does.
    /// YCSB then recomputes η with the construction-time item count rather than the new one; that
    /// quirk is kept so that the distribution is YCSB's. When the count shrinks, YCSB (with its
    /// default `allowitemcountdecrease = false`) keeps the old ζ, and so does this.
    pub fn next_with_item_count(&mut self, rng: &mut ChaCha8Rng, item_count: u64) -> u64 {
        if item_count > self.count_for_zeta {
            self.zetan = zeta(self.count_for_zeta, item_count, self.theta, self.zetan);
            self.count_for_zeta = item_count;
            self.eta = eta(self.items, self.theta, self.zeta2theta, self.zetan);
        }
        let u = next_f64(rng);
        self.value_for_uniform(u, item_count)
    }

    /// The value that uniform draw `u` in [0, 1) maps to over `item_count` items, with the current
    /// ζ and η; exposed so that tests can check the mapping with chosen draws.
    pub fn value_for_uniform(&self, u: f64, item_count: u64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return self.base;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return self.base + 1;
        }
        // Java's `(long)` of a non-negative double truncates toward zero, as `as u64` does. For u
        // within a few ulps of 1 the power can round up to 1.0 and give `item_count` itself, one
        // past the range; YCSB lets that through, this clamps it to the last item.
        let rank = (item_count as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        self.base + rank.min(item_count.saturating_sub(1))
    }
}

/// Gray et al.'s η for `items` items.
fn eta(items: u64, theta: f64, zeta2theta: f64, zetan: f64) -> f64 {
    (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2theta / zetan)
}

/// YCSB's scrambled zipfian over `min..=max`: a zipfian rank over a fixed space of 10^10 items
/// (θ = 0.99, ζ precomputed as [`SCRAMBLED_ZETAN`]), then `min + fnvhash64(rank) % item_count`.
///
/// Because the zipfian space is fixed, the popularity of each key does not depend on how many keys
/// there are, and the popular keys are scattered instead of being the first ones. YCSB builds its
/// inner generator as `ZipfianGenerator(0, ITEM_COUNT)`, an inclusive range of 10^10 + 1 items; that
/// is kept.
#[derive(Debug, Clone)]
pub struct ScrambledZipfianGenerator {
    inner: ZipfianGenerator,
    min: u64,
    item_count: u64,
}

impl ScrambledZipfianGenerator {
    /// Scrambled zipfian over `min..=max`.
    pub fn new(min: u64, max: u64) -> Self {
        assert!(max >= min, "scrambled zipfian range {min}..={max} is empty");
        Self {
            inner: ZipfianGenerator::with_zetan(0, SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN),
            min,
            item_count: max - min + 1,
        }
    }

    /// The next value in `min..=max`.
    pub fn next_value(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        let rank = self.inner.next_value(rng);
        self.scramble(rank)
    }

    /// The value that zipfian rank `rank` maps to: `min + fnvhash64(rank) % item_count`.
    ///
    /// YCSB computes this with Java's signed `%`; it is negative only if fnvhash64 returned
    /// `Long.MIN_VALUE` (the one input whose `Math.abs` stays negative), which would put YCSB's key
    /// out of range. The Euclidean remainder used here equals Java's for every other input and
    /// stays in range for that one.
    pub fn scramble(&self, rank: u64) -> u64 {
        let hash = fnvhash64(rank as i64) as i128;
        self.min + hash.rem_euclid(self.item_count as i128) as u64
    }

    /// The inner zipfian over the fixed 10^10-item space.
    pub fn inner(&self) -> &ZipfianGenerator {
        &self.inner
    }
}
