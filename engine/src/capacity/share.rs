//! Adaptive capacity: how the nodes of a cluster divide a table's capacity among the
//! partitions that use it.
//!
//! In a cluster each partition's requests are admitted where they arrive (its leader, or any
//! replica for eventually consistent reads), so a table-wide limit is enforced as one share per
//! partition and node. An even division would throttle a hot partition at its share while the
//! others leave theirs unused; DynamoDB instead lets a busy partition use the table's unused
//! capacity (up to the partition's own hard limit, which is enforced apart). Squall does the
//! same with demand reports: every node tells every other, once per interval, how many units
//! each of its partition buckets was asked for, and each node divides every table's limit among
//! all the reported claimants by max-min fairness ([`allocate`]). Every node computes the same
//! division from the same reports, so no coordinator is needed; a node's view may lag by one
//! interval, which lets the shares add up to slightly more or less than the limit for a moment.
//!
//! A claimant with no report (a partition that just got a new leader, a node that just started)
//! keeps the even share, which is also what every bucket has before any report arrives.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Access, Slot};

/// What one node's bucket for one partition of a table was asked for over the last interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    /// The table's id.
    pub table_id: u64,
    /// Read or write capacity.
    pub access: Access,
    /// The partition, as the reporting node divides the table.
    pub slot: Slot,
    /// Units asked for per second: admitted and refused alike, so a throttled partition shows
    /// what it would use.
    pub units_per_s: f64,
}

/// One claimant of a table's capacity: a node's bucket for one partition.
type Claimant = (u64, u32);

/// The table-wide limit a share divides: table, access and partition count.
type Division = (u64, Access, u32);

/// The latest demand report of every node, with when it arrived.
#[derive(Clone, Debug, Default)]
pub struct Board {
    reports: BTreeMap<u64, (Duration, Vec<Demand>)>,
}

impl Board {
    /// No reports yet.
    pub fn new() -> Board {
        Board::default()
    }

    /// Records `node`'s report, received at `now`, in place of its earlier one.
    pub fn record(&mut self, node: u64, now: Duration, demands: Vec<Demand>) {
        self.reports.insert(node, (now, demands));
    }

    /// Forgets reports older than `max_age` at `now`: a silent node's old demand should not
    /// hold capacity for ever.
    pub fn expire(&mut self, now: Duration, max_age: Duration) {
        self.reports.retain(|_, (at, _)| now.saturating_sub(*at) <= max_age);
    }

    /// Number of nodes with a report kept.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// Whether no report is kept.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Every reported demand, grouped by the limit it draws on, per claimant.
    fn divisions(&self) -> BTreeMap<Division, BTreeMap<Claimant, f64>> {
        let mut out: BTreeMap<Division, BTreeMap<Claimant, f64>> = BTreeMap::new();
        for (node, (_, demands)) in &self.reports {
            for demand in demands {
                let division = (demand.table_id, demand.access, demand.slot.count);
                *out.entry(division).or_default().entry((*node, demand.slot.index)).or_default() +=
                    demand.units_per_s.max(0.0);
            }
        }
        out
    }
}

/// The fractions of each table-wide limit this node's partition buckets enforce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shares {
    fractions: BTreeMap<(u64, Access, Slot), f64>,
}

impl Shares {
    /// Even shares everywhere (no reports).
    pub fn new() -> Shares {
        Shares::default()
    }

    /// The fraction of table `table_id`'s `access` limit that this node's bucket for `slot`
    /// enforces: its allocation, or the even share without one.
    pub fn fraction(&self, table_id: u64, access: Access, slot: Slot) -> f64 {
        self.fractions.get(&(table_id, access, slot)).copied().unwrap_or_else(|| 1.0 / f64::from(slot.count.max(1)))
    }

    /// Divides every reported table limit afresh from `board` and keeps the fractions of node
    /// `me`'s claimants. `rate_of` gives a division's whole limit in units per second (`None`
    /// for a table this node does not know).
    pub fn recompute(&mut self, me: u64, board: &Board, rate_of: impl Fn(u64, Access) -> Option<f64>) {
        self.fractions.clear();
        for ((table_id, access, count), claimants) in board.divisions() {
            if !claimants.keys().any(|(node, _)| *node == me) {
                continue;
            }
            let Some(rate) = rate_of(table_id, access).filter(|r| *r > 0.0) else { continue };
            let order: Vec<Claimant> = claimants.keys().copied().collect();
            let demands: Vec<f64> = order.iter().map(|c| claimants[c]).collect();
            let allocated = allocate(rate, count, &demands);
            for ((node, index), units) in order.into_iter().zip(allocated) {
                if node == me {
                    self.fractions.insert((table_id, access, Slot { index, count }), units / rate);
                }
            }
        }
    }
}

