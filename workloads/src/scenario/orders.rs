//! The order system: customers, orders and order lines in one table under composite keys, a
//! global index by order status, and stock that orders decrement conditionally.
//!
//! Layout (table `orders`, partition key `pk`, sort key `sk`, both S):
//!
//! ```text
//! CUST#<c>      PROFILE                  name
//! CUST#<c>      ORDER#<o>                status, order_id, line_count, units      (index by_status)
//! CUST#<c>      ORDER#<o>#LINE#<i>       product, qty
//! PRODUCT#<p>   STOCK                    stock
//! ```
//!
//! Placing an order is one TransactWriteItems: for each line `SET stock = stock - :q` under
//! `stock >= :q`, the header (under `attribute_not_exists(pk)`) and the lines. An order that would
//! take a product below zero is cancelled as a whole.
//!
//! Invariant, checked from the table's contents and the acknowledgements:
//! stock is never negative; for each product, initial stock = stock + units in order lines in the
//! table; every acknowledged order is there with exactly its lines, every refused one is absent,
//! nothing else is there; each header's line count matches its lines; statuses are the last
//! acknowledged ones; the by_status index holds exactly the headers with their statuses.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{CheckReport, KeyChooser, KeyDistribution, Mix};
use crate::api::{cancelled_by_condition, failure_outcome, DynamoApi};
use crate::driver::DriverError;
use crate::keygen::{seeded_rng, uniform_below};
use crate::op::{get_n, get_s, n, s, scan_all, Ack, Call, IndexDef, KeyAttribute, Op, TableDef};
use crate::recorder::Outcome;

/// Most lines per order: a transaction holds 2 actions per line plus the header, under
/// DynamoDB's 100 actions.
pub const LINES_PER_ORDER_MAX: u64 = 40;
/// The status index.
pub const STATUS_INDEX: &str = "by_status";
/// Order statuses in the order they advance.
pub const STATUSES: [&str; 3] = ["PLACED", "SHIPPED", "DELIVERED"];

/// Settings of the order system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// Table name.
    pub table: String,
    /// Customers loaded.
    pub customers: u64,
    /// Products loaded.
    pub products: u64,
    /// Stock of each product after loading; small values make refusals common.
    pub initial_stock: u64,
    /// Most lines per order (each with a different product).
    pub lines_max: u64,
    /// Most units per line.
    pub quantity_max: u64,
    /// Which customers order.
    pub customer_distribution: KeyDistribution,
    /// Which products are ordered.
    pub product_distribution: KeyDistribution,
    /// Strongly consistent reads of the base table.
    pub consistent_reads: bool,
    /// Weight of placing an order.
    pub place_order: f64,
    /// Weight of reading an order with its lines (Query by customer and order prefix).
    pub get_order: f64,
    /// Weight of advancing an order's status.
    pub update_status: f64,
    /// Weight of listing recent orders of a status through the index.
    pub orders_by_status: f64,
    /// Weight of reading a customer's profile.
    pub get_customer: f64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            table: "orders".into(),
            customers: 1_000,
            products: 100,
            initial_stock: 500,
            lines_max: 3,
            quantity_max: 5,
            customer_distribution: KeyDistribution::Uniform,
            product_distribution: KeyDistribution::Zipfian,
            consistent_reads: false,
            place_order: 0.35,
            get_order: 0.3,
            update_status: 0.15,
            orders_by_status: 0.1,
            get_customer: 0.1,
        }
    }
}

