//! Node-to-node transport over TCP: one outbound link per peer (a bounded queue, a writer that
//! batches frames, reconnection with backoff) and an accept loop for inbound connections.
//!
//! Raft messages are fire-and-forget: a full queue or a broken link drops them, which raft
//! tolerates by retrying. Routed requests wait for their response with a timeout; a request whose
//! link breaks is answered `Lost`, which is indeterminate (it may or may not have run), so the
//! router never retries it elsewhere.
//!
//! Each link also carries a ping every `ping_interval_ms`, answered on the same connection: a
//! peer not heard from within `suspect_after_ms` is suspected, and routers try another replica
//! before it, rather than spending a whole request timeout on a peer a partition hides.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::prelude::Message as RaftMessage;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::wire::{self, Mode, Outcome, PeerMessage, FRAME_BYTES_MAX};
use crate::capacity::share::Demand;
use crate::net::{BoxStream, Listener};

/// How long the `SlowResponse` fault point holds an answer: long next to a request's usual
/// milliseconds, short of the caller's timeout.
const BUGGIFY_SLOW_RESPONSE_MS: u64 = 200;

/// Limits and timings of the transport.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// Frames queued for one peer before new raft messages are dropped.
    pub queue_frames_max: usize,
    /// Frames written to a socket before one flush.
    pub write_batch_frames_max: usize,
    /// Time allowed to establish a connection.
    pub connect_timeout_ms: u64,
    /// Wait before reconnecting after a failure.
    pub reconnect_backoff_ms: u64,
    /// Time between liveness pings to each peer.
    pub ping_interval_ms: u64,
    /// Silence after which a peer is suspected to be unreachable.
    pub suspect_after_ms: u64,
    /// The node's modelled hardware, under the simulator: bytes sent wait for the modelled
    /// network link, and bytes received are counted (see [`crate::resources`]).
    pub resources: Option<crate::resources::Resources>,
    /// The network peer links are dialled on (TCP unless the simulator brings its own).
    pub network: crate::net::Network,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            queue_frames_max: 4096,
            write_batch_frames_max: 64,
            connect_timeout_ms: 1_000,
            reconnect_backoff_ms: 100,
            ping_interval_ms: 250,
            suspect_after_ms: 1_000,
            resources: None,
            network: crate::net::Network::tcp(),
        }
    }
}

/// Why a routed request got no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer is not in the cluster.
    #[error("unknown peer {0}")]
    UnknownPeer(u64),
    /// The request could not be queued: the peer's queue is full. It was not sent.
    #[error("queue to peer {0} is full")]
    Overloaded(u64),
    /// The link broke or the response did not come in time: the request may have run.
    #[error("request to peer {0} lost or timed out")]
    Lost(u64),
}

/// A boxed future of a request's outcome.
pub type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What a node does with what its peers send it.
pub trait Inbound: Send + Sync + 'static {
    /// Delivers a raft message to the replica of `group`.
    fn raft(&self, group: u64, message: RaftMessage);
    /// Runs a routed request.
    fn request(
        &self,
        group: u64,
        mode: Mode,
        range: Option<(u64, Option<u64>)>,
        operation: String,
        body: Vec<u8>,
    ) -> OutcomeFuture;
    /// Takes node `from`'s demand report for the shares of table-wide capacity.
    fn demand(&self, from: u64, demands: Vec<Demand>);
}

type Pending = BTreeMap<u64, (u64, oneshot::Sender<Outcome>)>;

/// When each peer last answered on this node's link to it.
type Heard = BTreeMap<u64, Instant>;

