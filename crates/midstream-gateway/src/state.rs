//! What every handler shares.

use std::sync::Arc;

use midstream_store::{Recorder, Store};
use tokio::sync::Semaphore;

use crate::auth::Auth;
use crate::config::Config;
use crate::inflight::{Analyzer, InflightConfig};
use crate::live::Hub;
use crate::upstream::Router;

/// Shared application state; cheap to clone (everything is behind `Arc` or a handle).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// The batched writer of stream records.
    pub recorder: Recorder,
    /// Model name → upstream.
    pub router: Arc<Router>,
    /// One permit per open stream, bounded by `MIDSTREAM_MAX_STREAMS`.
    pub streams: Arc<Semaphore>,
    /// How `/v1` requests are authenticated.
    pub auth: Arc<Auth>,
    /// Compiled rules and registered tools.
    pub analyzer: Analyzer,
    /// The inflight layer's settings, for the streams no client connection drives
    /// (`POST /v1/streams`), which the handler wraps itself.
    pub inflight: Arc<InflightConfig>,
    /// Browser streams: event logs, running streams, tokens.
    pub hub: Hub,
}
