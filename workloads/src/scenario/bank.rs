//! The bank: accounts with balances, and transfers as TransactWriteItems that debit one account
//! under `balance >= :amount`, credit another under `attribute_exists(pk)`, and record the
//! transfer under `attribute_not_exists(pk)`, all or nothing.
//!
//! Invariant: the total balance never changes; no balance is negative; each account's balance is
//! its initial balance plus the transfers recorded in the table; every acknowledged transfer is
//! recorded, every refused one is not, and no other is; balance reads are never negative.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{CheckReport, KeyChooser, KeyDistribution, Mix};
use crate::api::{cancelled_by_condition, failure_outcome, DynamoApi};
use crate::driver::DriverError;
use crate::keygen::{seeded_rng, uniform_below};
use crate::op::{get_n, get_s, n, s, scan_all, Ack, Call, KeyAttribute, Op, TableDef};
use crate::recorder::Outcome;

/// Settings of the bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BankConfig {
    /// Table name.
    pub table: String,
    /// Accounts (at least 2).
    pub accounts: u64,
    /// Balance of each account after loading.
    pub initial_balance: u64,
    /// Largest amount transferred; amounts are uniform in 1..=amount_max.
    pub amount_max: u64,
    /// Which accounts take part (zipfian: a few very busy accounts).
    pub distribution: KeyDistribution,
    /// Strongly consistent balance reads.
    pub consistent_reads: bool,
    /// Weight of transfers.
    pub transfer: f64,
    /// Weight of balance reads.
    pub read_balance: f64,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            table: "bank".into(),
            accounts: 1_000,
            initial_balance: 1_000,
            amount_max: 200,
            distribution: KeyDistribution::Zipfian,
            consistent_reads: true,
            transfer: 0.7,
            read_balance: 0.3,
        }
    }
}

impl BankConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.accounts < 2 {
            return Err("a bank needs at least 2 accounts".into());
        }
        if self.amount_max == 0 {
            return Err("amount_max must be at least 1".into());
        }
        if self.accounts.checked_mul(self.initial_balance).is_none_or(|total| total > i64::MAX as u64 / 2) {
            return Err("accounts × initial_balance is too large".into());
        }
        self.distribution.validate()?;
        Mix::new(&[(0, self.transfer), (1, self.read_balance)]).map(|_| ())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Acknowledged,
    Refused,
    Uncertain,
}

#[derive(Debug, Clone, Copy)]
struct Transfer {
    from: u64,
    to: u64,
    amount: u64,
    state: State,
}

/// The bank.
#[derive(Debug, Clone)]
pub struct Bank {
    name: String,
    config: BankConfig,
    mix: Mix<bool>,
    chooser: KeyChooser,
    rng: ChaCha8Rng,
    load_next: u64,
    transfers: Vec<Transfer>,
    negative_reads: Vec<String>,
}

const STREAM: u64 = 24;
/// The ack of a balance read (transfers are acknowledged by their index).
const READ_ACK: u64 = u64::MAX;

impl Bank {
    /// The bank with `config`, seeded.
    pub fn new(name: &str, config: BankConfig, seed: u64) -> Result<Self, String> {
        config.validate()?;
        Ok(Bank {
            name: name.to_owned(),
            mix: Mix::new(&[(true, config.transfer), (false, config.read_balance)])?,
            chooser: KeyChooser::new(config.distribution, config.accounts),
            rng: seeded_rng(seed, STREAM),
            load_next: 0,
            transfers: Vec::new(),
            negative_reads: Vec::new(),
            config,
        })
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The one table.
    pub fn tables(&self) -> Vec<TableDef> {
        vec![TableDef {
            name: self.config.table.clone(),
            partition_key: KeyAttribute::new("pk", "S"),
            sort_key: None,
            indexes: Vec::new(),
        }]
    }

    /// The DynamoDB operations it issues: PutItem to load, transfers as TransactWriteItems,
    /// balance reads as GetItem.
    pub fn operations(&self) -> Vec<&'static str> {
        vec!["PutItem", "TransactWriteItems", "GetItem"]
    }

    /// One put per account.
    pub fn next_load(&mut self) -> Option<Op> {
        let account = self.load_next;
        if account >= self.config.accounts {
            return None;
        }
        self.load_next += 1;
        let item = json!({"pk": s(account_key(account)), "balance": n(self.config.initial_balance as i64)});
        let body = json!({"TableName": self.config.table, "Item": item});
        Some(Op::single("load_account", "PutItem", body, Ack::None))
    }

