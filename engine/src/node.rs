//! The one function that starts a node. `squall-server` calls it for real; the simulator calls
//! it inside each simulated host.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::api::Service;
use crate::capacity::Quota;
use crate::cluster::node::{ClusterNode, ClusterSettings};
use crate::cluster::router::Router;
use crate::cluster::transport::Transport;
use crate::cluster::ClusterSpec;
use crate::db::Database;
use crate::metrics::{Metrics, TimedStore};
use crate::net::Network;
use crate::storage::{KvStore, MemStore, RocksStore, StorageError};
use crate::throttle::Throttle;

/// Which storage engine a node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// RocksDB in this directory.
    Rocks(PathBuf),
    /// In memory (tests and simulation).
    Memory,
    /// A store opened by the caller. The simulator uses it to keep a node's "disk" across a
    /// crash and restart of the node, and to put a fault-injecting wrapper under the node.
    Provided(ProvidedStore),
}

/// A node's place in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's id in `spec`.
    pub node_id: u64,
    /// Every node of the cluster.
    pub spec: ClusterSpec,
    /// Timings and limits.
    pub settings: ClusterSettings,
    /// Seed of the node's random choices (election timing).
    pub seed: u64,
}

/// A store handed to a node by its caller; equal when it is the same store.
#[derive(Clone)]
pub struct ProvidedStore(pub Arc<dyn KvStore>);

impl std::fmt::Debug for ProvidedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProvidedStore")
    }
}

impl PartialEq for ProvidedStore {
    fn eq(&self, other: &ProvidedStore) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ProvidedStore {}

/// A node's configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Address to serve the API on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Storage engine.
    pub storage: StorageConfig,
    /// The cluster this node belongs to; `None` for a single, unreplicated node.
    pub cluster: Option<ClusterConfig>,
}

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened or its catalog read.
    #[error("open storage: {0}")]
    Storage(#[from] StorageError),
    /// The listen address could not be bound, or serving failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The node could not join its cluster.
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::node::ClusterError),
}

/// Opens the store the configuration names.
pub fn open_store(storage: &StorageConfig) -> Result<Arc<dyn KvStore>, NodeError> {
    Ok(match storage {
        StorageConfig::Rocks(path) => {
            std::fs::create_dir_all(path)?;
            Arc::new(RocksStore::open(path)?)
        }
        StorageConfig::Memory => Arc::new(MemStore::new()),
        StorageConfig::Provided(store) => store.0.clone(),
    })
}

/// Settings of a node beyond its [`NodeConfig`]. Kept apart from it so that the places that
/// build a `NodeConfig` field by field (the simulator, the workload tests) need not change
/// for each new setting.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Enforce the tables' capacity (DynamoDB's throttling; see `crate::throttle`). On by
    /// default; off lets benchmarks measure the engine's raw speed.
    pub throttling: bool,
    /// The per-table quotas enforced (DynamoDB's defaults unless raised).
    pub quota: Quota,
    /// The network the node listens and dials on: TCP, or the simulator's.
    pub network: Network,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions { throttling: true, quota: Quota::default(), network: Network::tcp() }
    }
}

/// Runs a node with the default [`NodeOptions`]; see [`run_with`].
pub async fn run(
    config: NodeConfig,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    run_with(config, NodeOptions::default(), ready, shutdown).await
}

/// Runs a node until `shutdown` completes: opens storage, binds the listener, calls `ready`
/// with the bound address, and serves.
pub async fn run_with(
    config: NodeConfig,
    options: NodeOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let throttle = options.throttling.then(|| Arc::new(Throttle::with_quota(options.quota)));
    let metrics = Metrics::new();
    let store: Arc<dyn KvStore> = Arc::new(TimedStore::new(open_store(&config.storage)?, metrics.clone()));
    let db = Arc::new(Database::open(store)?);
    let Some(mut cluster) = config.cluster else {
        let listener = options.network.bind(config.listen).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, tables = db.table_names().len(), "node serving");
        ready(addr);
        let service = match throttle {
            Some(throttle) => Service::with_throttle(db, throttle),
            None => Service::new(db),
        };
        let http = crate::http::HttpConfig { metrics: Some(metrics), ..Default::default() };
        crate::http::serve_with(listener, service, shutdown, http).await?;
        tracing::info!("node stopped");
        return Ok(());
    };
    let me = cluster.node_id;
    let peer_addr = match cluster.spec.node(me) {
        Some(spec) => spec.peer_addr().map_err(crate::cluster::node::ClusterError::from)?,
        None => return Err(crate::cluster::node::ClusterError::NotInCluster(me).into()),
    };
    cluster.settings.transport.network = options.network.clone();
    // Bind both listeners before starting replicas, so a port conflict fails fast.
    let peer_listener = options.network.bind(peer_addr).await?;
    let listener = options.network.bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let http = crate::http::HttpConfig {
        resources: cluster.settings.resources.clone(),
        metrics: Some(metrics),
        ..Default::default()
    };
    let transport_settings = cluster.settings.transport_settings();
    let node = ClusterNode::start(me, cluster.spec, db, cluster.settings, cluster.seed, throttle)?;
    let peers = tokio::spawn(Transport::serve(peer_listener, node.inbound(), transport_settings));
    tracing::info!(%addr, node = me, %peer_addr, "cluster node serving");
    ready(addr);
    let served = crate::http::serve_with(listener, Router::new(node.clone()), shutdown, http).await;
    peers.abort();
    node.stop();
    served?;
    tracing::info!("node stopped");
    Ok(())
}
