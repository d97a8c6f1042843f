//! What one response of the mock upstream looks like: its content, pacing, faults and ending.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use super::fixtures::{fixture_bytes, fixture_names};
use super::garbage::GARBAGE_BODY;
use super::usage::Usage;
use crate::sse::SseParser;

/// One scripted response of [`MockUpstream`](super::MockUpstream), built in builder style.
///
/// Chat scenarios ([`text`](Self::text), [`tool_calls`](Self::tool_calls)) answer a
/// `"stream": true` request with OpenAI-shaped SSE chunks and any other request with a
/// `chat.completion` object built from the same text and tool calls. Byte scenarios
/// ([`fixture`](Self::fixture), [`raw`](Self::raw), [`garbage`](Self::garbage)) send their
/// bytes as a `text/event-stream` body whatever the request asked, as a broken upstream
/// would. [`status`](Self::status) answers with an error status and JSON body before any
/// byte of stream.
///
/// Pacing, splitting and endings combine with every kind of content.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) content: Content,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) delay: Duration,
    pub(crate) first_byte_delay: Duration,
    pub(crate) split: Option<Split>,
    pub(crate) ending: Ending,
    pub(crate) stall_before_headers: bool,
    pub(crate) unknown_fields: bool,
    pub(crate) data_lines: Option<u64>,
    pub(crate) tag: Option<String>,
}

/// What the body is made of.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// Rendered per request as OpenAI chunks (or a `chat.completion` object).
    Chat {
        pieces: Arc<[String]>,
        tool_calls: Arc<[MockToolCall]>,
    },
    /// Sent exactly as given.
    Bytes(Bytes),
    /// An error status with a JSON body.
    Status {
        status: StatusCode,
        body: serde_json::Value,
    },
}

/// How a body ends once its frames are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Every frame, `data: [DONE]` included, then the clean end of the body.
    Done,
    /// No `[DONE]`; the connection is aborted after `after` frames (all when `None`).
    Drop { after: Option<usize> },
    /// No `[DONE]`; nothing more is sent after `after` frames (all when `None`), the
    /// connection stays open.
    Stall { after: Option<usize> },
}

/// How the body bytes are cut into separately written pieces.
///
/// The cut points ignore frame and UTF-8 boundaries on purpose: a piece may end inside a
/// JSON string, between `\r` and `\n`, or inside a multi-byte character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Pieces of exactly `n` bytes (the last may be shorter); `0` is read as `1`.
    Bytes(usize),
    /// Pieces of 1 to `max` bytes, lengths drawn from a generator seeded with `seed`, so a
    /// failing case can be replayed; `max` of `0` is read as `1`.
    Random {
        /// Seed of the length generator.
        seed: u64,
        /// Largest piece, in bytes.
        max: usize,
    },
}

/// One tool call a chat scenario streams as `tool_calls` deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockToolCall {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) argument_fragments: Vec<String>,
}

impl MockToolCall {
    /// A call of function `name` whose arguments stream as these fragments, in order.
    ///
    /// The id is random per response (like OpenAI's `call_...`) unless set with
    /// [`with_id`](Self::with_id).
    pub fn new(
        name: impl Into<String>,
        argument_fragments: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            id: None,
            name: name.into(),
            argument_fragments: argument_fragments.into_iter().map(Into::into).collect(),
        }
    }

    /// Fixes the call id so a test can refer to it.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The function name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fixed id, if one was set.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The argument fragments, in streaming order.
    pub fn argument_fragments(&self) -> &[String] {
        &self.argument_fragments
    }

    /// The complete arguments string (all fragments joined).
    pub fn arguments(&self) -> String {
        self.argument_fragments.concat()
    }
}

impl Default for Scenario {
    /// A short text answer: the mock's answer when nothing else was scripted.
    fn default() -> Self {
        Self::text([
            "Hello", "!", " How", " can", " I", " help", " you", " today", "?",
        ])
    }
}

impl Scenario {
    fn with_content(content: Content) -> Self {
        Self {
            content,
            headers: Vec::new(),
            delay: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            split: None,
            ending: Ending::Done,
            stall_before_headers: false,
            unknown_fields: true,
            data_lines: None,
            tag: None,
        }
    }

    /// A text answer streamed one chunk per piece.
    ///
    /// The stream is: a role chunk (`"delta":{"role":"assistant","content":""}`), one chunk
    /// per piece, a finish chunk (`finish_reason: "stop"`), a usage chunk when the request
    /// asked for it with `stream_options.include_usage`, then `data: [DONE]`. Every chunk
    /// also carries fields the gateway must pass through untouched (see [`plain`](Self::plain)).
    pub fn text(pieces: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::from_shared_pieces(pieces.into_iter().map(Into::into).collect())
    }

