//! Recognising SSE frames in a streamed body, cheaply.
//!
//! The load generator shares the CPU with what it measures, so it does not parse JSON per
//! chunk: the gateway's own splitter ([`FrameSplitter`]) cuts the body into frames without
//! copying, and each frame's first `data:` payload is classified by looking
//! for a few fixed markers (`"content":"`, `"midstream":`, `"type":"`, `"cached":true`,
//! `[DONE]`, a leading `{"error"`). That is exact for the compact JSON that OpenAI, the mock
//! and the gateway write: inside a JSON string every `"` is escaped, so a marker with its
//! quotes cannot appear inside a string value.
//!
//! A browser stream's events (`GET /v1/streams/{id}/events`) are named instead: their
//! `event:` field says what they are ([`SseScanner::named`]), and they are reported as the same
//! [`FrameKind`]s, so one trace times both: `token` as a content chunk, `done` as `[DONE]`,
//! `error` as an in-band error, `intent` and `tool.*` as MidStream events, any other name
//! (`usage`, `reasoning`, `snapshot`) as [`EventKind::Other`].

use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::Finder;
use midstream_sse::FrameSplitter;
use thiserror::Error;

/// Longest frame the scanner buffers; a longer one is a protocol error (no chunk is that big).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

static MIDSTREAM: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"midstream\":"));
static CONTENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"content\":"));
static TYPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"type\":"));
static CACHED: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"cached\":"));

/// What one SSE event (or comment line) was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A `:` comment line (keep-alive).
    Comment,
    /// An ordinary chunk; `content` when its delta carries non-empty text.
    Chunk {
        /// The chunk carries at least one character of content.
        content: bool,
    },
    /// A chunk-shaped MidStream event (top-level `"midstream"` object).
    Event(EventKind),
    /// `data: [DONE]`.
    Done,
    /// An in-band error, `data: {"error": ...}`.
    Error,
}

/// The `type` of a MidStream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `intent`.
    Intent,
    /// `tool.started`.
    ToolStarted,
    /// `tool.result`; `cached` when the result came from the tool cache.
    ToolResult {
        /// `"cached": true`.
        cached: bool,
    },
    /// `tool.error`.
    ToolError,
    /// Any other type.
    Other,
}

/// The body broke the SSE framing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SseError {
    /// A frame longer than [`MAX_FRAME_BYTES`].
    #[error("an SSE frame is longer than {MAX_FRAME_BYTES} bytes")]
    FrameTooLarge,
}

/// Incremental SSE scanner: feed it body bytes as they arrive, in any pieces.
///
/// Holds at most one partial frame ([`MAX_FRAME_BYTES`]).
#[derive(Debug)]
pub struct SseScanner {
    splitter: FrameSplitter,
    /// Events are told apart by their `event:` name, not their `data:` payload.
    named: bool,
}

impl Default for SseScanner {
    /// A scanner of chat-completion chunks.
    fn default() -> Self {
        SseScanner {
            splitter: FrameSplitter::new(MAX_FRAME_BYTES),
            named: false,
        }
    }
}

impl SseScanner {
    /// A scanner of named events (a browser stream's `events_url`).
    pub fn named() -> Self {
        SseScanner {
            named: true,
            ..SseScanner::default()
        }
    }

    /// Scans `bytes`, calling `on_frame` for every comment line and every complete event.
    ///
    /// # Errors
    ///
    /// [`SseError::FrameTooLarge`] if a frame grows past [`MAX_FRAME_BYTES`].
    pub fn feed(
        &mut self,
        bytes: &Bytes,
        mut on_frame: impl FnMut(FrameKind),
    ) -> Result<(), SseError> {
        let named = self.named;
        self.splitter
            .push(bytes.clone(), |frame| {
                scan_frame(&frame, named, &mut on_frame)
            })
            .map_err(|_| SseError::FrameTooLarge)
    }
}

/// Reports each comment line of a frame, then its event, if it has a `data:` line (as an
/// `EventSource` dispatches only those): classified by its first `data:` payload, or by its
/// `event:` name when `named` (`message` when it has none).
fn scan_frame(frame: &[u8], named: bool, on_frame: &mut impl FnMut(FrameKind)) {
    let (mut name, mut data) = (None, None);
    for line in frame.split(|byte| matches!(byte, b'\n' | b'\r')) {
        if line.first() == Some(&b':') {
            on_frame(FrameKind::Comment);
        } else if let Some(payload) = line.strip_prefix(b"data:") {
            data.get_or_insert(payload);
        } else if let Some(value) = line.strip_prefix(b"event:") {
            name.get_or_insert(value.trim_ascii());
        }
    }
    let Some(data) = data else {
        return;
    };
    on_frame(if named {
        classify_named(name.unwrap_or(b"message"), data)
    } else {
        classify(data)
    });
}

