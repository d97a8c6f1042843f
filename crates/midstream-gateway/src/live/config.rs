//! [`LiveConfig`]: the settings of browser streams, with their defaults (defined here only).

use std::time::Duration;

use super::memory::MemoryBounds;
use super::redis::RedisBounds;
use crate::config::Secret;

/// Browser streams: tokens, logs, reconnects.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// `MIDSTREAM_STREAM_SECRET`: signs `events_url` tokens. When unset, one is generated at
    /// first start and kept in the database, so processes sharing it agree.
    pub secret: Option<Secret>,
    /// `MIDSTREAM_STREAM_TOKEN_TTL_SECS`: how long an `events_url` stays valid.
    pub token_ttl: Duration,
    /// `MIDSTREAM_EVENT_LOG_*`: the memory log's bounds.
    pub memory: MemoryBounds,
    /// `MIDSTREAM_REDIS_URL`: the shared log, when set.
    pub redis_url: Option<String>,
    /// `MIDSTREAM_REDIS_EVENTS_MAXLEN`, `MIDSTREAM_REDIS_EVENTS_TTL_SECS`.
    pub redis: RedisBounds,
    /// The `retry:` sent to `EventSource`: how long a browser waits before reconnecting.
    pub retry: Duration,
    /// Interval of `: ping` comments to subscribers.
    pub keepalive: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            secret: None,
            token_ttl: Duration::from_secs(600),
            memory: MemoryBounds::default(),
            redis_url: None,
            redis: RedisBounds::default(),
            retry: Duration::from_millis(2000),
            keepalive: Duration::from_secs(15),
        }
    }
}