impl OrdersConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.customers == 0 || self.products == 0 {
            return Err("customers and products must be at least 1".into());
        }
        if !(1..=LINES_PER_ORDER_MAX.min(self.products)).contains(&self.lines_max) {
            return Err(format!(
                "lines_max {} must be from 1 to {} and at most the number of products",
                self.lines_max, LINES_PER_ORDER_MAX
            ));
        }
        if self.quantity_max == 0 {
            return Err("quantity_max must be at least 1".into());
        }
        self.customer_distribution.validate()?;
        self.product_distribution.validate()?;
        self.mix().map(|_| ())
    }

    fn mix(&self) -> Result<Mix<Kind>, String> {
        Mix::new(&[
            (Kind::PlaceOrder, self.place_order),
            (Kind::GetOrder, self.get_order),
            (Kind::UpdateStatus, self.update_status),
            (Kind::OrdersByStatus, self.orders_by_status),
            (Kind::GetCustomer, self.get_customer),
        ])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PlaceOrder,
    GetOrder,
    UpdateStatus,
    OrdersByStatus,
    GetCustomer,
}

/// What is known about an issued order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Acknowledged,
    Refused,
    /// Failed without a definite answer: may or may not be in the table.
    Uncertain,
}

#[derive(Debug, Clone)]
struct Order {
    customer: u64,
    lines: Vec<(u64, u64)>,
    state: State,
    /// Index into STATUSES of the last acknowledged status; `None` when an update's outcome is
    /// unknown.
    status: Option<usize>,
    update_in_flight: bool,
}

/// Issued operations the scenario must hear back about.
#[derive(Debug, Clone)]
enum Issued {
    Place(u64),
    Update { order: u64, to: usize },
}

/// The order system.
#[derive(Debug, Clone)]
pub struct Orders {
    name: String,
    config: OrdersConfig,
    mix: Mix<Kind>,
    customers: KeyChooser,
    products: KeyChooser,
    rng: ChaCha8Rng,
    load_next: u64,
    orders: BTreeMap<u64, Order>,
    /// Acknowledged order ids, for reads and updates.
    acknowledged: Vec<u64>,
    issued: BTreeMap<u64, Issued>,
    issued_next: u64,
    refused_updates: u64,
}

/// RNG stream of the order system.
const STREAM: u64 = 21;

impl Orders {
    /// The order system with `config`, seeded.
    pub fn new(name: &str, config: OrdersConfig, seed: u64) -> Result<Self, String> {
        config.validate()?;
        Ok(Orders {
            name: name.to_owned(),
            mix: config.mix()?,
            customers: KeyChooser::new(config.customer_distribution, config.customers),
            products: KeyChooser::new(config.product_distribution, config.products),
            rng: seeded_rng(seed, STREAM),
            load_next: 0,
            orders: BTreeMap::new(),
            acknowledged: Vec::new(),
            issued: BTreeMap::new(),
            issued_next: 0,
            refused_updates: 0,
            config,
        })
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The one table with its status index.
    pub fn tables(&self) -> Vec<TableDef> {
        vec![TableDef {
            name: self.config.table.clone(),
            partition_key: KeyAttribute::new("pk", "S"),
            sort_key: Some(KeyAttribute::new("sk", "S")),
            indexes: vec![IndexDef {
                name: STATUS_INDEX.into(),
                partition_key: KeyAttribute::new("status", "S"),
                sort_key: Some(KeyAttribute::new("order_id", "S")),
            }],
        }]
    }

    /// The DynamoDB operations it issues: loading puts, orders are transactions, reads are
    /// GetItem and Query (of the table and the index), status changes UpdateItem.
    pub fn operations(&self) -> Vec<&'static str> {
        vec!["PutItem", "TransactWriteItems", "GetItem", "Query", "UpdateItem"]
    }

    fn put(&self, item: Value) -> Call {
        Call { operation: "PutItem", body: json!({"TableName": self.config.table, "Item": item}) }
    }

    /// Customers, then products with their stock.
    pub fn next_load(&mut self) -> Option<Op> {
        let i = self.load_next;
        self.load_next += 1;
        if i < self.config.customers {
            let item = json!({"pk": s(customer_key(i)), "sk": s("PROFILE"), "name": s(format!("customer {i}"))});
            return Some(Op { name: "load_customer", calls: vec![self.put(item)], ack: Ack::None });
        }
        let p = i - self.config.customers;
        if p < self.config.products {
            let item = json!({"pk": s(product_key(p)), "sk": s("STOCK"), "stock": n(self.config.initial_stock as i64)});
            return Some(Op { name: "load_product", calls: vec![self.put(item)], ack: Ack::None });
        }
        None
    }

