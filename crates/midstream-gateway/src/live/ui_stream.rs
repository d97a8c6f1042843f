//! The Vercel AI SDK's UI message stream (`x-vercel-ai-ui-message-stream: v1`), written from a
//! stream's events, with only the part types the SDK documents: `start`,
//! `start-step`/`finish-step`, `text-*`, `reasoning-*`, `tool-input-available`,
//! `tool-output-available`, `tool-output-error`, `data-midstream-intent`, `error`, `abort`,
//! `finish`, then `data: [DONE]`.
//!
//! Gateway-run tools become tool parts marked `providerExecuted` (the server ran them), so
//! `useChat` renders them as tool invocations with their results and never asks the page to
//! run them.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::{Value, json};

use super::event::{EventKind, LiveEvent};
use super::feed::FeedItem;
use super::log::Snapshot;

/// Writes one stream as UI message chunks.
#[derive(Debug)]
pub struct UiEncoder {
    message_id: String,
    started: bool,
    /// The open text block's id, if any.
    text: Option<String>,
    /// The open reasoning block's id, if any.
    reasoning: Option<String>,
    blocks: u32,
    finished: bool,
}

impl UiEncoder {
    /// An encoder for the assistant message `message_id`.
    pub fn new(message_id: String) -> UiEncoder {
        UiEncoder {
            message_id,
            started: false,
            text: None,
            reasoning: None,
            blocks: 0,
            finished: false,
        }
    }

    /// Whether `[DONE]` was written.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The chunks for `items`.
    pub fn encode(&mut self, items: &[FeedItem]) -> Bytes {
        let mut out = BytesMut::new();
        for item in items {
            match item {
                FeedItem::Ping => out.put_slice(b": ping\n\n"),
                FeedItem::Snapshot(snapshot) => self.snapshot(snapshot, &mut out),
                FeedItem::Event(event) => self.event(event, &mut out),
            }
        }
        out.freeze()
    }

    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            chunk(out, &json!({"type": "start", "messageId": self.message_id}));
            chunk(out, &json!({"type": "start-step"}));
        }
    }

    fn snapshot(&mut self, snapshot: &Snapshot, out: &mut BytesMut) {
        self.start(out);
        if !snapshot.reasoning.is_empty() {
            self.reasoning_delta(&snapshot.reasoning, out);
        }
        if !snapshot.text.is_empty() {
            self.text_delta(&snapshot.text, out);
        }
        for event in &snapshot.events {
            let kind = event["type"].as_str().and_then(EventKind::from_name);
            if let Some(kind) = kind {
                self.gateway_event(kind, event, out);
            }
        }
    }

    fn event(&mut self, event: &LiveEvent, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        self.start(out);
        match event.kind {
            EventKind::Token => self.text_delta(&event.body, out),
            EventKind::Reasoning => self.reasoning_delta(&event.body, out),
            EventKind::Usage => {}
            EventKind::Error => {
                let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
                let message = body["error"]["message"]
                    .as_str()
                    .unwrap_or("the stream failed");
                self.close_blocks(out);
                chunk(out, &json!({"type": "error", "errorText": message}));
            }
            EventKind::Done => self.done(event, out),
            kind => {
                let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
                self.gateway_event(kind, &body, out);
            }
        }
    }

    /// An intent or a tool event. The open text block ends first, so the message's parts keep
    /// the order the client saw: the text up to the event, the event, the text after it.
    fn gateway_event(&mut self, kind: EventKind, event: &Value, out: &mut BytesMut) {
        self.close_blocks(out);
        let call_id = &event["id"];
        match kind {
            EventKind::Intent => chunk(
                out,
                &json!({"type": "data-midstream-intent", "data": event}),
            ),
            EventKind::ToolStarted => chunk(
                out,
                &json!({
                    "type": "tool-input-available",
                    "toolCallId": call_id,
                    "toolName": event["tool"],
                    "input": event.get("arguments").cloned().unwrap_or_else(|| json!({})),
                    "providerExecuted": true,
                }),
            ),
            EventKind::ToolResult => chunk(
                out,
                &json!({
                    "type": "tool-output-available",
                    "toolCallId": call_id,
                    "output": event.get("result").cloned().unwrap_or(Value::Null),
                    "providerExecuted": true,
                }),
            ),
            EventKind::ToolError => {
                let message = event["error"]["message"]
                    .as_str()
                    .unwrap_or("the tool failed");
                chunk(
                    out,
                    &json!({
                        "type": "tool-output-error",
                        "toolCallId": call_id,
                        "errorText": message,
                        "providerExecuted": true,
                    }),
                );
            }
            _ => {}
        }
    }

    fn text_delta(&mut self, delta: &str, out: &mut BytesMut) {
        if let Some(id) = self.reasoning.take() {
            chunk(out, &json!({"type": "reasoning-end", "id": id}));
        }
        let id = match &self.text {
            Some(id) => id.clone(),
            None => {
                let id = self.block_id("text");
                chunk(out, &json!({"type": "text-start", "id": id}));
                self.text = Some(id.clone());
                id
            }
        };
        chunk(
            out,
            &json!({"type": "text-delta", "id": id, "delta": delta}),
        );
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut BytesMut) {
        if let Some(id) = self.text.take() {
            chunk(out, &json!({"type": "text-end", "id": id}));
        }
        let id = match &self.reasoning {
            Some(id) => id.clone(),
            None => {
                let id = self.block_id("reasoning");
                chunk(out, &json!({"type": "reasoning-start", "id": id}));
                self.reasoning = Some(id.clone());
                id
            }
        };
        chunk(
            out,
            &json!({"type": "reasoning-delta", "id": id, "delta": delta}),
        );
    }

    fn block_id(&mut self, kind: &str) -> String {
        self.blocks += 1;
        format!("{kind}-{}", self.blocks)
    }

    fn close_blocks(&mut self, out: &mut BytesMut) {
        if let Some(id) = self.text.take() {
            chunk(out, &json!({"type": "text-end", "id": id}));
        }
        if let Some(id) = self.reasoning.take() {
            chunk(out, &json!({"type": "reasoning-end", "id": id}));
        }
    }

    fn done(&mut self, event: &LiveEvent, out: &mut BytesMut) {
        let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
        self.close_blocks(out);
        chunk(out, &json!({"type": "finish-step"}));
        let status = body["status"].as_str().unwrap_or("completed");
        if status == "cancelled" {
            chunk(out, &json!({"type": "abort"}));
        }
        let reason = match (status, body["finish_reason"].as_str()) {
            ("failed" | "interrupted", _) => "error",
            (_, Some("stop")) => "stop",
            (_, Some("length")) => "length",
            (_, Some("content_filter")) => "content-filter",
            (_, Some("tool_calls")) => "tool-calls",
            _ => "other",
        };
        chunk(out, &json!({"type": "finish", "finishReason": reason}));
        out.put_slice(b"data: [DONE]\n\n");
        self.finished = true;
    }
}

