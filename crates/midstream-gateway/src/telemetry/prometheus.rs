//! Prometheus metrics: the names used across the gateway, the exporter, and the middleware
//! that counts requests by route and status.
//!
//! | metric | kind | meaning |
//! | --- | --- | --- |
//! | `midstream_http_requests_total{route,status}` | counter | requests answered |
//! | `midstream_streams_total{api}` | counter | streams started, by the API the client spoke (`chat`, `responses`, `completions`) |
//! | `midstream_active_streams` | gauge | streams open now |
//! | `midstream_client_connections` | gauge | client connections open now |
//! | `midstream_ttft_seconds` | histogram | request to first content token sent |
//! | `midstream_key_limited_total{limit,key}` | counter | requests refused 429 by a key's own limit (`rpm`, `streams`), by key id |
//! | `midstream_upstream_errors_total{kind}` | counter | connect, timeout, status_4xx, status_5xx, body, idle |
//! | `midstream_recorder_queue_depth` | gauge | records waiting to be written |
//! | `midstream_recorder_dropped_total{reason}` | counter | records that could not be kept |
//! | `midstream_recorder_write_errors_total` | counter | failed batch writes (retried) |
//! | `midstream_recorder_batch_seconds` | histogram | time per batch write |
//! | `midstream_event_log_streams` | gauge | streams the memory event log holds |
//! | `midstream_event_log_bytes` | gauge | bytes of events it holds |
//! | `midstream_event_log_max_bytes`, `_max_events_per_stream`, `_max_age_seconds` | gauge | its bounds |
//! | `midstream_event_log_subscribers` | gauge | `EventSource` and UI-stream subscribers attached |
//! | `midstream_event_log_redis_batches_total` | counter | pipelines the Redis log's writer sent: its round trips to Redis, each carrying every batch queued since the last |
//! | `midstream_event_log_redis_dropped_total` | counter | batches the Redis log could not write |

use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: requests answered, by route and status.
pub const HTTP_REQUESTS: &str = "midstream_http_requests_total";
/// Counter: streams started, by API.
pub const STREAMS: &str = "midstream_streams_total";
/// Gauge: streams open now.
pub const ACTIVE_STREAMS: &str = "midstream_active_streams";
/// Gauge: client connections open now.
pub const CLIENT_CONNECTIONS: &str = "midstream_client_connections";
/// Histogram: seconds from request to first content token sent.
pub const TTFT_SECONDS: &str = "midstream_ttft_seconds";
/// Counter: requests refused by an API key's own limit, by limit and key id.
pub const KEY_LIMITED: &str = "midstream_key_limited_total";
/// Requests refused by the process-wide requests-per-minute bound (`MIDSTREAM_MAX_RPM`).
pub const TOTAL_LIMITED: &str = "midstream_total_rate_limited_total";
/// Counter: upstream failures by kind.
pub const UPSTREAM_ERRORS: &str = "midstream_upstream_errors_total";

/// Gauge: streams the memory event log holds.
pub const EVENT_LOG_STREAMS: &str = "midstream_event_log_streams";
/// Gauge: bytes of events the memory event log holds.
pub const EVENT_LOG_BYTES: &str = "midstream_event_log_bytes";
/// Gauge: the memory event log's byte bound.
pub const EVENT_LOG_MAX_BYTES: &str = "midstream_event_log_max_bytes";
/// Gauge: the memory event log's bound on events per stream.
pub const EVENT_LOG_MAX_EVENTS_PER_STREAM: &str = "midstream_event_log_max_events_per_stream";
/// Gauge: how long the memory event log keeps a finished stream.
pub const EVENT_LOG_MAX_AGE_SECONDS: &str = "midstream_event_log_max_age_seconds";
/// Gauge: subscribers attached.
pub const EVENT_LOG_SUBSCRIBERS: &str = "midstream_event_log_subscribers";
/// Counter: pipelines the Redis event log's writer sent (one round trip each).
pub const EVENT_LOG_REDIS_BATCHES: &str = "midstream_event_log_redis_batches_total";
/// Counter: batches the Redis event log could not write.
pub const EVENT_LOG_REDIS_DROPPED: &str = "midstream_event_log_redis_dropped_total";

/// TTFT buckets: sub-millisecond resolution at the low end (gateway overhead), seconds at the
/// high end (slow models).
const TTFT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide exporter. `metrics` has one global recorder per process, so every app in
/// a process (tests start several) shares it.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(TTFT_SECONDS.to_owned()), TTFT_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
                )
            });
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then this handle renders empty
        // output rather than breaking start-up.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts every response by matched route (not raw path: ids would explode cardinality).
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}