    fn issue(&mut self, issued: Issued) -> Ack {
        let id = self.issued_next;
        self.issued_next += 1;
        self.issued.insert(id, issued);
        Ack::Issued(id)
    }

    /// The next run-phase operation.
    pub fn next_op(&mut self) -> Op {
        let table = self.config.table.clone();
        match self.mix.next(&mut self.rng) {
            Kind::PlaceOrder => self.place_order(),
            Kind::GetOrder if !self.acknowledged.is_empty() => {
                let id = self.acknowledged[uniform_below(&mut self.rng, self.acknowledged.len() as u64) as usize];
                let customer = self.orders[&id].customer;
                let body = json!({
                    "TableName": table,
                    "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                    "ExpressionAttributeValues": {":pk": s(customer_key(customer)), ":prefix": s(order_key(id))},
                    "ConsistentRead": self.config.consistent_reads,
                });
                Op::single("get_order", "Query", body, Ack::None)
            }
            Kind::UpdateStatus => {
                // An acknowledged order whose status is known, not final, and not being updated.
                let candidate = (0..8).find_map(|_| {
                    let len = self.acknowledged.len() as u64;
                    if len == 0 {
                        return None;
                    }
                    let id = self.acknowledged[uniform_below(&mut self.rng, len) as usize];
                    let order = &self.orders[&id];
                    match order.status {
                        Some(status) if status + 1 < STATUSES.len() && !order.update_in_flight => Some((id, status)),
                        _ => None,
                    }
                });
                let Some((id, status)) = candidate else {
                    return self.orders_by_status();
                };
                let order = self.orders.get_mut(&id).expect("acknowledged orders are known");
                order.update_in_flight = true;
                let customer = order.customer;
                let body = json!({
                    "TableName": table,
                    "Key": {"pk": s(customer_key(customer)), "sk": s(order_key(id))},
                    "UpdateExpression": "SET #status = :to",
                    "ConditionExpression": "#status = :from",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":to": s(STATUSES[status + 1]), ":from": s(STATUSES[status])},
                });
                let ack = self.issue(Issued::Update { order: id, to: status + 1 });
                Op::single("update_status", "UpdateItem", body, ack)
            }
            Kind::OrdersByStatus => self.orders_by_status(),
            Kind::GetOrder | Kind::GetCustomer => {
                let customer = self.customers.next_key(&mut self.rng, self.config.customers);
                let body = json!({
                    "TableName": table,
                    "Key": {"pk": s(customer_key(customer)), "sk": s("PROFILE")},
                    "ConsistentRead": self.config.consistent_reads,
                });
                Op::single("get_customer", "GetItem", body, Ack::None)
            }
        }
    }

    fn orders_by_status(&mut self) -> Op {
        let status = STATUSES[uniform_below(&mut self.rng, STATUSES.len() as u64) as usize];
        let body = json!({
            "TableName": self.config.table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": s(status)},
            "ScanIndexForward": false,
            "Limit": 20,
        });
        Op::single("orders_by_status", "Query", body, Ack::None)
    }

    fn place_order(&mut self) -> Op {
        let id = self.orders.len() as u64;
        let customer = self.customers.next_key(&mut self.rng, self.config.customers);
        let line_count = 1 + uniform_below(&mut self.rng, self.config.lines_max);
        let mut products = BTreeSet::new();
        let mut lines = Vec::new();
        // Distinct products (one transaction may touch an item once); bounded draws, then the
        // next unused product in order.
        while (lines.len() as u64) < line_count {
            let mut product = self.products.next_key(&mut self.rng, self.config.products);
            for _ in 0..self.config.products {
                if !products.contains(&product) {
                    break;
                }
                product = (product + 1) % self.config.products;
            }
            products.insert(product);
            lines.push((product, 1 + uniform_below(&mut self.rng, self.config.quantity_max)));
        }
        let table = &self.config.table;
        let mut actions = Vec::new();
        for &(product, quantity) in &lines {
            actions.push(json!({"Update": {
                "TableName": table,
                "Key": {"pk": s(product_key(product)), "sk": s("STOCK")},
                "UpdateExpression": "SET stock = stock - :q",
                "ConditionExpression": "stock >= :q",
                "ExpressionAttributeValues": {":q": n(quantity as i64)},
            }}));
        }
        let units: u64 = lines.iter().map(|(_, quantity)| quantity).sum();
        actions.push(json!({"Put": {
            "TableName": table,
            "Item": {
                "pk": s(customer_key(customer)), "sk": s(order_key(id)), "status": s(STATUSES[0]),
                "order_id": s(format!("{id:012}")), "line_count": n(lines.len() as i64), "units": n(units as i64),
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        }}));
        for (i, &(product, quantity)) in lines.iter().enumerate() {
            actions.push(json!({"Put": {
                "TableName": table,
                "Item": {
                    "pk": s(customer_key(customer)), "sk": s(line_key(id, i)),
                    "product": s(product_key(product)), "qty": n(quantity as i64),
                },
            }}));
        }
        self.orders
            .insert(id, Order { customer, lines, state: State::Pending, status: Some(0), update_in_flight: false });
        let ack = self.issue(Issued::Place(id));
        Op::single("place_order", "TransactWriteItems", json!({"TransactItems": actions}), ack)
    }

    /// Keeps the acknowledgements.
    pub fn complete(&mut self, op: &Op, result: &Result<Value, DriverError>) -> Outcome {
        let issued = match op.ack {
            Ack::Issued(id) => self.issued.remove(&id),
            _ => None,
        };
        let outcome = match result {
            Ok(_) => Outcome::Ok,
            Err(error) if cancelled_by_condition(error) || error.is_conditional_check_failed() => Outcome::Ok,
            Err(error) => failure_outcome(error),
        };
        match issued {
            Some(Issued::Place(id)) => {
                let order = self.orders.get_mut(&id).expect("issued orders are known");
                order.state = match result {
                    Ok(_) => State::Acknowledged,
                    Err(error) if cancelled_by_condition(error) => State::Refused,
                    Err(_) => State::Uncertain,
                };
                if order.state == State::Acknowledged {
                    self.acknowledged.push(id);
                }
            }
            Some(Issued::Update { order, to }) => {
                let order = self.orders.get_mut(&order).expect("updated orders are known");
                order.update_in_flight = false;
                match result {
                    Ok(_) => order.status = Some(to),
                    Err(error) if error.is_conditional_check_failed() => self.refused_updates += 1,
                    Err(_) => order.status = None,
                }
            }
            None => {}
        }
        outcome
    }

    /// Checks the invariant (see the module documentation).
    pub async fn check<A: DynamoApi>(&self, api: &A) -> Result<CheckReport, DriverError> {
        let items = scan_all(api, &self.config.table, None).await?;
        let index_items = scan_all(api, &self.config.table, Some(STATUS_INDEX)).await?;
        let mut report = CheckReport::new(&self.name);

        let mut stock: BTreeMap<String, i64> = BTreeMap::new();
        let mut headers: BTreeMap<u64, (String, String, i64)> = BTreeMap::new();
        let mut lines: BTreeMap<u64, Vec<(String, String, i64)>> = BTreeMap::new();
        let mut unexpected = Vec::new();
        for item in &items {
            let (Some(pk), Some(sk)) = (get_s(item, "pk"), get_s(item, "sk")) else {
                unexpected.push(format!("item without string keys: {}", Value::Object(item.clone())));
                continue;
            };
            if pk.starts_with("PRODUCT#") && sk == "STOCK" {
                stock.insert(pk.to_owned(), get_n(item, "stock").unwrap_or(i64::MIN));
            } else if sk == "PROFILE" {
            } else if let Some((id, line)) = parse_order_key(sk) {
                match line {
                    None => {
                        let status = get_s(item, "status").unwrap_or("").to_owned();
                        headers.insert(id, (pk.to_owned(), status, get_n(item, "line_count").unwrap_or(-1)));
                    }
                    Some(_) => lines.entry(id).or_default().push((
                        pk.to_owned(),
                        get_s(item, "product").unwrap_or("").to_owned(),
                        get_n(item, "qty").unwrap_or(i64::MIN),
                    )),
                }
            } else {
                unexpected.push(format!("unexpected item {pk}/{sk}"));
            }
        }
        report.count("items", items.len() as u64);
        report.count("orders_in_table", headers.len() as u64);
        let count_state = |state| self.orders.values().filter(|order| order.state == state).count() as u64;
        report.count("orders_acknowledged", count_state(State::Acknowledged));
        report.count("orders_refused", count_state(State::Refused));
        report.count("orders_uncertain", count_state(State::Uncertain) + count_state(State::Pending));
        report.count("status_updates_refused", self.refused_updates);

        let negative: Vec<String> =
            stock.iter().filter(|(_, &units)| units < 0).map(|(p, units)| format!("{p} has stock {units}")).collect();
        report.check("stock is never negative", negative, format!("{} products", stock.len()));

        let mut ordered: BTreeMap<String, i64> = BTreeMap::new();
        for order_lines in lines.values() {
            for (_, product, quantity) in order_lines {
                *ordered.entry(product.clone()).or_default() += quantity;
            }
        }
        let mut conservation = Vec::new();
        if stock.len() as u64 != self.config.products {
            conservation.push(format!("{} products in the table, {} loaded", stock.len(), self.config.products));
        }
        for (product, units) in &stock {
            let sold = ordered.get(product).copied().unwrap_or(0);
            if units + sold != self.config.initial_stock as i64 {
                conservation
                    .push(format!("{product}: stock {units} + ordered {sold} != {}", self.config.initial_stock));
            }
        }
        for product in ordered.keys().filter(|p| !stock.contains_key(*p)) {
            conservation.push(format!("order lines for unknown product {product}"));
        }
        report.check(
            "initial stock = stock + units in order lines, for every product",
            conservation,
            format!("{} units ordered", ordered.values().sum::<i64>()),
        );

        let mut orders = unexpected;
        for (id, order) in &self.orders {
            let stored = headers.get(id);
            let present = stored.is_some() || lines.contains_key(id);
            match order.state {
                State::Acknowledged | State::Uncertain | State::Pending if present => {
                    let expected: BTreeSet<(String, String, i64)> = order
                        .lines
                        .iter()
                        .map(|&(p, q)| (customer_key(order.customer), product_key(p), q as i64))
                        .collect();
                    let found: BTreeSet<(String, String, i64)> =
                        lines.get(id).map(|l| l.iter().cloned().collect()).unwrap_or_default();
                    if found != expected || lines.get(id).map_or(0, Vec::len) != expected.len() {
                        orders.push(format!("order {id} has lines {found:?}, expected {expected:?}"));
                    }
                    match stored {
                        None => orders.push(format!("order {id} has lines but no header")),
                        Some((pk, _, count))
                            if *pk != customer_key(order.customer) || *count != expected.len() as i64 =>
                        {
                            orders.push(format!("order {id} header {pk} says {count} lines"))
                        }
                        Some(_) => {}
                    }
                }
                State::Acknowledged => orders.push(format!("acknowledged order {id} is missing")),
                State::Refused if present => orders.push(format!("refused order {id} is in the table")),
                _ => {}
            }
        }
        for id in headers.keys().chain(lines.keys()) {
            if !self.orders.contains_key(id) {
                orders.push(format!("order {id} was never placed"));
            }
        }
        report.check(
            "acknowledged orders are complete, refused ones absent, nothing else present",
            orders,
            format!("{} orders in the table", headers.len()),
        );

        let statuses: Vec<String> = self
            .orders
            .iter()
            .filter(|(_, order)| order.state == State::Acknowledged)
            .filter_map(|(id, order)| {
                let expected = STATUSES[order.status?];
                let (_, stored, _) = headers.get(id)?;
                (stored != expected).then(|| format!("order {id} has status {stored}, last acknowledged {expected}"))
            })
            .collect();
        report.check("each order's status is the last acknowledged one", statuses, String::new());

        let from_table: BTreeSet<(String, String, String)> = items
            .iter()
            .filter_map(|item| {
                let sk = get_s(item, "sk")?;
                parse_order_key(sk).filter(|(_, line)| line.is_none())?;
                Some((get_s(item, "pk")?.to_owned(), sk.to_owned(), get_s(item, "status")?.to_owned()))
            })
            .collect();
        let from_index: BTreeSet<(String, String, String)> = index_items
            .iter()
            .filter_map(|item| {
                Some((get_s(item, "pk")?.to_owned(), get_s(item, "sk")?.to_owned(), get_s(item, "status")?.to_owned()))
            })
            .collect();
        let mut index = Vec::new();
        if index_items.len() != from_index.len() {
            index.push(format!("{} index entries for {} distinct orders", index_items.len(), from_index.len()));
        }
        index.extend(from_table.difference(&from_index).map(|o| format!("{o:?} missing from the index")));
        index.extend(from_index.difference(&from_table).map(|o| format!("{o:?} in the index only")));
        report.check(
            "the status index holds exactly the order headers with their statuses",
            index,
            format!("{} index entries", index_items.len()),
        );
        Ok(report)
    }
}

