//! The inflight layer: a tower [`Layer`](tower::Layer) in tower-http's shape that wraps the
//! response body of `/v1/chat/completions`.
//!
//! The handler answers with the upstream's body and a [`PlanSlot`] in the response
//! extensions. The layer takes the plan and, for a stream, wraps the body in
//! [`InflightBody`]: it parses frames incrementally, feeds content deltas to the stream's
//! scanner, hands detections to the dispatcher and merges the events it produces into the
//! body as soon as they are ready. Token forwarding never waits for a tool. For a
//! non-streaming request it reads the completion, analyses it and adds the events to the JSON.
//!
//! | file | job |
//! | --- | --- |
//! | `layer.rs` | [`InflightLayer`], [`InflightConfig`] |
//! | `service.rs` | [`Inflight`], the service |
//! | `future.rs` | [`ResponseFuture`], picks the plan out of the response |
//! | `body.rs` | [`InflightBody`], the streaming body (the hot path) |
//! | `complete.rs` | non-streaming completions |
//! | `analysis/` | [`Analyzer`] and [`StreamAnalysis`]: scanner + tools of one stream |
//! | `continuation.rs` | the follow-up upstream request with the results of the model's calls |
//! | `events.rs` | the `intent` / `tool.*` events, as JSON |
//! | `model_calls.rs` | `tool_calls` the model streams, assembled |
//! | `record.rs` | [`StreamRecord`], the stream's record, closed exactly once |
//! | `plan.rs` | [`StreamPlan`] and [`PlanSlot`], handler → layer |
//! | `prompt_stop.rs` | [`PromptStop`], the answer to a prompt a `stop` rule blocked |
//! | `reasoning.rs` | reasoning deltas, for browser subscribers |
//! | `watch.rs` | the shutdown and the timer a stream body watches, polled cheaply |

mod analysis;
mod body;
mod complete;
mod continuation;
mod events;
mod future;
mod layer;
mod model_calls;
mod plan;
mod prompt_stop;
mod reasoning;
mod record;
mod service;
mod timers;
mod watch;

pub use analysis::{Analyzer, Forward, ModelToolPolicy, StreamAnalysis};
pub use body::InflightBody;
pub use events::{MidstreamEvent, json_text};
pub use future::ResponseFuture;
pub use layer::{InflightConfig, InflightLayer};
pub use plan::{PlanSlot, StreamPlan};
pub use prompt_stop::PromptStop;
pub use record::StreamRecord;
pub use service::Inflight;
