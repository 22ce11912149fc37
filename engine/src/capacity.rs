//! DynamoDB capacity-unit accounting: pure functions of item sizes.
//!
//! A read unit covers up to 4 KB read with strong consistency (half a unit when eventually
//! consistent); a write unit covers up to 1 KB written. Single-item operations round each item
//! up; Query and Scan round the total of all items read.

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
