//! A DynamoDB client over HTTP/1.1: SigV4 signing and a pooled keep-alive connection client.
//! It dials over TCP, or over the network a [`client::Dialer`] brings (the simulator's), so the
//! same code drives a real endpoint or a simulated Squall cluster.

pub mod client;
pub mod sigv4;

pub use client::{tcp_dialer, ClientConfig, Clock, Connection, Dialer, Dialing, DriverError, DynamoClient};
pub use sigv4::{Credentials, UtcDateTime};
