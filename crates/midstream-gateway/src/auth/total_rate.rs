//! The process-wide bound on requests per minute (`MIDSTREAM_MAX_RPM`): past it, every `/v1`
//! request answers 503 with `Retry-After` at once, whoever sends it — the gateway protecting
//! itself and its upstreams, before any key is looked up. Each key's own limits
//! ([`super::limits`]) come on top.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::telemetry::prometheus as metric;

/// See the module docs.
#[derive(Debug)]
pub struct TotalRate {
    limit: NonZeroU32,
    limiter: DefaultDirectRateLimiter,
}

impl TotalRate {
    /// A bound of `rpm` requests per minute (a burst of as many); `None` for 0, no bound.
    pub fn new(rpm: u32) -> Option<TotalRate> {
        let limit = NonZeroU32::new(rpm)?;
        Some(TotalRate {
            limit,
            limiter: RateLimiter::direct(Quota::per_minute(limit)),
        })
    }

    /// Counts one request: the refusal when the minute's budget is spent.
    pub fn check(&self) -> Result<(), ApiError> {
        self.limiter.check().map_err(|not_until| {
            metrics::counter!(metric::TOTAL_LIMITED).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::GatewayRateLimited {
                limit: self.limit.get(),
                retry_after: Duration::from_secs(wait.as_secs() + 1),
            }
        })
    }
}

/// Middleware: counts the request against the process-wide bound, if there is one.
pub async fn limit_total(
    State(total): State<Option<Arc<TotalRate>>>,
    request: Request,
    next: Next,
) -> Response {
    match total.as_deref().map(TotalRate::check) {
        Some(Err(refused)) => refused.into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minutes_budget_is_spent_then_refused_with_a_wait() {
        assert!(TotalRate::new(0).is_none(), "0 is no bound");
        let total = TotalRate::new(3).expect("a bound");
        for _ in 0..3 {
            assert!(total.check().is_ok());
        }
        match total.check() {
            Err(ApiError::GatewayRateLimited { limit, retry_after }) => {
                assert_eq!(limit, 3);
                assert!(retry_after >= Duration::from_secs(1));
                assert!(retry_after <= Duration::from_secs(21));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
