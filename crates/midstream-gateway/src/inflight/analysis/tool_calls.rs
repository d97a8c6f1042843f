//! The stream's tool calls, started by intents or by the model: their `tool.*` events and
//! records, and, for the model's calls, their results kept for the follow-up request.

use std::task::{Context, Poll};

use midstream_store::ToolCallRecord;
use midstream_tools::{Start, StreamTools, ToolOutcome};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::StreamAnalysis;
use crate::inflight::events::{self, CallEnd, CallError, CallSource, MidstreamEvent, json_text};
use crate::inflight::model_calls::ReadyCall;
use crate::inflight::record::StreamRecord;

#[derive(Debug)]
pub(super) struct CallInfo {
    source: CallSource,
    started_ms: f64,
    /// The call's arguments as JSON, serialised once for its events and records.
    arguments: Box<RawValue>,
}

impl StreamAnalysis {
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

    pub(super) fn start_model_call(&mut self, ready: ReadyCall, record: &mut StreamRecord) {
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
    pub(super) fn start_call(
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
        let duration_ms = midstream_store::clock::ms_of(outcome.elapsed);
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
            continuation.push_result(id.clone(), content);
        }
        // A cancelled call is `cancelled` in the record as in `/metrics`, not a failure.
        let status = match &failure {
            None => "succeeded",
            Some((code, _)) if *code == "cancelled" => "cancelled",
            Some(_) => "failed",
        };
        record.tool_call(ToolCallRecord {
            status: status.to_owned(),
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
