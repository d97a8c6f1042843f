//! `GET /metrics`: Prometheus text format.

use http::header;

/// Renders every metric of the process.
pub async fn metrics() -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::prometheus::handle().render(),
    )
}
