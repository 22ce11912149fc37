//! YCSB's "latest" distribution (`SkewedLatestGenerator`): zipfian distance back from the most
//! recently inserted record, so the newest records are the most popular.

use rand_chacha::ChaCha8Rng;

use super::zipfian::ZipfianGenerator;

/// Picks `latest - z` where z is zipfian over `0..latest` and `latest` is the highest key number
/// whose insert has been acknowledged (YCSB's `basis.lastValue()`).
///
/// As in YCSB the result lies in `1..=latest`: key `latest` is the most popular, and key 0 is never
/// chosen once `latest` ≥ 1 (a YCSB quirk, kept). The zipfian's item count follows `latest` as it
/// grows, with ζ extended incrementally.
#[derive(Debug, Clone)]
pub struct SkewedLatestGenerator {
    zipfian: ZipfianGenerator,
}

impl SkewedLatestGenerator {
    /// A generator for a key space whose latest acknowledged key number is `latest` (YCSB builds
    /// `ZipfianGenerator(basis.lastValue())`, i.e. over `0..latest`).
    pub fn new(latest: u64) -> Self {
        // YCSB would build an empty zipfian for latest = 0 and then always return 0; one item
        // gives the same result without the degenerate arithmetic.
        Self { zipfian: ZipfianGenerator::new(0, latest.max(1) - 1) }
    }

    /// The next key number, given the latest acknowledged key number now.
    pub fn next_value(&mut self, rng: &mut ChaCha8Rng, latest: u64) -> u64 {
        if latest == 0 {
            return 0;
        }
        let back = self.zipfian.next_with_item_count(rng, latest);
        debug_assert!(back < latest);
        latest - back
    }
}
