//! Which buckets a request draws on — DynamoDB's limits as data — and the set of buckets one
//! node keeps.
//!
//! A request is split into parts (one per item of a batch or transaction, one for anything
//! else). Each part claims a few buckets:
//!
//! - the table's own limit: its provisioned read or write capacity (local indexes share it),
//!   or, for an on-demand table, DynamoDB's per-table maximum;
//! - the hard limit of the partition its partition key falls in (3,000 read and 1,000 write
//!   units per second), when the request addresses one partition key;
//! - for a read of a global index, the index's capacity instead of the table's; for a write,
//!   every global index of the table, since the write may have to update each of them.
//!
//! A part is admitted when every bucket it claims admits its lower-bound units (what it costs
//! at least, known before it runs), which are then taken; once the request has run, what it
//! really consumed is charged against the same buckets ([`Buckets::settle`]). A write to a
//! global index costs nothing knowable beforehand, so the index's claim is for zero units: it
//! only refuses the write while the index is out of capacity.

use std::collections::BTreeMap;
use std::time::Duration;

use super::share::Shares;
use super::{
    Access, TokenBucket, Units, Usage, BURST_CREDIT_S, HARD_LIMIT_BURST_S, ON_DEMAND_TABLE_READ_UNITS_PER_S,
    ON_DEMAND_TABLE_WRITE_UNITS_PER_S, PARTITION_READ_UNITS_PER_S, PARTITION_WRITE_UNITS_PER_S,
};
use crate::catalog::{BillingMode, IndexKind, OnDemandThroughput, TableMeta, Throughput};

/// One partition of a table: range `index` of `count` equal hash ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// Position of the partition in hash order, from 0.
    pub index: u32,
    /// Partitions of the table.
    pub count: u32,
}

/// The limit a bucket enforces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    /// A provisioned table's capacity units (its local indexes share them).
    Provisioned,
    /// An on-demand table's maximum throughput.
    OnDemand,
    /// A global secondary index's capacity: provisioned, or the on-demand maximum.
    Index(String),
    /// The hard limit of one partition.
    Partition,
}

/// Which bucket: of which table, partition, limit and access.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketKey {
    /// The table's id (never reused, so a new table never inherits a deleted one's buckets).
    pub table_id: u64,
    /// The partition the bucket is for; `None` for a bucket of the whole table.
    pub slot: Option<Slot>,
    /// The limit it enforces.
    pub limit: Limit,
    /// Read or write capacity.
    pub access: Access,
}

/// Where a node enforces a table's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The node holds the whole table (a single node): table-wide limits apply whole, and a
    /// part addressed to one partition key also claims that key's partition, when `slot`
    /// names it.
    Whole {
        /// The partition of the part's partition key, if it has one.
        slot: Option<Slot>,
    },
    /// The node serves one partition of a clustered table: each table-wide limit is divided
    /// among the table's partitions, and this partition's share is enforced here (adaptive,
    /// see [`super::share`], or even).
    Share {
        /// The partition served.
        slot: Slot,
    },
}

/// What a request part reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// The table itself, or one of its local indexes.
    Table,
    /// A global secondary index, by name.
    GlobalIndex(&'a str),
}

/// One bucket a part draws on: the units to admit and take now, and the bucket's settings as
/// the catalog has them at this moment (so a changed throughput applies from the next claim).
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// Which bucket.
    pub key: BucketKey,
    /// Its refill rate, units per second.
    pub rate_per_s: f64,
    /// Seconds of unused capacity it keeps.
    pub burst_s: f64,
    /// Units the part needs at least; taken on admission.
    pub units: f64,
}

/// One part of a request: the table it consumes on, its lower-bound units and its claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Table name, as consumption is reported.
    pub table: String,
    /// Read or write.
    pub access: Access,
    /// Units the part costs at least (on the table, or on the index it reads).
    pub units: f64,
    /// The buckets it draws on.
    pub claims: Vec<Claim>,
}

/// The account's per-table quotas: the most an on-demand table (or one of its global indexes)
/// serves, and what a provisioned table may be given. DynamoDB's defaults are 40,000 read and
/// 40,000 write units per second, raised on request (Service Quotas); a node takes them as
/// settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    /// Read units per second per table.
    pub table_read_units_per_s: f64,
    /// Write units per second per table.
    pub table_write_units_per_s: f64,
}

