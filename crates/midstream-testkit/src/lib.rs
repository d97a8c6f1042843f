//! Test kit for MidStream: servers that misbehave on demand, and a client that sees every byte.
//!
//! Dev-only: the gateway binary never depends on this crate.
//!
//! - [`MockUpstream`]: an OpenAI-compatible chat-completions server on `127.0.0.1:0` that
//!   plays a [`Scenario`] per request (text, tool calls, recorded fixtures, garbage, error
//!   statuses, delays, byte-level splits, chunks in several `data:` lines, dropped or stalled
//!   connections) and records what it received and which responses the client abandoned.
//! - [`MockWeather`]: an Open-Meteo-compatible geocoding and forecast API that can be slow,
//!   fail or send garbage, and counts calls and cancelled requests.
//! - [`collect_sse`] and [`SseReader`]: read a `text/event-stream` response by the WHATWG
//!   rules, keeping the raw bytes and any transport error.
//!
//! ```no_run
//! use midstream_testkit::{MockUpstream, Scenario, collect_sse};
//!
//! # async fn demo() {
//! let mock = MockUpstream::start().await;
//! mock.push(Scenario::text(["Hel", "lo"]).then_drop());
//! let response = reqwest::Client::new()
//!     .post(format!("{}/chat/completions", mock.base_url()))
//!     .json(&serde_json::json!({"model": "gpt-4o-mini", "stream": true, "messages": []}))
//!     .send()
//!     .await
//!     .expect("the mock answers");
//! let collected = collect_sse(response).await;
//! assert_eq!(collected.content(), "Hello");
//! assert!(collected.error.is_some(), "the mock dropped the connection");
//! # }
//! ```

pub mod app;
mod disconnects;
mod driver;
pub mod events;
mod recorded;
mod server;
pub mod sse;
pub mod upstream;
pub mod weather;

pub use app::{TestApp, TestAppBuilder, stream_id};
pub use disconnects::EarlyDisconnect;
pub use driver::run_driver;
pub use events::{EventsResponse, StreamEvent, read_events, text_of};
pub use recorded::RecordedRequest;
pub use sse::{Collected, SseFrame, SseParseError, SseParser, SseReader, collect_sse};
pub use upstream::{
    LoadProfile, MockToolCall, MockUpstream, MockUpstreamBuilder, Scenario, Split, fixture_bytes,
    fixture_names,
};
pub use weather::{CurrentWeather, KnownCity, MockWeather, WeatherMode, known_cities};
