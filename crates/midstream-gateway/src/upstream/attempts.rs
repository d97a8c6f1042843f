//! Retries, fallbacks and circuit breakers for the upstream request — all of it before the
//! first byte reaches the client, so a retry can never duplicate text the client already has.
//!
//! A request goes to its route's targets in order: the primary, then each fallback. A target
//! whose circuit is open (it failed [`BreakerPolicy::failures`] times in a row) is skipped
//! until its cool-down ends; then one trial request goes through, and its outcome closes or
//! re-opens the circuit. A target that fails with something worth retrying (no connection, no
//! response in time, 429, 5xx) is retried with exponential backoff and full jitter, waiting
//! what its `Retry-After` asks instead when it says; a wait longer than the policy allows moves
//! on to the next target instead. Any other answer (a 4xx such as 400 or 401) is the client's
//! business and goes back at once. Once a stream's body has started, nothing here runs again:
//! a failure after the first byte ends the stream with the in-band error.
//!
//! Every attempt, skipped targets included, is handed to the caller for the record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;

use super::{Route, Upstream, UpstreamError, UpstreamResponse};
use crate::protocol::request::ChatRequest;

/// How often and how patiently one target is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try of each target (`MIDSTREAM_UPSTREAM_RETRIES`).
    pub retries: u32,
    /// The first backoff; each retry doubles it (`MIDSTREAM_UPSTREAM_RETRY_BASE_MS`).
    pub base: Duration,
    /// The longest wait before a retry, also for `Retry-After`
    /// (`MIDSTREAM_UPSTREAM_RETRY_MAX_MS`).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(2),
        }
    }
}

/// When a target's circuit opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed requests that open it (`MIDSTREAM_UPSTREAM_BREAKER_FAILURES`; 0: never).
    pub failures: u32,
    /// How long it stays open before a trial request (`MIDSTREAM_UPSTREAM_BREAKER_COOLDOWN_SECS`).
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failures: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// One attempt, as the record keeps it (a `upstream.attempt` event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// `upstream.attempt`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The target's upstream name and model.
    pub upstream: String,
    /// The model sent.
    pub model: String,
    /// 0 for the primary, then each fallback.
    pub target: usize,
    /// 1 for the first try of this target.
    pub try_number: u32,
    /// `ok`, `failed`, or `skipped` (its circuit was open).
    pub outcome: &'static str,
    /// The upstream's status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds (whole microseconds).
    pub duration_ms: f64,
}

/// What [`Resilience::send`] got: the answer and which target gave it.
pub struct Answered {
    /// The upstream's response.
    pub response: UpstreamResponse,
    /// The index of the target that answered (0: the primary).
    pub target: usize,
}

/// The breakers of every upstream, and the policies. One per gateway.
#[derive(Debug, Default)]
pub struct Resilience {
    retry: RetryPolicy,
    breaker: BreakerPolicy,
    breakers: Mutex<HashMap<String, Breaker>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// A trial request is on its way (the cool-down ended): others still skip.
    trial: bool,
}

/// Whether a target may be tried now.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Closed,
    Trial,
    Open,
}

impl Resilience {
    /// With these policies.
    pub fn new(retry: RetryPolicy, breaker: BreakerPolicy) -> Resilience {
        Resilience {
            retry,
            breaker,
            breakers: Mutex::default(),
        }
    }

