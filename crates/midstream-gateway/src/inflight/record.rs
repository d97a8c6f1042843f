//! What one stream contributes to the record while it runs, closed exactly once.
//!
//! The close happens however the stream ends: finished, failed, or dropped because the
//! client went away (then `cancelled`), because [`Drop`] closes whatever was not closed.
//!
//! A streaming request's record also feeds its [`Producer`]: what the record keeps is what
//! the browser-stream subscribers read, so their text always equals the record's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use midstream_store::{
    IntentRecord, NewMessage, Recorder, StreamClose, StreamEvent, StreamStatus, ToolCallRecord,
    Usage,
};

use super::events::json_text;
use crate::error::ApiError;
use crate::live::Producer;
use crate::protocol::chunk::UsageView;
use crate::telemetry::prometheus as metric;

/// The running record of one stream.
#[derive(Debug)]
pub struct StreamRecord {
    recorder: Recorder,
    stream_id: Arc<str>,
    started: Instant,
    text: String,
    finish_reason: Option<String>,
    usage: Usage,
    ttft: Option<Duration>,
    next_seq: i64,
    closed: bool,
    /// How many messages the request had: the reply's position.
    messages: i32,
    /// The stream's events for subscribers (streaming requests only).
    live: Option<Producer>,
    /// The upstream and model that answered, when a fallback did.
    answered_by: Option<(String, String)>,
}

impl StreamRecord {
    /// Starts the record of a stream whose row the recorder was asked to open. Counts it in
    /// the active-streams gauge until it closes.
    pub fn new(
        recorder: Recorder,
        stream_id: Arc<str>,
        started: Instant,
        messages: usize,
    ) -> StreamRecord {
        metrics::gauge!(metric::ACTIVE_STREAMS).increment(1.0);
        StreamRecord {
            recorder,
            stream_id,
            started,
            text: String::new(),
            finish_reason: None,
            usage: Usage::default(),
            ttft: None,
            next_seq: 0,
            closed: false,
            messages: i32::try_from(messages).unwrap_or(i32::MAX),
            live: None,
            answered_by: None,
        }
    }

    /// A fallback answered instead of the route's primary: the row is opened with the primary
    /// and says this one when it closes.
    pub fn answered_by(&mut self, upstream: &str, model: &str) {
        self.answered_by = Some((upstream.to_owned(), model.to_owned()));
    }

    /// Publishes this stream's events to subscribers through `producer`.
    pub fn publish(&mut self, producer: Producer) {
        self.live = Some(producer);
    }

    /// Whether subscribers may follow this stream (it publishes its events).
    pub fn publishes(&self) -> bool {
        self.live.is_some()
    }

    /// Hands what was published since the last call to the event logs: once per upstream
    /// read, and after tool results.
    pub fn flush_published(&mut self) {
        if let Some(live) = &mut self.live {
            live.flush(&self.text);
        }
    }

    /// Reasoning text the upstream streamed (published, not recorded).
    pub fn reasoning(&mut self, text: &str) {
        if let Some(live) = &mut self.live
            && !text.is_empty()
        {
            live.reasoning(text);
        }
    }

    /// The error the stream ends with, published as the same object the client is sent (the
    /// close that follows records it).
    pub fn publish_error(&mut self, error: &ApiError) {
        if let Some(live) = &mut self.live {
            live.error(&error.body());
        }
    }

    /// The stream id.
    pub fn stream_id(&self) -> &Arc<str> {
        &self.stream_id
    }

    /// Milliseconds since the request arrived, in whole microseconds.
    pub fn elapsed_ms(&self) -> f64 {
        midstream_store::clock::ms_of(self.started.elapsed())
    }

    /// Content the client was sent. The first call fixes the time to first token.
    pub fn content(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.ttft.is_none() {
            let ttft = self.started.elapsed();
            metrics::histogram!(metric::TTFT_SECONDS).record(ttft.as_secs_f64());
            self.ttft = Some(ttft);
        }
        self.text.push_str(text);
        if let Some(live) = &mut self.live {
            live.token(text);
        }
    }

    /// The upstream's finish reason (or the gateway's, e.g. `content_filter`).
    pub fn finish_reason(&mut self, reason: &str) {
        self.finish_reason = Some(reason.to_owned());
    }

    /// Token usage reported by the upstream.
    pub fn usage(&mut self, usage: UsageView) {
        self.usage = Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        };
        if let Some(live) = &mut self.live {
            live.usage(&self.usage);
        }
    }

    /// Records an event (the same JSON the client is sent); returns its sequence number.
    pub fn event(&mut self, kind: &str, payload: String) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(live) = &mut self.live {
            live.event(kind, &payload);
        }
        self.recorder.event(StreamEvent {
            stream_id: self.stream_id.to_string(),
            seq,
            kind: kind.to_owned(),
            at_ms: self.elapsed_ms(),
            payload,
        });
        seq
    }

    /// Records an intent that fired.
    pub fn intent(&self, intent: IntentRecord) {
        self.recorder.intent(intent);
    }

    /// Records a tool call's state.
    pub fn tool_call(&self, call: ToolCallRecord) {
        self.recorder.tool_call(call);
    }

    /// Closes the record; later calls (and the drop) do nothing.
    pub fn close(&mut self, status: StreamStatus, error: Option<String>) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        metrics::gauge!(metric::ACTIVE_STREAMS).decrement(1.0);
        let last_event_seq = self
            .live
            .as_mut()
            .and_then(|live| {
                live.finish(
                    status,
                    self.finish_reason.as_deref(),
                    error.as_deref(),
                    &self.text,
                )
            })
            .map(|seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let text = std::mem::take(&mut self.text);
        let reply = (!text.is_empty()).then(|| NewMessage {
            role: "assistant".to_owned(),
            content: Some(text.clone()),
            body: json_text(&AssistantReply {
                role: "assistant",
                content: &text,
            }),
        });
        self.recorder.close(StreamClose {
            stream_id: self.stream_id.to_string(),
            status,
            response_text: text,
            finish_reason: self.finish_reason.take(),
            error,
            usage: self.usage,
            ttft_ms: self.ttft.map(midstream_store::clock::ms_of),
            duration_ms: self.elapsed_ms(),
            finished_at: midstream_store::clock::now_ms(),
            reply,
            reply_position: self.messages,
            last_event_seq,
            answered_by: self.answered_by.take(),
        });
    }
}

/// The model's reply as a stored message.
#[derive(serde::Serialize)]
struct AssistantReply<'a> {
    role: &'static str,
    content: &'a str,
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        self.close(
            StreamStatus::Cancelled,
            Some("the client disconnected".to_owned()),
        );
    }
}
