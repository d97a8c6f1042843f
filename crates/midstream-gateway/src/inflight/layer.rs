//! [`InflightLayer`]: configuration shared by every stream, cloned into each service.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower::Layer;

use super::service::Inflight;

/// Bounds and timers of the inflight layer.
#[derive(Debug, Clone)]
pub struct InflightConfig {
    /// Interval of `: ping` comments on a quiet stream.
    pub keepalive: Duration,
    /// Longest upstream silence before the stream fails.
    pub upstream_idle: Duration,
    /// Longest a streaming body may run, from its first byte, before it ends with an error
    /// (a stuck tool loop or a model that never stops must not hold a stream forever).
    pub max_stream_duration: Duration,
    /// Longest wait for a stream's row before its first byte is sent anyway.
    pub record_open_wait: Duration,
    /// Largest SSE frame accepted from an upstream.
    pub max_frame_bytes: usize,
    /// Largest non-streaming completion body accepted from an upstream.
    pub max_completion_bytes: usize,
    /// Cancelled when the gateway's shutdown grace period is over: open streams then end
    /// with an error event and are recorded as `interrupted`.
    pub shutdown: CancellationToken,
}

impl Default for InflightConfig {
    fn default() -> Self {
        InflightConfig {
            keepalive: Duration::from_secs(15),
            upstream_idle: Duration::from_secs(300),
            max_stream_duration: Duration::from_secs(3600),
            record_open_wait: Duration::from_secs(2),
            max_frame_bytes: 1 << 20,
            max_completion_bytes: 16 << 20,
            shutdown: CancellationToken::new(),
        }
    }
}

/// Wraps the response body of a completion route in the inflight machinery. A response with
/// no [`PlanSlot`](super::PlanSlot) in its extensions (an error, another route) passes untouched.
#[derive(Debug, Clone)]
pub struct InflightLayer {
    config: Arc<InflightConfig>,
}

impl InflightLayer {
    /// A layer with this configuration.
    pub fn new(config: InflightConfig) -> InflightLayer {
        InflightLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for InflightLayer {
    type Service = Inflight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Inflight::new(inner, self.config.clone())
    }
}
