//! DescribeLimits: the capacity quotas of the account in this Region.
//!
//! The per-table quotas are the ones this node enforces (`capacity::Quota`, DynamoDB's 40,000
//! read and write units unless raised); the account-wide ones are DynamoDB's default of 80,000,
//! or the per-table quota where that is higher, which CreateTable and UpdateTable enforce on the
//! sum of all provisioned tables and global indexes (`api::quota`).

use serde_json::{json, Value};

use crate::api::common::Request;
use crate::api::ApiError;
use crate::capacity::{Access, Quota};

/// Runs DescribeLimits (its request has no parameters).
pub fn run(quota: &Quota, _request: Request) -> Result<Value, ApiError> {
    let table_read = quota.table_read_units_per_s as u64;
    let table_write = quota.table_write_units_per_s as u64;
    Ok(json!({
        "AccountMaxReadCapacityUnits": quota.account_units_max(Access::Read),
        "AccountMaxWriteCapacityUnits": quota.account_units_max(Access::Write),
        "TableMaxReadCapacityUnits": table_read,
        "TableMaxWriteCapacityUnits": table_write,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(quota: Quota) -> Value {
        let request = crate::api::common::parse_body(b"{}").expect("empty request parses");
        run(&quota, request).expect("describe limits")
    }

    #[test]
    fn the_defaults_are_dynamodbs_and_a_raised_quota_shows() {
        let limits = describe(Quota::default());
        assert_eq!(
            limits,
            json!({
                "AccountMaxReadCapacityUnits": 80_000,
                "AccountMaxWriteCapacityUnits": 80_000,
                "TableMaxReadCapacityUnits": 40_000,
                "TableMaxWriteCapacityUnits": 40_000,
            })
        );
        let raised = describe(Quota { table_read_units_per_s: 100_000.0, table_write_units_per_s: 50_000.0 });
        assert_eq!(raised["TableMaxReadCapacityUnits"], 100_000);
        assert_eq!(raised["AccountMaxReadCapacityUnits"], 100_000);
        assert_eq!(raised["TableMaxWriteCapacityUnits"], 50_000);
        assert_eq!(raised["AccountMaxWriteCapacityUnits"], 80_000);
    }
}