impl Default for Quota {
    fn default() -> Quota {
        Quota {
            table_read_units_per_s: ON_DEMAND_TABLE_READ_UNITS_PER_S,
            table_write_units_per_s: ON_DEMAND_TABLE_WRITE_UNITS_PER_S,
        }
    }
}

/// DynamoDB's default account-wide quota on provisioned capacity: the most read (and, apart,
/// write) capacity units all provisioned tables and their global indexes may hold together.
pub const ACCOUNT_UNITS_MAX_DEFAULT: u64 = 80_000;

impl Quota {
    /// The account-wide quota for `access`: DynamoDB's default, or the per-table quota where
    /// that is higher (an account may always provision one table its whole per-table quota).
    pub fn account_units_max(&self, access: Access) -> u64 {
        ACCOUNT_UNITS_MAX_DEFAULT.max(self.of(access) as u64)
    }

    /// The quota for `access`.
    pub fn of(&self, access: Access) -> f64 {
        match access {
            Access::Read => self.table_read_units_per_s,
            Access::Write => self.table_write_units_per_s,
        }
    }
}

/// How large a node makes a bucket: the account's quotas and, in a cluster, the fractions of
/// each table-wide limit its partition buckets enforce (even shares when `shares` is `None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sizing<'a> {
    /// The per-table quotas.
    pub quota: Quota,
    /// Adaptive shares of table-wide limits (see [`super::share`]).
    pub shares: Option<&'a Shares>,
}

impl Sizing<'_> {
    /// The fraction of its table-wide limit the bucket `key` enforces: all of it for a bucket
    /// of the whole table and for a partition's own limit; a partition's adaptive share of the
    /// table's limit; an even share of a global index's limit (index partitions are not
    /// modelled, so there is no demand to divide by).
    pub fn fraction(&self, key: &BucketKey) -> f64 {
        let Some(slot) = key.slot else { return 1.0 };
        match (&key.limit, self.shares) {
            (Limit::Partition, _) => 1.0,
            (Limit::Provisioned | Limit::OnDemand, Some(shares)) => shares.fraction(key.table_id, key.access, slot),
            _ => 1.0 / f64::from(slot.count.max(1)),
        }
    }
}

/// The whole table-wide limit of `meta` for `access` (its provisioned capacity, or the quota
/// for an on-demand table), in units per second.
pub fn table_rate(meta: &TableMeta, access: Access, quota: &Quota) -> f64 {
    match meta.billing_mode {
        BillingMode::Provisioned => match access {
            Access::Read => meta.throughput.read_units as f64,
            Access::Write => meta.throughput.write_units as f64,
        },
        BillingMode::PayPerRequest => on_demand_rate(meta, access, quota),
    }
}

/// An on-demand table's limit for `access`: the account's per-table quota, or the table's own
/// maximum (`OnDemandThroughput`) when that is lower.
pub fn on_demand_rate(meta: &TableMeta, access: Access, quota: &Quota) -> f64 {
    on_demand_limit(meta.on_demand, access, quota)
}

/// The limit for `access` of an on-demand table or global index whose own maximum is `own`:
/// the account's per-table quota, or that maximum when it is lower.
fn on_demand_limit(own: OnDemandThroughput, access: Access, quota: &Quota) -> f64 {
    let own = match access {
        Access::Read => own.max_read_units,
        Access::Write => own.max_write_units,
    };
    own.map_or(quota.of(access), |units| quota.of(access).min(units as f64))
}

