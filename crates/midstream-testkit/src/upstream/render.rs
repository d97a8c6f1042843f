//! OpenAI-shaped bytes for chat scenarios.
//!
//! Stream chunks are rendered one at a time, when the body is about to send them, from a
//! per-response prefix and a small template: no `serde_json::Value` per token and no frame
//! kept in memory before it is due, so thousands of idle streams cost little. The field
//! order and the `data: {json}\n\n` framing follow the recorded fixtures.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::scenario::MockToolCall;
use super::usage::Usage;

/// Sent as `system_fingerprint` on every chunk.
const SYSTEM_FINGERPRINT: &str = "fp_mock0b5e1d";

/// The stream terminator, exactly as OpenAI writes it.
pub(crate) const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

/// One chat answer being served: what to say, and how it identifies itself.
#[derive(Debug)]
pub(crate) struct ChatAnswer {
    id: String,
    created: u64,
    model: String,
    pieces: Arc<[String]>,
    tool_calls: Arc<[MockToolCall]>,
    tool_call_ids: Vec<String>,
    unknown_fields: bool,
    /// Source of the random-looking ids and `obfuscation` values.
    rng: SmallRng,
}

/// Which chunk of a chat stream to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    Role,
    Content(usize),
    ToolCallHeader(usize),
    ToolCallArguments { call: usize, fragment: usize },
    Finish,
    Usage,
    Done,
}