    /// A text scenario whose pieces are shared with other responses (no copy per request).
    pub(crate) fn from_shared_pieces(pieces: Arc<[String]>) -> Self {
        Self::with_content(Content::Chat {
            pieces,
            tool_calls: Arc::from([]),
        })
    }

    /// Tool calls streamed as `tool_calls` deltas, one call after the other with `index`
    /// 0, 1, ...: for each call a chunk with its id and name, then one chunk per argument
    /// fragment; the finish chunk says `finish_reason: "tool_calls"`.
    pub fn tool_calls(calls: impl IntoIterator<Item = MockToolCall>) -> Self {
        Self::with_content(Content::Chat {
            pieces: Arc::from([]),
            tool_calls: calls.into_iter().collect(),
        })
    }

    /// Replays `fixtures/openai-streams/{name}.sse` byte for byte (see [`fixture_names`]).
    ///
    /// # Panics
    ///
    /// If there is no fixture of that name.
    pub fn fixture(name: &str) -> Self {
        let Some(bytes) = fixture_bytes(name) else {
            panic!(
                "no fixture named {name:?}; known fixtures: {:?}",
                fixture_names()
            );
        };
        Self::raw(Bytes::from_static(bytes))
    }

    /// Sends exactly these bytes as the SSE body (to script malformed streams).
    pub fn raw(bytes: impl Into<Bytes>) -> Self {
        Self::with_content(Content::Bytes(bytes.into()))
    }

    /// A body of malformed frames between valid ones: truncated JSON, non-JSON data, lines
    /// without `data:`, a stray `event:` line, invalid UTF-8, a frame with CRLF line
    /// endings, and finally `data: [DONE]`. The valid chunks' content is
    /// `"before garbage"` then `" still streaming"` (see [`text_content`](Self::text_content)).
    pub fn garbage() -> Self {
        Self::raw(Bytes::from_static(GARBAGE_BODY))
    }

    /// An error status with this JSON body, sent before any byte of stream.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100 to 999).
    pub fn status(status: u16, body: serde_json::Value) -> Self {
        let Ok(status) = StatusCode::from_u16(status) else {
            panic!("{status} is not an HTTP status code");
        };
        Self::with_content(Content::Status { status, body })
    }

    /// Adds tool calls after the text of a chat scenario (a model that says something,
    /// then calls tools); the finish reason becomes `tool_calls`.
    ///
    /// # Panics
    ///
    /// If this is not a chat scenario ([`text`](Self::text) or [`tool_calls`](Self::tool_calls)).
    pub fn with_tool_calls(mut self, calls: impl IntoIterator<Item = MockToolCall>) -> Self {
        let Content::Chat { tool_calls, .. } = &mut self.content else {
            panic!(
                "with_tool_calls needs a chat scenario, not {:?}",
                self.content
            );
        };
        *tool_calls = tool_calls.iter().cloned().chain(calls).collect();
        self
    }

    /// Leaves out the unknown fields (`"obfuscation"` at top level, `"reasoning_content"`
    /// in deltas and messages) that chat scenarios send by default.
    pub fn plain(mut self) -> Self {
        self.unknown_fields = false;
        self
    }

    /// Writes each chunk of a streaming chat scenario in two or more `data:` lines of one
    /// event, broken between JSON tokens at points drawn from a generator seeded with `seed`
    /// (replayable). Legal SSE: a client joins the lines with `\n`, which JSON reads as
    /// whitespace. `data: [DONE]` stays one line.
    pub fn data_lines(mut self, seed: u64) -> Self {
        self.data_lines = Some(seed);
        self
    }

