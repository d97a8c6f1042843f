//! Each key's own limits, from its record: requests per minute (GCRA, `governor`) and streams
//! open at once. Both answer at once: a request over a limit is refused with 429 and
//! `Retry-After`, never queued. Streams at once hold per process; requests per minute too,
//! unless Redis shares them ([`super::shared_rate`]). The gateway-wide limits
//! (`MIDSTREAM_MAX_STREAMS`) still apply on top.
//!
//! Limiter state lives per key id, so a key's budget survives the re-validation that every
//! key change triggers ([`super::keys`]); it is rebuilt only when the key's own limits change.
//! Bounded by the number of keys in the database (only authenticated keys get a limiter).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use midstream_store::ApiKey;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::prometheus as metric;

/// Why a key's request was refused (429).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The key's requests per minute are spent.
    #[error("this API key's limit of {limit} requests per minute is reached; retry after {} s", retry_after.as_secs())]
    Rate {
        /// The key's `rpm`.
        limit: u32,
        /// When the next request would be allowed (rounded up to whole seconds).
        retry_after: Duration,
    },
    /// The key has as many streams open as it may.
    #[error("this API key's limit of {limit} streams open at once is reached")]
    Streams {
        /// The key's `max_streams`.
        limit: u32,
    },
}

impl LimitExceeded {
    /// OpenAI's `code` for it.
    pub fn code(&self) -> &'static str {
        match self {
            LimitExceeded::Rate { .. } => "rate_limit_exceeded",
            LimitExceeded::Streams { .. } => "concurrent_streams_exceeded",
        }
    }

    /// The `Retry-After` seconds: when a request is allowed again, or 1 s for streams (which
    /// free up as others end).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            LimitExceeded::Rate { retry_after, .. } => retry_after.as_secs().max(1),
            LimitExceeded::Streams { .. } => 1,
        }
    }
}

/// One key's limits.
#[derive(Debug)]
pub struct KeyLimiter {
    key_id: String,
    rpm: Option<(u32, DefaultDirectRateLimiter)>,
    streams: Option<(u32, Arc<Semaphore>)>,
}

impl KeyLimiter {
    fn new(key: &ApiKey, rpm: Option<NonZeroU32>, streams: Option<NonZeroU32>) -> KeyLimiter {
        KeyLimiter {
            key_id: key.id.clone(),
            rpm: rpm.map(|rpm| (rpm.get(), RateLimiter::direct(Quota::per_minute(rpm)))),
            streams: streams.map(|n| (n.get(), Arc::new(Semaphore::new(n.get() as usize)))),
        }
    }

    fn same_limits(&self, rpm: Option<NonZeroU32>, streams: Option<NonZeroU32>) -> bool {
        self.rpm.as_ref().map(|(n, _)| *n) == rpm.map(NonZeroU32::get)
            && self.streams.as_ref().map(|(n, _)| *n) == streams.map(NonZeroU32::get)
    }

    /// The key's requests per minute, if it has such a limit.
    pub fn rpm(&self) -> Option<u32> {
        self.rpm.as_ref().map(|(limit, _)| *limit)
    }

    /// Counts one request against the key's requests per minute, in this process.
    pub fn check_rate(&self) -> Result<(), LimitExceeded> {
        let Some((_, limiter)) = &self.rpm else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            self.rate_refused(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// The refusal of a request over the key's requests per minute, next allowed after `wait`
    /// (counted in `/metrics`).
    pub fn rate_refused(&self, wait: Duration) -> LimitExceeded {
        self.refused("rpm");
        LimitExceeded::Rate {
            limit: self.rpm().unwrap_or_default(),
            retry_after: Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
        }
    }

    /// A slot among the key's streams open at once, held until the stream ends (`None` when
    /// the key has no such limit).
    fn stream_slot(&self) -> Result<Option<OwnedSemaphorePermit>, LimitExceeded> {
        let Some((limit, slots)) = &self.streams else {
            return Ok(None);
        };
        match Arc::clone(slots).try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                self.refused("streams");
                Err(LimitExceeded::Streams { limit: *limit })
            }
        }
    }

    fn refused(&self, limit: &'static str) {
        metrics::counter!(metric::KEY_LIMITED, "limit" => limit, "key" => self.key_id.clone())
            .increment(1);
    }
}