/// Headroom on a claimant's demand, given from what the table has spare: a partition whose
/// load is rising should not be held exactly at last interval's use.
pub const DEMAND_HEADROOM: f64 = 0.2;

/// Share of a table's limit kept evenly divided among its partitions whatever the demand, so
/// that a partition idle while another saturates the table still serves its first requests
/// before the next reports raise its share.
pub const RESERVED_FRACTION: f64 = 0.1;

/// Divides `rate` units per second among claimants asking `demands` (units per second) of a
/// table split into `partitions`: every claimant gets a `1 / partitions` part of the
/// [`RESERVED_FRACTION`], and the rest goes by [`allocate_by_demand`] to what each asks beyond
/// its reserved part.
pub fn allocate(rate: f64, partitions: u32, demands: &[f64]) -> Vec<f64> {
    let reserved = rate * RESERVED_FRACTION / f64::from(partitions.max(1));
    let beyond: Vec<f64> = demands.iter().map(|d| (d - reserved).max(0.0)).collect();
    allocate_by_demand(rate * (1.0 - RESERVED_FRACTION), partitions, &beyond)
        .into_iter()
        .map(|units| units + reserved)
        .collect()
}

/// Divides `rate` units per second among claimants asking `demands` (units per second) of a
/// table split into `partitions`, by max-min fairness: when the demands add up to more than
/// the rate, every demand below a level is met in full and the others get that level, the
/// largest the rate allows. When the rate covers them, every claimant gets its demand, then up
/// to [`DEMAND_HEADROOM`] more (in proportion to its demand while the spare lasts), and what is
/// still left is spread evenly, one `1 / partitions` part per claimant, so an idle claimant
/// can take up new load at once.
///
/// The allocations never add up to more than `rate` when claimants are at most one per
/// partition; several claimants of one partition (replicas serving eventually consistent
/// reads) each get the even part of what is left.
pub fn allocate_by_demand(rate: f64, partitions: u32, demands: &[f64]) -> Vec<f64> {
    let partitions = f64::from(partitions.max(1));
    let demands: Vec<f64> = demands.iter().map(|d| d.max(0.0)).collect();
    let total: f64 = demands.iter().sum();
    if total >= rate {
        let level = fair_level(rate, &demands);
        return demands.iter().map(|d| d.min(level)).collect();
    }
    let spare = rate - total;
    let headroom: f64 = total * DEMAND_HEADROOM;
    let headroom_scale = if headroom > spare { spare / headroom } else { 1.0 };
    let leftover = (spare - headroom * headroom_scale).max(0.0);
    demands.iter().map(|d| d + d * DEMAND_HEADROOM * headroom_scale + leftover / partitions).collect()
}