/// The transport of one node.
pub struct Transport {
    me: u64,
    addresses: BTreeMap<u64, SocketAddr>,
    settings: TransportSettings,
    links: Mutex<BTreeMap<u64, mpsc::Sender<Vec<u8>>>>,
    pending: Arc<Mutex<Pending>>,
    next_request_id: AtomicU64,
    heard: Arc<Mutex<Heard>>,
    probing: std::sync::atomic::AtomicBool,
    /// Peers never heard from count as heard at start-up, so a starting node routes normally.
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Transport {
    /// A transport for node `me` reaching `addresses` (peer id to peer address).
    pub fn new(me: u64, addresses: BTreeMap<u64, SocketAddr>, settings: TransportSettings) -> Arc<Transport> {
        Arc::new(Transport {
            me,
            addresses,
            settings,
            links: Mutex::new(BTreeMap::new()),
            pending: Arc::new(Mutex::new(BTreeMap::new())),
            next_request_id: AtomicU64::new(1),
            heard: Arc::new(Mutex::new(BTreeMap::new())),
            probing: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
        })
    }

    /// Pings every peer each `ping_interval_ms` until [`Transport::stop_probes`].
    pub fn start_probes(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let transport = Arc::downgrade(self);
        let interval = Duration::from_millis(self.settings.ping_interval_ms.max(1));
        let peers: Vec<u64> = self.addresses.keys().copied().filter(|p| *p != self.me).collect();
        tokio::spawn(async move {
            let mut nonce = 0u64;
            loop {
                tokio::time::sleep(interval).await;
                let Some(transport) = transport.upgrade() else { return };
                if !transport.probing.load(Ordering::SeqCst) {
                    return;
                }
                nonce += 1;
                let frame = wire::encode(&PeerMessage::Ping { nonce });
                for peer in &peers {
                    if let Ok(link) = transport.link(*peer) {
                        let _ = link.try_send(frame.clone());
                    }
                }
            }
        });
    }

    /// Sends `message` to every peer without waiting: a peer whose link is full or down misses
    /// it (for messages that are sent again periodically, such as demand reports).
    pub fn tell_all(self: &Arc<Self>, message: &PeerMessage) {
        let frame = wire::encode(message);
        for peer in self.addresses.keys().copied().filter(|p| *p != self.me) {
            if let Ok(link) = self.link(peer) {
                let _ = link.try_send(frame.clone());
            }
        }
    }

    /// Stops the pings (a stopping node).
    pub fn stop_probes(&self) {
        self.probing.store(false, Ordering::SeqCst);
    }

    /// Whether `peer` has not answered on its link for `suspect_after_ms`.
    pub fn suspected(&self, peer: u64) -> bool {
        if peer == self.me {
            return false;
        }
        self.silent_for(peer) > Duration::from_millis(self.settings.suspect_after_ms)
    }

    /// How long `peer` has not answered on its link (since this transport started, for a peer
    /// never heard from); zero for this node itself.
    pub fn silent_for(&self, peer: u64) -> Duration {
        if peer == self.me {
            return Duration::ZERO;
        }
        lock(&self.heard).get(&peer).copied().unwrap_or(self.started).elapsed()
    }

    /// This node's id.
    pub fn me(&self) -> u64 {
        self.me
    }

    fn link(self: &Arc<Self>, peer: u64) -> Result<mpsc::Sender<Vec<u8>>, TransportError> {
        let mut links = lock(&self.links);
        if let Some(link) = links.get(&peer) {
            if !link.is_closed() {
                return Ok(link.clone());
            }
        }
        let addr = *self.addresses.get(&peer).ok_or(TransportError::UnknownPeer(peer))?;
        let (tx, rx) = mpsc::channel(self.settings.queue_frames_max);
        links.insert(peer, tx.clone());
        let transport = self.clone();
        tokio::spawn(async move { transport.run_link(peer, addr, rx).await });
        Ok(tx)
    }

    /// Queues a raft message; dropped if the peer's queue is full.
    pub fn send_raft(self: &Arc<Self>, group: u64, message: RaftMessage) {
        let to = message.to;
        if crate::buggify::fires(crate::buggify::Site::DropRaftMessage) {
            return;
        }
        let Ok(link) = self.link(to) else { return };
        for frame in raft_frames(group, message) {
            if link.try_send(frame).is_err() {
                // A snapshot missing a part is dropped by its receiver; raft sends it again.
                tracing::trace!(to, group, "raft message dropped: queue full");
                return;
            }
        }
    }

    /// Sends a routed request to `peer` and waits up to `timeout` for its outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        self: &Arc<Self>,
        peer: u64,
        group: u64,
        mode: Mode,
        range: Option<(u64, Option<u64>)>,
        operation: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Outcome, TransportError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode(&PeerMessage::Request {
            id,
            group,
            mode,
            range,
            operation: operation.to_string(),
            body: body.to_vec(),
        });
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, (peer, tx));
        let link = match self.link(peer) {
            Ok(link) => link,
            Err(e) => {
                lock(&self.pending).remove(&id);
                return Err(e);
            }
        };
        if link.try_send(frame).is_err() {
            lock(&self.pending).remove(&id);
            return Err(TransportError::Overloaded(peer));
        }
        let result = tokio::time::timeout(timeout, rx).await;
        lock(&self.pending).remove(&id);
        match result {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => Err(TransportError::Lost(peer)),
        }
    }

    async fn run_link(self: Arc<Self>, peer: u64, addr: SocketAddr, mut rx: mpsc::Receiver<Vec<u8>>) {
        let backoff = Duration::from_millis(self.settings.reconnect_backoff_ms);
        loop {
            let connect = tokio::time::timeout(
                Duration::from_millis(self.settings.connect_timeout_ms),
                self.settings.network.connect(addr),
            )
            .await;
            let stream = match connect {
                Ok(Ok(stream)) => stream,
                _ => {
                    self.drop_queued(peer, &mut rx);
                    if rx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let (reader, mut writer) = tokio::io::split(stream);
            let pending = self.pending.clone();
            let heard = self.heard.clone();
            let resources = self.settings.resources.clone();
            let mut reader_task =
                tokio::spawn(async move { read_responses(reader, peer, pending, heard, resources).await });
            let hello = wire::encode(&PeerMessage::Hello { from: self.me });
            let mut healthy = writer.write_all(&hello).await.is_ok() && writer.flush().await.is_ok();
            while healthy {
                tokio::select! {
                    frame = rx.recv() => {
                        let Some(frame) = frame else {
                            reader_task.abort();
                            return;
                        };
                        healthy = write_batch(&mut writer, frame, &mut rx, &self.settings).await
                            && !crate::buggify::fires(crate::buggify::Site::BreakPeerLink);
                    }
                    // The reader ends when the peer closes or sends garbage: the link is broken.
                    _ = &mut reader_task => healthy = false,
                }
            }
            reader_task.abort();
            tracing::debug!(peer, "link to peer broken; reconnecting");
            self.fail_pending(peer);
            self.drop_queued(peer, &mut rx);
            tokio::time::sleep(backoff).await;
        }
    }

    /// Drops what is queued for an unreachable peer: queued raft messages are stale by the time
    /// a link comes back, and queued requests are answered `Lost`.
    fn drop_queued(&self, peer: u64, rx: &mut mpsc::Receiver<Vec<u8>>) {
        while rx.try_recv().is_ok() {}
        self.fail_pending(peer);
    }

    fn fail_pending(&self, peer: u64) {
        let mut pending = lock(&self.pending);
        let ids: Vec<u64> = pending.iter().filter(|(_, (p, _))| *p == peer).map(|(id, _)| *id).collect();
        for id in ids {
            // Dropping the sender wakes the waiter with an error: `Lost`.
            pending.remove(&id);
        }
    }

    /// Accepts inbound connections until the listener fails.
    pub async fn serve(mut listener: Box<dyn Listener>, inbound: Arc<dyn Inbound>, settings: TransportSettings) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (inbound, settings) = (inbound.clone(), settings.clone());
            tokio::spawn(async move { serve_connection(stream, inbound, settings).await });
        }
    }
}

