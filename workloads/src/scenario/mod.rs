//! Scenarios: what load to offer and what must hold afterwards.
//!
//! A scenario generates [`Op`]s from a seed (a load phase, then the run phase), is told how each
//! one ended ([`Workload::complete`]), and checks its invariant at the end from the database's
//! contents and the acknowledgements it was given ([`Scenario::check`]).
//!
//! - [`ycsb`]: YCSB's core workloads A–F.
//! - [`orders`]: customers, orders and order lines, a GSI by status, conditional stock decrements.
//! - [`sessions`]: small items, heavy writes, reads by id.
//! - [`feed`]: a social feed and leaderboards with GSI queries and a few very hot keys.
//! - [`bank`]: transfers as conditional transactions; the total balance never changes.
//! - [`custom`]: a mix described in a scenario file.
//! - [`file`]: the TOML scenario file format and the built-in scenario names.

pub mod bank;
mod check;
pub mod custom;
pub mod feed;
pub mod file;
mod keys;
pub mod orders;
pub mod sessions;
pub mod ycsb;

use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use serde_json::Value;

pub use check::{Check, CheckReport, VIOLATIONS_SHOWN_MAX};
pub use keys::{KeyChooser, KeyDistribution};

use crate::api::DynamoApi;
use crate::driver::DriverError;
use crate::keygen::next_f64;
use crate::op::{Op, TableDef};
use crate::recorder::Outcome;

/// What the runner needs from a scenario.
pub trait Workload: Send + 'static {
    /// The next operation of the load phase, `None` when it is done.
    fn next_load(&mut self) -> Option<Op>;
    /// The next operation of the run phase.
    fn next_op(&mut self) -> Op;
    /// Called once per operation when it ended; returns how it counts. A correct refusal (a
    /// condition that evaluated false where the scenario expects that it may) counts as
    /// [`Outcome::Ok`]: the database answered correctly.
    fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome;
}

/// Every scenario, built in or from a file.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// A YCSB core workload.
    Ycsb(Box<ycsb::YcsbScenario>),
    /// The order system.
    Orders(orders::Orders),
    /// The session store.
    Sessions(sessions::Sessions),
    /// The social feed and leaderboards.
    Feed(feed::Feed),
    /// The bank.
    Bank(bank::Bank),
    /// A custom mix.
    Custom(custom::Custom),
}

macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Scenario::Ycsb($s) => $body,
            Scenario::Orders($s) => $body,
            Scenario::Sessions($s) => $body,
            Scenario::Feed($s) => $body,
            Scenario::Bank($s) => $body,
            Scenario::Custom($s) => $body,
        }
    };
}

impl Scenario {
    /// The scenario's name.
    pub fn name(&self) -> &str {
        each!(self, s => s.name())
    }

    /// The tables it needs.
    pub fn tables(&self) -> Vec<TableDef> {
        each!(self, s => s.tables())
    }

    /// The DynamoDB operations its load, run and invariant check may issue (table set-up
    /// aside), so that an endpoint lacking one is found before the load starts.
    pub fn operations(&self) -> BTreeSet<&'static str> {
        let mut operations: BTreeSet<&'static str> = each!(self, s => s.operations()).into_iter().collect();
        // Every check reads the tables back with Scan.
        operations.insert("Scan");
        operations
    }

    /// Checks the invariant against the database's contents. Run it when no operation is in flight.
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        each!(self, s => s.check(api).await)
    }
}

impl Workload for Scenario {
    fn next_load(&mut self) -> Option<Op> {
        each!(self, s => s.next_load())
    }

    fn next_op(&mut self) -> Op {
        each!(self, s => s.next_op())
    }

    fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        each!(self, s => s.complete(op, result))
    }
}

/// A weighted choice among operation kinds (YCSB's `DiscreteGenerator`: weights normalised by
/// their sum, one uniform draw walked down the list).
#[derive(Debug, Clone, PartialEq)]
pub struct Mix<T> {
    choices: Vec<(T, f64)>,
    total: f64,
}

impl<T: Copy> Mix<T> {
    /// A mix of the choices with weight above 0; fails when there is none or a weight is negative
    /// or not finite.
    pub fn new(choices: &[(T, f64)]) -> Result<Self, String> {
        if choices.iter().any(|(_, weight)| !weight.is_finite() || *weight < 0.0) {
            return Err("operation weights must be finite and not negative".into());
        }
        let choices: Vec<(T, f64)> = choices.iter().copied().filter(|(_, weight)| *weight > 0.0).collect();
        let total = choices.iter().map(|(_, weight)| weight).sum();
        if choices.is_empty() {
            return Err("at least one operation weight must be above 0".into());
        }
        Ok(Mix { choices, total })
    }

    /// The next choice.
    pub fn next(&self, rng: &mut ChaCha8Rng) -> T {
        let mut u = next_f64(rng) * self.total;
        for &(choice, weight) in &self.choices {
            if u < weight {
                return choice;
            }
            u -= weight;
        }
        self.choices[self.choices.len() - 1].0
    }
}

/// Deterministic text of `length` bytes for `(key, version)`, so a check can tell whether stored
/// content belongs to the version stored with it.
pub fn payload(key: &str, version: u64, length: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut state = crate::keygen::fnv1a_64(format!("{key}/{version}").as_bytes());
    (0..length)
        .map(|_| {
            // xorshift64: cheap, deterministic, good enough for filler text.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 32) as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::seeded_rng;

    #[test]
    fn mixes_follow_their_weights() {
        let mix = Mix::new(&[('a', 3.0), ('b', 1.0), ('c', 0.0)]).unwrap();
        let mut rng = seeded_rng(1, 1);
        let a = (0..10_000).filter(|_| mix.next(&mut rng) == 'a').count();
        assert!((7_300..7_700).contains(&a), "{a}");
        assert!(Mix::new(&[('a', 0.0)]).is_err());
        assert!(Mix::new(&[('a', -1.0)]).is_err());
        assert!(Mix::new(&[('a', f64::NAN)]).is_err());
    }

    #[test]
    fn payloads_depend_on_key_and_version() {
        assert_eq!(payload("s1", 3, 40), payload("s1", 3, 40));
        assert_ne!(payload("s1", 3, 40), payload("s1", 4, 40));
        assert_ne!(payload("s1", 3, 40), payload("s2", 3, 40));
        assert_eq!(payload("s1", 3, 200).len(), 200);
    }
}
