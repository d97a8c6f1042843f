//! [`Producer`]: what a stream's record writes into the event logs as the stream runs.
//!
//! Events are numbered here, buffered, and handed to the logs by [`Producer::flush`], which
//! the stream's body calls once per upstream read (and after tool results): a token costs a
//! copy of its text and a push, never a lock or a round trip.

use std::sync::Arc;

use midstream_store::StreamStatus;
use serde::Serialize;

use super::event::{EventKind, LiveEvent};
use super::hub::Hub;
use crate::error::{ErrorBody, ErrorEnvelope};
use crate::inflight::json_text;

/// The writing end of one stream's events.
#[derive(Debug)]
pub struct Producer {
    hub: Hub,
    stream: Arc<str>,
    next_seq: u64,
    pending: Vec<LiveEvent>,
    error_sent: bool,
    done: Option<u64>,
}

/// The `done` event's object.
#[derive(Serialize)]
struct Done<'a> {
    status: &'a str,
    finish_reason: Option<&'a str>,
    /// Why a stream that did not complete ended (`cancelled through the cancel endpoint`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Producer {
    pub(super) fn new(hub: Hub, stream: Arc<str>) -> Producer {
        Producer {
            hub,
            stream,
            next_seq: 0,
            pending: Vec::new(),
            error_sent: false,
            done: None,
        }
    }

    fn push(&mut self, kind: EventKind, body: Arc<str>) {
        if self.done.is_some() {
            return;
        }
        self.pending.push(LiveEvent {
            seq: self.next_seq,
            kind,
            body,
        });
        self.next_seq += 1;
    }

    /// Content the client was sent.
    pub fn token(&mut self, text: &str) {
        self.push(EventKind::Token, text.into());
    }

    /// Reasoning text the upstream streamed.
    pub fn reasoning(&mut self, text: &str) {
        self.push(EventKind::Reasoning, text.into());
    }

    /// A gateway event (`intent`, `tool.*`) as the analysis raised it; other kinds are not
    /// part of this stream's vocabulary and are skipped.
    pub fn event(&mut self, kind: &str, json: &str) {
        if let Some(kind) = EventKind::from_name(kind) {
            self.push(kind, json.into());
        }
    }

    /// Token usage, as a JSON object.
    pub fn usage(&mut self, usage: &impl Serialize) {
        self.push(EventKind::Usage, json_text(usage).into());
    }

    /// The error the stream ends with, in OpenAI's shape (the same object a chat client gets).
    pub fn error(&mut self, error: &ErrorBody) {
        self.error_sent = true;
        self.push(EventKind::Error, json_text(&ErrorEnvelope { error }).into());
    }

    /// Hands the buffered events to the logs.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.hub.append(&self.stream, &self.pending);
        self.pending.clear();
    }

    /// Ends the stream: an `error` event if it failed and none was sent, then `done`, flushed.
    /// Returns the seq of `done`. Later calls return the same seq and add nothing.
    pub fn finish(
        &mut self,
        status: StreamStatus,
        finish_reason: Option<&str>,
        error: Option<&str>,
    ) -> u64 {
        if let Some(seq) = self.done {
            return seq;
        }
        if matches!(status, StreamStatus::Failed | StreamStatus::Interrupted) && !self.error_sent {
            self.error(&ErrorBody {
                message: error.unwrap_or("the stream failed").to_owned(),
                kind: "server_error",
                code: Some("stream_failed"),
                param: None,
            });
        }
        let seq = self.next_seq;
        self.push(
            EventKind::Done,
            json_text(&Done {
                status: status.as_str(),
                finish_reason,
                reason: error,
            })
            .into(),
        );
        self.done = Some(seq);
        self.flush();
        self.hub.finished(&self.stream);
        seq
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // A record always finishes its producer when it closes; this only runs for a producer
        // that was never attached to one.
        if self.done.is_none() {
            self.finish(StreamStatus::Cancelled, None, None);
        }
    }
}