    /// A transfer or a balance read.
    pub fn next_op(&mut self) -> Op {
        let table = self.config.table.clone();
        let from = self.chooser.next_key(&mut self.rng, self.config.accounts);
        if !self.mix.next(&mut self.rng) {
            let body = json!({"TableName": table, "Key": {"pk": s(account_key(from))}, "ConsistentRead": self.config.consistent_reads});
            return Op::single("read_balance", "GetItem", body, Ack::Issued(READ_ACK));
        }
        let mut to = self.chooser.next_key(&mut self.rng, self.config.accounts);
        if to == from {
            to = (from + 1 + uniform_below(&mut self.rng, self.config.accounts - 1)) % self.config.accounts;
        }
        let amount = 1 + uniform_below(&mut self.rng, self.config.amount_max);
        let id = self.transfers.len() as u64;
        self.transfers.push(Transfer { from, to, amount, state: State::Pending });
        let actions = json!([
            {"Update": {
                "TableName": table, "Key": {"pk": s(account_key(from))},
                "UpdateExpression": "SET balance = balance - :amount",
                "ConditionExpression": "balance >= :amount",
                "ExpressionAttributeValues": {":amount": n(amount as i64)},
            }},
            {"Update": {
                "TableName": table, "Key": {"pk": s(account_key(to))},
                "UpdateExpression": "SET balance = balance + :amount",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":amount": n(amount as i64)},
            }},
            {"Put": {
                "TableName": table,
                "Item": {"pk": s(transfer_key(id)), "from": s(account_key(from)), "to": s(account_key(to)), "amount": n(amount as i64)},
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
        ]);
        Op {
            name: "transfer",
            calls: vec![Call { operation: "TransactWriteItems", body: json!({"TransactItems": actions}) }],
            ack: Ack::Issued(id),
        }
    }

    /// Keeps transfer acknowledgements and checks balance reads.
    pub fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        let Ack::Issued(id) = op.ack else {
            return match result {
                Ok(_) => Outcome::Ok,
                Err(error) => failure_outcome(error),
            };
        };
        if id == READ_ACK {
            if let Ok(response) = result {
                if let Some(balance) =
                    response.get("Item").and_then(Value::as_object).and_then(|item| get_n(item, "balance"))
                {
                    if balance < 0 {
                        self.negative_reads.push(format!("a read returned balance {balance}"));
                    }
                }
            }
        } else if let Some(transfer) = self.transfers.get_mut(id as usize) {
            transfer.state = match result {
                Ok(_) => State::Acknowledged,
                Err(error) if cancelled_by_condition(error) => State::Refused,
                Err(_) => State::Uncertain,
            };
        }
        match result {
            Ok(_) => Outcome::Ok,
            Err(error) if cancelled_by_condition(error) => Outcome::Ok,
            Err(error) => failure_outcome(error),
        }
    }

    /// Checks the invariant (see the module documentation).
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        let items = scan_all(api, &self.config.table, None).await?;
        let mut report = CheckReport::new(&self.name);
        let mut balances: BTreeMap<String, i64> = BTreeMap::new();
        let mut recorded: BTreeMap<u64, (String, String, i64)> = BTreeMap::new();
        let mut other = Vec::new();
        for item in &items {
            let pk = get_s(item, "pk").unwrap_or("");
            if pk.starts_with("ACCOUNT#") {
                balances.insert(pk.to_owned(), get_n(item, "balance").unwrap_or(i64::MIN / 4));
            } else if let Some(id) = pk.strip_prefix("TRANSFER#").and_then(|id| id.parse().ok()) {
                let field = |name| get_s(item, name).unwrap_or("").to_owned();
                recorded.insert(id, (field("from"), field("to"), get_n(item, "amount").unwrap_or(0)));
            } else {
                other.push(format!("unexpected item {}", Value::Object(item.clone())));
            }
        }
        let total: i64 = balances.values().sum();
        let expected_total = (self.config.accounts * self.config.initial_balance) as i64;
        let mut totals = Vec::new();
        if balances.len() as u64 != self.config.accounts {
            totals.push(format!("{} accounts in the table, {} loaded", balances.len(), self.config.accounts));
        }
        if total != expected_total {
            totals.push(format!("total balance {total}, expected {expected_total}"));
        }
        report.check("the total balance never changes", totals, format!("total {total}"));

        let negative: Vec<String> = balances
            .iter()
            .filter(|(_, &balance)| balance < 0)
            .map(|(account, balance)| format!("{account} has balance {balance}"))
            .chain(self.negative_reads.iter().cloned())
            .collect();
        report.check("no balance is ever negative (stored or read)", negative, String::new());

        let mut expected: BTreeMap<String, i64> =
            (0..self.config.accounts).map(|a| (account_key(a), self.config.initial_balance as i64)).collect();
        for (from, to, amount) in recorded.values() {
            *expected.entry(from.clone()).or_default() -= amount;
            *expected.entry(to.clone()).or_default() += amount;
        }
        let ledger: Vec<String> = expected
            .iter()
            .filter(|(account, balance)| balances.get(*account) != Some(balance))
            .map(|(account, balance)| {
                format!("{account}: ledger says {balance}, table says {:?}", balances.get(account))
            })
            .collect();
        report.check("each balance is the initial balance plus the recorded transfers", ledger, String::new());

        let mut transfers = other;
        for (id, transfer) in self.transfers.iter().enumerate() {
            let stored = recorded.get(&(id as u64));
            match (transfer.state, stored) {
                (State::Acknowledged, None) => transfers.push(format!("acknowledged transfer {id} is not recorded")),
                (State::Refused, Some(_)) => transfers.push(format!("refused transfer {id} is recorded")),
                (_, Some((from, to, amount)))
                    if (from.as_str(), to.as_str(), *amount)
                        != (
                            account_key(transfer.from).as_str(),
                            account_key(transfer.to).as_str(),
                            transfer.amount as i64,
                        ) =>
                {
                    transfers.push(format!("transfer {id} is recorded as {from} -> {to} {amount}"))
                }
                _ => {}
            }
        }
        for id in recorded.keys().filter(|&&id| id as usize >= self.transfers.len()) {
            transfers.push(format!("transfer {id} was never issued"));
        }
        let count = |state| self.transfers.iter().filter(|t| t.state == state).count() as u64;
        report.count("transfers_acknowledged", count(State::Acknowledged));
        report.count("transfers_refused", count(State::Refused));
        report.count("transfers_uncertain", count(State::Uncertain) + count(State::Pending));
        report.count("transfers_recorded", recorded.len() as u64);
        report.check(
            "acknowledged transfers are recorded, refused ones are not, nothing else is",
            transfers,
            format!("{} transfers recorded", recorded.len()),
        );
        Ok(report)
    }
}

fn account_key(account: u64) -> String {
    format!("ACCOUNT#{account:08}")
}

fn transfer_key(id: u64) -> String {
    format!("TRANSFER#{id:012}")
}
