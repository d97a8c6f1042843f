//! What the scanner and the tools make of one stream: intents, tool calls, their events,
//! redactions and stops.
//!
//! The [`Analyzer`] is built once (rules compiled, tools registered); each stream gets a
//! [`StreamAnalysis`]. Tool calls run on the dispatcher's tasks; the stream's body polls
//! [`StreamAnalysis::poll_events`] for their outcomes, so token forwarding never waits for a
//! tool. A stream without output rules pays nothing per chunk but recording its content.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::BoxFuture;
use midstream_analysis::{Action, Detection, Detector, ScanOutput, Scanner, Scope};
use midstream_store::{IntentRecord, ToolCallRecord};
use midstream_tools::{Dispatcher, Start, StreamTools, ToolOutcome};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::events::{
    self, CallEnd, CallError, CallSource, Captures, IntentFacts, MidstreamEvent, json_text,
};
use super::model_calls::{ModelCalls, ReadyCall};
use super::record::StreamRecord;
use crate::protocol::chunk::{ChunkView, span_in};
use crate::protocol::request::ChatRequest;
use crate::upstream::{Route, UpstreamError, UpstreamResponse};

/// How the gateway treats `tool_calls` the model streams for tools it owns.
#[derive(Debug, Clone, Default)]
pub struct ModelToolPolicy {
    /// Tools the gateway executes when the model calls them.
    pub owned: Arc<HashSet<String>>,
    /// Continue the conversation with their results in follow-up upstream calls.
    pub continue_with_results: bool,
    /// Most follow-up calls per request.
    pub max_steps: u32,
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

/// A follow-up request's ingredients.
#[derive(Debug)]
struct Continuation {
    route: Route,
    request: ChatRequest,
    steps_left: u32,
    /// `(model call id, result JSON)` of the current response's owned calls.
    results: Vec<(Option<String>, String)>,
}

#[derive(Debug)]
struct CallInfo {
    source: CallSource,
    started_ms: f64,
    /// The call's arguments as JSON, serialised once for its events and records.
    arguments: Box<RawValue>,
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
    /// Scans the last user message before the request goes upstream: tools start in parallel
    /// with generation, prompt `redact` rules scrub the text sent upstream, a prompt `stop` rule
    /// means the upstream is not called at all.
    pub fn scan_prompt(&mut self, request: &mut ChatRequest, record: &mut StreamRecord) {
        let detector = self.analyzer.detector.clone();
        if !detector.has_rules(Scope::Prompt) {
            return;
        }
        let mut detections = Vec::new();
        request.rewrite_last_user_text(|text| {
            let scanned = detector.scan_complete(Scope::Prompt, text);
            detections.extend(scanned.detections);
            (detector.guards_output(Scope::Prompt) && scanned.released != text)
                .then_some(scanned.released)
        });
        for detection in &detections {
            self.on_detection(detection, Scope::Prompt, record);
        }
    }

    /// Lets this stream continue the conversation with the results of owned tools the model
    /// calls, when `[model_tools] continue = true` (a follow-up request to `route`, built from
    /// `request`). Both are copied only when continuing is configured.
    pub fn allow_continuation(&mut self, route: &Route, request: &ChatRequest) {
        let policy = &self.analyzer.policy;
        if policy.continue_with_results && policy.max_steps > 0 && !policy.owned.is_empty() {
            self.continuation = Some(Continuation {
                route: route.clone(),
                request: request.clone(),
                steps_left: policy.max_steps,
                results: Vec::new(),
            });
        }
    }

    /// Whether a `stop` rule ended the stream (the prompt's, or the output's).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Reads one chunk: content goes to the scanner and the record, owned tool calls start.
    pub fn on_content(
        &mut self,
        frame: &Bytes,
        payload_start: usize,
        chunk: &ChunkView<'_>,
        content: Option<&str>,
        record: &mut StreamRecord,
    ) -> Forward {
        let mut forward = Forward::Unchanged;
        if let Some(text) = content {
            match output_scanner(&mut self.scanner, &self.analyzer.detector) {
                None => record.content(text),
                Some(scanner) => {
                    self.scan.clear();
                    scanner.feed(text.as_bytes(), &mut self.scan);
                    if scanner.guards_output() {
                        record.content(&self.scan.released);
                        if self.scan.released != text {
                            forward =
                                rewrite_content(frame, payload_start, chunk, &self.scan.released)
                                    .map_or(Forward::Unchanged, Forward::Replace);
                        }
                    } else {
                        record.content(text);
                    }
                    self.take_detections(record);
                }
            }
        }
        if let (Some(model), Some(raw)) = (
            self.model.as_mut(),
            chunk.message().and_then(|m| m.tool_calls),
        ) {
            let absorbed = model.absorb(raw.get());
            // Withheld only while the gateway can still continue the conversation itself; once
            // the step budget is spent, the client gets the calls (and their finish reason).
            if absorbed.all_owned && content.is_none() && self.can_continue() {
                forward = Forward::Drop;
            }
            for ready in absorbed.ready {
                self.start_model_call(ready, record);
            }
        }
        forward
    }