/// The kind of a named event, by its name (a `tool.result`'s cache flag from its `data:`).
pub fn classify_named(name: &[u8], data: &[u8]) -> FrameKind {
    match name {
        b"token" => FrameKind::Chunk { content: true },
        b"done" => FrameKind::Done,
        b"error" => FrameKind::Error,
        _ => FrameKind::Event(kind_named(name, data)),
    }
}

/// The kind of a `data:` payload (the text after `data:`).
pub fn classify(payload: &[u8]) -> FrameKind {
    let payload = payload.trim_ascii();
    if payload == b"[DONE]" {
        return FrameKind::Done;
    }
    if payload
        .strip_prefix(b"{")
        .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"error\""))
    {
        return FrameKind::Error;
    }
    if let Some(at) = MIDSTREAM.find(payload) {
        return FrameKind::Event(event_kind(&payload[at..]));
    }
    FrameKind::Chunk {
        content: has_content(payload),
    }
}

/// `"content":` followed by a string with at least one character.
fn has_content(payload: &[u8]) -> bool {
    CONTENT.find_iter(payload).any(|at| {
        let value = payload[at + CONTENT.needle().len()..].trim_ascii_start();
        value.len() >= 2 && value[0] == b'"' && value[1] != b'"'
    })
}

/// The event type and cache flag of a `"midstream": {...}` object (from its marker on).
fn event_kind(object: &[u8]) -> EventKind {
    let Some(at) = TYPE.find(object) else {
        return EventKind::Other;
    };
    let value = object[at + TYPE.needle().len()..].trim_ascii_start();
    let Some(value) = value.strip_prefix(b"\"") else {
        return EventKind::Other;
    };
    let name = memchr::memchr(b'"', value).map_or(value, |end| &value[..end]);
    kind_named(name, object)
}

/// The MidStream event called `name`; `object` holds a `tool.result`'s cache flag.
fn kind_named(name: &[u8], object: &[u8]) -> EventKind {
    match name {
        b"intent" => EventKind::Intent,
        b"tool.started" => EventKind::ToolStarted,
        b"tool.result" => EventKind::ToolResult {
            cached: is_cached(object),
        },
        b"tool.error" => EventKind::ToolError,
        _ => EventKind::Other,
    }
}

