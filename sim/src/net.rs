//! The simulated network: byte streams between simulated hosts with modelled latency, and the
//! network faults (clogged links, packet loss, latency spikes).
//!
//! madsim's simulated TCP hands each chunk to the reader no sooner than a timer tick (a
//! millisecond) after the reader asks, so with it every hop of every request cost at least a
//! millisecond whatever the profile said, and a connection carried at most a thousand chunks a
//! second. This network delivers each chunk at its modelled time exactly: a reader waiting for
//! a chunk sleeps until its due time with a [`tokio::time::Sleep`] whose deadline is set
//! directly (`Sleep::reset`), which madsim honours to the nanosecond, where `sleep(duration)`
//! rounds up to a tick.
//!
//! A connection is two pipes, one per direction. Each written chunk is due one drawn one-way
//! latency after it was written, never before the chunk ahead of it (streams stay ordered). A
//! chunk written while its link is clogged, or lost, is retransmitted: it is due once a
//! retransmission finds the link open, retransmissions backing off from
//! [`RETRANSMIT_FIRST_MS`] to [`RETRANSMIT_MAX_MS`] as TCP's do. A host that is killed drops its
//! streams, so its peers read the end of the stream and their writes fail; a paused host reads
//! nothing, and writers to it stop once [`WINDOW_BYTES`] wait unread, as TCP's window does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use squall_engine::net::{BoxStream, Connector, Listener, NetFuture};
use squall_workloads::driver::{Connection, Dialer};
use squall_workloads::keygen::{next_f64, seeded_rng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::resources::sleep_exactly;

/// A lost or clogged chunk's first retransmission, after Linux's minimum retransmission
/// timeout.
pub const RETRANSMIT_FIRST_MS: u64 = 200;
/// The longest pause between retransmissions (Linux's is two minutes; ten seconds keeps a
/// healed link's first delivery within the heal phase's bound).
pub const RETRANSMIT_MAX_MS: u64 = 10_000;
/// Bytes written to a pipe and not yet read beyond which the writer waits, as a TCP window.
pub const WINDOW_BYTES: usize = 4 << 20;
/// The first ephemeral port a dialling host is given.
const EPHEMERAL_PORT_FIRST: u16 = 40_000;
/// Draws from the seed's streams; this one is the network's latencies and losses.
const NET_RNG_STREAM: u64 = 0x006e_6574;

/// One-way latencies of the simulated network, uniform in `[min, max]` microseconds per kind of
/// link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latencies {
    /// Between two processes on one host.
    pub same_host_us: (u64, u64),
    /// Between two hosts of one zone.
    pub intra_zone_us: (u64, u64),
    /// Between hosts of two zones.
    pub cross_zone_us: (u64, u64),
    /// Between a client host (in no zone) and a node.
    pub client_us: (u64, u64),
}

/// Where a host sits, for the latency of its links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A node in a zone.
    Zone(u32),
    /// A client, outside every zone.
    Client,
}

/// The latency range of the link from a host at `from` to one at `to`.
pub fn latency_range_us(latencies: &Latencies, from: (IpAddr, Place), to: (IpAddr, Place)) -> (u64, u64) {
    if from.0 == to.0 {
        return latencies.same_host_us;
    }
    match (from.1, to.1) {
        (Place::Zone(a), Place::Zone(b)) if a == b => latencies.intra_zone_us,
        (Place::Zone(_), Place::Zone(_)) => latencies.cross_zone_us,
        _ => latencies.client_us,
    }
}

/// Message and byte counts of the whole network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Chunks written (an HTTP message, a batch of peer frames).
    pub messages: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Retransmissions (a chunk found its link clogged or was lost).
    pub retransmissions: u64,
}

/// The simulated network of one run. Cheap to clone; every clone is the same network.
#[derive(Clone)]
pub struct SimNet(Arc<Mutex<NetState>>);

struct NetState {
    rng: ChaCha8Rng,
    latencies: Latencies,
    hosts: BTreeMap<IpAddr, Place>,
    listeners: BTreeMap<SocketAddr, Bound>,
    clogged: BTreeSet<(IpAddr, IpAddr)>,
    loss_per_million: u32,
    /// A latency spike's one-way range in microseconds, replacing every link's while it lasts.
    spike_us: Option<(u64, u64)>,
    stats: NetStats,
    next_port: u16,
}

struct Bound {
    host: IpAddr,
    incoming: mpsc::UnboundedSender<(BoxStream, SocketAddr)>,
}

/// What a chunk written now is due to do.
enum Due {
    /// Arrive at this time.
    At(Instant),
    /// Be retransmitted at this time, the next one `backoff` later if the link is still down.
    Retransmit { at: Instant, backoff: Duration },
}