/// The limiters of every key this process has seen, by key id.
#[derive(Debug, Default)]
pub struct KeyLimits {
    by_key: Mutex<HashMap<String, Arc<KeyLimiter>>>,
}

impl KeyLimits {
    /// The limiter for `key`: the one it already has, unless its limits changed.
    pub(super) fn for_key(&self, key: &ApiKey) -> Arc<KeyLimiter> {
        let positive = |n: Option<i64>| {
            n.and_then(|n| u32::try_from(n).ok())
                .and_then(NonZeroU32::new)
        };
        let (rpm, streams) = (positive(key.rpm), positive(key.max_streams));
        let Ok(mut by_key) = self.by_key.lock() else {
            // A panic while holding the lock: limits still apply, with fresh state.
            return Arc::new(KeyLimiter::new(key, rpm, streams));
        };
        match by_key.get(&key.id) {
            Some(limiter) if limiter.same_limits(rpm, streams) => Arc::clone(limiter),
            _ => {
                let limiter = Arc::new(KeyLimiter::new(key, rpm, streams));
                by_key.insert(key.id.clone(), Arc::clone(&limiter));
                limiter
            }
        }
    }

    /// A slot among `key_id`'s streams open at once (`None` in open mode or when the key has
    /// no such limit), or 429.
    pub fn stream_slot(
        &self,
        key_id: Option<&str>,
    ) -> Result<Option<OwnedSemaphorePermit>, LimitExceeded> {
        let Some(key_id) = key_id else {
            return Ok(None);
        };
        let limiter = self
            .by_key
            .lock()
            .ok()
            .and_then(|by_key| by_key.get(key_id).cloned());
        limiter.map_or(Ok(None), |limiter| limiter.stream_slot())
    }
}

/// The slots a stream holds until it ends: one of the gateway's, and one of its key's when the
/// key has a limit of its own.
#[derive(Debug)]
pub struct StreamSlots {
    _gateway: OwnedSemaphorePermit,
    _key: Option<OwnedSemaphorePermit>,
}

impl StreamSlots {
    /// Holds both.
    pub fn new(gateway: OwnedSemaphorePermit, key: Option<OwnedSemaphorePermit>) -> StreamSlots {
        StreamSlots {
            _gateway: gateway,
            _key: key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rpm: Option<i64>, max_streams: Option<i64>) -> ApiKey {
        ApiKey {
            id: "key-1".into(),
            name: "test".into(),
            prefix: "msk_000000".into(),
            created_at: 0,
            revoked_at: None,
            expires_at: None,
            rpm,
            max_streams,
        }
    }

    #[test]
    fn the_rate_is_spent_then_refused_with_a_retry_after() {
        let limits = KeyLimits::default();
        let limiter = limits.for_key(&key(Some(2), None));
        assert!(limiter.check_rate().is_ok() && limiter.check_rate().is_ok());
        let refused = limiter
            .check_rate()
            .expect_err("the third request in a minute");
        assert_eq!(refused.code(), "rate_limit_exceeded");
        // Two per minute: the next cell is due in about 30 s.
        assert!(
            (1..=30).contains(&refused.retry_after_secs()),
            "{refused:?}"
        );
    }

    #[test]
    fn a_revalidation_keeps_the_budget_and_a_new_limit_resets_it() {
        let limits = KeyLimits::default();
        assert!(limits.for_key(&key(Some(1), None)).check_rate().is_ok());
        assert!(
            limits.for_key(&key(Some(1), None)).check_rate().is_err(),
            "the same limits share the spent budget"
        );
        assert!(limits.for_key(&key(Some(5), None)).check_rate().is_ok());
    }

    #[test]
    fn streams_are_held_until_their_slot_is_dropped() {
        let limits = KeyLimits::default();
        limits.for_key(&key(None, Some(1)));
        let held = limits.stream_slot(Some("key-1")).expect("a slot");
        assert!(held.is_some());
        assert_eq!(
            limits.stream_slot(Some("key-1")).expect_err("full"),
            LimitExceeded::Streams { limit: 1 }
        );
        drop(held);
        assert!(limits.stream_slot(Some("key-1")).is_ok());
        assert!(matches!(limits.stream_slot(None), Ok(None)), "open mode");
    }
}