/// The refill rate and burst window of the bucket `key` names, as `meta` and `sizing` set them
/// now; `None` when the table no longer has that limit (an index removed, the billing mode
/// changed). A table-wide limit kept by one partition (`key.slot` set, in a cluster) is that
/// partition's share ([`Sizing::fraction`]).
pub fn settings(meta: &TableMeta, key: &BucketKey, sizing: &Sizing<'_>) -> Option<(f64, f64)> {
    let provisioned = meta.billing_mode == BillingMode::Provisioned;
    let per_second = |throughput: Throughput| match key.access {
        Access::Read => throughput.read_units as f64,
        Access::Write => throughput.write_units as f64,
    };
    let (rate, burst_s) = match &key.limit {
        Limit::Provisioned if provisioned => (per_second(meta.throughput), BURST_CREDIT_S),
        Limit::OnDemand if !provisioned => (on_demand_rate(meta, key.access, &sizing.quota), HARD_LIMIT_BURST_S),
        Limit::Index(name) => {
            let index = meta.index(name).filter(|i| i.kind == IndexKind::Global)?;
            if provisioned {
                (per_second(index.throughput.unwrap_or(meta.throughput)), BURST_CREDIT_S)
            } else {
                (on_demand_limit(index.on_demand, key.access, &sizing.quota), HARD_LIMIT_BURST_S)
            }
        }
        Limit::Partition => {
            let rate = match key.access {
                Access::Read => PARTITION_READ_UNITS_PER_S,
                Access::Write => PARTITION_WRITE_UNITS_PER_S,
            };
            (rate, HARD_LIMIT_BURST_S)
        }
        Limit::Provisioned | Limit::OnDemand => return None,
    };
    Some((rate * sizing.fraction(key), burst_s))
}

/// The claims of a part of `units` on `meta`, placed as `placement`, reading or writing
/// `target`.
pub fn claims(
    meta: &TableMeta,
    placement: Placement,
    access: Access,
    target: Target<'_>,
    units: f64,
    sizing: &Sizing<'_>,
) -> Vec<Claim> {
    let (slot, table_slot) = match placement {
        Placement::Whole { slot } => (slot, None),
        Placement::Share { slot } => (Some(slot), Some(slot)),
    };
    let claim = |slot: Option<Slot>, limit: Limit, units: f64| {
        let key = BucketKey { table_id: meta.id, slot, limit, access };
        let (rate_per_s, burst_s) = settings(meta, &key, sizing)?;
        Some(Claim { key, rate_per_s, burst_s, units })
    };
    if let Target::GlobalIndex(name) = target {
        // Global index partitions are not modelled: a read of an index draws on the index alone.
        return claim(table_slot, Limit::Index(name.to_string()), units).into_iter().collect();
    }
    let table_limit = if meta.billing_mode == BillingMode::Provisioned { Limit::Provisioned } else { Limit::OnDemand };
    let mut out: Vec<Claim> = claim(table_slot, table_limit, units).into_iter().collect();
    if let Some(slot) = slot {
        out.extend(claim(Some(slot), Limit::Partition, units));
    }
    if access == Access::Write {
        for index in meta.indexes.iter().filter(|i| i.kind == IndexKind::Global) {
            out.extend(claim(table_slot, Limit::Index(index.name.clone()), 0.0));
        }
    }
    out
}

/// A refused part: which one, and the first bucket that refused it.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// Position of the part in the request's parts.
    pub part: usize,
    /// The bucket out of capacity.
    pub key: BucketKey,
}

/// What an admission took: the admitted parts and the units taken from each bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grant {
    /// Positions of the admitted parts, ascending.
    pub admitted: Vec<usize>,
    /// Units taken per bucket.
    pub taken: BTreeMap<BucketKey, f64>,
}

/// The buckets of one node, created on first use and kept while their table exists (the caller
/// drops the rest with [`Buckets::retain`] when the catalog changes).
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    buckets: BTreeMap<BucketKey, TokenBucket>,
    /// Units asked of each partition's share of a table-wide limit since the last
    /// [`Buckets::take_demand`]: admitted and refused alike, settled to what ran.
    demand: BTreeMap<BucketKey, f64>,
}

/// Whether `key` is a partition's share of a table-wide limit, whose demand is reported.
fn is_shared(key: &BucketKey) -> bool {
    key.slot.is_some() && matches!(key.limit, Limit::Provisioned | Limit::OnDemand)
}

impl Buckets {
    /// No buckets yet.
    pub fn new() -> Buckets {
        Buckets::default()
    }

    /// Number of buckets kept.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The bucket a claim names, created full, with the claim's rate applied from `now`.
    fn bucket(&mut self, now: Duration, claim: &Claim) -> &mut TokenBucket {
        let bucket = self
            .buckets
            .entry(claim.key.clone())
            .or_insert_with(|| TokenBucket::full(claim.rate_per_s, claim.burst_s, now));
        if bucket.rate_per_s() != claim.rate_per_s {
            bucket.set_rate(now, claim.rate_per_s);
        }
        bucket
    }

