//! What the scanner and the tools make of one stream: intents, tool calls, their events,
//! redactions and stops.
//!
//! The [`Analyzer`] is built once (rules compiled, tools registered); each stream gets a
//! [`StreamAnalysis`]. Tool calls run on the dispatcher's tasks; the stream's body polls
//! [`StreamAnalysis::poll_events`] for their outcomes, so token forwarding never waits for a
//! tool. A stream without output rules pays nothing per chunk but recording its content.
//!
//! | file | job |
//! | --- | --- |
//! | `mod.rs` | [`Analyzer`], [`StreamAnalysis`]'s state, [`Forward`] |
//! | `scanning.rs` | the prompt and the content through the scanner |
//! | `redaction.rs` | a frame with its content rewritten |
//! | `intents.rs` | a detection: its `intent` event and record, the tool it starts |
//! | `tool_calls.rs` | tool calls started, their outcomes, events and records |
//!
//! The follow-up request with the results of the model's calls is `super::continuation`.

mod intents;
mod redaction;
mod scanning;
mod tool_calls;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use midstream_analysis::{Detector, ScanOutput, Scanner};
use midstream_tools::{Dispatcher, StreamTools};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::continuation::Continuation;
use super::events::MidstreamEvent;
use super::model_calls::ModelCalls;
use crate::protocol::request::ChatRequest;
use crate::upstream::{Route, UpstreamError, UpstreamResponse};
use tool_calls::CallInfo;

/// How the gateway treats `tool_calls` the model streams for tools it owns: the
/// `[model_tools]` table of `midstream.toml`, read as it is (a missing key takes its default)
/// and used as it is by every stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelToolPolicy {
    /// Tools the gateway executes when the model calls them (none by default).
    pub owned: Arc<HashSet<String>>,
    /// Continue the conversation with their results in follow-up upstream calls (whose tokens
    /// continue the same client stream). Off by default.
    #[serde(rename = "continue")]
    pub continue_with_results: bool,
    /// Most follow-up calls per client request ([`ModelToolPolicy::DEFAULT_MAX_STEPS`] by
    /// default).
    pub max_steps: u32,
}

impl ModelToolPolicy {
    /// Follow-up calls per request when `max_steps` is not set: enough for a model that calls
    /// a tool, reads the result and calls another, few enough to bound a runaway loop.
    pub const DEFAULT_MAX_STEPS: u32 = 3;
}

impl Default for ModelToolPolicy {
    fn default() -> Self {
        ModelToolPolicy {
            owned: Arc::default(),
            continue_with_results: false,
            max_steps: Self::DEFAULT_MAX_STEPS,
        }
    }
}

/// Compiled rules and registered tools, shared by every stream.
#[derive(Debug, Clone)]
pub struct Analyzer {
    detector: Arc<Detector>,
    dispatcher: Dispatcher,
    policy: ModelToolPolicy,
    shutdown: CancellationToken,
}

impl Analyzer {
    /// An analyzer; `shutdown` parents every stream's tool cancellation.
    pub fn new(
        detector: Arc<Detector>,
        dispatcher: Dispatcher,
        policy: ModelToolPolicy,
        shutdown: CancellationToken,
    ) -> Analyzer {
        Analyzer {
            detector,
            dispatcher,
            policy,
            shutdown,
        }
    }

    /// The analysis of one stream.
    pub fn stream(&self, stream_id: Arc<str>) -> StreamAnalysis {
        let model =
            (!self.policy.owned.is_empty()).then(|| ModelCalls::new(self.policy.owned.clone()));
        StreamAnalysis {
            analyzer: self.clone(),
            stream_id,
            scanner: None,
            scan: ScanOutput::default(),
            tools: None,
            calls: HashMap::new(),
            events: Vec::new(),
            stopped: false,
            intents: 0,
            model,
            continuation: None,
        }
    }
}

/// What to send for an upstream frame.
#[derive(Debug)]
pub enum Forward {
    /// The frame as received.
    Unchanged,
    /// A rewritten frame (redacted content).
    Replace(Bytes),
    /// Nothing: the frame only carried calls the gateway handles itself.
    Drop,
}

/// Per-stream analysis state.
pub struct StreamAnalysis {
    analyzer: Analyzer,
    stream_id: Arc<str>,
    /// The output scanner (with its lazy-DFA cache, tens of KB), made on the first content
    /// byte if there are output rules, so a stream that is still waiting costs nothing here.
    scanner: Option<Scanner>,
    /// Reused for every chunk: no allocation per chunk once warm.
    scan: ScanOutput,
    tools: Option<StreamTools>,
    calls: HashMap<String, CallInfo>,
    events: Vec<MidstreamEvent>,
    stopped: bool,
    intents: u32,
    model: Option<ModelCalls>,
    continuation: Option<Continuation>,
}

impl std::fmt::Debug for StreamAnalysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamAnalysis")
            .field("stream_id", &self.stream_id)
            .field("calls", &self.calls.len())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl StreamAnalysis {
    /// Whether a `stop` rule ended the stream (the prompt's, or the output's).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Events ready to send, in order.
    pub fn take_events(&mut self) -> Vec<MidstreamEvent> {
        std::mem::take(&mut self.events)
    }

    /// Lets this stream continue the conversation with the results of owned tools the model
    /// calls, when `[model_tools] continue = true` (a follow-up request to `route`, built from
    /// `request`). Both are copied only when continuing is configured.
    pub fn allow_continuation(&mut self, route: &Route, request: &ChatRequest) {
        let policy = &self.analyzer.policy;
        if policy.continue_with_results && policy.max_steps > 0 && !policy.owned.is_empty() {
            self.continuation = Some(Continuation::new(route, request, policy.max_steps));
        }
    }

    /// Whether the model's last response asked only for owned tools, so the gateway will
    /// continue the conversation itself (its `finish_reason: tool_calls` is then withheld).
    pub fn continues_after_tools(&self) -> bool {
        self.can_continue() && self.model.as_ref().is_some_and(ModelCalls::all_owned)
    }

    /// Whether a follow-up request is still allowed (continuation on, steps left).
    fn can_continue(&self) -> bool {
        self.continuation
            .as_ref()
            .is_some_and(Continuation::can_continue)
    }

    /// When every call ended and the model asked only for owned tools: the follow-up request
    /// with their results, whose stream continues the client's.
    pub fn next_step(
        &mut self,
    ) -> Option<BoxFuture<'static, Result<UpstreamResponse, UpstreamError>>> {
        if !self.continues_after_tools() || self.in_flight() > 0 {
            return None;
        }
        let model = self.model.as_mut()?;
        let continuation = self.continuation.as_mut()?;
        Some(continuation.next_request(model))
    }
}
