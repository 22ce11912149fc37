//! The result of checking a scenario's invariant against the database's contents.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// One property checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, as a sentence.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Counts or the first violations found.
    pub detail: String,
}

/// Every property checked for one scenario, and the counts they were checked over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Scenario name.
    pub scenario: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Acknowledged, rejected and uncertain operations and items found, by name.
    pub counts: BTreeMap<String, u64>,
}

/// Violations listed in a check's detail at most.
pub const VIOLATIONS_SHOWN_MAX: usize = 5;

impl CheckReport {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str) -> Self {
        CheckReport { scenario: scenario.to_owned(), ..Default::default() }
    }

    /// Adds a check that holds when `violations` is empty; `detail` describes what was looked at.
    pub fn check(&mut self, name: &str, violations: Vec<String>, detail: String) {
        let passed = violations.is_empty();
        let detail = if passed {
            detail
        } else {
            let shown: Vec<&str> = violations.iter().take(VIOLATIONS_SHOWN_MAX).map(String::as_str).collect();
            format!("{} violations, first: {}", violations.len(), shown.join("; "))
        };
        self.checks.push(Check { name: name.to_owned(), passed, detail });
    }

    /// Records a count.
    pub fn count(&mut self, name: &str, value: u64) {
        self.counts.insert(name.to_owned(), value);
    }

    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invariants of {}:", self.scenario)?;
        for check in &self.checks {
            let mark = if check.passed { "ok" } else { "FAILED" };
            if check.detail.is_empty() {
                writeln!(f, "  [{mark}] {}", check.name)?;
            } else {
                writeln!(f, "  [{mark}] {} ({})", check.name, check.detail)?;
            }
        }
        let counts: Vec<String> = self.counts.iter().map(|(name, value)| format!("{name} {value}")).collect();
        if !counts.is_empty() {
            writeln!(f, "  counts: {}", counts.join(", "))?;
        }
        Ok(())
    }
}