    /// The balance of a bucket at `now`, if it exists.
    pub fn balance(&mut self, now: Duration, key: &BucketKey) -> Option<f64> {
        self.buckets.get_mut(key).map(|b| b.balance(now))
    }

    /// Admits one part if every bucket it claims admits it, taking its units from each.
    fn admit_part(
        &mut self,
        now: Duration,
        part: &Part,
        taken: &mut BTreeMap<BucketKey, f64>,
    ) -> Result<(), BucketKey> {
        for claim in part.claims.iter().filter(|c| is_shared(&c.key)) {
            *self.demand.entry(claim.key.clone()).or_default() += claim.units;
        }
        for claim in &part.claims {
            if !self.bucket(now, claim).admits(now, claim.units) {
                return Err(claim.key.clone());
            }
        }
        for claim in &part.claims {
            self.bucket(now, claim).charge(now, claim.units);
            *taken.entry(claim.key.clone()).or_default() += claim.units;
        }
        Ok(())
    }

    /// Admits each part on its own, in order (a batch): returns what was taken for the
    /// admitted ones and why the others were refused.
    pub fn admit_each(&mut self, now: Duration, parts: &[Part]) -> (Grant, Vec<Refusal>) {
        let mut grant = Grant::default();
        let mut refusals = Vec::new();
        for (position, part) in parts.iter().enumerate() {
            match self.admit_part(now, part, &mut grant.taken) {
                Ok(()) => grant.admitted.push(position),
                Err(key) => refusals.push(Refusal { part: position, key }),
            }
        }
        (grant, refusals)
    }

    /// Admits every part or none (a single request, a transaction): on a refusal, what the
    /// earlier parts took is given back.
    pub fn admit_all(&mut self, now: Duration, parts: &[Part]) -> Result<Grant, Refusal> {
        let mut grant = Grant::default();
        for (position, part) in parts.iter().enumerate() {
            if let Err(key) = self.admit_part(now, part, &mut grant.taken) {
                self.refund(now, &grant);
                return Err(Refusal { part: position, key });
            }
            grant.admitted.push(position);
        }
        Ok(grant)
    }

    /// Gives back everything a grant took (the request did not run, or consumed nothing).
    pub fn refund(&mut self, now: Duration, grant: &Grant) {
        for (key, units) in &grant.taken {
            if let Some(demand) = self.demand.get_mut(key) {
                *demand = (*demand - units).max(0.0);
            }
            if let Some(bucket) = self.buckets.get_mut(key) {
                bucket.charge(now, -units);
            }
        }
    }

    /// Charges what the admitted parts really consumed, as `usage` reports it, against what
    /// their admission took: the difference may put a bucket into debt, or give units back.
    pub fn settle(&mut self, now: Duration, grant: &Grant, parts: &[Part], usage: &Usage) {
        let admitted: Vec<&Part> = grant.admitted.iter().filter_map(|i| parts.get(*i)).collect();
        let consumed = consumed_per_bucket(&admitted, usage);
        for (key, taken) in &grant.taken {
            let actual = consumed.get(key).copied().unwrap_or(0.0);
            if let Some(demand) = self.demand.get_mut(key) {
                *demand = (*demand + actual - taken).max(0.0);
            }
            if let Some(bucket) = self.buckets.get_mut(key) {
                bucket.charge(now, actual - taken);
            }
        }
    }

    /// The units asked of each partition's share of a table-wide limit since the last call,
    /// and a fresh start for the next interval.
    pub fn take_demand(&mut self) -> BTreeMap<BucketKey, f64> {
        std::mem::take(&mut self.demand)
    }

    /// Keeps only the buckets `keep` accepts (those of tables and indexes that still exist,
    /// partitions as the table is now divided).
    pub fn retain(&mut self, mut keep: impl FnMut(&BucketKey) -> bool) {
        self.buckets.retain(|key, _| keep(key));
    }

    /// Brings every bucket to the settings `settings` gives its key now (see [`settings`]):
    /// a new rate applies from `now`, keeping the credit within the new capacity; a bucket
    /// whose key has no settings any more, or a different burst window (the billing mode
    /// changed), is dropped.
    pub fn follow(&mut self, now: Duration, mut settings: impl FnMut(&BucketKey) -> Option<(f64, f64)>) {
        self.buckets.retain(|key, bucket| match settings(key) {
            Some((rate_per_s, burst_s)) if burst_s == bucket.burst_s() => {
                if rate_per_s != bucket.rate_per_s() {
                    bucket.set_rate(now, rate_per_s);
                }
                true
            }
            _ => false,
        });
    }
}