/// Writes `first` and whatever else is queued (up to `write_batch_frames_max` frames), then
/// flushes once: batching keeps the syscalls (and the simulated network's chunks) down. With modelled hardware, the flush waits until the batch has left the node's
/// network link.
async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    first: Vec<u8>,
    rx: &mut mpsc::Receiver<Vec<u8>>,
    settings: &TransportSettings,
) -> bool {
    let mut bytes = first.len() as u64;
    if writer.write_all(&first).await.is_err() {
        return false;
    }
    for _ in 1..settings.write_batch_frames_max {
        match rx.try_recv() {
            Ok(frame) => {
                bytes += frame.len() as u64;
                if writer.write_all(&frame).await.is_err() {
                    return false;
                }
            }
            Err(_) => break,
        }
    }
    if let Some(resources) = &settings.resources {
        resources.0.transmit(bytes).await;
    }
    writer.flush().await.is_ok()
}

/// Reads one frame, counting its bytes as received by the modelled hardware if there is one.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    resources: Option<&crate::resources::Resources>,
) -> Option<PeerMessage> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await.ok()?;
    let len = u32::from_le_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        tracing::warn!(len, "peer frame too large; closing the connection");
        return None;
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).await.ok()?;
    if let Some(resources) = resources {
        resources.0.receive(4 + len as u64);
    }
    match wire::decode(&payload) {
        Ok(message) => Some(message),
        Err(e) => {
            tracing::warn!(error = %e, "undecodable peer frame; closing the connection");
            None
        }
    }
}