impl SimNet {
    /// A network with `latencies`, drawing from `seed`'s network stream.
    pub fn new(seed: u64, latencies: Latencies) -> SimNet {
        SimNet(Arc::new(Mutex::new(NetState {
            rng: seeded_rng(seed, NET_RNG_STREAM),
            latencies,
            hosts: BTreeMap::new(),
            listeners: BTreeMap::new(),
            clogged: BTreeSet::new(),
            loss_per_million: 0,
            spike_us: None,
            stats: NetStats::default(),
            next_port: EPHEMERAL_PORT_FIRST,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a host and returns its view of the network.
    pub fn host(&self, ip: IpAddr, place: Place) -> HostNet {
        self.lock().hosts.insert(ip, place);
        HostNet { net: self.clone(), ip }
    }

    /// Stops every chunk from `src` to `dst` until [`SimNet::unclog_link`].
    pub fn clog_link(&self, src: IpAddr, dst: IpAddr) {
        self.lock().clogged.insert((src, dst));
    }

    /// Opens the link from `src` to `dst` again.
    pub fn unclog_link(&self, src: IpAddr, dst: IpAddr) {
        self.lock().clogged.remove(&(src, dst));
    }

    /// Loses each chunk (and each retransmission) with this probability, in parts per million.
    pub fn set_loss_per_million(&self, loss_per_million: u32) {
        self.lock().loss_per_million = loss_per_million;
    }

    /// Replaces every link's latency with `spike_us` (one way, microseconds), or restores them.
    pub fn set_spike_us(&self, spike_us: Option<(u64, u64)>) {
        self.lock().spike_us = spike_us;
    }

    /// Counts so far.
    pub fn stats(&self) -> NetStats {
        self.lock().stats
    }
}

impl NetState {
    fn draw_us(&mut self, (min, max): (u64, u64)) -> u64 {
        min + (next_f64(&mut self.rng) * (max.saturating_sub(min) + 1) as f64) as u64
    }

    /// The link's one-way latency now, or `None` when it is clogged or the chunk is lost.
    fn try_link(&mut self, src: IpAddr, dst: IpAddr) -> Option<Duration> {
        if self.clogged.contains(&(src, dst)) {
            return None;
        }
        if self.loss_per_million > 0 && next_f64(&mut self.rng) * 1e6 < f64::from(self.loss_per_million) {
            return None;
        }
        let range = match self.spike_us {
            Some(spike) => spike,
            None => match (self.hosts.get(&src), self.hosts.get(&dst)) {
                (Some(&from), Some(&to)) => latency_range_us(&self.latencies, (src, from), (dst, to)),
                _ => self.latencies.cross_zone_us,
            },
        };
        Some(Duration::from_micros(self.draw_us(range)))
    }

    /// When a chunk written now from `src` to `dst` is due.
    fn send(&mut self, src: IpAddr, dst: IpAddr, bytes: usize, now: Instant) -> Due {
        self.stats.messages += 1;
        self.stats.bytes += bytes as u64;
        self.attempt(src, dst, Duration::from_millis(RETRANSMIT_FIRST_MS), now)
    }

    /// A retransmission at `now` of a chunk whose last one waited `backoff`.
    fn retransmit(&mut self, src: IpAddr, dst: IpAddr, backoff: Duration, now: Instant) -> Due {
        self.attempt(src, dst, longer_backoff(backoff), now)
    }

    /// One transmission at `now`: due after the link's latency, or again `backoff` later when
    /// the link is down or the chunk is lost.
    fn attempt(&mut self, src: IpAddr, dst: IpAddr, backoff: Duration, now: Instant) -> Due {
        match self.try_link(src, dst) {
            Some(latency) => Due::At(now + latency),
            None => {
                self.stats.retransmissions += 1;
                Due::Retransmit { at: now + backoff, backoff }
            }
        }
    }
}

/// The pause before the next retransmission after one that waited `backoff`.
fn longer_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(Duration::from_millis(RETRANSMIT_MAX_MS))
}

/// One host's view of the network: what it binds and dials from.
#[derive(Clone)]
pub struct HostNet {
    net: SimNet,
    ip: IpAddr,
}

impl HostNet {
    /// A dialler for the workloads client on this host.
    pub fn dialer(&self) -> Dialer {
        let host = self.clone();
        Arc::new(move |address: String| {
            let host = host.clone();
            Box::pin(async move {
                let addr: SocketAddr = address
                    .parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("not an address: {address}")))?;
                let stream = host.dial(addr).await?;
                Ok(Box::new(stream) as Box<dyn Connection>)
            })
        })
    }

    /// Connects to `addr`: a handshake's round trip, its packets retransmitted while either
    /// direction is down; refused when nobody listens there.
    pub async fn dial(&self, addr: SocketAddr) -> io::Result<SimStream> {
        let refused = || io::Error::new(io::ErrorKind::ConnectionRefused, format!("connection refused: {addr}"));
        let mut backoff = Duration::from_millis(RETRANSMIT_FIRST_MS);
        let dst = loop {
            let (dst, round_trip) = {
                let mut net = self.net.lock();
                let dst = net.listeners.get(&addr).filter(|bound| !bound.incoming.is_closed()).map(|b| b.host);
                // Nobody listening: a host that is up answers with a reset after a round trip.
                let dst = dst.or_else(|| net.hosts.contains_key(&addr.ip()).then_some(addr.ip()));
                let Some(dst) = dst else {
                    return Err(refused());
                };
                let there = net.try_link(self.ip, dst);
                let back = net.try_link(dst, self.ip);
                (dst, there.zip(back).map(|(there, back)| there + back))
            };
            match round_trip {
                Some(round_trip) => {
                    sleep_exactly(round_trip).await;
                    break dst;
                }
                None => {
                    sleep_exactly(backoff).await;
                    backoff = longer_backoff(backoff);
                }
            }
        };
        let mut net = self.net.lock();
        let Some(bound) = net.listeners.get(&addr).filter(|bound| bound.host == dst && !bound.incoming.is_closed())
        else {
            return Err(refused());
        };
        let incoming = bound.incoming.clone();
        let port = net.next_port;
        net.next_port = net.next_port.checked_add(1).unwrap_or(EPHEMERAL_PORT_FIRST);
        drop(net);
        let local = SocketAddr::new(self.ip, port);
        let there = Arc::new(Mutex::new(Pipe::new(self.ip, dst)));
        let back = Arc::new(Mutex::new(Pipe::new(dst, self.ip)));
        let client = SimStream::new(self.net.clone(), back.clone(), there.clone());
        let server = SimStream::new(self.net.clone(), there, back);
        incoming.send((Box::new(server), local)).map_err(|_| refused())?;
        Ok(client)
    }
}

impl Connector for HostNet {
    fn bind(&self, addr: SocketAddr) -> NetFuture<'_, Box<dyn Listener>> {
        Box::pin(async move {
            let mut net = self.net.lock();
            if net.listeners.get(&addr).is_some_and(|bound| !bound.incoming.is_closed()) {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("address in use: {addr}")));
            }
            let (incoming, accepted) = mpsc::unbounded_channel();
            net.listeners.insert(addr, Bound { host: self.ip, incoming });
            Ok(Box::new(SimListener { addr, accepted }) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: SocketAddr) -> NetFuture<'_, BoxStream> {
        Box::pin(async move { Ok(Box::new(self.dial(addr).await?) as BoxStream) })
    }
}

/// A listening socket of the simulated network.
pub struct SimListener {
    addr: SocketAddr,
    accepted: mpsc::UnboundedReceiver<(BoxStream, SocketAddr)>,
}

impl Listener for SimListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn accept(&mut self) -> NetFuture<'_, (BoxStream, SocketAddr)> {
        Box::pin(async move {
            self.accepted.recv().await.ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "network gone"))
        })
    }
}