    /// The response's content ended (finish reason or end of stream): settles pending
    /// matches; returns text held back for a redaction that is now safe to send.
    pub fn on_finish(&mut self, record: &mut StreamRecord) -> Option<String> {
        let broken = self
            .model
            .as_mut()
            .map(ModelCalls::finish)
            .unwrap_or_default();
        for ready in broken {
            self.start_model_call(ready, record);
        }
        let scanner = self.scanner.as_mut()?;
        self.scan.clear();
        scanner.finish(&mut self.scan);
        let guards = scanner.guards_output();
        let tail = std::mem::take(&mut self.scan.released);
        self.take_detections(record);
        (guards && !tail.is_empty()).then(|| {
            record.content(&tail);
            tail
        })
    }

    /// A non-streaming completion's whole content at once; returns the rewritten body when a
    /// redaction or stop changed the content.
    pub fn on_complete_content(
        &mut self,
        body: &Bytes,
        chunk: &ChunkView<'_>,
        content: Option<&str>,
        record: &mut StreamRecord,
    ) -> Option<Bytes> {
        let text = content.unwrap_or_default();
        let Some(scanner) = output_scanner(&mut self.scanner, &self.analyzer.detector) else {
            record.content(text);
            return None;
        };
        self.scan.clear();
        scanner.feed(text.as_bytes(), &mut self.scan);
        scanner.finish(&mut self.scan);
        let guards = scanner.guards_output();
        let released = std::mem::take(&mut self.scan.released);
        self.take_detections(record);
        if !guards {
            record.content(text);
            return None;
        }
        record.content(&released);
        (released != text)
            .then(|| rewrite_content(body, 0, chunk, &released))
            .flatten()
    }

    /// Whether the model's last response asked only for owned tools, so the gateway will
    /// continue the conversation itself (its `finish_reason: tool_calls` is then withheld).
    pub fn continues_after_tools(&self) -> bool {
        self.can_continue() && self.model.as_ref().is_some_and(ModelCalls::all_owned)
    }

    /// Whether a follow-up request is still allowed (continuation on, steps left).
    fn can_continue(&self) -> bool {
        self.continuation.as_ref().is_some_and(|c| c.steps_left > 0)
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
        continuation.steps_left -= 1;
        let mut messages = continuation.request.messages().to_vec();
        messages.push(model.assistant_message());
        for (id, result) in continuation.results.drain(..) {
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
        }
        model.reset();
        continuation
            .request
            .body
            .insert("messages".to_owned(), Value::Array(messages));
        let route = continuation.route.clone();
        let request = continuation.request.clone();
        Some(Box::pin(async move {
            route.upstream.chat(&request, &route.model).await
        }))
    }

    /// Events ready to send, in order.
    pub fn take_events(&mut self) -> Vec<MidstreamEvent> {
        std::mem::take(&mut self.events)
    }

    /// Polls the stream's tool calls; `Ready` when at least one ended (its event is queued).
    pub fn poll_events(&mut self, cx: &mut Context<'_>, record: &mut StreamRecord) -> Poll<()> {
        let Some(tools) = self.tools.as_mut() else {
            return Poll::Pending;
        };
        let mut ended = Vec::new();
        while let Poll::Ready(Some(outcome)) = tools.poll_outcome(cx) {
            ended.push(outcome);
        }
        if ended.is_empty() {
            return Poll::Pending;
        }
        for outcome in ended {
            self.on_outcome(outcome, record);
        }
        Poll::Ready(())
    }

    /// Waits for every call of the stream to end (each is bounded by its timeout).
    pub async fn wait_all(&mut self, record: &mut StreamRecord) {
        while let Some(tools) = self.tools.as_mut() {
            match tools.next_outcome().await {
                Some(outcome) => self.on_outcome(outcome, record),
                None => break,
            }
        }
    }

