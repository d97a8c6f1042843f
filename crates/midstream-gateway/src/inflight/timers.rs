//! The time limits of one streaming body — keep-alive comments, the upstream's idle limit and
//! the stream's maximum duration — from one timer that is re-armed only when it fires (never
//! per chunk).

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::layer::InflightConfig;
use super::watch::Tick;
use crate::error::ApiError;

/// See the module docs.
pub(super) struct Timers {
    tick: Tick,
    keepalive: Duration,
    idle_limit: Duration,
    max_duration: Duration,
    /// When the stream must end, whatever it is doing.
    deadline: Instant,
    /// The upstream's last read.
    pub(super) last_upstream: Instant,
    /// The client's last write.
    pub(super) last_sent: Instant,
}

impl Timers {
    /// Starting at `now`, the stream's first byte.
    pub(super) fn new(now: Instant, config: &InflightConfig) -> Timers {
        let deadline = now + config.max_stream_duration;
        Timers {
            tick: Tick::new((now + config.keepalive.min(config.upstream_idle)).min(deadline)),
            keepalive: config.keepalive,
            idle_limit: config.upstream_idle,
            max_duration: config.max_stream_duration,
            deadline,
            last_upstream: now,
            last_sent: now,
        }
    }

    /// Ready when the timer fired.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.tick.poll(cx)
    }

    /// The limit that ran out at `now`, as the error the stream ends with: the maximum
    /// duration in any phase, the idle limit while the upstream is `streaming`.
    pub(super) fn expired(&self, now: Instant, streaming: bool) -> Option<ApiError> {
        if now >= self.deadline {
            return Some(ApiError::StreamTooLong(self.max_duration));
        }
        (streaming && now.duration_since(self.last_upstream) >= self.idle_limit)
            .then_some(ApiError::UpstreamIdle(self.idle_limit))
    }

    /// Whether a keep-alive comment is due at `now`.
    pub(super) fn ping_due(&self, now: Instant) -> bool {
        now >= self.last_sent + self.keepalive
    }

    /// Re-arms the timer for whatever is due next after `now`.
    pub(super) fn rearm(&mut self, now: Instant, streaming: bool) {
        let ping_due = self.last_sent + self.keepalive;
        let next = if now >= ping_due {
            now + self.keepalive
        } else {
            ping_due
        };
        let next = if streaming {
            next.min(self.last_upstream + self.idle_limit)
        } else {
            next
        };
        self.tick.reset(next.min(self.deadline));
    }
}
