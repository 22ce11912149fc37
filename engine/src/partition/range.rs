//! Contiguous half-open ranges `[start, end)` of the 64-bit partition-key hash space.
//!
//! Items are stored under `db::keys::partition_hash` of their partition key, so a partition owns
//! exactly the items whose hash falls in its range, and a range is a contiguous run of storage
//! keys.
//!
//! The end is an `Option<u64>` where `None` means 2^64, the top of the space. It matches the
//! storage layer, where the last range has no upper key bound (a prefix scan to the end), and keeps
//! every bound that does exist a plain `u64` hash. Arithmetic on widths is done in `u128`, where
//! 2^64 fits.

/// Size of the whole hash space, 2^64, as a `u128`.
pub const HASH_SPACE_SIZE: u128 = 1 << 64;

/// A non-empty half-open range of hashes `[start, end)`; `end == None` means 2^64.
///
/// Fields are private so that a `HashRange` is never empty: every constructor checks
/// `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRange {
    start: u64,
    end: Option<u64>,
}

impl HashRange {
    /// The whole hash space.
    pub const FULL: HashRange = HashRange { start: 0, end: None };

    /// The range `[start, end)`, or `None` when it would be empty.
    pub fn new(start: u64, end: Option<u64>) -> Option<HashRange> {
        let range = HashRange { start, end };
        (u128::from(start) < range.end_u128()).then_some(range)
    }

    /// Range `index` of `count` ranges of (as near as possible) equal width that tile the space in
    /// order. Uses the same boundaries as `db::keys::segment_start_hash`, so Scan segments and an
    /// evenly divided table line up.
    ///
    /// Panics unless `index < count`: callers iterate `0..count`.
    pub fn even(index: u64, count: u64) -> HashRange {
        assert!(index < count, "range {index} of {count} does not exist");
        let bound = |i: u64| (u128::from(i) * HASH_SPACE_SIZE) / u128::from(count);
        let range = HashRange { start: bound(index) as u64, end: bound_from_u128(bound(index + 1)) };
        debug_assert!(range.width() > 0, "even ranges of a 2^64 space are never empty");
        range
    }

    /// First hash in the range.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// First hash after the range, or `None` when the range runs to the top of the space.
    pub fn end(&self) -> Option<u64> {
        self.end
    }

    /// The end as a number, 2^64 for the top of the space.
    pub fn end_u128(&self) -> u128 {
        end_u128(self.end)
    }

    /// Number of hashes in the range (at least one, at most 2^64).
    pub fn width(&self) -> u128 {
        self.end_u128() - u128::from(self.start)
    }

    /// Whether `hash` falls in the range.
    pub fn contains(&self, hash: u64) -> bool {
        hash >= self.start && u128::from(hash) < self.end_u128()
    }

    /// Whether the range shares at least one hash with `[start, end)` (`end == None` is 2^64);
    /// never for an empty `[start, end)`.
    pub fn overlaps(&self, start: u64, end: Option<u64>) -> bool {
        let end = end_u128(end);
        u128::from(start) < end && u128::from(self.start) < end && u128::from(start) < self.end_u128()
    }

    /// The two halves `[start, at)` and `[at, end)`, or `None` unless `at` lies strictly inside
    /// the range: a split at the start would leave an empty left half.
    pub fn split_at(&self, at: u64) -> Option<(HashRange, HashRange)> {
        if at <= self.start || u128::from(at) >= self.end_u128() {
            return None;
        }
        Some((HashRange { start: self.start, end: Some(at) }, HashRange { start: at, end: self.end }))
    }

    /// The hash that halves the range (the right half gets the extra hash of an odd width), or
    /// `None` for a single-hash range, which cannot be split.
    pub fn midpoint(&self) -> Option<u64> {
        if self.width() < 2 {
            return None;
        }
        let mid = u128::from(self.start) + self.width() / 2;
        debug_assert!(mid < HASH_SPACE_SIZE);
        Some(mid as u64)
    }
}

/// An end bound as a number, 2^64 for `None`.
pub(crate) fn end_u128(end: Option<u64>) -> u128 {
    end.map_or(HASH_SPACE_SIZE, u128::from)
}

