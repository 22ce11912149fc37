//! The HTTP server's defences: a client that never finishes its headers is disconnected, and
//! the server keeps answering others meanwhile.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use squall_engine::api::Service;
use squall_engine::db::Database;
use squall_engine::http::{serve_with, HttpConfig};
use squall_engine::storage::MemStore;

fn start(config: HttpConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = squall_engine::net::Network::tcp().bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let db = Arc::new(Database::open(Arc::new(MemStore::new())).unwrap());
            serve_with(
                listener,
                Service::new(db),
                async move {
                    let _ = stop_rx.await;
                },
                config,
            )
            .await
            .unwrap();
        });
    });
    (addr_rx.recv_timeout(Duration::from_secs(10)).unwrap(), stop_tx, thread)
}

fn list_tables(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = "{}";
    write!(stream, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn stalled_headers_are_cut_off_while_others_are_served() {
    let (addr, stop, thread) = start(HttpConfig { header_read_timeout_ms: 300, ..HttpConfig::default() });
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Another client is served while the slow one stalls.
    assert!(list_tables(addr).starts_with("HTTP/1.1 200"), "a normal request is answered");
    let started = Instant::now();
    let mut buffer = [0u8; 512];
    // The server closes the stalled connection (maybe after an error response): reads reach
    // end of file well before our own 10 s guard.
    loop {
        match slow.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("the stalled connection was not closed: {e}"),
        }
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    let _ = stop.send(());
    thread.join().unwrap();
}
