//! The network a node listens and dials on: TCP for a real node, the simulator's own network
//! under simulation.
//!
//! The simulator brings its own network rather than madsim's simulated TCP because a hop on
//! madsim's TCP costs at least a timer tick (a millisecond): every chunk is handed to the reader
//! no sooner than a tick after the reader asks. That floor made every simulated request pay a
//! millisecond per hop whatever the modelled network, and capped a connection at a thousand
//! chunks a second. Behind this small trait the engine does not know which network it runs on.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed connected byte stream.
pub type BoxStream = Box<dyn Stream>;

/// A boxed future the network's calls return.
pub type NetFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A bound listening socket.
pub trait Listener: Send + 'static {
    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The next inbound connection and the address it came from.
    fn accept(&mut self) -> NetFuture<'_, (BoxStream, SocketAddr)>;
}

/// Binds listeners and dials connections.
pub trait Connector: Send + Sync + 'static {
    /// Listens on `addr` (port 0 picks a free port).
    fn bind(&self, addr: SocketAddr) -> NetFuture<'_, Box<dyn Listener>>;

    /// Connects to `addr`.
    fn connect(&self, addr: SocketAddr) -> NetFuture<'_, BoxStream>;
}

/// The network a node uses, as node settings hold it.
#[derive(Clone)]
pub struct Network(pub Arc<dyn Connector>);

impl Network {
    /// The host's TCP stack.
    pub fn tcp() -> Network {
        Network(Arc::new(Tcp))
    }

    /// Listens on `addr`.
    pub async fn bind(&self, addr: SocketAddr) -> io::Result<Box<dyn Listener>> {
        self.0.bind(addr).await
    }

    /// Connects to `addr`.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<BoxStream> {
        self.0.connect(addr).await
    }
}

impl Default for Network {
    fn default() -> Network {
        Network::tcp()
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Network")
    }
}

/// The host's TCP stack. Every stream has Nagle's algorithm off: requests, responses and peer
/// batches are written whole, and none should wait for an acknowledgement of the one before.
pub struct Tcp;

struct TcpAcceptor(tokio::net::TcpListener);

impl Listener for TcpAcceptor {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&mut self) -> NetFuture<'_, (BoxStream, SocketAddr)> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok((Box::new(stream) as BoxStream, peer))
        })
    }
}

impl Connector for Tcp {
    fn bind(&self, addr: SocketAddr) -> NetFuture<'_, Box<dyn Listener>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpAcceptor(listener)) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: SocketAddr) -> NetFuture<'_, BoxStream> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_streams_carry_bytes_both_ways() {
        let network = Network::tcp();
        let mut listener = network.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf.map(|b| b + 1)).await.unwrap();
        });
        let mut client = network.connect(addr).await.unwrap();
        client.write_all(&[1, 2, 3, 4]).await.unwrap();
        let mut answer = [0u8; 4];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [2, 3, 4, 5]);
        server.await.unwrap();
    }
}
