//! How many partitions a table needs, by DynamoDB's rules.
//!
//! One partition serves at most `PARTITION_READ_UNITS_MAX` read units and
//! `PARTITION_WRITE_UNITS_MAX` write units per second, or any linear combination of the two (a
//! write costs the partition as much as three reads), and holds at most `PARTITION_BYTES_MAX`.
//! Partitions only ever split, never merge: lowering a table's throughput keeps its partitions.

/// Read capacity units per second one partition serves when it serves no writes.
pub const PARTITION_READ_UNITS_MAX: u64 = 3_000;
/// Write capacity units per second one partition serves when it serves no reads.
pub const PARTITION_WRITE_UNITS_MAX: u64 = 1_000;
/// Bytes one partition holds: DynamoDB's 10 GB, taken as GiB like its other size limits.
pub const PARTITION_BYTES_MAX: u64 = 10 * 1024 * 1024 * 1024;
/// Read request units per second a new on-demand table serves at once.
pub const ON_DEMAND_INITIAL_READ_UNITS: u64 = 12_000;
/// Write request units per second a new on-demand table serves at once.
pub const ON_DEMAND_INITIAL_WRITE_UNITS: u64 = 4_000;

/// Partitions needed for `read_units` and `write_units` per second and `table_bytes` of data:
/// `max(ceil(RCU / 3000 + WCU / 1000), ceil(bytes / 10 GB), 1)`.
///
/// The throughput term is computed exactly in integers as `ceil((RCU + 3 * WCU) / 3000)`, so
/// 1500 RCU and 500 WCU need one partition, not two after rounding each term.
pub fn partitions_for_provisioned(read_units: u64, write_units: u64, table_bytes: u64) -> u64 {
    let read_equivalents = u128::from(read_units)
        + u128::from(write_units) * u128::from(PARTITION_READ_UNITS_MAX / PARTITION_WRITE_UNITS_MAX);
    let for_throughput = read_equivalents.div_ceil(u128::from(PARTITION_READ_UNITS_MAX));
    let for_size = u128::from(table_bytes.div_ceil(PARTITION_BYTES_MAX));
    // A u64 of units over 1000 per partition always fits back in a u64.
    let partitions = u64::try_from(for_throughput.max(for_size)).unwrap_or(u64::MAX);
    partitions.max(1)
}

/// Partitions for a new on-demand table holding `table_bytes` (zero for CreateTable).
///
/// DynamoDB documents that a new on-demand table serves up to 4,000 write or 12,000 read request
/// units per second (or a linear combination of the two); that is exactly four partitions' worth,
/// since each of the limits alone fills four partitions.
pub fn partitions_for_on_demand(table_bytes: u64) -> u64 {
    let for_reads = ON_DEMAND_INITIAL_READ_UNITS.div_ceil(PARTITION_READ_UNITS_MAX);
    let for_writes = ON_DEMAND_INITIAL_WRITE_UNITS.div_ceil(PARTITION_WRITE_UNITS_MAX);
    for_reads.max(for_writes).max(partitions_for_provisioned(0, 0, table_bytes))
}

/// Partitions a table with `current_partitions` has after an UpdateTable to `read_units` and
/// `write_units` with `table_bytes` stored: unchanged when they suffice, otherwise the number
/// the new throughput needs. Never fewer than now, since partitions never merge. Which
/// partitions split, and where, is the control plane's choice (see `split_point`).
pub fn partitions_after_update(current_partitions: u64, read_units: u64, write_units: u64, table_bytes: u64) -> u64 {
    current_partitions.max(partitions_for_provisioned(read_units, write_units, table_bytes))
}

/// Splits an UpdateTable to `read_units` and `write_units` needs: each split adds one partition.
pub fn splits_for_update(current_partitions: u64, read_units: u64, write_units: u64, table_bytes: u64) -> u64 {
    partitions_after_update(current_partitions, read_units, write_units, table_bytes) - current_partitions
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn provisioned_tables_follow_the_documented_formula() {
        assert_eq!(partitions_for_provisioned(0, 0, 0), 1);
        assert_eq!(partitions_for_provisioned(5, 5, 0), 1);
        assert_eq!(partitions_for_provisioned(3_000, 0, 0), 1);
        assert_eq!(partitions_for_provisioned(3_001, 0, 0), 2);
        assert_eq!(partitions_for_provisioned(0, 1_000, 0), 1);
        assert_eq!(partitions_for_provisioned(0, 1_001, 0), 2);
        // 1000/3000 + 1000/1000 = 1.33, so two partitions.
        assert_eq!(partitions_for_provisioned(1_000, 1_000, 0), 2);
        assert_eq!(partitions_for_provisioned(1_500, 500, 0), 1);
        assert_eq!(partitions_for_provisioned(10, 10, 10 * GB), 1);
        assert_eq!(partitions_for_provisioned(10, 10, 10 * GB + 1), 2);
        assert_eq!(partitions_for_provisioned(10, 10, 55 * GB), 6);
        assert_eq!(partitions_for_provisioned(u64::MAX, u64::MAX, u64::MAX), u64::MAX / 750 + 1);
    }

    #[test]
    fn new_on_demand_tables_get_four_partitions() {
        assert_eq!(partitions_for_on_demand(0), 4);
        assert_eq!(partitions_for_on_demand(45 * GB), 5);
    }

    #[test]
    fn updates_only_ever_add_partitions() {
        assert_eq!(partitions_after_update(4, 100, 100, 0), 4);
        assert_eq!(splits_for_update(4, 100, 100, 0), 0);
        assert_eq!(partitions_after_update(4, 30_000, 0, 0), 10);
        assert_eq!(splits_for_update(4, 30_000, 0, 0), 6);
        assert_eq!(partitions_after_update(4, 0, 0, 100 * GB), 10);
    }

    proptest! {
        #[test]
        fn the_partitions_chosen_can_serve_the_table(read in 0u64..10_000_000, write in 0u64..10_000_000, bytes in any::<u64>()) {
            let count = partitions_for_provisioned(read, write, bytes);
            // Capacity check in read-unit equivalents: count partitions of 3000 each.
            prop_assert!(u128::from(count) * 3_000 >= u128::from(read) + 3 * u128::from(write));
            prop_assert!(u128::from(count) * u128::from(PARTITION_BYTES_MAX) >= u128::from(bytes));
            // And one fewer would not do (unless one is the floor).
            if count > 1 {
                let fewer = u128::from(count - 1);
                prop_assert!(fewer * 3_000 < u128::from(read) + 3 * u128::from(write)
                    || fewer * u128::from(PARTITION_BYTES_MAX) < u128::from(bytes));
            }
        }

        #[test]
        fn updates_never_shrink(current in 1u64..1_000, read in 0u64..10_000_000, write in 0u64..10_000_000) {
            let after = partitions_after_update(current, read, write, 0);
            prop_assert!(after >= current);
            prop_assert!(after >= partitions_for_provisioned(read, write, 0));
        }
    }
}