fn is_cached(object: &[u8]) -> bool {
    CACHED.find(object).is_some_and(|at| {
        object[at + CACHED.needle().len()..]
            .trim_ascii_start()
            .starts_with(b"true")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const TOKEN: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" Paris"},"finish_reason":null}]}"#;
    const FINISH: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const INTENT: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":null}],"midstream":{"type":"intent","name":"weather","args":{"city":"Paris"}}}"#;
    const CACHED_RESULT: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":null}],"midstream":{"type":"tool.result","tool":"weather","cached":true,"result":{"content":"sunny","type":"x"}}}"#;

    fn stream() -> String {
        [
            ROLE,
            ": ping",
            TOKEN,
            INTENT,
            CACHED_RESULT,
            FINISH,
            "data: [DONE]",
        ]
        .map(|frame| format!("{frame}\n\n"))
        .concat()
    }

    fn expected() -> Vec<FrameKind> {
        vec![
            FrameKind::Chunk { content: false },
            FrameKind::Comment,
            FrameKind::Chunk { content: true },
            FrameKind::Event(EventKind::Intent),
            FrameKind::Event(EventKind::ToolResult { cached: true }),
            FrameKind::Chunk { content: false },
            FrameKind::Done,
        ]
    }

    fn scan(pieces: &[&[u8]]) -> Vec<FrameKind> {
        scan_with(SseScanner::default(), pieces)
    }

    fn scan_with(mut scanner: SseScanner, pieces: &[&[u8]]) -> Vec<FrameKind> {
        let mut frames = Vec::new();
        for piece in pieces {
            scanner
                .feed(&Bytes::copy_from_slice(piece), |kind| frames.push(kind))
                .expect("short frames");
        }
        frames
    }

    #[test]
    fn a_whole_stream_is_classified_frame_by_frame() {
        assert_eq!(scan(&[stream().as_bytes()]), expected());
    }

    #[test]
    fn every_two_way_split_gives_the_same_frames() {
        let bytes = stream().into_bytes();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            assert_eq!(scan(&[head, tail]), expected(), "split at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time_and_crlf_endings() {
        let bytes = stream().replace('\n', "\r\n").into_bytes();
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(scan(&pieces), expected());
    }

    #[test]
    fn payloads_are_classified_by_their_markers() {
        assert_eq!(classify(b" [DONE]"), FrameKind::Done);
        assert_eq!(
            classify(br#" {"error": {"message": "upstream failed"}}"#),
            FrameKind::Error
        );
        assert_eq!(
            classify(br#"{"choices":[{"delta":{"content": "x"}}]}"#),
            FrameKind::Chunk { content: true }
        );
        assert_eq!(
            classify(br#"{"choices":[{"delta":{"content":null}}]}"#),
            FrameKind::Chunk { content: false }
        );
        assert_eq!(
            classify(br#"{"choices":[{"delta":{"content":"say \"content\":\"\" ok"}}]}"#),
            FrameKind::Chunk { content: true },
            "escaped quotes inside a string are not markers"
        );
        assert_eq!(
            classify(br#"{"choices":[],"midstream":{"type":"tool.result","cached":false}}"#),
            FrameKind::Event(EventKind::ToolResult { cached: false })
        );
        assert_eq!(
            classify(br#"{"midstream":{"type": "tool.started"}}"#),
            FrameKind::Event(EventKind::ToolStarted)
        );
        assert_eq!(
            classify(br#"{"midstream":{"type":"tool.error"}}"#),
            FrameKind::Event(EventKind::ToolError)
        );
        assert_eq!(
            classify(br#"{"midstream":{"type":"usage"}}"#),
            FrameKind::Event(EventKind::Other)
        );
        assert_eq!(
            classify(br#"{"midstream":{}}"#),
            FrameKind::Event(EventKind::Other)
        );
    }

    #[test]
    fn an_event_is_reported_once_at_its_blank_line_and_other_fields_are_ignored() {
        let frames = scan(&[
            b"event: x\nid: 1\ndata: [DONE]\ndata: {\"error\":1}\n",
            b"\n",
        ]);
        assert_eq!(frames, [FrameKind::Done]);
        assert_eq!(scan(&[b"data: [DONE]\n"]), [], "no blank line yet");
    }

    /// A browser stream's events as `GET /v1/streams/{id}/events` writes them.
    fn named_stream() -> String {
        [
            "retry: 2000",
            concat!(
                "id: 0\nevent: token\ndata: ",
                r#"{"seq":0,"text":"say \"midstream\":{\"type\":\"intent\"}"}"#
            ),
            ": ping",
            "id: 1\nevent: intent\ndata: {\"seq\":1,\"type\":\"intent\",\"rule\":\"weather\"}",
            "id: 2\nevent: tool.result\ndata: {\"seq\":2,\"type\":\"tool.result\",\"cached\":true}",
            "id: 3\nevent: usage\ndata: {\"seq\":3,\"total_tokens\":9}",
            "id: 4\nevent:done\ndata: {\"seq\":4,\"status\":\"completed\"}",
        ]
        .map(|frame| format!("{frame}\n\n"))
        .concat()
    }

    fn scan_named(pieces: &[&[u8]]) -> Vec<FrameKind> {
        scan_with(SseScanner::named(), pieces)
    }

    #[test]
    fn named_events_are_classified_by_their_name_in_any_split() {
        let expected = [
            FrameKind::Chunk { content: true },
            FrameKind::Comment,
            FrameKind::Event(EventKind::Intent),
            FrameKind::Event(EventKind::ToolResult { cached: true }),
            FrameKind::Event(EventKind::Other),
            FrameKind::Done,
        ];
        let bytes = named_stream().into_bytes();
        assert_eq!(
            scan_named(&[&bytes]),
            expected,
            "a token's text is not read for markers; `retry:` alone is no event"
        );
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            assert_eq!(scan_named(&[head, tail]), expected, "split at {cut}");
        }
        let crlf = named_stream().replace('\n', "\r\n").into_bytes();
        let pieces: Vec<&[u8]> = crlf.chunks(1).collect();
        assert_eq!(scan_named(&pieces), expected);
    }

    #[test]
    fn named_kinds_of_every_gateway_event() {
        for (name, kind) in [
            ("token", FrameKind::Chunk { content: true }),
            ("done", FrameKind::Done),
            ("error", FrameKind::Error),
            ("intent", FrameKind::Event(EventKind::Intent)),
            ("tool.started", FrameKind::Event(EventKind::ToolStarted)),
            ("tool.error", FrameKind::Event(EventKind::ToolError)),
            ("reasoning", FrameKind::Event(EventKind::Other)),
            ("snapshot", FrameKind::Event(EventKind::Other)),
        ] {
            assert_eq!(classify_named(name.as_bytes(), b"{}"), kind, "{name}");
        }
        assert_eq!(
            classify_named(b"tool.result", br#"{"seq":5,"cached":false}"#),
            FrameKind::Event(EventKind::ToolResult { cached: false })
        );
        assert_eq!(
            scan_named(&[b"data: {\"seq\":0}\n\n"]),
            [FrameKind::Event(EventKind::Other)],
            "an unnamed event is a `message`"
        );
    }

    #[test]
    fn an_endless_frame_is_an_error() {
        let mut scanner = SseScanner::default();
        let long = Bytes::from(vec![b'x'; MAX_FRAME_BYTES]);
        assert_eq!(scanner.feed(&long, |_| {}), Ok(()));
        assert_eq!(
            scanner.feed(&Bytes::from_static(b"x"), |_| {}),
            Err(SseError::FrameTooLarge)
        );
    }
}
