//! Reading [`LiveConfig`] from the environment.

use std::time::Duration;

use super::env::{Env, EnvExt};
use super::{ConfigError, Secret, usize_of};
use crate::live::{LiveConfig, MemoryBounds, RedisBounds};

/// The shortest `MIDSTREAM_STREAM_SECRET` accepted: 32 bytes, the HMAC-SHA256 block's half.
const MIN_SECRET_BYTES: usize = 32;

/// The settings, with `keepalive` as given (the caller knows the gateway's).
pub(super) fn live_config(env: &dyn Env, keepalive: Duration) -> Result<LiveConfig, ConfigError> {
    let defaults = LiveConfig::default();
    let secret = match env.get("MIDSTREAM_STREAM_SECRET") {
        Some(secret) if secret.len() < MIN_SECRET_BYTES => {
            return Err(ConfigError::invalid(
                "MIDSTREAM_STREAM_SECRET",
                "(hidden)",
                "at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        other => other.map(Secret::new),
    };
    let memory = MemoryBounds {
        max_events_per_stream: usize_of(
            env,
            "MIDSTREAM_EVENT_LOG_MAX_EVENTS",
            defaults.memory.max_events_per_stream,
        )?,
        max_bytes: usize_of(
            env,
            "MIDSTREAM_EVENT_LOG_MAX_BYTES",
            defaults.memory.max_bytes,
        )?,
        max_age: Duration::from_secs(env.positive_or(
            "MIDSTREAM_EVENT_LOG_MAX_AGE_SECS",
            defaults.memory.max_age.as_secs(),
        )?),
    };
    let redis = RedisBounds {
        max_len: usize_of(env, "MIDSTREAM_REDIS_EVENTS_MAXLEN", defaults.redis.max_len)?,
        ttl: Duration::from_secs(env.positive_or(
            "MIDSTREAM_REDIS_EVENTS_TTL_SECS",
            defaults.redis.ttl.as_secs(),
        )?),
    };
    Ok(LiveConfig {
        secret,
        token_ttl: Duration::from_secs(env.positive_or(
            "MIDSTREAM_STREAM_TOKEN_TTL_SECS",
            defaults.token_ttl.as_secs(),
        )?),
        memory,
        redis_url: env.get("MIDSTREAM_REDIS_URL"),
        redis,
        retry: defaults.retry,
        keepalive,
    })
}
