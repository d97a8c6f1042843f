//! The events of a stream as browsers read them (`GET /v1/streams/{id}/events`).
//!
//! The log keeps each event as the smallest thing that rebuilds it: a token is its text, a
//! gateway event its JSON object. The `data:` line (`{"seq": N, ...}`) is written when a
//! subscriber reads it, so a stream nobody follows pays one copy of each token's text and no
//! JSON at all.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

/// What an event is; its name is the SSE `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Content the client was sent.
    Token,
    /// Reasoning text the upstream streamed (`reasoning_content` / `reasoning`).
    Reasoning,
    /// A rule matched.
    Intent,
    /// A tool call began.
    ToolStarted,
    /// A tool call succeeded.
    ToolResult,
    /// A tool call failed.
    ToolError,
    /// Token usage reported by the upstream.
    Usage,
    /// The stream failed; `done` follows.
    Error,
    /// The last event of every stream.
    Done,
}

impl EventKind {
    /// Every kind, for parsing stored names.
    const ALL: [EventKind; 9] = [
        EventKind::Token,
        EventKind::Reasoning,
        EventKind::Intent,
        EventKind::ToolStarted,
        EventKind::ToolResult,
        EventKind::ToolError,
        EventKind::Usage,
        EventKind::Error,
        EventKind::Done,
    ];

    /// The SSE event name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Token => "token",
            EventKind::Reasoning => "reasoning",
            EventKind::Intent => "intent",
            EventKind::ToolStarted => "tool.started",
            EventKind::ToolResult => "tool.result",
            EventKind::ToolError => "tool.error",
            EventKind::Usage => "usage",
            EventKind::Error => "error",
            EventKind::Done => "done",
        }
    }

    /// The kind named `name` (as stored in Redis or raised by the analysis).
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the body is plain text (else a JSON object).
    fn is_text(self) -> bool {
        matches!(self, EventKind::Token | EventKind::Reasoning)
    }
}

/// One event of a stream's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEvent {
    /// Position in the stream, from 0, with no gaps: the SSE `id:`.
    pub seq: u64,
    /// What it is.
    pub kind: EventKind,
    /// The text of a token or reasoning event; the JSON object of any other.
    pub body: Arc<str>,
}

impl LiveEvent {
    /// Bytes the log accounts for this event.
    pub fn size(&self) -> usize {
        self.body.len() + std::mem::size_of::<LiveEvent>()
    }

    /// The `data:` JSON: `{"seq": N, "text": ...}` for text, the object with `seq` first for
    /// the others.
    pub fn data(&self) -> String {
        if self.kind.is_text() {
            #[derive(Serialize)]
            struct Text<'a> {
                seq: u64,
                text: &'a str,
            }
            return crate::inflight::json_text(&Text {
                seq: self.seq,
                text: &self.body,
            });
        }
        with_seq(self.seq, &self.body)
    }

    /// The whole SSE frame: `id`, `event`, `data`.
    pub fn frame(&self) -> Bytes {
        sse_frame(Some(self.seq), self.kind.name(), &self.data())
    }
}

/// `object` (a JSON object's text) with `"seq": N` as its first member.
pub fn with_seq(seq: u64, object: &str) -> String {
    let rest = object.trim_start().strip_prefix('{').unwrap_or("}");
    let rest = rest.trim_start();
    if rest.starts_with('}') {
        format!("{{\"seq\":{seq}}}")
    } else {
        format!("{{\"seq\":{seq},{rest}")
    }
}

/// A named SSE event. `data` is one line of JSON (serde never writes a raw newline).
pub fn sse_frame(id: Option<u64>, event: &str, data: &str) -> Bytes {
    let mut frame = String::with_capacity(data.len() + event.len() + 32);
    if let Some(id) = id {
        frame.push_str("id: ");
        frame.push_str(&id.to_string());
        frame.push('\n');
    }
    frame.push_str("event: ");
    frame.push_str(event);
    frame.push_str("\ndata: ");
    frame.push_str(data);
    frame.push_str("\n\n");
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, body: &str) -> LiveEvent {
        LiveEvent {
            seq: 7,
            kind,
            body: body.into(),
        }
    }

    #[test]
    fn data_lines_carry_the_seq_first() {
        assert_eq!(
            event(EventKind::Token, "Hé \"x\"\n").data(),
            r#"{"seq":7,"text":"Hé \"x\"\n"}"#
        );
        assert_eq!(
            event(EventKind::ToolResult, r#"{"type":"tool.result","id":"c1"}"#).data(),
            r#"{"seq":7,"type":"tool.result","id":"c1"}"#
        );
        assert_eq!(event(EventKind::Done, " { } ").data(), r#"{"seq":7}"#);
    }

    #[test]
    fn a_frame_is_one_named_event_with_its_id() {
        assert_eq!(
            event(EventKind::Token, "a").frame(),
            Bytes::from_static(b"id: 7\nevent: token\ndata: {\"seq\":7,\"text\":\"a\"}\n\n")
        );
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::from_name("snapshot"), None);
    }
}
