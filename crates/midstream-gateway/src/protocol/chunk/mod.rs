//! A lean, borrowed view of a `chat.completion.chunk` (or a non-streaming `chat.completion`).
//!
//! The proxy forwards the upstream's bytes unchanged; this view only *reads* them: the
//! content delta of choice 0 (for the scanner and the record), the finish reason, usage, tool
//! calls, and the raw `id`/`created`/`model` that injected events copy. Everything else is
//! skipped without being materialised, and nothing is allocated unless a string holds escapes.
//! Offsets of the content string inside the payload are available for the one case that
//! rewrites a chunk (redaction).
//!
//! Two readers produce the view: [`fast`], one strict pass over the usual shape of a chunk,
//! and serde's derive below, which reads whatever the fast reader declines. The fast reader is
//! at least as strict as serde, so every payload is read exactly as serde reads it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

mod fast;

/// A JSON value exactly as the payload spells it (borrowed from it, never decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawJson<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(deserializer).map(|raw| RawJson(raw.get()))
    }
}

/// The parts of a chunk the gateway reads.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct ChunkView<'a> {
    /// Raw JSON of `id`.
    #[serde(borrow, default)]
    pub id: Option<RawJson<'a>>,
    /// Raw JSON of `created`.
    #[serde(borrow, default)]
    pub created: Option<RawJson<'a>>,
    /// Raw JSON of `model`.
    #[serde(borrow, default)]
    pub model: Option<RawJson<'a>>,
    /// Choice 0 (other choices of an `n > 1` request are forwarded but not analysed).
    #[serde(borrow, default, deserialize_with = "choice_zero")]
    pub choices: Option<ChoiceView<'a>>,
    /// Token usage (the final chunk with `stream_options.include_usage`).
    #[serde(default)]
    pub usage: Option<UsageView>,
    /// An in-band error object sent by the upstream.
    #[serde(borrow, default)]
    pub error: Option<RawJson<'a>>,
}

/// One choice.
#[derive(Debug, PartialEq, Deserialize)]
pub struct ChoiceView<'a> {
    /// The choice index.
    #[serde(default)]
    pub index: u32,
    /// Streaming: the delta.
    #[serde(borrow, default)]
    pub delta: Option<MessageView<'a>>,
    /// Non-streaming: the message.
    #[serde(borrow, default)]
    pub message: Option<MessageView<'a>>,
    /// Why generation stopped, on the last chunk.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// A delta or a message.
#[derive(Debug, PartialEq, Deserialize)]
pub struct MessageView<'a> {
    /// Raw JSON of `content` (a string; `None` for null).
    #[serde(borrow, default)]
    pub content: Option<RawJson<'a>>,
    /// Raw JSON of `tool_calls`, parsed only when the gateway owns tools.
    #[serde(borrow, default)]
    pub tool_calls: Option<RawJson<'a>>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct UsageView {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: Option<i64>,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: Option<i64>,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: Option<i64>,
}

impl<'a> ChunkView<'a> {
    /// Parses a data payload; `None` for anything that is not a JSON object of this shape
    /// (such a frame is forwarded untouched and simply not analysed).
    pub fn parse(payload: &'a [u8]) -> Option<ChunkView<'a>> {
        read(payload, None)
    }

    /// The delta (or message) of choice 0.
    pub fn message(&self) -> Option<&MessageView<'a>> {
        let choice = self.choices.as_ref()?;
        choice.delta.as_ref().or(choice.message.as_ref())
    }

    /// Choice 0's finish reason.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.as_ref()?.finish_reason.as_deref()
    }
}

/// Reads the chunks of one stream, as [`ChunkView::parse`] does, but remembering how the last
/// chunk started: the next one that starts with the same bytes is read from there (see
/// [`fast`]). Per stream; the memory is the start of one chunk.
#[derive(Debug, Default)]
pub struct ChunkReader {
    memo: fast::Memo,
}

impl ChunkReader {
    /// Parses a data payload of this reader's stream, exactly as [`ChunkView::parse`] would.
    pub fn read<'a>(&mut self, payload: &'a [u8]) -> Option<ChunkView<'a>> {
        read(payload, Some(&mut self.memo))
    }
}