/// The end bound for a number in `0..=2^64`.
fn bound_from_u128(bound: u128) -> Option<u64> {
    debug_assert!(bound <= HASH_SPACE_SIZE);
    (bound < HASH_SPACE_SIZE).then_some(bound as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::keys::segment_start_hash;
    use proptest::prelude::*;

    #[test]
    fn empty_ranges_are_refused() {
        assert!(HashRange::new(5, Some(5)).is_none());
        assert!(HashRange::new(6, Some(5)).is_none());
        assert!(HashRange::new(u64::MAX, None).is_some());
        assert_eq!(HashRange::new(u64::MAX, None).map(|r| r.width()), Some(1));
        assert_eq!(HashRange::FULL.width(), HASH_SPACE_SIZE);
    }

    #[test]
    fn the_top_of_the_space_is_inside_the_last_range() {
        let top = HashRange::new(u64::MAX - 1, None).unwrap();
        assert!(top.contains(u64::MAX));
        assert!(top.contains(u64::MAX - 1));
        assert!(!top.contains(u64::MAX - 2));
        assert!(!HashRange::new(0, Some(u64::MAX)).unwrap().contains(u64::MAX));
    }

    #[test]
    fn split_points_must_lie_strictly_inside() {
        let range = HashRange::new(10, Some(20)).unwrap();
        assert_eq!(range.split_at(10), None);
        assert_eq!(range.split_at(20), None);
        assert_eq!(range.split_at(9), None);
        let (left, right) = range.split_at(11).unwrap();
        assert_eq!((left.start(), left.end()), (10, Some(11)));
        assert_eq!((right.start(), right.end()), (11, Some(20)));
        let (left, right) = HashRange::FULL.split_at(u64::MAX).unwrap();
        assert_eq!(left.end(), Some(u64::MAX));
        assert_eq!(right.end(), None);
    }

    #[test]
    fn midpoints_halve_the_range() {
        assert_eq!(HashRange::FULL.midpoint(), Some(1 << 63));
        assert_eq!(HashRange::new(10, Some(11)).unwrap().midpoint(), None);
        assert_eq!(HashRange::new(10, Some(12)).unwrap().midpoint(), Some(11));
        assert_eq!(HashRange::new(10, Some(13)).unwrap().midpoint(), Some(11));
        assert_eq!(HashRange::new(u64::MAX - 1, None).unwrap().midpoint(), Some(u64::MAX));
    }

    #[test]
    fn even_ranges_match_scan_segments() {
        for count in [1u64, 2, 3, 4, 7, 1000] {
            for index in 0..count {
                let range = HashRange::even(index, count);
                assert_eq!(range.start(), segment_start_hash(index, count));
                if index + 1 < count {
                    assert_eq!(range.end(), Some(segment_start_hash(index + 1, count)));
                } else {
                    assert_eq!(range.end(), None);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn split_halves_tile_the_parent(start in any::<u64>(), width in 1u128..=HASH_SPACE_SIZE, at in any::<u64>()) {
            let end = (u128::from(start) + width).min(HASH_SPACE_SIZE);
            let range = HashRange::new(start, bound_from_u128(end)).unwrap();
            match range.split_at(at) {
                Some((left, right)) => {
                    prop_assert_eq!(left.start(), range.start());
                    prop_assert_eq!(left.end(), Some(right.start()));
                    prop_assert_eq!(right.end(), range.end());
                    prop_assert_eq!(left.width() + right.width(), range.width());
                    prop_assert_eq!(range.contains(at), true);
                }
                None => prop_assert!(at == range.start() || !range.contains(at)),
            }
        }

        #[test]
        fn overlap_agrees_with_membership(a in 0u64..64, b in 1u64..=64, c in 0u64..64, d in 1u64..=64) {
            let to_end = |x: u64| if x == 64 { None } else { Some(x << 58) };
            let (a, c) = (a << 58, c << 58);
            prop_assume!(u128::from(a) < end_u128(to_end(b)) && u128::from(c) < end_u128(to_end(d)));
            let first = HashRange::new(a, to_end(b)).unwrap();
            let second = HashRange::new(c, to_end(d)).unwrap();
            let shared = (0u64..64).any(|i| first.contains(i << 58) && second.contains(i << 58));
            prop_assert_eq!(first.overlaps(c, to_end(d)), shared);
        }
    }
}
