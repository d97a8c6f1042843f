//! [`Producer`]: what a stream's record writes into the event logs as the stream runs.
//!
//! Events are numbered here, buffered, and handed to the logs by [`Producer::flush`], which
//! the stream's body calls once per upstream read (and after tool results): a token costs a
//! copy of its text and a push, never a lock or a round trip.
//!
//! A browser stream (`POST /v1/streams`) publishes from its first event. A plain chat
//! completion publishes nothing until someone follows it (`GET /v1/streams/{id}/events` with
//! its Bearer key): most clients never do, and publishing every stream cost the plain endpoint
//! 11–21 % CPU per stream and kept each stream's events in memory for ten minutes
//! (BENCHMARKS.md). Until then the producer is *dormant*: it keeps only what the record does
//! not (reasoning text, gateway events, usage), and a token costs nothing here. When a
//! follower arrives the hub raises the stream's `wanted` flag; the next flush wakes the
//! producer, which publishes the stream so far — the text so far as one `token` event, the
//! reasoning as one `reasoning` event, then the other events in order — from seq 0, and goes
//! on live. The follower thus reads an ordinary log: resume by seq works as for any stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use midstream_store::StreamStatus;
use serde::Serialize;

use super::event::{EventKind, LiveEvent};
use super::hub::Hub;
use crate::error::{ErrorBody, ErrorEnvelope};
use crate::inflight::json_text;

/// When a stream starts publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// From its first event: a browser stream, which exists to be followed.
    FromStart,
    /// When someone follows it: a chat completion, whose client reads the chat bytes.
    WhenFollowed,
}

/// The writing end of one stream's events.
#[derive(Debug)]
pub struct Producer {
    hub: Hub,
    stream: Arc<str>,
    /// Raised by the hub when a follower arrives (always raised for [`Publish::FromStart`]).
    wanted: Arc<AtomicBool>,
    /// What a dormant producer keeps for its wake; `None` once it publishes.
    dormant: Option<Backlog>,
    next_seq: u64,
    pending: Vec<LiveEvent>,
    error_sent: bool,
    /// Set when the stream ended: the seq of its `done`, `None` when it published nothing.
    done: Option<Option<u64>>,
}

/// What a dormant stream published so far, except its text (which its record keeps).
#[derive(Debug, Default)]
struct Backlog {
    reasoning: String,
    events: Vec<(EventKind, Arc<str>)>,
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
    pub(super) fn new(hub: Hub, stream: Arc<str>, wanted: Arc<AtomicBool>) -> Producer {
        let dormant = (!wanted.load(Ordering::Acquire)).then(Backlog::default);
        Producer {
            hub,
            stream,
            wanted,
            dormant,
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
        if let Some(backlog) = &mut self.dormant {
            backlog.events.push((kind, body));
            return;
        }
        self.pending.push(LiveEvent {
            seq: self.next_seq,
            kind,
            body,
        });
        self.next_seq += 1;
    }

    /// Content the client was sent (a dormant producer leaves it to the record).
    pub fn token(&mut self, text: &str) {
        if self.dormant.is_none() {
            self.push(EventKind::Token, text.into());
        }
    }

    /// Reasoning text the upstream streamed.
    pub fn reasoning(&mut self, text: &str) {
        match &mut self.dormant {
            Some(backlog) => backlog.reasoning.push_str(text),
            None => self.push(EventKind::Reasoning, text.into()),
        }
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

    /// Hands the buffered events to the logs; `text` is the stream's text so far, which a
    /// dormant producer that was followed since the last flush publishes first.
    pub fn flush(&mut self, text: &str) {
        if self.dormant.is_some() && self.wanted.load(Ordering::Acquire) {
            self.wake(text);
        }
        if self.pending.is_empty() {
            return;
        }
        self.hub.append(&self.stream, &self.pending);
        self.pending.clear();
    }

    /// Starts publishing: the stream so far, then everything live.
    fn wake(&mut self, text: &str) {
        let Some(backlog) = self.dormant.take() else {
            return;
        };
        if !text.is_empty() {
            self.push(EventKind::Token, text.into());
        }
        if !backlog.reasoning.is_empty() {
            self.push(EventKind::Reasoning, backlog.reasoning.into());
        }
        for (kind, body) in backlog.events {
            self.push(kind, body);
        }
    }

    /// Ends the stream: an `error` event if it failed and none was sent, then `done`, flushed.
    /// Returns the seq of `done`, or `None` for a stream nobody followed (it published
    /// nothing). Later calls return the same and add nothing.
    pub fn finish(
        &mut self,
        status: StreamStatus,
        finish_reason: Option<&str>,
        error: Option<&str>,
        text: &str,
    ) -> Option<u64> {
        if let Some(done) = self.done {
            return done;
        }
        // Taken off the running streams first: a follower that comes later reads the record,
        // so one that came before has raised `wanted` and gets a published stream.
        self.hub.finished(&self.stream);
        if self.dormant.is_some() && !self.wanted.load(Ordering::Acquire) {
            self.dormant = None;
            self.done = Some(None);
            return None;
        }
        if matches!(status, StreamStatus::Failed | StreamStatus::Interrupted) && !self.error_sent {
            self.error(&ErrorBody {
                message: error.unwrap_or("the stream failed").to_owned(),
                kind: "server_error",
                code: Some("stream_failed"),
                param: None,
            });
        }
        self.wake(text);
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
        self.done = Some(Some(seq));
        self.flush(text);
        Some(seq)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // A record always finishes its producer when it closes; this only runs for a producer
        // that was never attached to one.
        if self.done.is_none() {
            self.finish(StreamStatus::Cancelled, None, None, "");
        }
    }
}