    /// Adds a response header (e.g. `retry-after` on a 429).
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not a valid header name or value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let Ok(name) = HeaderName::try_from(name) else {
            panic!("{name:?} is not a valid header name");
        };
        let Ok(value) = HeaderValue::try_from(value) else {
            panic!("{value:?} is not a valid header value");
        };
        self.headers.push((name, value));
        self
    }

    /// Waits this long before each frame after the first.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Waits this long before sending the response headers.
    pub fn first_byte_delay(mut self, delay: Duration) -> Self {
        self.first_byte_delay = delay;
        self
    }

    /// Cuts the body bytes into pieces, each sent as its own body chunk.
    ///
    /// Each piece becomes its own HTTP/1.1 chunk, and the body yields to the runtime between
    /// pieces (`tokio::task::yield_now`), which makes hyper flush the piece to the socket
    /// before producing the next one. A client reading with hyper/reqwest therefore sees
    /// each piece as at least one separate body frame. With [`delay`](Self::delay), the
    /// delay is spent when the next frame's bytes are first needed, so a piece that spans
    /// two frames goes out after the delay.
    pub fn split(mut self, split: Split) -> Self {
        self.split = Some(split);
        self
    }

    /// After the frames (without `[DONE]`), aborts the connection: no clean chunked
    /// terminator, so the client sees a body error.
    pub fn then_drop(mut self) -> Self {
        self.ending = Ending::Drop { after: None };
        self
    }

    /// Sends the first `frames` frames, then aborts the connection.
    pub fn drop_after(mut self, frames: usize) -> Self {
        self.ending = Ending::Drop {
            after: Some(frames),
        };
        self
    }

    /// After the frames (without `[DONE]`), keeps the connection open and sends nothing more.
    pub fn then_stall(mut self) -> Self {
        self.ending = Ending::Stall { after: None };
        self
    }

    /// Sends the first `frames` frames, then keeps the connection open and sends nothing
    /// more (an idle stream, e.g. `stall_after(1)` holds after the role chunk).
    pub fn stall_after(mut self, frames: usize) -> Self {
        self.ending = Ending::Stall {
            after: Some(frames),
        };
        self
    }

    /// Never sends the response headers: the request hangs until the client gives up.
    pub fn stall_before_headers(mut self) -> Self {
        self.stall_before_headers = true;
        self
    }

    /// Labels this response; an early disconnect of it is recorded with this tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The content pieces a client should receive, in order: the scripted pieces of a chat
    /// scenario, or the `choices[0].delta.content` of every JSON frame of a byte scenario.
    pub fn content_pieces(&self) -> Vec<String> {
        match &self.content {
            Content::Chat { pieces, .. } => pieces.to_vec(),
            Content::Bytes(bytes) => content_of_sse_bytes(bytes),
            Content::Status { .. } => Vec::new(),
        }
    }

    /// All [`content_pieces`](Self::content_pieces) joined: the text a client should show.
    pub fn text_content(&self) -> String {
        self.content_pieces().concat()
    }

    /// The tool calls of a chat scenario (empty for other kinds).
    pub fn planned_tool_calls(&self) -> &[MockToolCall] {
        match &self.content {
            Content::Chat { tool_calls, .. } => tool_calls,
            Content::Bytes(_) | Content::Status { .. } => &[],
        }
    }

    /// The `usage` object a chat scenario sends (in the usage chunk or the completion).
    pub fn usage(&self) -> Option<serde_json::Value> {
        match &self.content {
            Content::Chat { pieces, tool_calls } => {
                Some(Usage::for_chat(pieces, tool_calls).to_json())
            }
            Content::Bytes(_) | Content::Status { .. } => None,
        }
    }

    /// The exact body bytes of a byte scenario (fixture, raw, garbage).
    pub fn raw_body(&self) -> Option<&Bytes> {
        match &self.content {
            Content::Bytes(bytes) => Some(bytes),
            Content::Chat { .. } | Content::Status { .. } => None,
        }
    }
}

/// `choices[0].delta.content` of every frame that parses as JSON, in order.
fn content_of_sse_bytes(bytes: &[u8]) -> Vec<String> {
    let mut parser = SseParser::new();
    let frames = parser.push(bytes).unwrap_or_default();
    frames
        .iter()
        .filter_map(|frame| frame.data.as_deref())
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_accessors_return_the_scripted_pieces() {
        let scenario = Scenario::text(["Hel", "lo", " world"]);
        assert_eq!(scenario.content_pieces(), ["Hel", "lo", " world"]);
        assert_eq!(scenario.text_content(), "Hello world");
        assert!(scenario.planned_tool_calls().is_empty());
    }

    #[test]
    fn fixture_accessors_read_the_recorded_content() {
        let scenario = Scenario::fixture("text");
        assert!(
            scenario
                .text_content()
                .starts_with("I'm unable to provide real-time")
        );
        assert!(scenario.raw_body().is_some());
        assert_eq!(scenario.usage(), None);
    }

    #[test]
    fn garbage_content_is_what_its_valid_frames_carry() {
        assert_eq!(
            Scenario::garbage().text_content(),
            "before garbage still streaming"
        );
    }

    #[test]
    fn tool_calls_can_follow_text() {
        let scenario = Scenario::text(["Checking."])
            .with_tool_calls([MockToolCall::new("weather", ["{\"city\":", "\"Paris\"}"])]);
        assert_eq!(
            scenario.planned_tool_calls()[0].arguments(),
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(scenario.text_content(), "Checking.");
    }

    #[test]
    #[should_panic(expected = "known fixtures")]
    fn an_unknown_fixture_names_the_known_ones() {
        let _ = Scenario::fixture("nope");
    }

    #[test]
    #[should_panic(expected = "not a valid header name")]
    fn an_invalid_header_name_is_refused() {
        let _ = Scenario::default().header("bad header", "x");
    }
}
