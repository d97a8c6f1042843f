//! The events of a stream as browsers read them (`GET /v1/streams/{id}/events`).
//!
//! The log keeps each event as the smallest thing that rebuilds it: a token is its text, a
//! gateway event its JSON object. The `data:` line (`{"seq": N, ...}`) is written when a
//! subscriber reads it, so a stream nobody follows pays one copy of each token's text and no
//! JSON at all.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

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
        let mut out = BytesMut::with_capacity(self.body.len() + 32);
        self.write_data(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn write_data(&self, out: &mut BytesMut) {
        put_seq_member(out, self.seq);
        if self.kind.is_text() {
            out.put_slice(b",\"text\":");
            // A `str` always serialises.
            let _ = serde_json::to_writer(out.writer(), &*self.body);
            out.put_u8(b'}');
            return;
        }
        let rest = self.body.trim_start().strip_prefix('{').unwrap_or("}");
        let rest = rest.trim_start();
        if rest.starts_with('}') {
            out.put_u8(b'}');
        } else {
            out.put_u8(b',');
            out.put_slice(rest.as_bytes());
        }
    }

    /// Appends the whole SSE frame (`id`, `event`, `data`) to `out`: a subscriber's read
    /// writes all its events into one buffer, with no allocation per event.
    pub fn write_frame(&self, out: &mut BytesMut) {
        out.reserve(self.body.len() + 64);
        put_line(out, b"id: ", self.seq);
        out.put_slice(b"event: ");
        out.put_slice(self.kind.name().as_bytes());
        out.put_slice(b"\ndata: ");
        self.write_data(out);
        out.put_slice(b"\n\n");
    }
}

/// `{"seq":N` — the start of every event's data.
fn put_seq_member(out: &mut BytesMut, seq: u64) {
    out.put_slice(b"{\"seq\":");
    out.put_slice(itoa::Buffer::new().format(seq).as_bytes());
}

/// `PREFIX` `N` and a line end.
fn put_line(out: &mut BytesMut, prefix: &[u8], n: u64) {
    out.put_slice(prefix);
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_u8(b'\n');
}

/// A named SSE event. `data` is one line of JSON (serde never writes a raw newline).
pub fn sse_frame(id: Option<u64>, event: &str, data: &str) -> Bytes {
    let mut frame = BytesMut::with_capacity(data.len() + event.len() + 32);
    if let Some(id) = id {
        put_line(&mut frame, b"id: ", id);
    }
    frame.put_slice(b"event: ");
    frame.put_slice(event.as_bytes());
    frame.put_slice(b"\ndata: ");
    frame.put_slice(data.as_bytes());
    frame.put_slice(b"\n\n");
    frame.freeze()
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
        let mut out = BytesMut::from(&b"before\n"[..]);
        event(EventKind::Token, "a").write_frame(&mut out);
        assert_eq!(
            out,
            &b"before\nid: 7\nevent: token\ndata: {\"seq\":7,\"text\":\"a\"}\n\n"[..]
        );
        assert_eq!(
            sse_frame(Some(7), "token", r#"{"seq":7,"text":"a"}"#),
            out.split_off(7).freeze()
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
