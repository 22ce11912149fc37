//! A DynamoDB client over HTTP/1.1: SigV4 signing and a pooled keep-alive connection client.
//! It runs over `tokio::net::TcpStream`, so the same code drives a real endpoint or a simulated
//! Squall cluster under madsim.

pub mod client;
pub mod flush;
pub mod sigv4;

pub use client::{ClientConfig, Clock, DriverError, DynamoClient};
pub use sigv4::{Credentials, UtcDateTime};
