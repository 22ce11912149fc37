//! DynamoDB capacity: the unit maths (pure functions of item sizes) and the pure core of its
//! enforcement — token buckets ([`bucket`]), which buckets a request draws on ([`limits`]) and
//! how a cluster divides a table's capacity among its partitions ([`share`]).
//!
//! A read unit covers up to 4 KB read with strong consistency (half a unit when eventually
//! consistent); a write unit covers up to 1 KB written. Single-item operations round each item
//! up; Query and Scan round the total of all items read.
//!
//! Nothing here reads a clock: times are values passed in by the caller (`crate::throttle`).

pub mod bucket;
pub mod limits;
pub mod share;

use std::collections::BTreeMap;

pub use bucket::TokenBucket;
pub use limits::{
    settings, table_rate, BucketKey, Buckets, Claim, Grant, Limit, Part, Placement, Quota, Refusal, Sizing, Slot,
    Target,
};

/// Read units per second one partition serves at most, whatever the table's throughput:
/// DynamoDB's hard per-partition limit, for provisioned and on-demand tables alike.
pub const PARTITION_READ_UNITS_PER_S: f64 = crate::partition::sizing::PARTITION_READ_UNITS_MAX as f64;
/// Write units per second one partition serves at most (see [`PARTITION_READ_UNITS_PER_S`]).
pub const PARTITION_WRITE_UNITS_PER_S: f64 = crate::partition::sizing::PARTITION_WRITE_UNITS_MAX as f64;
/// Read request units per second an on-demand table (or one of its global indexes) serves at
/// most: DynamoDB's default per-table account quota.
pub const ON_DEMAND_TABLE_READ_UNITS_PER_S: f64 = 40_000.0;
/// Write request units per second an on-demand table (or one of its global indexes) serves at
/// most (see [`ON_DEMAND_TABLE_READ_UNITS_PER_S`]).
pub const ON_DEMAND_TABLE_WRITE_UNITS_PER_S: f64 = 40_000.0;
/// Seconds of unused provisioned capacity a table or index keeps as burst credit: DynamoDB's
/// five minutes.
pub const BURST_CREDIT_S: f64 = 300.0;
/// Seconds of capacity the hard limits (per partition, on-demand maximum) let a burst use:
/// one second's worth, so they hold over any second rather than on average.
pub const HARD_LIMIT_BURST_S: f64 = 1.0;

/// Bytes covered by one read capacity unit.
pub const READ_UNIT_BYTES: u64 = 4096;
/// Bytes covered by one write capacity unit.
pub const WRITE_UNIT_BYTES: u64 = 1024;

/// Read units for reading one item of `size_bytes` (a missing item still costs one unit).
pub fn read_units_for_item(size_bytes: u64, consistent: bool) -> f64 {
    let units = size_bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Read units for a Query or Scan that read `total_bytes` in all (at least one unit).
pub fn read_units_for_range(total_bytes: u64, consistent: bool) -> f64 {
    read_units_for_item(total_bytes, consistent)
}

/// Write units for writing one item of `size_bytes` (at least one unit).
pub fn write_units_for_item(size_bytes: u64) -> f64 {
    size_bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// Whether capacity is read or write capacity; each has its own buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Read capacity units.
    Read,
    /// Write capacity units.
    Write,
}

/// Units one request consumed on one table, as its `ConsumedCapacity` reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Units {
    /// Units of the table itself and its local secondary indexes, which share its throughput.
    pub table: f64,
    /// Units per global secondary index, each with its own throughput.
    pub indexes: BTreeMap<String, f64>,
}

/// What one call consumed, per table and access: what enforcement charges afterwards.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Consumption by table name and access.
    pub tables: BTreeMap<(String, Access), Units>,
}

impl Usage {
    /// Adds `units` consumed on `table`.
    pub fn record(&mut self, table: &str, access: Access, units: &Units) {
        let entry = self.tables.entry((table.to_string(), access)).or_default();
        entry.table += units.table;
        for (index, more) in &units.indexes {
            *entry.indexes.entry(index.clone()).or_default() += more;
        }
    }

    /// Adds everything `other` consumed.
    pub fn merge(&mut self, other: &Usage) {
        for ((table, access), units) in &other.tables {
            self.record(table, *access, units);
        }
    }

    /// Units consumed on `table`, if any.
    pub fn of(&self, table: &str, access: Access) -> Option<&Units> {
        self.tables.get(&(table.to_string(), access))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_round_up_per_four_kilobytes() {
        assert_eq!(read_units_for_item(0, true), 1.0);
        assert_eq!(read_units_for_item(4096, true), 1.0);
        assert_eq!(read_units_for_item(4097, true), 2.0);
        assert_eq!(read_units_for_item(5 * 1024, true), 2.0);
        assert_eq!(read_units_for_item(5 * 1024, false), 1.0);
        assert_eq!(read_units_for_item(100, false), 0.5);
    }

    #[test]
    fn writes_round_up_per_kilobyte() {
        assert_eq!(write_units_for_item(0), 1.0);
        assert_eq!(write_units_for_item(1024), 1.0);
        assert_eq!(write_units_for_item(1536), 2.0);
        assert_eq!(write_units_for_item(400 * 1024), 400.0);
    }
}
