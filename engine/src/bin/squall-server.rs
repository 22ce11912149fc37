//! `squall-server`: a Squall node serving DynamoDB's API over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use squall_engine::node::{self, NodeConfig, StorageConfig};

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
    let config = NodeConfig { listen: args.listen, storage };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start runtime")?;
    runtime.block_on(async {
        node::run(
            config,
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
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        _ = terminate => tracing::info!("sigterm received; shutting down"),
    }
}