fn customer_key(customer: u64) -> String {
    format!("CUST#{customer:08}")
}

fn product_key(product: u64) -> String {
    format!("PRODUCT#{product:06}")
}

fn order_key(id: u64) -> String {
    format!("ORDER#{id:012}")
}

fn line_key(id: u64, line: usize) -> String {
    format!("ORDER#{id:012}#LINE#{line:03}")
}

/// `ORDER#<id>` → (id, None); `ORDER#<id>#LINE#<i>` → (id, Some(i)).
fn parse_order_key(sk: &str) -> Option<(u64, Option<u64>)> {
    let rest = sk.strip_prefix("ORDER#")?;
    match rest.split_once("#LINE#") {
        Some((id, line)) => Some((id.parse().ok()?, Some(line.parse().ok()?))),
        None => Some((rest.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(parse_order_key(&order_key(42)), Some((42, None)));
        assert_eq!(parse_order_key(&line_key(42, 2)), Some((42, Some(2))));
        assert_eq!(parse_order_key("PROFILE"), None);
    }

    #[test]
    fn orders_touch_distinct_products_within_the_limits() {
        let config = OrdersConfig {
            products: 3,
            lines_max: 3,
            get_order: 0.0,
            update_status: 0.0,
            orders_by_status: 0.0,
            get_customer: 0.0,
            ..OrdersConfig::default()
        };
        let mut orders = Orders::new("orders", config, 5).unwrap();
        while orders.next_load().is_some() {}
        for _ in 0..100 {
            let op = orders.next_op();
            assert_eq!(op.name, "place_order");
            let actions = op.calls[0].body["TransactItems"].as_array().unwrap();
            let updates: BTreeSet<String> =
                actions.iter().filter_map(|a| a["Update"]["Key"]["pk"]["S"].as_str().map(str::to_owned)).collect();
            assert_eq!(actions.len(), 2 * updates.len() + 1, "distinct products, one header");
        }
        assert!(Orders::new("o", OrdersConfig { lines_max: 0, ..OrdersConfig::default() }, 1).is_err());
    }
}