async fn read_responses<R: AsyncRead + Unpin>(
    mut reader: R,
    peer: u64,
    pending: Arc<Mutex<Pending>>,
    heard: Arc<Mutex<Heard>>,
    resources: Option<crate::resources::Resources>,
) {
    while let Some(message) = read_frame(&mut reader, resources.as_ref()).await {
        lock(&heard).insert(peer, Instant::now());
        if let PeerMessage::Response { id, outcome } = message {
            if let Some((_, tx)) = lock(&pending).remove(&id) {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// The frames of one raft message: a snapshot whose data is too large for one frame goes as
/// its data's parts followed by the message without its data.
fn raft_frames(group: u64, mut message: RaftMessage) -> Vec<Vec<u8>> {
    let data_bytes = message.get_snapshot().get_data().len();
    if data_bytes <= wire::SNAPSHOT_PART_BYTES {
        return vec![wire::encode(&PeerMessage::Raft { group, message: Box::new(message) })];
    }
    let data = std::mem::take(&mut message.mut_snapshot().data);
    let mut frames: Vec<Vec<u8>> = data
        .chunks(wire::SNAPSHOT_PART_BYTES)
        .enumerate()
        .map(|(i, part)| {
            let offset = (i * wire::SNAPSHOT_PART_BYTES) as u64;
            wire::encode(&PeerMessage::SnapshotPart { group, total: data_bytes as u64, offset, bytes: part.to_vec() })
        })
        .collect();
    frames.push(wire::encode(&PeerMessage::Raft { group, message: Box::new(message) }));
    frames
}

/// Snapshot data arriving in parts on one connection, per group.
#[derive(Default)]
struct SnapshotParts {
    groups: BTreeMap<u64, (u64, Vec<u8>)>,
}

impl SnapshotParts {
    /// Adds a part. Parts must follow each other: a first part starts a new snapshot, and a
    /// part that does not continue the one being gathered discards it (a part went missing).
    fn add(&mut self, group: u64, total: u64, offset: u64, bytes: &[u8]) {
        if total > wire::SNAPSHOT_BYTES_MAX {
            tracing::warn!(group, total, "snapshot too large to reassemble; dropped");
            return;
        }
        if offset == 0 {
            self.groups.insert(group, (total, Vec::new()));
        }
        let Some(gathered) = self.groups.get_mut(&group) else { return };
        let end = offset + bytes.len() as u64;
        if gathered.0 != total || gathered.1.len() as u64 != offset || end > total {
            self.groups.remove(&group);
            return;
        }
        gathered.1.extend_from_slice(bytes);
    }

    /// The raft message to deliver: a snapshot message without data gets the parts gathered
    /// for its group, or is dropped (`None`) when they do not add up.
    fn complete(&mut self, group: u64, mut message: RaftMessage) -> Option<RaftMessage> {
        let is_snapshot = message.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
        if !is_snapshot || !message.get_snapshot().get_data().is_empty() {
            return Some(message);
        }
        match self.groups.remove(&group) {
            Some((total, data)) if data.len() as u64 == total => {
                message.mut_snapshot().data = data.into();
                Some(message)
            }
            _ => {
                tracing::debug!(group, "snapshot message without its parts dropped");
                None
            }
        }
    }
}

async fn serve_connection(stream: BoxStream, inbound: Arc<dyn Inbound>, settings: TransportSettings) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let resources = settings.resources.clone();
    let Some(PeerMessage::Hello { from }) = read_frame(&mut reader, resources.as_ref()).await else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(settings.queue_frames_max);
    let writer_task = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if !write_batch(&mut writer, frame, &mut rx, &settings).await {
                return;
            }
        }
    });
    let mut parts = SnapshotParts::default();
    while let Some(message) = read_frame(&mut reader, resources.as_ref()).await {
        match message {
            PeerMessage::Raft { group, message } => {
                if let Some(message) = parts.complete(group, *message) {
                    inbound.raft(group, message);
                }
            }
            PeerMessage::SnapshotPart { group, total, offset, bytes } => parts.add(group, total, offset, &bytes),
            PeerMessage::Request { id, group, mode, range, operation, body } => {
                let future = inbound.request(group, mode, range, operation, body);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let outcome = future.await;
                    if crate::buggify::fires(crate::buggify::Site::SlowResponse) {
                        tokio::time::sleep(Duration::from_millis(BUGGIFY_SLOW_RESPONSE_MS)).await;
                    }
                    let frame = wire::encode(&PeerMessage::Response { id, outcome });
                    // A full or closed queue means the caller's link is gone; it sees `Lost`.
                    let _ = tx.send(frame).await;
                });
            }
            PeerMessage::Ping { nonce } => {
                // A full queue drops the answer; the next ping gets another chance.
                let _ = tx.try_send(wire::encode(&PeerMessage::Pong { nonce }));
            }
            PeerMessage::Demand { demands } => inbound.demand(from, demands),
            PeerMessage::Hello { .. } | PeerMessage::Response { .. } | PeerMessage::Pong { .. } => {
                tracing::warn!(from, "unexpected frame on an inbound connection");
            }
        }
    }
    drop(tx);
    let _ = writer_task.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_message(data: Vec<u8>) -> RaftMessage {
        let mut message = RaftMessage { from: 1, to: 2, term: 3, ..Default::default() };
        message.set_msg_type(raft::prelude::MessageType::MsgSnapshot);
        message.mut_snapshot().data = data.into();
        message.mut_snapshot().mut_metadata().index = 40;
        message
    }

    fn receive(parts: &mut SnapshotParts, frames: &[Vec<u8>]) -> Vec<RaftMessage> {
        let mut delivered = Vec::new();
        for frame in frames {
            match wire::decode(&frame[4..]).expect("frame decodes") {
                PeerMessage::SnapshotPart { group, total, offset, bytes } => parts.add(group, total, offset, &bytes),
                PeerMessage::Raft { group, message } => delivered.extend(parts.complete(group, *message)),
                other => panic!("unexpected frame {other:?}"),
            }
        }
        delivered
    }

    #[test]
    fn a_large_snapshot_travels_in_parts_and_arrives_whole() {
        let data: Vec<u8> = (0..2 * wire::SNAPSHOT_PART_BYTES + 10).map(|i| (i % 251) as u8).collect();
        let message = snapshot_message(data);
        let frames = raft_frames(7, message.clone());
        assert_eq!(frames.len(), 4, "three parts and the message");
        assert!(frames.iter().all(|f| f.len() <= FRAME_BYTES_MAX));
        let mut parts = SnapshotParts::default();
        assert_eq!(receive(&mut parts, &frames), vec![message]);
        // A small message is one frame, delivered as it is.
        let small = snapshot_message(b"small".to_vec());
        assert_eq!(raft_frames(7, small.clone()).len(), 1);
        assert_eq!(receive(&mut parts, &raft_frames(7, small.clone())), vec![small]);
    }

    #[test]
    fn a_snapshot_missing_a_part_is_dropped() {
        let data = vec![9u8; wire::SNAPSHOT_PART_BYTES * 2 + 1];
        let mut frames = raft_frames(7, snapshot_message(data.clone()));
        frames.remove(1);
        let mut parts = SnapshotParts::default();
        assert!(receive(&mut parts, &frames).is_empty());
        // The next complete sending gets through.
        let message = snapshot_message(data);
        assert_eq!(receive(&mut parts, &raft_frames(7, message.clone())), vec![message]);
    }
}