/// The fast reader, or serde where it declines.
fn read<'a>(payload: &'a [u8], memo: Option<&mut fast::Memo>) -> Option<ChunkView<'a>> {
    fast::read(payload, memo).or_else(|| serde_json::from_slice(payload).ok())
}

impl MessageView<'_> {
    /// The content as text, if it is a non-empty string.
    pub fn content_text(&self) -> Option<Cow<'_, str>> {
        decode_string(self.content?).filter(|text| !text.is_empty())
    }
}

/// Decodes a raw JSON string without allocating unless it contains escapes; `None` if the
/// value is not a string.
pub fn decode_string(raw: RawJson<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        Some(Cow::Borrowed(inner))
    } else {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    }
}

/// Byte range of `inner` inside `outer`, when `inner` is a subslice of it (as borrowed values
/// parsed from `outer` are). Address arithmetic only; no `unsafe`.
pub fn span_in(outer: &[u8], inner: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    let end = start + inner.len();
    (end <= outer.len()).then_some(start..end)
}

/// Keeps choice 0 of the `choices` array (the first with `index` 0), skipping the others.
fn choice_zero<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<ChoiceView<'a>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct ChoiceZero<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for ChoiceZero<'a> {
        type Value = Option<ChoiceView<'a>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of choices or null")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut zero = None;
            while zero.is_none() {
                match seq.next_element::<ChoiceView<'a>>()? {
                    Some(choice) if choice.index == 0 => zero = Some(choice),
                    Some(_) => {}
                    None => return Ok(None),
                }
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(zero)
        }
    }

    deserializer.deserialize_any(ChoiceZero(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_finish_usage_and_raw_meta() {
        let payload = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346178,"model":"gpt-4o","obfuscation":"x",
            "choices":[{"index":0,"delta":{"content":"Hel\"lo","reasoning_content":"r"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        let chunk = ChunkView::parse(payload).expect("parses");
        assert_eq!(chunk.id.map(RawJson::get), Some("\"chatcmpl-1\""));
        assert_eq!(chunk.created.map(RawJson::get), Some("1727346178"));
        let message = chunk.message().expect("delta");
        assert_eq!(message.content_text().as_deref(), Some("Hel\"lo"));
        let span =
            span_in(payload, message.content.expect("content").get().as_bytes()).expect("inside");
        assert_eq!(&payload[span], br#""Hel\"lo""#);
        assert_eq!(chunk.finish_reason(), None);
        assert!(chunk.usage.is_none());
    }

    #[test]
    fn choice_zero_is_found_among_others_and_usage_chunks_have_none() {
        let chunk = ChunkView::parse(
            br#"{"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"#,
        )
        .expect("parses");
        assert_eq!(
            chunk.message().and_then(|m| m.content_text()).as_deref(),
            Some("a")
        );
        assert_eq!(chunk.finish_reason(), Some("stop"));

        let usage = ChunkView::parse(
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,"prompt_tokens_details":{}}}"#,
        )
        .expect("parses");
        assert!(usage.choices.is_none());
        assert_eq!(usage.usage.and_then(|u| u.total_tokens), Some(8));
    }

    #[test]
    fn non_chunks_are_not_parsed() {
        assert!(ChunkView::parse(b"[DONE]").is_none());
        assert!(ChunkView::parse(b"{not json").is_none());
        assert!(ChunkView::parse(br#"{"choices":"nope"}"#).is_none());
    }

    #[test]
    fn the_fixtures_parse() {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../midstream-testkit/fixtures/openai-streams"
        );
        for name in [
            "text.sse",
            "text-long.sse",
            "tool-call.sse",
            "tool-calls-parallel.sse",
            "refusal.sse",
            "logprobs.sse",
        ] {
            let text = std::fs::read_to_string(format!("{fixtures}/{name}")).expect("fixture");
            for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if line != "[DONE]" {
                    assert!(
                        ChunkView::parse(line.as_bytes()).is_some(),
                        "{name}: {line}"
                    );
                }
            }
        }
    }
}
