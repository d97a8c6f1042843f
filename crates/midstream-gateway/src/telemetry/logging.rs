//! Log set-up: `tracing-subscriber` with `RUST_LOG` (default `info`), human-readable lines by
//! default, one JSON object per line with `MIDSTREAM_LOG_FORMAT=json`.
//!
//! At `info` nothing logs a prompt, a completion or a secret: request spans carry the method,
//! matched route and request id; stream events carry the stream id.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}
