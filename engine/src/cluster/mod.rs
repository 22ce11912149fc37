//! The distributed engine: a node's part in a cluster of nodes across zones.
//!
//! - [`ClusterSpec`]: the nodes of the cluster (id, zone, API and peer addresses), read from a
//!   cluster file or built by the simulator.
//! - [`wire`] and [`transport`]: the node-to-node protocol and its TCP links.
//! - [`node`]: the [`ClusterNode`](node::ClusterNode): the metadata group, the partition
//!   groups this node hosts, the state machine that applies their entries, and the router that
//!   sends each API request to the partition that owns it.

pub mod admin;
pub mod digest;
pub mod membership;
pub mod node;
pub mod router;
pub mod routing;
pub mod snapshot;
pub mod split;
pub mod transport;
pub mod txn;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::partition::{NodeId, NodeInfo, ZoneId};

/// The raft group holding the catalog and the partition maps; every node is a voter.
pub const META_GROUP: u64 = 0;

/// One node of a cluster as the cluster file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Node id, unique and non-zero.
    pub id: u64,
    /// Availability zone name.
    pub zone: String,
    /// The node's DynamoDB API endpoint, `http://HOST:PORT`.
    pub endpoint: String,
    /// The address other nodes reach this node's peer transport on, `HOST:PORT`.
    pub peer: String,
    /// Process id, when a script started the node (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Every node of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// The nodes, in any order.
    pub nodes: Vec<NodeSpec>,
}

/// A cluster file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("read cluster file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a cluster description.
    #[error("parse cluster file: {0}")]
    Parse(#[from] serde_json::Error),
    /// The description breaks a rule.
    #[error("invalid cluster: {0}")]
    Invalid(String),
}

impl ClusterSpec {
    /// Reads and checks a cluster file.
    pub fn load(path: &Path) -> Result<ClusterSpec, SpecError> {
        let spec: ClusterSpec = serde_json::from_slice(&std::fs::read(path)?)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks ids are unique and non-zero and addresses parse.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.nodes.is_empty() {
            return Err(SpecError::Invalid("no nodes".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for node in &self.nodes {
            if node.id == 0 || !seen.insert(node.id) {
                return Err(SpecError::Invalid(format!("node id {} is zero or repeated", node.id)));
            }
            node.peer_addr()?;
            node.api_addr()?;
        }
        Ok(())
    }

    /// The node with id `id`.
    pub fn node(&self, id: u64) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Node ids in ascending order.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Zone names in sorted order; a zone's [`ZoneId`] is its position here.
    pub fn zones(&self) -> Vec<String> {
        let mut zones: Vec<String> = self.nodes.iter().map(|n| n.zone.clone()).collect();
        zones.sort();
        zones.dedup();
        zones
    }

    /// The placement view of the nodes (no load yet), in id order.
    pub fn node_infos(&self) -> Vec<NodeInfo> {
        let zones = self.zones();
        let mut infos: Vec<NodeInfo> = self
            .nodes
            .iter()
            .map(|n| NodeInfo {
                id: NodeId(n.id),
                zone: ZoneId(zones.iter().position(|z| *z == n.zone).unwrap_or(0) as u32),
                replica_count: 0,
                load: None,
            })
            .collect();
        infos.sort_by_key(|n| n.id);
        infos
    }

    /// Peer addresses by node id.
    pub fn peer_addresses(&self) -> Result<BTreeMap<u64, SocketAddr>, SpecError> {
        self.nodes.iter().map(|n| Ok((n.id, n.peer_addr()?))).collect()
    }
}

impl NodeSpec {
    /// The peer address.
    pub fn peer_addr(&self) -> Result<SocketAddr, SpecError> {
        self.peer.parse().map_err(|_| SpecError::Invalid(format!("node {}: bad peer address {}", self.id, self.peer)))
    }

    /// The API address from the endpoint URL.
    pub fn api_addr(&self) -> Result<SocketAddr, SpecError> {
        let host_port = self.endpoint.trim_start_matches("http://").trim_end_matches('/');
        host_port.parse().map_err(|_| SpecError::Invalid(format!("node {}: bad endpoint {}", self.id, self.endpoint)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        let nodes = (1..=6)
            .map(|id| NodeSpec {
                id,
                zone: format!("zone-{}", (id - 1) % 3),
                endpoint: format!("http://127.0.0.{id}:8000"),
                peer: format!("127.0.0.{id}:9000"),
                pid: None,
            })
            .collect();
        ClusterSpec { nodes }
    }

    #[test]
    fn a_cluster_file_round_trips_and_validates() {
        let spec = spec();
        let json = serde_json::to_string(&spec).unwrap();
        let back: ClusterSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        back.validate().unwrap();
        assert_eq!(back.zones().len(), 3);
        assert_eq!(back.node(4).unwrap().api_addr().unwrap(), "127.0.0.4:8000".parse().unwrap());
    }

    #[test]
    fn repeated_ids_and_bad_addresses_are_refused() {
        let mut s = spec();
        s.nodes[1].id = 1;
        assert!(s.validate().is_err());
        let mut s = spec();
        s.nodes[0].peer = "nowhere".into();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.nodes[0].endpoint = "http://host-without-port".into();
        assert!(s.validate().is_err());
    }
}
