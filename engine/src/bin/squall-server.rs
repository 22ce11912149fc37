//! `squall-server`: a Squall node serving DynamoDB's API over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use squall_engine::capacity::Quota;
use squall_engine::cluster::admin::AdminSettings;
use squall_engine::cluster::node::ClusterSettings;
use squall_engine::cluster::split::SplitSettings;
use squall_engine::cluster::ClusterSpec;
use squall_engine::node::{self, ClusterConfig, NodeConfig, NodeOptions, StorageConfig};
use squall_engine::replication::ReplicaSettings;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

/// A DynamoDB-compatible database node.
#[derive(Parser, Debug)]
#[command(name = "squall-server", version, about)]
struct Args {
    /// Directory for the node's data (created if missing).
    #[arg(long, value_name = "DIR", required_unless_present = "in_memory")]
    data_dir: Option<PathBuf>,
    /// Keep data in memory only (lost when the process ends).
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    /// Address to serve on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Log filter, as RUST_LOG (for example `info` or `squall_engine=debug`).
    #[arg(long, default_value = "info", env = "SQUALL_LOG")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Join the cluster this file describes (JSON: `{"nodes": [{"id", "zone", "endpoint",
    /// "peer"}]}`), as the node `--node-id`. Without it the node runs alone.
    #[arg(long, value_name = "FILE", requires = "node_id")]
    cluster_file: Option<PathBuf>,
    /// This node's id in the cluster file.
    #[arg(long, requires = "cluster_file")]
    node_id: Option<u64>,
    /// Partitions per new table, instead of DynamoDB's rule (3,000 RCU / 1,000 WCU each).
    #[arg(long)]
    partitions_per_table: Option<u64>,
    /// Seed for the node's random choices (election timing); defaults to one from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Do not enforce the tables' capacity: no request is throttled, whatever the tables'
    /// provisioned throughput (for benchmarks of the engine's raw speed).
    #[arg(long)]
    no_throttling: bool,
    /// Read units per second one table may use at most (an on-demand table's maximum; the
    /// account's per-table quota, DynamoDB's default 40,000).
    #[arg(long, default_value_t = Quota::default().table_read_units_per_s as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    table_max_read_units: u64,
    /// Write units per second one table may use at most (see `--table-max-read-units`).
    #[arg(long, default_value_t = Quota::default().table_write_units_per_s as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    table_max_write_units: u64,
    /// How often each partition leader checks whether to split its partition for size or
    /// heat, in milliseconds; 0 turns automatic splits off.
    #[arg(long, default_value_t = SplitSettings::default().check_interval_ms)]
    split_check_interval_ms: u64,
    /// A partition estimated larger than this many bytes splits (DynamoDB's 10 GB).
    #[arg(long, default_value_t = SplitSettings::default().size_bytes_max)]
    split_size_bytes_max: u64,
    /// A partition whose load stays at or above this share of one partition's capacity
    /// (3,000 read, 1,000 write units a second) for three checks in a row splits for heat.
    #[arg(long, default_value_t = SplitSettings::default().heat_load_min)]
    split_heat_load_min: f64,
    /// A raft group's leader whose log holds more entries than this has every replica compact
    /// it through what all of them hold; 0 keeps logs whole.
    #[arg(long, default_value_t = ReplicaSettings::default().log_entries_max)]
    log_entries_max: u64,
    /// This node's store was lost (a replaced disk, an emptied --data-dir): rejoin the cluster
    /// as a new replica of every group, taken back as a learner that catches up from the
    /// others before it votes, instead of starting as the voter it was (it forgot its votes).
    /// Ignored when the store is not empty.
    #[arg(long, requires = "cluster_file")]
    rejoin: bool,
    /// How often the admin loop (run by the metadata group's leader) looks for replicas to
    /// replace or balance, in milliseconds; 0 turns it off.
    #[arg(long, default_value_t = AdminSettings::default().interval_ms)]
    admin_interval_ms: u64,
    /// A node not heard from for this many milliseconds counts as dead: its replicas are
    /// re-created on the other nodes of its zone.
    #[arg(long, default_value_t = AdminSettings::default().replace_after_ms)]
    replace_after_ms: u64,
    /// Do not move replicas to even out the nodes of a zone (dead nodes' replicas are still
    /// replaced).
    #[arg(long)]
    no_balance: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).context("parse --log filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let storage = match &args.data_dir {
        Some(dir) => StorageConfig::Rocks(dir.clone()),
        None => StorageConfig::Memory,
    };
    let cluster = match (&args.cluster_file, args.node_id) {
        (Some(path), Some(node_id)) => {
            let spec = ClusterSpec::load(path).with_context(|| format!("load {}", path.display()))?;
            let split = SplitSettings {
                check_interval_ms: args.split_check_interval_ms,
                size_bytes_max: args.split_size_bytes_max,
                heat_load_min: args.split_heat_load_min,
                ..SplitSettings::default()
            };
            let replica = ReplicaSettings { log_entries_max: args.log_entries_max, ..ReplicaSettings::default() };
            let settings = ClusterSettings {
                partitions_per_table: args.partitions_per_table,
                split,
                replica,
                rejoin: args.rejoin,
                admin: AdminSettings {
                    interval_ms: args.admin_interval_ms,
                    replace_after_ms: args.replace_after_ms,
                    balance: !args.no_balance,
                    ..AdminSettings::default()
                },
                ..ClusterSettings::default()
            };
            let seed = args.seed.unwrap_or_else(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                now.as_nanos() as u64 ^ node_id
            });
            Some(ClusterConfig { node_id, spec, settings, seed })
        }
        _ => None,
    };
    let listen = match &cluster {
        // A clustered node serves on its endpoint unless --listen says otherwise.
        Some(c) if args.listen == default_listen() => match c.spec.node(c.node_id) {
            Some(node) => node.api_addr().context("node endpoint")?,
            None => anyhow::bail!("node {} is not in the cluster file", c.node_id),
        },
        _ => args.listen,
    };
    let config = NodeConfig { listen, storage, cluster };
    let quota = Quota {
        table_read_units_per_s: args.table_max_read_units as f64,
        table_write_units_per_s: args.table_max_write_units as f64,
    };
    let options = NodeOptions { throttling: !args.no_throttling, quota, ..NodeOptions::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start runtime")?;
    runtime.block_on(async {
        node::run_with(
            config,
            options,
            |addr| {
                // The ready line: scripts and tests wait for it before sending requests.
                println!("squall-server listening on http://{addr}");
                use std::io::Write;
                let _ = std::io::stdout().flush();
            },
            shutdown_signal(),
        )
        .await
        .context("run node")
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(all(unix, not(madsim)))]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(any(not(unix), madsim))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        _ = terminate => tracing::info!("sigterm received; shutting down"),
    }
}
