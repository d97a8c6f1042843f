//! HTTP/1.1 of our own, both ways: the server every client connects to and the client for
//! plain-HTTP upstreams.
//!
//! Why not hyper: hyper keeps, per connection, a read buffer that grows to 16 KiB and an 8 KiB
//! write buffer on the server side, and an 8 KiB read buffer and two channels on the client
//! side. A held stream through the gateway paid ≈ 40 KB for them (valgrind massif), twice
//! what the whole stream may cost (`BENCHMARKS.md`). Here a connection is its socket and a
//! buffer sized by what actually arrives; bodies are cut out of it and handed on as they are.

pub(crate) mod client;
pub(crate) mod connection;
pub(crate) mod framing;
pub(crate) mod request;
pub(crate) mod response;
mod server;

pub(crate) use connection::ConnectionOptions;
pub(crate) use server::serve;
