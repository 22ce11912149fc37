//! Choosing where to split a partition, from sampled accesses (split for heat) or sampled item
//! sizes (split for size).
//!
//! Every sample is a partition-key hash with a weight (accesses or bytes). Samples with the same
//! hash are one unit: a split point is a hash, so it can never separate them, and in practice they
//! are one partition key. A split point is only ever placed between two sampled hashes, so both
//! halves get some of the sampled weight.

use super::range::HashRange;
use std::collections::BTreeMap;

/// Split for heat is refused when one hash carries more than this percentage of the sampled load:
/// the half holding it would still carry over half the load, so the split buys little and costs
/// a partition. DynamoDB likewise does not split for heat when the hot spot is a single key.
pub const HOT_KEY_LOAD_PERCENT_MAX: u64 = 50;

/// One sample: a partition-key hash and its weight (accesses for heat, bytes for size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSample {
    /// `db::keys::partition_hash` of the partition key.
    pub hash: u64,
    /// Accesses or bytes observed for it.
    pub weight: u64,
}

/// Why no split point was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSplit {
    /// No sample with positive weight falls inside the range.
    #[error("no samples in the range")]
    NoSamples,
    /// All the sampled weight is on one hash, which no split can divide.
    #[error("all sampled weight is on hash {0:#018x}")]
    SingleKey(u64),
    /// One hash carries more than `HOT_KEY_LOAD_PERCENT_MAX` percent of the load.
    #[error("hash {hash:#018x} carries {percent}% of the sampled load")]
    HotKey {
        /// The hot hash.
        hash: u64,
        /// Its share of the sampled load, rounded down.
        percent: u64,
    },
}

/// The hash that divides the sampled load of `range` most evenly, for a split for heat. Refused
/// when one key carries more than `HOT_KEY_LOAD_PERCENT_MAX` percent of the load or all of it.
/// Samples outside the range are ignored (they were taken before an earlier split).
pub fn split_point_by_load(range: HashRange, samples: &[HashSample]) -> Result<u64, NoSplit> {
    let weights = weights_in(range, samples)?;
    let total: u128 = weights.values().sum();
    let (&hot_hash, &hot_weight) =
        weights.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).expect("weights_in returns samples");
    if weights.len() == 1 {
        return Err(NoSplit::SingleKey(hot_hash));
    }
    if hot_weight * 100 > total * u128::from(HOT_KEY_LOAD_PERCENT_MAX) {
        let percent = u64::try_from(hot_weight * 100 / total).unwrap_or(100);
        return Err(NoSplit::HotKey { hash: hot_hash, percent });
    }
    Ok(balanced_cut(range, &weights))
}

/// The weighted median of the sampled key hashes of `range`, weighted by bytes, for a split for
/// size: the cut between sampled hashes that leaves the two halves' bytes most nearly equal. A
/// large single key does not prevent it, because moving the other keys away still shrinks the
/// partition; only a range whose bytes are all on one hash cannot be split.
pub fn split_point_by_size(range: HashRange, samples: &[HashSample]) -> Result<u64, NoSplit> {
    let weights = weights_in(range, samples)?;
    if weights.len() == 1 {
        let (&hash, _) = weights.iter().next().expect("one entry");
        return Err(NoSplit::SingleKey(hash));
    }
    Ok(balanced_cut(range, &weights))
}

/// Sampled weight per hash inside `range`, zero weights dropped; `NoSamples` when none is left.
fn weights_in(range: HashRange, samples: &[HashSample]) -> Result<BTreeMap<u64, u128>, NoSplit> {
    let mut weights = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.weight > 0 && range.contains(s.hash)) {
        *weights.entry(sample.hash).or_insert(0u128) += u128::from(sample.weight);
    }
    if weights.is_empty() {
        return Err(NoSplit::NoSamples);
    }
    Ok(weights)
}