/// One direction of a connection.
struct Pipe {
    src: IpAddr,
    dst: IpAddr,
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already read.
    read_offset: usize,
    /// Bytes written and not yet read.
    unread_bytes: usize,
    /// The latest arrival given to a chunk; no later chunk arrives before it.
    last_arrival: Option<Instant>,
    reader: Option<Waker>,
    writer: Option<Waker>,
    writer_gone: bool,
    reader_gone: bool,
}

struct Chunk {
    bytes: Vec<u8>,
    due: Due,
}

impl Pipe {
    fn new(src: IpAddr, dst: IpAddr) -> Pipe {
        Pipe {
            src,
            dst,
            chunks: VecDeque::new(),
            read_offset: 0,
            unread_bytes: 0,
            last_arrival: None,
            reader: None,
            writer: None,
            writer_gone: false,
            reader_gone: false,
        }
    }

    /// Orders an arrival after every earlier one.
    fn ordered(&mut self, due: Due) -> Due {
        match due {
            Due::At(at) => {
                let at = self.last_arrival.map_or(at, |last| at.max(last));
                self.last_arrival = Some(at);
                Due::At(at)
            }
            retransmit => retransmit,
        }
    }
}

fn lock_pipe(pipe: &Mutex<Pipe>) -> MutexGuard<'_, Pipe> {
    pipe.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One end of a connection of the simulated network.