    /// Calls still running.
    pub fn in_flight(&self) -> usize {
        self.tools.as_ref().map_or(0, StreamTools::in_flight)
    }

    /// Cancels every call of the stream (their tasks are aborted at once).
    pub fn cancel(&mut self) {
        if let Some(tools) = self.tools.as_mut() {
            tools.cancel_all();
        }
    }

    fn take_detections(&mut self, record: &mut StreamRecord) {
        if self.scan.detections.is_empty() && !self.scan.stopped {
            return;
        }
        let detections = std::mem::take(&mut self.scan.detections);
        for detection in &detections {
            self.on_detection(detection, Scope::Output, record);
        }
        self.scan.detections = detections;
        self.scan.detections.clear();
        self.stopped |= self.scan.stopped;
    }

    fn on_detection(&mut self, detection: &Detection, scope: Scope, record: &mut StreamRecord) {
        let detector = self.analyzer.detector.clone();
        let Some(rule) = detector.rule(detection.rule) else {
            return;
        };
        self.intents += 1;
        let intent_id = format!("int_{}", self.intents);
        let at_ms = record.elapsed_ms();
        let (action, hidden) = match &rule.action {
            Action::Tool { .. } => ("tool", false),
            Action::Emit => ("emit", false),
            Action::Redact { .. } => ("redact", true),
            Action::Stop => ("stop", true),
        };
        let mut call = None;
        if let Action::Tool { tool, .. } = &rule.action {
            let arguments = detection.args.clone().unwrap_or_else(|| json!({}));
            call = Some(self.start_call(
                tool,
                arguments,
                CallSource::Intent(intent_id.clone()),
                record,
            ));
        }
        if matches!(rule.action, Action::Stop) {
            self.stopped = true;
        }
        let scope_name = match scope {
            Scope::Prompt => "prompt",
            Scope::Output => "output",
        };
        let intent = events::intent(&IntentFacts {
            id: &intent_id,
            rule: &rule.name,
            scope: scope_name,
            action,
            matched: (!hidden)
                .then_some((detection.matched.as_str(), detection.captures.as_slice())),
            call_id: call.as_ref().map(|(id, _, _)| id.as_str()),
            duplicate: call.as_ref().is_some_and(|(_, duplicate, _)| *duplicate),
            at_ms,
            chars_seen: detection.seen_chars,
        });
        self.events.push(intent);
        if let Some((_, false, Some(started))) = call {
            self.events.push(started);
        }
        record.intent(IntentRecord {
            stream_id: self.stream_id.to_string(),
            intent_id,
            rule: rule.name.clone(),
            scope: scope_name.to_owned(),
            action: action.to_owned(),
            matched: (!hidden).then(|| detection.matched.clone()),
            captures: json_text(&Captures(&detection.captures)),
            at_ms,
            chars_seen: i64::try_from(detection.seen_chars).unwrap_or(i64::MAX),
        });
    }

    fn start_model_call(&mut self, ready: ReadyCall, record: &mut StreamRecord) {
        let source = CallSource::Model(ready.id.clone());
        let arguments = match ready.arguments {
            Ok(arguments) => arguments,
            // The model produced arguments that are not a JSON object: the tool's schema check
            // turns this into a clear `invalid_arguments` error event.
            Err(text) => Value::String(text),
        };
        let (_, duplicate, started) = self.start_call(&ready.name, arguments, source, record);
        if let (false, Some(started)) = (duplicate, started) {
            self.events.push(started);
        }
    }

    /// Starts (or reuses) a call; returns its id, whether it was a duplicate, and the
    /// `tool.started` event to send after the intent.
    fn start_call(
        &mut self,
        tool: &str,
        arguments: Value,
        source: CallSource,
        record: &mut StreamRecord,
    ) -> (String, bool, Option<MidstreamEvent>) {
        let analyzer = &self.analyzer;
        let stream_id = &self.stream_id;
        let tools = self.tools.get_or_insert_with(|| {
            analyzer
                .dispatcher
                .stream(Some(stream_id.to_string()), analyzer.shutdown.child_token())
        });
        let arguments_json = events::raw_json(&arguments);
        match tools.start(tool, arguments) {
            Start::Duplicate { call_id } => (call_id, true, None),
            Start::Started { call_id } => {
                let at_ms = record.elapsed_ms();
                let started = events::tool_started(&call_id, tool, &arguments_json, &source, at_ms);
                record.tool_call(self.running_call(
                    &call_id,
                    tool,
                    &source,
                    &arguments_json,
                    at_ms,
                ));
                self.calls.insert(
                    call_id.clone(),
                    CallInfo {
                        source,
                        started_ms: at_ms,
                        arguments: arguments_json,
                    },
                );
                (call_id, false, Some(started))
            }
        }
    }

