//! Pure routing decisions: how many partitions a new table gets, where they are placed, which
//! partition a request's key falls in, and the raft group of each partition.

use serde_json::Value;

use crate::api::ApiError;
use crate::catalog::{BillingMode, TableMeta};
use crate::db::keys;
use crate::model::AttributeValue;
use crate::partition::placement::place_new_partitions;
use crate::partition::{sizing, NodeInfo, PartitionDescriptor, PartitionId, PartitionMap};

/// Partitions a table has at most when created, whatever its throughput: a cluster is small
/// next to DynamoDB's fleet, and every partition costs a raft group on three nodes.
pub const INITIAL_PARTITIONS_MAX: u64 = 64;

/// The raft group of partition `index` (0-based) of table `table_id`. Partition ids are group
/// ids; the table id in the high half keeps them unique across tables and off the metadata
/// group (0).
pub fn partition_group(table_id: u64, index: u64) -> u64 {
    assert!(table_id > 0 && table_id < (1 << 31), "table id {table_id} out of range");
    (table_id << 32) | (index + 1)
}

/// The table a partition group belongs to.
pub fn table_of_group(group: u64) -> u64 {
    group >> 32
}

/// Partitions of a new table by DynamoDB's rules (3,000 RCU and 1,000 WCU per partition; an
/// on-demand table starts with four), capped at [`INITIAL_PARTITIONS_MAX`], and never more
/// than `override_count` when the cluster sets a fixed count.
pub fn initial_partition_count(meta: &TableMeta, override_count: Option<u64>) -> u64 {
    if let Some(count) = override_count {
        return count.max(1);
    }
    let count = match meta.billing_mode {
        BillingMode::PayPerRequest => sizing::partitions_for_on_demand(0),
        BillingMode::Provisioned => {
            sizing::partitions_for_provisioned(meta.throughput.read_units, meta.throughput.write_units, 0)
        }
    };
    count.clamp(1, INITIAL_PARTITIONS_MAX)
}

/// The partition map of a new table: equal hash ranges, replicas spread over zones and nodes.
/// Deterministic: every node computes the same map from the same inputs.
pub fn initial_map(table_id: u64, partition_count: u64, nodes: &[NodeInfo]) -> Result<PartitionMap, String> {
    let placed = place_new_partitions(partition_count, nodes, table_id).map_err(|e| e.to_string())?;
    PartitionMap::initial(partition_count, PartitionId(partition_group(table_id, 0)), |id, _range| {
        let index = (id.0 & 0xffff_ffff) - 1;
        placed[index as usize].replicas.clone()
    })
    .map_err(|e| e.to_string())
}

/// The partition-key hash of a key value.
pub fn hash_of(value: &AttributeValue) -> u64 {
    keys::partition_hash(&keys::encode_value(value))
}

/// The partition-key hash an item operation addresses: from `Item` for PutItem, from `Key`
/// otherwise. `None` when the request has no usable partition key (the operation then fails
/// validation wherever it runs).
pub fn item_request_hash(meta: &TableMeta, operation: &str, request: &Value) -> Option<u64> {
    let field = if operation == "PutItem" { "Item" } else { "Key" };
    let value = request.get(field)?.get(&meta.key_schema.partition.name)?;
    let value = AttributeValue::from_json(value).ok()?;
    // Only key types hash; a key of another type fails validation wherever it runs.
    crate::catalog::key_type_matches(&meta.key_schema.partition, &value).then(|| hash_of(&value))
}

/// The partition of `map` holding `hash`.
pub fn partition_for(map: &PartitionMap, hash: u64) -> &PartitionDescriptor {
    map.lookup(hash)
}

/// The table name of a request body, for routing.
pub fn table_name(request: &Value) -> Result<&str, ApiError> {
    request
        .get("TableName")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("The parameter 'TableName' is required but was not present in the request"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{NodeId, ZoneId};

    fn nodes(per_zone: u64) -> Vec<NodeInfo> {
        (0..3 * per_zone)
            .map(|i| NodeInfo { id: NodeId(i + 1), zone: ZoneId((i % 3) as u32), replica_count: 0, load: None })
            .collect()
    }

    #[test]
    fn group_ids_are_unique_and_name_their_table() {
        assert_eq!(table_of_group(partition_group(7, 3)), 7);
        assert_ne!(partition_group(1, 0), 0);
        assert_ne!(partition_group(1, 1), partition_group(2, 0));
    }

    #[test]
    fn initial_maps_spread_replicas_over_three_zones_and_tile_the_hash_space() {
        let nodes = nodes(2);
        let map = initial_map(5, 8, &nodes).unwrap();
        map.validate().unwrap();
        assert_eq!(map.partitions().len(), 8);
        for p in map.partitions() {
            assert_eq!(p.zones().len(), 3, "{p:?}");
            assert_eq!(table_of_group(p.id.0), 5);
        }
        // The same inputs give the same map on every node.
        assert_eq!(initial_map(5, 8, &nodes).unwrap(), map);
        // Every node gets replicas.
        let counts = map.replica_counts();
        assert_eq!(counts.len(), 6, "{counts:?}");
    }

    #[test]
    fn a_key_routes_to_the_partition_whose_range_holds_its_hash() {
        let map = initial_map(1, 4, &nodes(1)).unwrap();
        for n in 0..200 {
            let value = AttributeValue::S(format!("user{n}"));
            let hash = hash_of(&value);
            let p = partition_for(&map, hash);
            assert!(p.range.contains(hash));
        }
    }
}