impl ChatAnswer {
    pub(crate) fn new(
        model: &str,
        pieces: Arc<[String]>,
        tool_calls: Arc<[MockToolCall]>,
        unknown_fields: bool,
    ) -> Self {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let id = format!("chatcmpl-{}", Alphanumeric.sample_string(&mut rng, 29));
        let tool_call_ids = tool_calls
            .iter()
            .map(|call| match &call.id {
                Some(id) => id.clone(),
                None => format!("call_{}", Alphanumeric.sample_string(&mut rng, 24)),
            })
            .collect();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| since_epoch.as_secs());
        Self {
            id,
            created,
            model: model.to_owned(),
            pieces,
            tool_calls,
            tool_call_ids,
            unknown_fields,
            rng,
        }
    }

    fn finish_reason(&self) -> &'static str {
        if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    fn usage(&self) -> Usage {
        Usage::for_chat(&self.pieces, &self.tool_calls)
    }

    /// Every chunk of the stream in order; `Usage` only when asked, `Done` only when wanted.
    pub(crate) fn chunk_plan(&self, include_usage: bool, with_done: bool) -> Vec<ChunkKind> {
        let mut plan = vec![ChunkKind::Role];
        plan.extend((0..self.pieces.len()).map(ChunkKind::Content));
        for (call_index, call) in self.tool_calls.iter().enumerate() {
            plan.push(ChunkKind::ToolCallHeader(call_index));
            plan.extend((0..call.argument_fragments.len()).map(|fragment| {
                ChunkKind::ToolCallArguments {
                    call: call_index,
                    fragment,
                }
            }));
        }
        plan.push(ChunkKind::Finish);
        if include_usage {
            plan.push(ChunkKind::Usage);
        }
        if with_done {
            plan.push(ChunkKind::Done);
        }
        plan
    }

    /// The bytes of one SSE frame, `data: {...}\n\n`.
    pub(crate) fn render(&mut self, kind: ChunkKind) -> Bytes {
        if kind == ChunkKind::Done {
            return Bytes::from_static(DONE_FRAME);
        }
        let mut frame = Vec::with_capacity(320);
        frame.extend_from_slice(b"data: {\"id\":\"");
        frame.extend_from_slice(self.id.as_bytes());
        frame.extend_from_slice(b"\",\"object\":\"chat.completion.chunk\",\"created\":");
        frame.extend_from_slice(self.created.to_string().as_bytes());
        frame.extend_from_slice(b",\"model\":");
        push_json_string(&mut frame, &self.model);
        frame.extend_from_slice(b",\"system_fingerprint\":\"");
        frame.extend_from_slice(SYSTEM_FINGERPRINT.as_bytes());
        frame.extend_from_slice(b"\",\"choices\":");
        if kind == ChunkKind::Usage {
            frame.extend_from_slice(b"[],\"usage\":");
            frame.extend_from_slice(self.usage().to_json().to_string().as_bytes());
        } else {
            frame.extend_from_slice(b"[{\"index\":0,\"delta\":{");
            self.push_delta(&mut frame, kind);
            frame.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
            if kind == ChunkKind::Finish {
                frame.push(b'"');
                frame.extend_from_slice(self.finish_reason().as_bytes());
                frame.push(b'"');
            } else {
                frame.extend_from_slice(b"null");
            }
            frame.extend_from_slice(b"}]");
        }
        if self.unknown_fields {
            // OpenAI pads chunks with a random string of varying length.
            let length = self.rng.random_range(1..=16);
            frame.extend_from_slice(b",\"obfuscation\":\"");
            frame.extend_from_slice(Alphanumeric.sample_string(&mut self.rng, length).as_bytes());
            frame.push(b'"');
        }
        frame.extend_from_slice(b"}\n\n");
        Bytes::from(frame)
    }

    fn push_delta(&self, frame: &mut Vec<u8>, kind: ChunkKind) {
        match kind {
            ChunkKind::Role => {
                let content_first = !self.pieces.is_empty() || self.tool_calls.is_empty();
                frame.extend_from_slice(if content_first {
                    b"\"role\":\"assistant\",\"content\":\"\"".as_slice()
                } else {
                    b"\"role\":\"assistant\",\"content\":null".as_slice()
                });
                if self.unknown_fields {
                    frame.extend_from_slice(b",\"reasoning_content\":\"\"");
                }
                frame.extend_from_slice(b",\"refusal\":null");
            }
            ChunkKind::Content(index) => {
                frame.extend_from_slice(b"\"content\":");
                push_json_string(frame, &self.pieces[index]);
                if self.unknown_fields {
                    frame.extend_from_slice(b",\"reasoning_content\":null");
                }
            }
            ChunkKind::ToolCallHeader(call) => {
                frame.extend_from_slice(b"\"tool_calls\":[{\"index\":");
                frame.extend_from_slice(call.to_string().as_bytes());
                frame.extend_from_slice(b",\"id\":");
                push_json_string(frame, &self.tool_call_ids[call]);
                frame.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                push_json_string(frame, &self.tool_calls[call].name);
                frame.extend_from_slice(b",\"arguments\":\"\"}}]");
            }
            ChunkKind::ToolCallArguments { call, fragment } => {
                frame.extend_from_slice(b"\"tool_calls\":[{\"index\":");
                frame.extend_from_slice(call.to_string().as_bytes());
                frame.extend_from_slice(b",\"function\":{\"arguments\":");
                push_json_string(frame, &self.tool_calls[call].argument_fragments[fragment]);
                frame.extend_from_slice(b"}}]");
            }
            ChunkKind::Finish | ChunkKind::Usage | ChunkKind::Done => {}
        }
    }

    /// The non-streaming `chat.completion` object for the same answer.
    pub(crate) fn completion_json(&self) -> Bytes {
        let content =
            (!self.pieces.is_empty() || self.tool_calls.is_empty()).then(|| self.pieces.concat());
        let mut message = json!({
            "role": "assistant",
            "content": content,
            "refusal": null,
            "annotations": []
        });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .zip(&self.tool_call_ids)
                .map(|(call, id)| {
                    json!({
                        "id": id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments()}
                    })
                })
                .collect();
        }
        if self.unknown_fields {
            message["reasoning_content"] = json!("");
        }
        let completion = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": self.finish_reason()
            }],
            "usage": self.usage().to_json(),
            "service_tier": "default"
        });
        Bytes::from(completion.to_string())
    }
}