    fn on_outcome(&mut self, outcome: ToolOutcome, record: &mut StreamRecord) {
        let Some(info) = self.calls.remove(&outcome.call_id) else {
            return;
        };
        let at_ms = record.elapsed_ms();
        let duration_ms = outcome.elapsed.as_secs_f64() * 1000.0;
        let failure = outcome
            .result
            .as_ref()
            .err()
            .map(|e| (e.code(), e.to_string()));
        let result = outcome
            .result
            .as_ref()
            .ok()
            .map(|value| events::raw_json(value.as_ref()));
        let event = events::tool_end(&CallEnd {
            call_id: &outcome.call_id,
            tool: &outcome.tool,
            arguments: &info.arguments,
            source: &info.source,
            outcome: match (&result, &failure) {
                (Some(result), _) => Ok(result),
                (None, Some((code, message))) => Err((code, message)),
                (None, None) => Err(("internal", "")),
            },
            cached: outcome.cached,
            duration_ms,
            at_ms,
        });
        let result_json = result.map(|result| result.get().to_owned());
        if let (CallSource::Model(id), Some(continuation)) =
            (&info.source, self.continuation.as_mut())
        {
            let content = result_json.clone().unwrap_or_else(|| {
                let error = failure
                    .as_ref()
                    .map(|(code, message)| CallError { code, message });
                json_text(&json!({ "error": error }))
            });
            continuation.results.push((id.clone(), content));
        }
        record.tool_call(ToolCallRecord {
            status: if failure.is_none() {
                "succeeded"
            } else {
                "failed"
            }
            .to_owned(),
            result: result_json,
            error_code: failure.as_ref().map(|(code, _)| (*code).to_owned()),
            error_message: failure.map(|(_, message)| message),
            cached: Some(outcome.cached),
            duration_ms: Some(duration_ms),
            ..self.running_call(
                &outcome.call_id,
                &outcome.tool,
                &info.source,
                &info.arguments,
                info.started_ms,
            )
        });
        self.events.push(event);
    }

    /// A call's record as it starts; its end is the same record with the outcome filled in
    /// (the later state replaces the earlier one in the store).
    fn running_call(
        &self,
        call_id: &str,
        tool: &str,
        source: &CallSource,
        arguments: &RawValue,
        started_ms: f64,
    ) -> ToolCallRecord {
        ToolCallRecord {
            stream_id: self.stream_id.to_string(),
            call_id: call_id.to_owned(),
            tool: tool.to_owned(),
            source: source.name().to_owned(),
            intent_id: source.intent_id().map(str::to_owned),
            model_call_id: source.model_call_id().map(str::to_owned),
            arguments: arguments.get().to_owned(),
            status: "running".to_owned(),
            result: None,
            error_code: None,
            error_message: None,
            cached: None,
            started_ms,
            duration_ms: None,
        }
    }
}

/// The stream's output scanner, made on first use (a free function so the caller can keep
/// borrowing its other fields).
fn output_scanner<'a>(
    slot: &'a mut Option<Scanner>,
    detector: &Arc<Detector>,
) -> Option<&'a mut Scanner> {
    if slot.is_none() && detector.has_rules(Scope::Output) {
        *slot = Some(Scanner::new(Arc::clone(detector), Scope::Output));
    }
    slot.as_mut()
}

/// The frame with choice 0's `content` string replaced; every other byte as received.
fn rewrite_content(
    frame: &Bytes,
    payload_start: usize,
    chunk: &ChunkView<'_>,
    text: &str,
) -> Option<Bytes> {
    let raw = chunk.message()?.content?;
    let span = span_in(&frame[payload_start..], raw.get().as_bytes())?;
    let (start, end) = (payload_start + span.start, payload_start + span.end);
    let encoded = serde_json::to_string(text).ok()?;
    let mut out = BytesMut::with_capacity(frame.len() - (end - start) + encoded.len());
    out.put_slice(&frame[..start]);
    out.put_slice(encoded.as_bytes());
    out.put_slice(&frame[end..]);
    Some(out.freeze())
}