fn chunk(out: &mut BytesMut, value: &impl Serialize) {
    out.put_slice(b"data: ");
    out.put_slice(crate::inflight::json_text(value).as_bytes());
    out.put_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, kind: EventKind, body: &str) -> FeedItem {
        FeedItem::Event(LiveEvent {
            seq,
            kind,
            body: body.into(),
        })
    }

    fn parts(bytes: &[u8]) -> Vec<Value> {
        std::str::from_utf8(bytes)
            .expect("utf-8")
            .split("\n\n")
            .filter_map(|frame| frame.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).expect("json"))
            .collect()
    }

    #[test]
    fn a_stream_with_a_tool_becomes_documented_parts_in_order() {
        let mut encoder = UiEncoder::new("msg-1".into());
        let bytes = encoder.encode(&[
            event(0, EventKind::Token, "It is "),
            event(1, EventKind::Intent, r#"{"type":"intent","id":"int_1","rule":"weather"}"#),
            event(
                2,
                EventKind::ToolStarted,
                r#"{"type":"tool.started","id":"call_1","tool":"weather","arguments":{"city":"Paris"}}"#,
            ),
            event(3, EventKind::Token, "sunny."),
            event(
                4,
                EventKind::ToolResult,
                r#"{"type":"tool.result","id":"call_1","result":{"temp":21}}"#,
            ),
            event(5, EventKind::Done, r#"{"status":"completed","finish_reason":"stop"}"#),
        ]);
        let types: Vec<String> = parts(&bytes)
            .iter()
            .map(|p| p["type"].as_str().expect("type").to_owned())
            .collect();
        assert_eq!(
            types,
            [
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "text-end",
                "data-midstream-intent",
                "tool-input-available",
                "text-start",
                "text-delta",
                "text-end",
                "tool-output-available",
                "finish-step",
                "finish"
            ]
        );
        let parts = parts(&bytes);
        assert_eq!(parts[6]["input"], json!({"city": "Paris"}));
        assert_eq!(parts[7]["id"], "text-2", "a new text block after the tool");
        assert_eq!(parts[10]["output"], json!({"temp": 21}));
        assert_eq!(parts[12]["finishReason"], "stop");
        assert!(bytes.ends_with(b"data: [DONE]\n\n"));
        assert!(encoder.finished());
    }

    #[test]
    fn a_cancelled_stream_aborts_and_a_failed_one_reports_its_error() {
        let mut encoder = UiEncoder::new("m".into());
        let bytes = encoder.encode(&[event(0, EventKind::Done, r#"{"status":"cancelled"}"#)]);
        let types: Vec<Value> = parts(&bytes).iter().map(|p| p["type"].clone()).collect();
        assert!(types.contains(&json!("abort")));

        let mut encoder = UiEncoder::new("m".into());
        let bytes = encoder.encode(&[
            event(
                0,
                EventKind::Error,
                r#"{"error":{"message":"upstream died"}}"#,
            ),
            event(1, EventKind::Done, r#"{"status":"failed"}"#),
        ]);
        let parts = parts(&bytes);
        assert!(parts.iter().any(|p| p["errorText"] == "upstream died"));
        assert_eq!(parts.last().expect("finish")["finishReason"], "error");
    }
}