    /// Sends `request` to the route's targets in order until one answers; `attempt` gets every
    /// attempt for the record. The error is the last target's last failure.
    pub async fn send(
        &self,
        route: &Route,
        request: &ChatRequest,
        mut attempt: impl FnMut(Attempt),
    ) -> Result<Answered, UpstreamError> {
        let mut last_error = None;
        for (index, (upstream, model)) in route.targets().enumerate() {
            let name = upstream.name().to_owned();
            if self.admit(&name, Instant::now()) == Admission::Open {
                attempt(Attempt::skipped(&name, model, index));
                continue;
            }
            match self
                .try_target(upstream, model, index, request, &mut attempt)
                .await
            {
                Ok(response) => {
                    self.succeeded(&name);
                    return Ok(Answered {
                        response,
                        target: index,
                    });
                }
                Err(error) if worth_another_target(&error) => {
                    self.failed(&name, Instant::now());
                    last_error = Some(error);
                }
                Err(error) => {
                    // The upstream answered, and what it said is for the client: the circuit
                    // stays as it was (a 400 says nothing about the upstream's health).
                    self.succeeded(&name);
                    return Err(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| UpstreamError::Connect {
            upstream: route.upstream.name().to_owned(),
            detail: "every target's circuit is open after repeated failures; retrying after the cool-down".to_owned(),
        }))
    }

    /// Tries one target, with its retries.
    async fn try_target(
        &self,
        upstream: &Upstream,
        model: &str,
        index: usize,
        request: &ChatRequest,
        attempt: &mut impl FnMut(Attempt),
    ) -> Result<UpstreamResponse, UpstreamError> {
        let mut try_number = 0;
        loop {
            try_number += 1;
            let started = Instant::now();
            let result = upstream.chat(request, model).await;
            let mut record = Attempt::new(upstream.name(), model, index, try_number);
            record.duration_ms = whole_micros(started.elapsed());
            let error = match result {
                Ok(response) => {
                    record.status = Some(200);
                    attempt(record);
                    return Ok(response);
                }
                Err(error) => error,
            };
            record.outcome = "failed";
            record.status = match &error {
                UpstreamError::Status(reply) => Some(reply.status.as_u16()),
                _ => None,
            };
            record.error = Some(error.to_string());
            attempt(record);
            if !worth_another_target(&error) || try_number > self.retry.retries {
                return Err(error);
            }
            let wait = match retry_after(&error) {
                Some(asked) if asked > self.retry.max_wait => return Err(error),
                Some(asked) => asked,
                None => self.backoff(try_number),
            };
            tracing::debug!(upstream = upstream.name(), try_number, wait_ms = wait.as_millis() as u64, %error, "retrying the upstream");
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with full jitter: a random wait up to `base × 2^(n-1)`, capped.
    fn backoff(&self, try_number: u32) -> Duration {
        let ceiling = self
            .retry
            .base
            .saturating_mul(1 << try_number.saturating_sub(1).min(16))
            .min(self.retry.max_wait);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    fn admit(&self, upstream: &str, now: Instant) -> Admission {
        let Ok(mut breakers) = self.breakers.lock() else {
            return Admission::Closed;
        };
        let Some(breaker) = breakers.get_mut(upstream) else {
            return Admission::Closed;
        };
        match breaker.open_until {
            None => Admission::Closed,
            Some(until) if now < until || breaker.trial => Admission::Open,
            Some(_) => {
                breaker.trial = true;
                Admission::Trial
            }
        }
    }

    fn succeeded(&self, upstream: &str) {
        if let Ok(mut breakers) = self.breakers.lock() {
            breakers.remove(upstream);
        }
    }

    fn failed(&self, upstream: &str, now: Instant) {
        let Ok(mut breakers) = self.breakers.lock() else {
            return;
        };
        let breaker = breakers.entry(upstream.to_owned()).or_default();
        breaker.consecutive_failures += 1;
        let trial_failed = std::mem::take(&mut breaker.trial);
        let opens = self.breaker.failures > 0
            && (trial_failed || breaker.consecutive_failures >= self.breaker.failures);
        if opens {
            if breaker.open_until.is_none() || trial_failed {
                tracing::warn!(
                    upstream,
                    failures = breaker.consecutive_failures,
                    cooldown_s = self.breaker.cooldown.as_secs(),
                    "upstream circuit open: its requests go to the fallbacks until the cool-down ends"
                );
            }
            breaker.open_until = Some(now + self.breaker.cooldown);
        }
    }
}

impl Attempt {
    /// Try `try_number` of the target at `target`, answered (`ok`) until it says otherwise.
    fn new(upstream: &str, model: &str, target: usize, try_number: u32) -> Attempt {
        Attempt {
            kind: "upstream.attempt",
            upstream: upstream.to_owned(),
            model: model.to_owned(),
            target,
            try_number,
            outcome: "ok",
            status: None,
            error: None,
            duration_ms: 0.0,
        }
    }

    fn skipped(upstream: &str, model: &str, target: usize) -> Attempt {
        Attempt {
            outcome: "skipped",
            error: Some("circuit open after repeated failures".to_owned()),
            ..Attempt::new(upstream, model, target, 0)
        }
    }
}

/// No connection, no answer in time, 429 or 5xx: another try (or target) may do better.
fn worth_another_target(error: &UpstreamError) -> bool {
    match error {
        UpstreamError::Connect { .. } | UpstreamError::Timeout { .. } => true,
        UpstreamError::Status(reply) => {
            reply.status.as_u16() == 429 || reply.status.is_server_error()
        }
        UpstreamError::Body(_) => false,
    }
}

/// The wait a 429 or 503 asks for in `Retry-After` (seconds; an HTTP date is not honoured and
/// falls back to the backoff).
fn retry_after(error: &UpstreamError) -> Option<Duration> {
    let UpstreamError::Status(reply) = error else {
        return None;
    };
    let seconds: f64 = reply
        .headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Milliseconds rounded to whole microseconds (records carry no float noise).
fn whole_micros(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resilience(failures: u32) -> Resilience {
        Resilience::new(
            RetryPolicy::default(),
            BreakerPolicy {
                failures,
                cooldown: Duration::from_secs(10),
            },
        )
    }

    #[test]
    fn a_circuit_opens_after_consecutive_failures_and_admits_one_trial_after_the_cooldown() {
        let breakers = resilience(2);
        let now = Instant::now();
        assert_eq!(breakers.admit("a", now), Admission::Closed);
        breakers.failed("a", now);
        assert_eq!(breakers.admit("a", now), Admission::Closed, "one failure");
        breakers.failed("a", now);
        assert_eq!(breakers.admit("a", now), Admission::Open);
        let later = now + Duration::from_secs(11);
        assert_eq!(breakers.admit("a", later), Admission::Trial);
        assert_eq!(
            breakers.admit("a", later),
            Admission::Open,
            "one trial at a time"
        );
        breakers.failed("a", later);
        assert_eq!(
            breakers.admit("a", later + Duration::from_secs(5)),
            Admission::Open,
            "a failed trial re-opens it for a whole cool-down"
        );
        let much_later = later + Duration::from_secs(11);
        assert_eq!(breakers.admit("a", much_later), Admission::Trial);
        breakers.succeeded("a");
        assert_eq!(breakers.admit("a", much_later), Admission::Closed);
        assert_eq!(breakers.admit("b", now), Admission::Closed, "per upstream");
    }

    #[test]
    fn zero_failures_means_the_circuit_never_opens() {
        let breakers = resilience(0);
        let now = Instant::now();
        for _ in 0..100 {
            breakers.failed("a", now);
        }
        assert_eq!(breakers.admit("a", now), Admission::Closed);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let policy = resilience(5);
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_secs(2));
        }
    }

    #[test]
    fn only_unreachable_timeouts_429_and_5xx_are_worth_another_try() {
        let status = |code: u16, retry: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            if let Some(retry) = retry {
                headers.insert(http::header::RETRY_AFTER, retry.parse().expect("value"));
            }
            UpstreamError::Status(Box::new(super::super::ErrorReply {
                upstream: "u".to_owned(),
                status: http::StatusCode::from_u16(code).expect("status"),
                body: bytes::Bytes::new(),
                headers,
            }))
        };
        assert!(worth_another_target(&status(429, None)));
        assert!(worth_another_target(&status(503, None)));
        assert!(!worth_another_target(&status(400, None)));
        assert!(!worth_another_target(&status(401, None)));
        assert!(!worth_another_target(&UpstreamError::Body(
            "reset".to_owned()
        )));
        assert_eq!(
            retry_after(&status(429, Some("1.5"))),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&status(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"))),
            None
        );
    }
}