/// The split point between two consecutive sampled hashes where the weight below is closest to
/// the weight above (the lowest such gap on a tie). The point is the middle of the gap, so keys
/// that were not sampled divide between the halves as the sampled ones around them do.
fn balanced_cut(range: HashRange, weights: &BTreeMap<u64, u128>) -> u64 {
    debug_assert!(weights.len() >= 2);
    let total: u128 = weights.values().sum();
    let hashes: Vec<(u64, u128)> = weights.iter().map(|(&hash, &weight)| (hash, weight)).collect();
    let mut below = 0u128;
    let mut best: Option<(u128, u64)> = None;
    for pair in hashes.windows(2) {
        let ((low, low_weight), (high, _)) = (pair[0], pair[1]);
        below += low_weight;
        let difference = below.abs_diff(total - below);
        // In (low, high]: strictly above every hash on the left, at most the first on the right.
        let point = low + (high - low).div_ceil(2);
        if best.is_none_or(|(best_difference, _)| difference < best_difference) {
            best = Some((difference, point));
        }
    }
    let (_, point) = best.expect("at least two hashes give one gap");
    debug_assert!(range.split_at(point).is_some(), "a point between two hashes of the range is inside it");
    point
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples(pairs: &[(u64, u64)]) -> Vec<HashSample> {
        pairs.iter().map(|&(hash, weight)| HashSample { hash, weight }).collect()
    }

    #[test]
    fn uniform_load_splits_in_the_middle() {
        let s = samples(&[(10, 1), (20, 1), (30, 1), (40, 1)]);
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Ok(25));
    }

    #[test]
    fn skewed_load_moves_the_point() {
        let s = samples(&[(10, 40), (20, 30), (30, 20), (40, 10)]);
        // Below 20: 40 vs 60; below 30: 70 vs 30. The first is more even.
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Ok(15));
    }

    #[test]
    fn adjacent_hashes_split_at_the_upper_one() {
        let s = samples(&[(7, 1), (8, 1)]);
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Ok(8));
    }

    #[test]
    fn a_hot_key_prevents_a_split_for_heat_but_not_for_size() {
        let s = samples(&[(10, 51), (20, 25), (30, 24)]);
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Err(NoSplit::HotKey { hash: 10, percent: 51 }));
        assert_eq!(split_point_by_size(HashRange::FULL, &s), Ok(15));
        // Exactly half is not over the threshold: the split gives a 50/50 division.
        let s = samples(&[(10, 50), (20, 25), (30, 25)]);
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Ok(15));
    }

    #[test]
    fn unsplittable_ranges() {
        let s = samples(&[(10, 5), (10, 7)]);
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Err(NoSplit::SingleKey(10)));
        assert_eq!(split_point_by_size(HashRange::FULL, &s), Err(NoSplit::SingleKey(10)));
        assert_eq!(split_point_by_load(HashRange::FULL, &[]), Err(NoSplit::NoSamples));
        assert_eq!(split_point_by_load(HashRange::FULL, &samples(&[(3, 0), (4, 0)])), Err(NoSplit::NoSamples));
        // Samples outside the range are ignored.
        let range = HashRange::new(100, Some(200)).unwrap();
        let s = samples(&[(50, 100), (150, 1), (250, 100)]);
        assert_eq!(split_point_by_load(range, &s), Err(NoSplit::SingleKey(150)));
        // A single-hash range can never be split.
        let single = HashRange::new(u64::MAX, None).unwrap();
        assert_eq!(split_point_by_size(single, &samples(&[(u64::MAX, 9)])), Err(NoSplit::SingleKey(u64::MAX)));
    }

    #[test]
    fn weights_do_not_overflow() {
        let s = samples(&[(1, u64::MAX), (2, u64::MAX), (3, u64::MAX), (u64::MAX, u64::MAX)]);
        assert_eq!(split_point_by_load(HashRange::FULL, &s), Ok(3));
    }

    proptest! {
        #[test]
        fn the_point_is_inside_and_no_cut_is_more_even(
            start in any::<u64>(), pairs in proptest::collection::vec((any::<u64>(), 0u64..1000), 0..40),
        ) {
            let range = HashRange::new(start, None).unwrap();
            let s: Vec<HashSample> = pairs.iter().map(|&(hash, weight)| HashSample { hash: hash.max(start), weight }).collect();
            let inside: Vec<&HashSample> = s.iter().filter(|x| x.weight > 0).collect();
            let total: u128 = inside.iter().map(|x| u128::from(x.weight)).sum();
            let below = |point: u64| -> u128 { inside.iter().filter(|x| x.hash < point).map(|x| u128::from(x.weight)).sum() };
            for by_size in [false, true] {
                let chosen = if by_size { split_point_by_size(range, &s) } else { split_point_by_load(range, &s) };
                match chosen {
                    Ok(point) => {
                        prop_assert!(range.split_at(point).is_some());
                        let left = below(point);
                        prop_assert!(left > 0 && left < total, "both halves carry sampled weight");
                        // No cut at a sampled hash is more even.
                        for candidate in inside.iter().map(|x| x.hash) {
                            let other = below(candidate);
                            prop_assert!(left.abs_diff(total - left) <= other.abs_diff(total - other) || other == 0);
                        }
                        if !by_size {
                            let heaviest = inside.iter().map(|x| x.hash)
                                .map(|h| inside.iter().filter(|x| x.hash == h).map(|x| u128::from(x.weight)).sum::<u128>())
                                .max().unwrap();
                            prop_assert!(heaviest * 100 <= total * u128::from(HOT_KEY_LOAD_PERCENT_MAX));
                        }
                    }
                    Err(NoSplit::NoSamples) => prop_assert_eq!(total, 0),
                    Err(NoSplit::SingleKey(hash)) => prop_assert!(inside.iter().all(|x| x.hash == hash)),
                    Err(NoSplit::HotKey { hash, .. }) => {
                        prop_assert!(!by_size);
                        let hot: u128 = inside.iter().filter(|x| x.hash == hash).map(|x| u128::from(x.weight)).sum();
                        prop_assert!(hot * 100 > total * u128::from(HOT_KEY_LOAD_PERCENT_MAX));
                    }
                }
            }
        }
    }
}