/// The level `l` at which the sum of `min(want, l)` equals `rate` (which is below the sum of
/// the wants).
fn fair_level(rate: f64, wants: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = wants.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mut left = rate;
    for (position, want) in sorted.iter().enumerate() {
        let remaining = (sorted.len() - position) as f64;
        if want * remaining >= left {
            return left / remaining;
        }
        left -= want;
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn demand(table_id: u64, index: u32, count: u32, units_per_s: f64) -> Demand {
        Demand { table_id, access: Access::Read, slot: Slot { index, count }, units_per_s }
    }

    #[test]
    fn an_unsaturated_table_gives_every_claimant_its_demand_and_spreads_the_rest() {
        let allocated = allocate_by_demand(1_000.0, 4, &[100.0, 0.0, 300.0, 0.0]);
        // Wants 120 and 360; 520 left over, 130 each.
        assert_eq!(allocated, vec![250.0, 130.0, 490.0, 130.0]);
        // With a tenth reserved (25 each), the rest goes to what is asked beyond it.
        let allocated = allocate(1_000.0, 4, &[100.0, 0.0, 300.0, 0.0]);
        assert_eq!(allocated, vec![235.0, 145.0, 475.0, 145.0]);
    }

    #[test]
    fn a_saturated_table_meets_small_demands_and_levels_the_large_ones() {
        let allocated = allocate_by_demand(1_000.0, 4, &[100.0, 2_000.0, 3_000.0, 0.0]);
        // 100 and 0 are met; 900 left for the two hot claimants: 450 each.
        assert_eq!(allocated, vec![100.0, 450.0, 450.0, 0.0]);
        // An idle claimant keeps its reserved part (25) while the table is saturated.
        let allocated = allocate(1_000.0, 4, &[100.0, 2_000.0, 3_000.0, 0.0]);
        assert_eq!(allocated, vec![100.0, 437.5, 437.5, 25.0]);
        assert!((allocated.iter().sum::<f64>() - 1_000.0).abs() < 1e-9);
        // Nearly saturated: every demand is met, and the headroom shrinks to what is spare.
        let allocated = allocate(1_000.0, 2, &[100.0, 850.0]);
        assert!(allocated[0] >= 100.0 && allocated[1] >= 850.0, "{allocated:?}");
        assert!((allocated.iter().sum::<f64>() - 1_000.0).abs() < 1e-9);
    }

    #[test]
    fn a_hot_partition_gets_far_more_than_an_even_share_from_reports() {
        let mut board = Board::new();
        board.record(1, Duration::ZERO, vec![demand(7, 0, 4, 3_000.0), demand(7, 1, 4, 100.0)]);
        board.record(2, Duration::ZERO, vec![demand(7, 2, 4, 100.0), demand(7, 3, 4, 100.0)]);
        let mut shares = Shares::new();
        shares.recompute(1, &board, |_, _| Some(3_000.0));
        let hot = shares.fraction(7, Access::Read, Slot { index: 0, count: 4 });
        let cool = shares.fraction(7, Access::Read, Slot { index: 1, count: 4 });
        // 3 × 100 for the cool ones, 3,000 asked by the hot one, 3,000 in all: the hot one
        // gets the 2,700 left, where an even share would be 750.
        assert!((hot * 3_000.0 - 2_700.0).abs() < 1e-6, "hot share {hot}");
        assert!((cool * 3_000.0 - 100.0).abs() < 1e-6, "cool share {cool}");
        // Node 2's claimants are not this node's to keep; an unknown slot stays even.
        assert_eq!(shares.fraction(7, Access::Read, Slot { index: 2, count: 8 }), 1.0 / 8.0);
        assert_eq!(shares.fraction(7, Access::Write, Slot { index: 0, count: 4 }), 0.25);
    }

    #[test]
    fn expired_reports_stop_holding_capacity() {
        let mut board = Board::new();
        board.record(1, Duration::from_secs(1), vec![demand(7, 0, 2, 10.0)]);
        board.record(2, Duration::from_secs(5), vec![demand(7, 1, 2, 10_000.0)]);
        board.expire(Duration::from_secs(6), Duration::from_secs(3));
        assert_eq!(board.len(), 1);
        let mut shares = Shares::new();
        shares.recompute(2, &board, |_, _| Some(1_000.0));
        // All but the other partition's reserved part (50 units).
        assert!((shares.fraction(7, Access::Read, Slot { index: 1, count: 2 }) - 0.95).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn allocations_stay_within_the_rate_and_are_fair(
            rate in 1.0f64..100_000.0,
            demands in proptest::collection::vec(0.0f64..50_000.0, 1..20),
        ) {
            let partitions = demands.len() as u32;
            let allocated = allocate_by_demand(rate, partitions, &demands);
            let total: f64 = allocated.iter().sum();
            prop_assert!(total <= rate * (1.0 + 1e-9) + 1e-9, "total {total} over {rate}");
            if demands.iter().sum::<f64>() <= rate {
                // Every demand is met and the whole rate is handed out.
                for (a, d) in allocated.iter().zip(&demands) {
                    prop_assert!(*a + 1e-9 >= *d);
                }
                prop_assert!((total - rate).abs() <= rate * 1e-9 + 1e-9);
            } else {
                // Whoever gets less than it asks gets at least as much as anyone else.
                let short = allocated.iter().zip(&demands).filter(|(a, d)| **a + 1e-6 < **d).map(|(a, _)| *a);
                let most = allocated.iter().copied().fold(0.0, f64::max);
                for a in short {
                    prop_assert!(a + 1e-6 >= most, "short claimant {a} below {most}");
                }
            }
        }

        #[test]
        fn every_partition_keeps_its_reserved_part_and_the_total_holds(
            rate in 1.0f64..100_000.0,
            demands in proptest::collection::vec(0.0f64..50_000.0, 1..20),
        ) {
            let partitions = demands.len() as u32;
            let allocated = allocate(rate, partitions, &demands);
            let reserved = rate * RESERVED_FRACTION / f64::from(partitions);
            prop_assert!(allocated.iter().all(|a| *a + 1e-9 >= reserved));
            prop_assert!(allocated.iter().sum::<f64>() <= rate * (1.0 + 1e-9) + 1e-9);
            // A claimant asking no more than its reserved part gets at least what it asks.
            for (a, d) in allocated.iter().zip(&demands) {
                if *d <= reserved {
                    prop_assert!(*a + 1e-9 >= *d);
                }
            }
        }
    }
}
