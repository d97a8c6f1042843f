//! The MidStream gateway: an OpenAI-compatible streaming proxy that reads the tokens while
//! they stream, starts tools mid-stream and injects their results into the same stream.
//!
//! The binary `midstream` wires these modules together; tests use [`server::Gateway`] to
//! run the real application on `127.0.0.1:0`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use midstream_gateway::config::{Config, ProcessEnv};
//! use midstream_gateway::server::{Gateway, shutdown_signal};
//!
//! let gateway = Gateway::build(Config::load(&ProcessEnv)?).await?;
//! let listener = gateway.bind().await?;
//! gateway.serve(listener, shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod inflight;
mod listener;
pub mod live;
pub mod protocol;
pub mod request_checks;
pub mod routes;
pub mod rules;
pub mod server;
pub mod sse;
pub mod state;
pub mod telemetry;
pub mod upstream;