/// What each bucket the parts claim really consumed: a table-wide bucket and an index's bucket
/// the whole of the table's or index's usage; a partition's bucket the table's usage shared
/// among the parts in proportion to their lower bounds (usage is reported per table, not per
/// item), so one partition's bucket gets all of it when every part is in that partition.
pub fn consumed_per_bucket(parts: &[&Part], usage: &Usage) -> BTreeMap<BucketKey, f64> {
    let mut weight: BTreeMap<(String, Access), (f64, usize)> = BTreeMap::new();
    for part in parts {
        let entry = weight.entry((part.table.clone(), part.access)).or_default();
        entry.0 += part.units.max(0.0);
        entry.1 += 1;
    }
    let none = Units::default();
    let mut out: BTreeMap<BucketKey, f64> = BTreeMap::new();
    for part in parts {
        let units = usage.of(&part.table, part.access).unwrap_or(&none);
        let (total_weight, count) = weight.get(&(part.table.clone(), part.access)).copied().unwrap_or((0.0, 1));
        let share = if total_weight > 0.0 { part.units.max(0.0) / total_weight } else { 1.0 / count.max(1) as f64 };
        for claim in &part.claims {
            match &claim.key.limit {
                Limit::Provisioned | Limit::OnDemand => {
                    out.insert(claim.key.clone(), units.table);
                }
                Limit::Index(name) => {
                    out.insert(claim.key.clone(), units.indexes.get(name).copied().unwrap_or(0.0));
                }
                Limit::Partition => *out.entry(claim.key.clone()).or_default() += units.table * share,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{IndexMeta, KeyAttribute, KeySchema, Projection};
    use crate::model::ScalarType;

    fn schema(pk: &str) -> KeySchema {
        KeySchema { partition: KeyAttribute { name: pk.into(), kind: ScalarType::S }, sort: None }
    }

    fn table(billing_mode: BillingMode, read: u64, write: u64, index: Option<(u64, u64)>) -> TableMeta {
        let indexes = index
            .map(|(r, w)| IndexMeta {
                name: "gsi".into(),
                id: 1,
                kind: IndexKind::Global,
                key_schema: schema("g"),
                projection: Projection::All,
                throughput: (billing_mode == BillingMode::Provisioned)
                    .then_some(Throughput { read_units: r, write_units: w }),
                on_demand: Default::default(),
                throughput_changes: Default::default(),
            })
            .into_iter()
            .collect();
        TableMeta {
            name: "t".into(),
            id: 7,
            key_schema: schema("pk"),
            attribute_definitions: vec![],
            billing_mode,
            throughput: Throughput { read_units: read, write_units: write },
            indexes,
            created_at_ms: 0,
            next_index_id: 2,
            deletion_protection: false,
            tags: Default::default(),
            on_demand: Default::default(),
            throughput_changes: Default::default(),
            on_demand_since_ms: None,
        }
    }

    fn part(meta: &TableMeta, placement: Placement, access: Access, target: Target<'_>, units: f64) -> Part {
        Part {
            table: meta.name.clone(),
            access,
            units,
            claims: claims(meta, placement, access, target, units, &Sizing::default()),
        }
    }

    fn s(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    const SLOT: Slot = Slot { index: 1, count: 4 };

    #[test]
    fn a_provisioned_table_claims_its_capacity_its_partition_and_its_indexes_on_write() {
        let meta = table(BillingMode::Provisioned, 10, 5, Some((3, 2)));
        let write =
            claims(&meta, Placement::Whole { slot: Some(SLOT) }, Access::Write, Target::Table, 2.0, &Sizing::default());
        let summary: Vec<(Limit, Option<Slot>, f64, f64, f64)> =
            write.iter().map(|c| (c.key.limit.clone(), c.key.slot, c.rate_per_s, c.burst_s, c.units)).collect();
        assert_eq!(
            summary,
            vec![
                (Limit::Provisioned, None, 5.0, BURST_CREDIT_S, 2.0),
                (Limit::Partition, Some(SLOT), PARTITION_WRITE_UNITS_PER_S, HARD_LIMIT_BURST_S, 2.0),
                (Limit::Index("gsi".into()), None, 2.0, BURST_CREDIT_S, 0.0),
            ]
        );
        // Reads leave the index alone; a read of the index draws on the index only.
        let read = claims(&meta, Placement::Whole { slot: None }, Access::Read, Target::Table, 1.0, &Sizing::default());
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].key.limit.clone(), read[0].rate_per_s), (Limit::Provisioned, 10.0));
        let index_read = claims(
            &meta,
            Placement::Whole { slot: None },
            Access::Read,
            Target::GlobalIndex("gsi"),
            0.5,
            &Sizing::default(),
        );
        assert_eq!(index_read.len(), 1);
        assert_eq!((index_read[0].key.limit.clone(), index_read[0].rate_per_s), (Limit::Index("gsi".into()), 3.0));
    }

    #[test]
    fn on_demand_tables_claim_the_account_maximum_and_the_partition_limit() {
        let meta = table(BillingMode::PayPerRequest, 0, 0, Some((0, 0)));
        let read =
            claims(&meta, Placement::Whole { slot: Some(SLOT) }, Access::Read, Target::Table, 1.0, &Sizing::default());
        let rates: Vec<(Limit, f64, f64)> =
            read.iter().map(|c| (c.key.limit.clone(), c.rate_per_s, c.burst_s)).collect();
        assert_eq!(
            rates,
            vec![
                (Limit::OnDemand, ON_DEMAND_TABLE_READ_UNITS_PER_S, HARD_LIMIT_BURST_S),
                (Limit::Partition, PARTITION_READ_UNITS_PER_S, HARD_LIMIT_BURST_S),
            ]
        );
        let write =
            claims(&meta, Placement::Whole { slot: None }, Access::Write, Target::Table, 1.0, &Sizing::default());
        assert_eq!(write[1].key.limit, Limit::Index("gsi".into()));
        assert_eq!(write[1].rate_per_s, ON_DEMAND_TABLE_WRITE_UNITS_PER_S);
    }

    #[test]
    fn an_on_demand_tables_own_maximum_lowers_its_limit_but_never_raises_it() {
        use crate::catalog::OnDemandThroughput;
        let mut meta = table(BillingMode::PayPerRequest, 0, 0, Some((0, 0)));
        meta.on_demand = OnDemandThroughput { max_read_units: None, max_write_units: Some(150) };
        let quota = Quota::default();
        assert_eq!(table_rate(&meta, Access::Write, &quota), 150.0);
        assert_eq!(table_rate(&meta, Access::Read, &quota), ON_DEMAND_TABLE_READ_UNITS_PER_S);
        let write =
            claims(&meta, Placement::Whole { slot: None }, Access::Write, Target::Table, 1.0, &Sizing::default());
        assert_eq!((write[0].key.limit.clone(), write[0].rate_per_s), (Limit::OnDemand, 150.0));
        // The index keeps the account's maximum: the table's own is the table's.
        assert_eq!(write[1].rate_per_s, ON_DEMAND_TABLE_WRITE_UNITS_PER_S);
        meta.on_demand.max_write_units = Some(1_000_000);
        assert_eq!(table_rate(&meta, Access::Write, &quota), ON_DEMAND_TABLE_WRITE_UNITS_PER_S);
    }

    #[test]
    fn a_partition_leader_enforces_its_share_of_the_table_but_the_whole_partition_limit() {
        let meta = table(BillingMode::Provisioned, 400, 100, Some((40, 20)));
        let write =
            claims(&meta, Placement::Share { slot: SLOT }, Access::Write, Target::Table, 1.0, &Sizing::default());
        let rates: Vec<(Limit, Option<Slot>, f64)> =
            write.iter().map(|c| (c.key.limit.clone(), c.key.slot, c.rate_per_s)).collect();
        assert_eq!(
            rates,
            vec![
                (Limit::Provisioned, Some(SLOT), 25.0),
                (Limit::Partition, Some(SLOT), PARTITION_WRITE_UNITS_PER_S),
                (Limit::Index("gsi".into()), Some(SLOT), 5.0),
            ]
        );
    }

    #[test]
    fn a_batch_is_admitted_item_by_item_and_a_transaction_as_a_whole() {
        let meta = table(BillingMode::Provisioned, 1, 1, None);
        let whole = Placement::Whole { slot: None };
        // A 1 WCU table holds 300 units of burst credit.
        let parts: Vec<Part> = (0..4).map(|_| part(&meta, whole, Access::Write, Target::Table, 100.0)).collect();
        let mut buckets = Buckets::new();
        let (grant, refused) = buckets.admit_each(s(0.0), &parts);
        assert_eq!(grant.admitted, vec![0, 1, 2]);
        assert_eq!(refused.iter().map(|r| r.part).collect::<Vec<_>>(), vec![3]);
        assert_eq!(refused[0].key.limit, Limit::Provisioned);
        buckets.refund(s(0.0), &grant);
        // All or nothing: the refused fourth part gives back what the first three took.
        let mut buckets = Buckets::new();
        let refusal = buckets.admit_all(s(0.0), &parts).expect_err("400 units do not fit in 300");
        assert_eq!(refusal.part, 3);
        let key = parts[0].claims[0].key.clone();
        assert_eq!(buckets.balance(s(0.0), &key), Some(300.0));
        assert!(buckets.admit_all(s(0.0), &parts[..3]).is_ok());
        assert_eq!(buckets.balance(s(0.0), &key), Some(0.0));
    }

    #[test]
    fn settling_charges_the_real_consumption_against_the_estimate() {
        let meta = table(BillingMode::Provisioned, 1, 1, Some((1, 1)));
        let whole = Placement::Whole { slot: Some(SLOT) };
        let parts = vec![part(&meta, whole, Access::Read, Target::Table, 0.5)];
        let mut buckets = Buckets::new();
        let grant = buckets.admit_all(s(0.0), &parts).unwrap();
        let mut usage = Usage::default();
        usage.record("t", Access::Read, &Units { table: 40.5, indexes: BTreeMap::new() });
        buckets.settle(s(0.0), &grant, &parts, &usage);
        let table_key = parts[0].claims[0].key.clone();
        let partition_key = parts[0].claims[1].key.clone();
        assert_eq!(buckets.balance(s(0.0), &table_key), Some(300.0 - 40.5));
        assert_eq!(buckets.balance(s(0.0), &partition_key), Some(PARTITION_READ_UNITS_PER_S - 40.5));
        // A write with an index: the index is charged what the index consumed.
        let parts = vec![part(&meta, whole, Access::Write, Target::Table, 1.0)];
        let grant = buckets.admit_all(s(0.0), &parts).unwrap();
        let mut usage = Usage::default();
        usage.record("t", Access::Write, &Units { table: 3.0, indexes: BTreeMap::from([("gsi".to_string(), 2.0)]) });
        buckets.settle(s(0.0), &grant, &parts, &usage);
        let index_key = parts[0].claims[2].key.clone();
        assert_eq!(buckets.balance(s(0.0), &index_key), Some(298.0));
        assert_eq!(buckets.balance(s(0.0), &parts[0].claims[0].key), Some(297.0));
    }

    #[test]
    fn a_partition_bucket_gets_its_parts_share_of_the_table_usage() {
        let meta = table(BillingMode::PayPerRequest, 0, 0, None);
        let at = |index| Placement::Whole { slot: Some(Slot { index, count: 2 }) };
        let parts = [
            part(&meta, at(0), Access::Write, Target::Table, 1.0),
            part(&meta, at(1), Access::Write, Target::Table, 3.0),
        ];
        let mut usage = Usage::default();
        usage.record("t", Access::Write, &Units { table: 8.0, indexes: BTreeMap::new() });
        let consumed = consumed_per_bucket(&parts.iter().collect::<Vec<_>>(), &usage);
        assert_eq!(consumed[&parts[0].claims[0].key], 8.0);
        assert_eq!(consumed[&parts[0].claims[1].key], 2.0);
        assert_eq!(consumed[&parts[1].claims[1].key], 6.0);
    }

    #[test]
    fn a_changed_throughput_takes_effect_at_the_next_claim() {
        let low = table(BillingMode::Provisioned, 1, 1, None);
        let mut high = low.clone();
        high.throughput = Throughput { read_units: 1, write_units: 100 };
        let whole = Placement::Whole { slot: None };
        let mut buckets = Buckets::new();
        let spend = part(&low, whole, Access::Write, Target::Table, 300.0);
        assert!(buckets.admit_all(s(0.0), std::slice::from_ref(&spend)).is_ok());
        let one = part(&low, whole, Access::Write, Target::Table, 1.0);
        assert!(buckets.admit_all(s(0.5), std::slice::from_ref(&one)).is_err());
        let one = part(&high, whole, Access::Write, Target::Table, 1.0);
        assert!(buckets.admit_all(s(0.5), std::slice::from_ref(&one)).is_err(), "the old rate until now");
        assert!(buckets.admit_all(s(0.52), std::slice::from_ref(&one)).is_ok(), "the new rate from now on");
    }

    #[test]
    fn following_the_catalog_changes_rates_at_once_and_drops_what_is_gone() {
        let low = table(BillingMode::Provisioned, 1, 1, Some((1, 1)));
        let whole = Placement::Whole { slot: Some(SLOT) };
        let mut buckets = Buckets::new();
        let parts = [part(&low, whole, Access::Write, Target::Table, 300.0)];
        buckets.admit_all(s(0.0), &parts).unwrap();
        let table_key = parts[0].claims[0].key.clone();
        // Raised to 100 WCU at 10 s: ten units came at the old rate, then a hundred a second.
        let mut high = low.clone();
        high.throughput.write_units = 100;
        buckets.follow(s(10.0), |key| settings(&high, key, &Sizing::default()));
        assert_eq!(buckets.balance(s(10.0), &table_key), Some(10.0));
        assert_eq!(buckets.balance(s(11.0), &table_key), Some(110.0));
        // On demand now: the provisioned buckets and the index's 300-second window go.
        let mut on_demand = high.clone();
        on_demand.billing_mode = BillingMode::PayPerRequest;
        buckets.follow(s(11.0), |key| settings(&on_demand, key, &Sizing::default()));
        assert_eq!(buckets.len(), 1, "only the partition's bucket stays");
        assert_eq!(buckets.balance(s(11.0), &parts[0].claims[1].key).map(|b| b > 0.0), Some(true));
    }

    #[test]
    fn retain_drops_the_buckets_of_tables_that_are_gone() {
        let meta = table(BillingMode::Provisioned, 5, 5, Some((1, 1)));
        let mut buckets = Buckets::new();
        let parts = [part(&meta, Placement::Whole { slot: Some(SLOT) }, Access::Write, Target::Table, 1.0)];
        buckets.admit_all(s(0.0), &parts).unwrap();
        assert_eq!(buckets.len(), 3);
        buckets.retain(|k| !matches!(k.limit, Limit::Index(_)));
        assert_eq!(buckets.len(), 2);
        buckets.retain(|k| k.table_id != meta.id);
        assert!(buckets.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn admitted_units_never_outrun_any_claimed_bucket(
            sizes in proptest::collection::vec((0u32..4, 0.5f64..50.0, 0.0f64..3.0), 1..200)
        ) {
            // Four partitions of a 10 WCU table: each bucket's admissions stay within its burst
            // plus its refill plus one request's excess, whatever the mix of partitions.
            let meta = table(BillingMode::Provisioned, 10, 10, None);
            let mut buckets = Buckets::new();
            let mut now = 0.0;
            let mut taken: BTreeMap<BucketKey, f64> = BTreeMap::new();
            for (index, units, dt) in sizes {
                now += dt;
                let placement = Placement::Whole { slot: Some(Slot { index, count: 4 }) };
                let parts = [part(&meta, placement, Access::Write, Target::Table, units)];
                if let Ok(grant) = buckets.admit_all(s(now), &parts) {
                    for (key, units) in grant.taken {
                        *taken.entry(key).or_default() += units;
                    }
                }
            }
            for (key, units) in taken {
                let (rate, burst) = match key.limit {
                    Limit::Provisioned => (10.0, BURST_CREDIT_S),
                    _ => (PARTITION_WRITE_UNITS_PER_S, HARD_LIMIT_BURST_S),
                };
                proptest::prop_assert!(units <= rate * burst + rate * now + 50.0 + 1e-6, "{key:?} took {units}");
            }
        }
    }
}
