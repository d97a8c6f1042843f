//! Reading the upstream retry and circuit-breaker policies from the environment.

use std::time::Duration;

use super::ConfigError;
use super::env::{Env, EnvExt};
use crate::upstream::attempts::{BreakerPolicy, RetryPolicy};

/// `MIDSTREAM_UPSTREAM_RETRIES`, `_RETRY_BASE_MS`, `_RETRY_MAX_MS`.
pub(super) fn retry_policy(env: &dyn Env) -> Result<RetryPolicy, ConfigError> {
    let defaults = RetryPolicy::default();
    Ok(RetryPolicy {
        retries: env.parse_or(
            "MIDSTREAM_UPSTREAM_RETRIES",
            defaults.retries,
            "a number of retries (0 for none)",
        )?,
        base: Duration::from_millis(
            env.positive_or("MIDSTREAM_UPSTREAM_RETRY_BASE_MS", millis(defaults.base))?,
        ),
        max_wait: Duration::from_millis(
            env.positive_or("MIDSTREAM_UPSTREAM_RETRY_MAX_MS", millis(defaults.max_wait))?,
        ),
    })
}

/// `MIDSTREAM_UPSTREAM_BREAKER_FAILURES`, `_BREAKER_COOLDOWN_SECS`.
pub(super) fn breaker_policy(env: &dyn Env) -> Result<BreakerPolicy, ConfigError> {
    let defaults = BreakerPolicy::default();
    Ok(BreakerPolicy {
        failures: env.parse_or(
            "MIDSTREAM_UPSTREAM_BREAKER_FAILURES",
            defaults.failures,
            "a number of consecutive failures (0: never open)",
        )?,
        cooldown: Duration::from_secs(env.positive_or(
            "MIDSTREAM_UPSTREAM_BREAKER_COOLDOWN_SECS",
            defaults.cooldown.as_secs(),
        )?),
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
