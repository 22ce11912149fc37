//! The simulated cluster's shape: zones, nodes and their addresses, and the one function that
//! turns a node's spec into the engine's `NodeConfig`.
//!
//! Zones are IP ranges: node `n` of zone `z` is `10.z.0.(n+1)`, so a zone is recognisable in
//! every address the timeline prints. Client hosts live in `10.200.0.0/24`, outside every zone.

use std::net::{Ipv4Addr, SocketAddr};

use squall_engine::cluster::node::ClusterSettings;
use squall_engine::node::{ClusterConfig, NodeConfig, StorageConfig};
use squall_engine::resources::Resources;

/// Port every node serves the DynamoDB API on.
pub const API_PORT: u16 = 8000;
/// Port of every node's peer transport (raft and routed requests).
pub const PEER_PORT: u16 = 9000;
/// Partitions of every table the simulated clients create, unless `--partitions` says.
pub const PARTITIONS_PER_TABLE_DEFAULT: u64 = 4;
/// Most partitions per table a run may ask for.
pub const PARTITIONS_PER_TABLE_MAX: u64 = 1024;
/// Most zones a cluster may have (the zone number is an address octet below the clients').
pub const ZONES_MAX: u32 = 100;
/// Most nodes per zone (the node number is the last address octet).
pub const NODES_PER_ZONE_MAX: u32 = 200;
/// Most client hosts.
pub const CLIENTS_MAX: u32 = 200;
/// Second address octet of client hosts.
const CLIENT_OCTET: u8 = 200;

/// One storage node of the simulated cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Cluster-wide node number, from 0.
    pub id: u32,
    /// Zone number, from 0.
    pub zone: u32,
    /// The node's simulated address.
    pub ip: Ipv4Addr,
}

impl NodeSpec {
    /// Where the node serves the API.
    pub fn api_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.into(), API_PORT)
    }
}

/// The nodes of a cluster, zone by zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Number of zones.
    pub zones: u32,
    /// Nodes in each zone.
    pub nodes_per_zone: u32,
    /// Every node, ordered by id; ids are `zone * nodes_per_zone + index in zone`.
    pub nodes: Vec<NodeSpec>,
}

/// A cluster shape that cannot be simulated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// Zones outside `1..=ZONES_MAX`.
    #[error("zones must be between 1 and {ZONES_MAX}, not {0}")]
    Zones(u32),
    /// Nodes per zone outside `1..=NODES_PER_ZONE_MAX`.
    #[error("nodes per zone must be between 1 and {NODES_PER_ZONE_MAX}, not {0}")]
    NodesPerZone(u32),
}

impl ClusterSpec {
    /// `zones` zones of `nodes_per_zone` nodes each.
    pub fn new(zones: u32, nodes_per_zone: u32) -> Result<ClusterSpec, ClusterError> {
        if zones == 0 || zones > ZONES_MAX {
            return Err(ClusterError::Zones(zones));
        }
        if nodes_per_zone == 0 || nodes_per_zone > NODES_PER_ZONE_MAX {
            return Err(ClusterError::NodesPerZone(nodes_per_zone));
        }
        let nodes = (0..zones)
            .flat_map(|zone| {
                (0..nodes_per_zone).map(move |n| NodeSpec {
                    id: zone * nodes_per_zone + n,
                    zone,
                    ip: Ipv4Addr::new(10, zone as u8, 0, n as u8 + 1),
                })
            })
            .collect();
        Ok(ClusterSpec { zones, nodes_per_zone, nodes })
    }

    /// Ids of the nodes in `zone`.
    pub fn zone_nodes(&self, zone: u32) -> Vec<u32> {
        self.nodes.iter().filter(|n| n.zone == zone).map(|n| n.id).collect()
    }

    /// The node client `index` sends its requests to: every node runs a router, so clients
    /// spread over all of them, zone by zone first (client 0 in zone 0, client 1 in zone 1, ...)
    /// so that even a few clients see every zone's side of a partition.
    pub fn entry_node(&self, client: u32) -> &NodeSpec {
        let zone = client % self.zones;
        let index = (client / self.zones) % self.nodes_per_zone;
        &self.nodes[(zone * self.nodes_per_zone + index) as usize]
    }

    /// The engine's description of this cluster: engine node ids are sim ids plus one (raft
    /// ids must not be zero), zones are named `zone-<n>`.
    pub fn engine_spec(&self) -> squall_engine::cluster::ClusterSpec {
        let nodes = self
            .nodes
            .iter()
            .map(|n| squall_engine::cluster::NodeSpec {
                id: u64::from(n.id) + 1,
                zone: format!("zone-{}", n.zone),
                endpoint: format!("http://{}", n.api_addr()),
                peer: SocketAddr::new(n.ip.into(), PEER_PORT).to_string(),
                pid: None,
            })
            .collect();
        squall_engine::cluster::ClusterSpec { nodes }
    }
}

