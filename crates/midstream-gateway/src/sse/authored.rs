//! Frames the gateway writes into an OpenAI-compatible stream.
//!
//! The contract (docs/architecture.md, "Events inside the OpenAI-compatible stream"): no `id:`,
//! `retry:` or `event:` lines (openai-python mis-parses them);
//! keep-alives are comments; injected events are *chunk-shaped* — the upstream's `id`,
//! `created` and `model`, an empty delta, and a top-level `midstream` object — so SDKs parse
//! them as ordinary chunks and a naive `delta.content` loop ignores them.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{ApiError, ErrorEnvelope};

/// The stream terminator, exactly as the SDKs expect it.
pub const DONE: &[u8] = b"data: [DONE]\n\n";
/// A keep-alive comment.
pub const PING: &[u8] = b": ping\n\n";

/// The top-level fields authored chunks copy from the upstream's first chunk.
#[derive(Debug, Clone)]
pub struct ChunkMeta {
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[` — shared
    /// by every authored chunk of the stream, built once.
    head: String,
    /// `"id":…,"created":…,"model":…` for a whole completion.
    fields: String,
}

impl ChunkMeta {
    /// Meta for a stream whose upstream sent no chunk yet (or never will).
    pub fn fallback(stream_id: &str, created: i64, model: &str) -> ChunkMeta {
        let id = serde_json::to_string(&format!("chatcmpl-{stream_id}")).unwrap_or_default();
        let model = serde_json::to_string(model).unwrap_or_default();
        ChunkMeta::from_raw(&id, &created.to_string(), &model)
    }

    /// Meta from the raw JSON texts of `id`, `created` and `model` (copied verbatim from an
    /// upstream chunk).
    pub fn from_raw(id: &str, created: &str, model: &str) -> ChunkMeta {
        ChunkMeta {
            head: format!(
                r#"{{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{model},"choices":["#
            ),
            fields: format!(r#""id":{id},"created":{created},"model":{model}"#),
        }
    }

    /// A non-streaming completion stopped before the upstream was asked (a prompt `stop` rule):
    /// empty content, `finish_reason: "content_filter"`, and `usage` (already JSON).
    pub fn stopped_completion(&self, usage: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{{},"object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":"content_filter"}}],"usage":{usage}}}"#,
            self.fields
        ))
    }

    /// The first chunk of a stream the gateway answers itself: the assistant's role and empty
    /// content, as an upstream's first chunk has them.
    pub fn role(&self) -> Bytes {
        let mut out = self.start(96);
        out.put_slice(
            br#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]"#,
        );
        finish(out)
    }

    /// The usage chunk (`stream_options.include_usage`): no choices, the `usage` object (already
    /// JSON).
    pub fn usage(&self, usage: &str) -> Bytes {
        let mut out = self.start(16 + usage.len());
        out.put_slice(b"],\"usage\":");
        out.put_slice(usage.as_bytes());
        finish(out)
    }

    /// A chunk-shaped event: empty delta, the event (already JSON, as it is also recorded)
    /// under `midstream`.
    pub fn event_json(&self, event: &str) -> Bytes {
        let mut out = self.start(64 + event.len());
        out.put_slice(br#"{"index":0,"delta":{},"finish_reason":null}],"midstream":"#);
        out.put_slice(event.as_bytes());
        finish(out)
    }

    /// A content chunk written by the gateway (text released by redaction at the end).
    pub fn content(&self, text: &str) -> Bytes {
        let mut out = self.start(64 + text.len());
        out.put_slice(br#"{"index":0,"delta":{"content":"#);
        write_json(&mut out, &text);
        out.put_slice(br#"},"finish_reason":null}]"#);
        finish(out)
    }

    /// A final chunk with the given finish reason (e.g. `content_filter` for a `stop` rule).
    pub fn finish_reason(&self, reason: &str) -> Bytes {
        let mut out = self.start(64);
        out.put_slice(br#"{"index":0,"delta":{},"finish_reason":"#);
        write_json(&mut out, &reason);
        out.put_slice(b"}]");
        finish(out)
    }

    fn start(&self, extra: usize) -> BytesMut {
        let mut out = BytesMut::with_capacity(8 + self.head.len() + extra);
        out.put_slice(b"data: ");
        out.put_slice(self.head.as_bytes());
        out
    }
}

/// `data: {"error": {...}}` — how a failure is reported once streaming has started: the same
/// error object [`ApiError`] gives an HTTP response.
pub fn error_frame(error: &ApiError) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    out.put_slice(b"data: ");
    write_json(
        &mut out,
        &ErrorEnvelope {
            error: &error.body(),
        },
    );
    out.put_slice(b"\n\n");
    out.freeze()
}

fn finish(mut out: BytesMut) -> Bytes {
    out.put_slice(b"}\n\n");
    out.freeze()
}

/// Serialises with serde straight into the frame. Serialising our own types to a buffer cannot
/// fail; should it ever, `null` keeps the frame valid JSON.
fn write_json<T: Serialize + ?Sized>(out: &mut BytesMut, value: &T) {
    let mut writer = out.writer();
    if serde_json::to_writer(&mut writer, value).is_err() {
        writer.get_mut().put_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(frame: &Bytes) -> Value {
        let text = std::str::from_utf8(frame).expect("utf-8");
        let payload = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .expect("one data line");
        serde_json::from_str(payload).expect("json")
    }

    #[test]
    fn events_are_chunk_shaped_with_upstream_meta() {
        let meta = ChunkMeta::from_raw("\"chatcmpl-9\"", "1727346178", "\"gpt-4o\"");
        let frame = meta.event_json(&json!({"type": "intent", "rule": "weather"}).to_string());
        assert_eq!(
            parse(&frame),
            json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1727346178, "model": "gpt-4o",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": null}],
                   "midstream": {"type": "intent", "rule": "weather"}})
        );
        assert!(!frame.starts_with(b"id:") && !frame.starts_with(b"event:"));
    }

    #[test]
    fn content_finish_and_error_frames_are_valid() {
        let meta = ChunkMeta::fallback("s1", 5, "demo \"model\"");
        assert_eq!(
            parse(&meta.content("a\"b\n"))["choices"][0]["delta"]["content"],
            "a\"b\n"
        );
        assert_eq!(
            parse(&meta.finish_reason("content_filter"))["choices"][0]["finish_reason"],
            "content_filter"
        );
        assert_eq!(parse(&meta.content("x"))["model"], "demo \"model\"");
        assert_eq!(
            parse(&meta.role())["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let usage = parse(&meta.usage(r#"{"prompt_tokens":3}"#));
        assert_eq!(
            (&usage["choices"], &usage["usage"]),
            (&json!([]), &json!({"prompt_tokens": 3}))
        );
        let completion: Value =
            serde_json::from_slice(&meta.stopped_completion(r#"{"total_tokens":3}"#))
                .expect("json");
        assert_eq!(completion["usage"]["total_tokens"], 3);
        assert_eq!(completion["choices"][0]["finish_reason"], "content_filter");
        let error = ApiError::UpstreamDisconnected("boom \"quoted\"".into());
        assert_eq!(
            parse(&error_frame(&error))["error"],
            serde_json::to_value(ErrorEnvelope {
                error: &error.body()
            })
            .expect("json")["error"],
            "the in-band error is the object an HTTP response would carry"
        );
        assert_eq!(
            parse(&error_frame(&error))["error"]["message"],
            "boom \"quoted\""
        );
    }
}
