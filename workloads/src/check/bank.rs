//! The bank invariant: transfers between accounts (transactions that debit one account and credit
//! another) never create or destroy money, so every strongly consistent snapshot of all accounts
//! (a TransactGetItems, or a consistent read of each account inside one transaction) sums to the
//! same total. A snapshot that misses an account, or shows one that does not exist, is a violation
//! too: the total of a partial snapshot means nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::{ClientId, Key};

/// One snapshot read of the balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankSnapshot {
    /// The client that read it.
    pub client: ClientId,
    /// When the read completed.
    pub at_ns: u64,
    /// The balance of each account it returned.
    pub balances: BTreeMap<Key, i64>,
}

/// A snapshot that breaks the invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankViolation {
    /// The balances do not add up to the total.
    WrongTotal {
        /// Position of the snapshot in the input.
        snapshot: usize,
        /// When it was read.
        at_ns: u64,
        /// What its balances add up to.
        total: i128,
        /// What they must add up to.
        expected: i128,
    },
    /// Accounts missing from the snapshot, or present but not part of the bank.
    WrongAccounts {
        /// Position of the snapshot in the input.
        snapshot: usize,
        /// When it was read.
        at_ns: u64,
        /// Accounts of the bank the snapshot lacks.
        missing: Vec<Key>,
        /// Accounts in the snapshot that are not the bank's.
        unknown: Vec<Key>,
    },
}

impl fmt::Display for BankViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankViolation::WrongTotal { snapshot, at_ns, total, expected } => {
                write!(f, "snapshot {snapshot} at {at_ns} ns: balances total {total}, expected {expected}")
            }
            BankViolation::WrongAccounts { snapshot, at_ns, missing, unknown } => {
                let names = |keys: &[Key]| keys.iter().map(Key::to_string).collect::<Vec<_>>().join(", ");
                write!(
                    f,
                    "snapshot {snapshot} at {at_ns} ns: missing accounts [{}], unknown accounts [{}]",
                    names(missing),
                    names(unknown)
                )
            }
        }
    }
}

/// Checks that every snapshot holds exactly `accounts` and that their balances sum to
/// `expected_total`; returns every violation, in snapshot order.
pub fn check_bank(accounts: &BTreeSet<Key>, expected_total: i128, snapshots: &[BankSnapshot]) -> Vec<BankViolation> {
    let mut violations = Vec::new();
    for (index, snapshot) in snapshots.iter().enumerate() {
        let missing: Vec<Key> = accounts.iter().filter(|a| !snapshot.balances.contains_key(*a)).cloned().collect();
        let unknown: Vec<Key> = snapshot.balances.keys().filter(|a| !accounts.contains(*a)).cloned().collect();
        if !missing.is_empty() || !unknown.is_empty() {
            violations.push(BankViolation::WrongAccounts { snapshot: index, at_ns: snapshot.at_ns, missing, unknown });
            continue;
        }
        // i128: no sum of i64 balances over any realistic number of accounts overflows it.
        let total: i128 = snapshot.balances.values().map(|&b| i128::from(b)).sum();
        if total != expected_total {
            violations.push(BankViolation::WrongTotal {
                snapshot: index,
                at_ns: snapshot.at_ns,
                total,
                expected: expected_total,
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> BTreeSet<Key> {
        ["a", "b", "c"].into_iter().map(Key::from).collect()
    }

    fn snapshot(at_ns: u64, balances: &[(&str, i64)]) -> BankSnapshot {
        BankSnapshot { client: 1, at_ns, balances: balances.iter().map(|(k, b)| (Key::from(*k), *b)).collect() }
    }

    #[test]
    fn transfers_keep_the_total() {
        let snapshots = [
            snapshot(10, &[("a", 100), ("b", 100), ("c", 100)]),
            snapshot(20, &[("a", 70), ("b", 130), ("c", 100)]),
            snapshot(30, &[("a", -5), ("b", 130), ("c", 175)]),
        ];
        assert_eq!(check_bank(&accounts(), 300, &snapshots), vec![]);
    }

    #[test]
    fn a_torn_transfer_changes_the_total() {
        let snapshots = [
            snapshot(10, &[("a", 100), ("b", 100), ("c", 100)]),
            // The debit is visible, the credit is not.
            snapshot(20, &[("a", 70), ("b", 100), ("c", 100)]),
            snapshot(30, &[("a", 70), ("b", 130), ("c", 100)]),
        ];
        let violations = check_bank(&accounts(), 300, &snapshots);
        assert_eq!(violations, vec![BankViolation::WrongTotal { snapshot: 1, at_ns: 20, total: 270, expected: 300 }]);
        assert_eq!(violations[0].to_string(), "snapshot 1 at 20 ns: balances total 270, expected 300");
    }

    #[test]
    fn a_partial_snapshot_is_a_violation() {
        let snapshots = [snapshot(10, &[("a", 200), ("b", 100), ("d", 0)])];
        assert_eq!(
            check_bank(&accounts(), 300, &snapshots),
            vec![BankViolation::WrongAccounts {
                snapshot: 0,
                at_ns: 10,
                missing: vec![Key::from("c")],
                unknown: vec![Key::from("d")]
            }]
        );
    }

    #[test]
    fn extreme_balances_do_not_overflow() {
        let snapshots = [snapshot(10, &[("a", i64::MAX), ("b", i64::MAX), ("c", i64::MIN)])];
        assert_eq!(check_bank(&accounts(), i128::from(i64::MAX) - 1, &snapshots), vec![]);
    }
}