/// Appends `text` as a quoted, escaped JSON string.
fn push_json_string(frame: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(frame, text).expect("serialising a str into a Vec<u8> cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(pieces: &[&str], calls: Vec<MockToolCall>, unknown_fields: bool) -> ChatAnswer {
        ChatAnswer::new(
            "gpt-4o-mini",
            pieces.iter().map(|piece| (*piece).to_owned()).collect(),
            calls.into(),
            unknown_fields,
        )
    }

    fn parse(frame: &Bytes) -> serde_json::Value {
        let text = std::str::from_utf8(frame).expect("frames are UTF-8");
        let json = text
            .strip_prefix("data: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .expect("frames are `data: ...\\n\\n`");
        serde_json::from_str(json).expect("frames are JSON")
    }

    #[test]
    fn text_chunks_have_the_fixture_fields_plus_unknown_ones() {
        let mut answer = answer(&["Hel", "lo \"quoted\"\n"], Vec::new(), true);
        let plan = answer.chunk_plan(true, true);
        assert_eq!(plan.len(), 6);
        let frames: Vec<Bytes> = plan.into_iter().map(|kind| answer.render(kind)).collect();
        let role = parse(&frames[0]);
        assert_eq!(role["object"], "chat.completion.chunk");
        assert_eq!(role["model"], "gpt-4o-mini");
        assert_eq!(role["system_fingerprint"], SYSTEM_FINGERPRINT);
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(role["choices"][0]["delta"]["content"], "");
        assert_eq!(role["choices"][0]["delta"]["reasoning_content"], "");
        assert!(
            role["obfuscation"]
                .as_str()
                .is_some_and(|value| !value.is_empty())
        );
        assert_eq!(
            parse(&frames[2])["choices"][0]["delta"]["content"],
            "lo \"quoted\"\n"
        );
        assert_eq!(parse(&frames[3])["choices"][0]["finish_reason"], "stop");
        let usage = parse(&frames[4]);
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], 2);
        assert_eq!(&frames[5][..], DONE_FRAME);
        let ids: Vec<_> = frames[..5]
            .iter()
            .map(|frame| parse(frame)["id"].clone())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "one id per response");
    }

    #[test]
    fn plain_chunks_have_no_unknown_fields() {
        let mut answer = answer(&["x"], Vec::new(), false);
        let chunk = parse(&answer.render(ChunkKind::Content(0)));
        assert_eq!(chunk.get("obfuscation"), None);
        assert_eq!(chunk["choices"][0]["delta"], json!({"content": "x"}));
    }

    #[test]
    fn parallel_tool_calls_stream_header_then_fragments_per_index() {
        let calls = vec![
            MockToolCall::new("weather", ["{\"city\":", "\"Paris\"}"]).with_id("call_a"),
            MockToolCall::new("calendar", ["{}"]),
        ];
        let mut answer = answer(&[], calls, true);
        let plan = answer.chunk_plan(false, false);
        let chunks: Vec<_> = plan
            .into_iter()
            .map(|kind| parse(&answer.render(kind)))
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], json!(null));
        let header = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(header["index"], 0);
        assert_eq!(header["id"], "call_a");
        assert_eq!(header["function"]["name"], "weather");
        assert_eq!(
            chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "\"Paris\"}"
        );
        let second = &chunks[4]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(second["index"], 1);
        assert!(
            second["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert_eq!(
            chunks.last().expect("a finish chunk")["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }

    #[test]
    fn the_completion_object_carries_text_tool_calls_and_usage() {
        let calls = vec![MockToolCall::new("weather", ["{\"city\":\"Paris\"}"])];
        let answer = answer(&["Let me ", "check."], calls, true);
        let completion: serde_json::Value =
            serde_json::from_slice(&answer.completion_json()).expect("JSON");
        assert_eq!(completion["object"], "chat.completion");
        let choice = &completion["choices"][0];
        assert_eq!(choice["message"]["content"], "Let me check.");
        assert_eq!(
            choice["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(completion["usage"]["total_tokens"], 12 + 2 + 2);
    }
}