pub struct SimStream {
    net: SimNet,
    incoming: Arc<Mutex<Pipe>>,
    outgoing: Arc<Mutex<Pipe>>,
    sleep: Pin<Box<Sleep>>,
}

impl SimStream {
    fn new(net: SimNet, incoming: Arc<Mutex<Pipe>>, outgoing: Arc<Mutex<Pipe>>) -> SimStream {
        SimStream { net, incoming, outgoing, sleep: Box::pin(tokio::time::sleep(Duration::ZERO)) }
    }

    fn write_chunk(&mut self, cx: &mut Context<'_>, bytes: Vec<u8>) -> Poll<io::Result<usize>> {
        let written = bytes.len();
        let (src, dst) = {
            let mut pipe = lock_pipe(&self.outgoing);
            if pipe.reader_gone {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "connection reset by peer")));
            }
            if written == 0 {
                return Poll::Ready(Ok(0));
            }
            if pipe.unread_bytes >= WINDOW_BYTES {
                pipe.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            (pipe.src, pipe.dst)
        };
        // The network's lock is never taken while a pipe's is held here (a reader takes them
        // the other way round).
        let due = self.net.lock().send(src, dst, written, Instant::now());
        let mut pipe = lock_pipe(&self.outgoing);
        let due = pipe.ordered(due);
        pipe.chunks.push_back(Chunk { bytes, due });
        pipe.unread_bytes += written;
        if let Some(reader) = pipe.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(written))
    }
}

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let now = Instant::now();
            let due_at = {
                let mut guard = lock_pipe(&self.incoming);
                let pipe = &mut *guard;
                let Some(front) = pipe.chunks.front_mut() else {
                    if pipe.writer_gone {
                        return Poll::Ready(Ok(()));
                    }
                    pipe.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                };
                if let Due::Retransmit { at, backoff } = front.due {
                    if at <= now {
                        front.due = self.net.lock().retransmit(pipe.src, pipe.dst, backoff, now);
                    }
                }
                let due_at = match front.due {
                    Due::At(at) => at,
                    Due::Retransmit { at, .. } => at,
                };
                // Chunks behind one that waited for its retransmission arrive after it: only
                // the front chunk is ever read.
                if matches!(front.due, Due::At(at) if at <= now) {
                    let offset = pipe.read_offset;
                    let take = buf.remaining().min(front.bytes.len() - offset);
                    let finished = offset + take == front.bytes.len();
                    buf.put_slice(&front.bytes[offset..offset + take]);
                    pipe.read_offset += take;
                    pipe.unread_bytes -= take;
                    if finished {
                        pipe.chunks.pop_front();
                        pipe.read_offset = 0;
                    }
                    if pipe.unread_bytes < WINDOW_BYTES {
                        if let Some(writer) = pipe.writer.take() {
                            writer.wake();
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                due_at
            };
            self.sleep.as_mut().reset(due_at);
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write_chunk(cx, buf.to_vec())
    }

    /// Writes every slice as one chunk, as a vectored write is one segment on a real socket
    /// (hyper writes a message's head and body together this way).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write_chunk(cx, bufs.iter().flat_map(|slice| slice.iter().copied()).collect())
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pipe = lock_pipe(&self.outgoing);
        pipe.writer_gone = true;
        if let Some(reader) = pipe.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        let mut outgoing = lock_pipe(&self.outgoing);
        outgoing.writer_gone = true;
        if let Some(reader) = outgoing.reader.take() {
            reader.wake();
        }
        drop(outgoing);
        let mut incoming = lock_pipe(&self.incoming);
        incoming.reader_gone = true;
        if let Some(writer) = incoming.writer.take() {
            writer.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATENCIES: Latencies = Latencies {
        same_host_us: (10, 10),
        intra_zone_us: (100, 200),
        cross_zone_us: (500, 900),
        client_us: (300, 300),
    };

    #[test]
    fn links_take_the_latency_of_their_kind() {
        let ip = |last: u8| IpAddr::from([10, 0, 0, last]);
        let zone = |z| Place::Zone(z);
        assert_eq!(latency_range_us(&LATENCIES, (ip(1), zone(0)), (ip(1), zone(0))), (10, 10));
        assert_eq!(latency_range_us(&LATENCIES, (ip(1), zone(0)), (ip(2), zone(0))), (100, 200));
        assert_eq!(latency_range_us(&LATENCIES, (ip(1), zone(0)), (ip(2), zone(1))), (500, 900));
        assert_eq!(latency_range_us(&LATENCIES, (ip(1), Place::Client), (ip(2), zone(1))), (300, 300));
        assert_eq!(latency_range_us(&LATENCIES, (ip(2), zone(1)), (ip(1), Place::Client)), (300, 300));
    }
}