/// The engine settings of every simulated node: `partitions` per table and the node's modelled
/// hardware.
pub fn cluster_settings(partitions: u64, resources: Option<Resources>) -> ClusterSettings {
    let defaults = ClusterSettings::default();
    // Logs are compacted far sooner than on a real node, so that compaction happens in every
    // run, under every fault, rather than only in runs long enough to fill 10,000 entries.
    let replica = squall_engine::replication::ReplicaSettings {
        log_entries_max: SIM_LOG_ENTRIES_MAX,
        ..defaults.replica.clone()
    };
    // Dead nodes are replaced far sooner than on a real node, so that a crash or a partition
    // of a few seconds moves replicas, and the nodes' return balances them back.
    let admin = squall_engine::cluster::admin::AdminSettings {
        replace_after_ms: SIM_REPLACE_AFTER_MS,
        ..defaults.admin.clone()
    };
    ClusterSettings {
        partitions_per_table: Some(partitions),
        resources,
        replica,
        admin,
        scrub_interval_ms: SIM_SCRUB_INTERVAL_MS,
        stranded_member_ms: SIM_STRANDED_MEMBER_MS,
        ..defaults
    }
}

/// How long a simulated group keeps a member a stopped move left behind: far sooner than a
/// real node, whose snapshots may take minutes, so that a run's heal phase sees it go.
pub const SIM_STRANDED_MEMBER_MS: u64 = 10_000;

/// Time between two scrubs of a simulated node's replicas: far sooner than a real node's, so
/// that damage left by a fault is found and repaired within a run's heal phase.
pub const SIM_SCRUB_INTERVAL_MS: u64 = 500;

/// Silence after which a simulated node counts as dead and its replicas are replaced.
pub const SIM_REPLACE_AFTER_MS: u64 = 5_000;

/// Raft log entries a simulated group keeps before its leader has it compacted.
pub const SIM_LOG_ENTRIES_MAX: u64 = 300;

/// Address of client host `index` (from 0).
pub fn client_ip(index: u32) -> Ipv4Addr {
    assert!(index < CLIENTS_MAX, "client index {index} over {CLIENTS_MAX}");
    Ipv4Addr::new(10, CLIENT_OCTET, 0, index as u8 + 1)
}

/// The engine configuration of one simulated node: a member of the whole cluster, with its
/// election timing drawn from the run's seed.
pub fn node_config(
    node: &NodeSpec,
    cluster: &ClusterSpec,
    storage: StorageConfig,
    seed: u64,
    settings: ClusterSettings,
) -> NodeConfig {
    debug_assert!(cluster.nodes.contains(node), "node {} is not in the cluster", node.id);
    let membership = ClusterConfig { node_id: u64::from(node.id) + 1, spec: cluster.engine_spec(), settings, seed };
    NodeConfig { listen: node.api_addr(), storage, cluster: Some(membership) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_address_ranges_and_ids_are_dense() {
        let cluster = ClusterSpec::new(3, 2).unwrap();
        let ips: Vec<String> = cluster.nodes.iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2", "10.1.0.1", "10.1.0.2", "10.2.0.1", "10.2.0.2"]);
        assert_eq!(cluster.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(cluster.zone_nodes(1), [2, 3]);
        let entries: Vec<u32> = (0..7).map(|c| cluster.entry_node(c).id).collect();
        assert_eq!(entries, [0, 2, 4, 1, 3, 5, 0]);
        assert_eq!(client_ip(0).to_string(), "10.200.0.1");
    }

    #[test]
    fn shapes_out_of_range_are_refused() {
        assert_eq!(ClusterSpec::new(0, 3), Err(ClusterError::Zones(0)));
        assert_eq!(ClusterSpec::new(ZONES_MAX + 1, 3), Err(ClusterError::Zones(ZONES_MAX + 1)));
        assert_eq!(ClusterSpec::new(3, 0), Err(ClusterError::NodesPerZone(0)));
        assert!(ClusterSpec::new(ZONES_MAX, NODES_PER_ZONE_MAX).is_ok());
    }

    #[test]
    fn node_config_listens_on_the_node_address() {
        let cluster = ClusterSpec::new(2, 2).unwrap();
        let settings = cluster_settings(16, None);
        let config = node_config(&cluster.nodes[3], &cluster, StorageConfig::Memory, 7, settings);
        assert_eq!(config.listen.to_string(), "10.1.0.2:8000");
        assert_eq!(config.storage, StorageConfig::Memory);
        let membership = config.cluster.expect("a cluster member");
        assert_eq!(membership.node_id, 4);
        assert_eq!(membership.settings.partitions_per_table, Some(16));
        assert_eq!(membership.spec.nodes.len(), 4);
        assert_eq!(membership.spec.node(4).unwrap().peer, "10.1.0.2:9000");
        membership.spec.validate().unwrap();
    }
}
