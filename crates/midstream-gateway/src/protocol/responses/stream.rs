//! Chat-completion chunks → Responses API streaming events, for upstreams that speak only chat
//! completions.
//!
//! The event sequence is the one OpenAI sends and the SDKs' stream helpers accumulate:
//! `response.created`, `response.in_progress`; per output item `response.output_item.added`,
//! for a message `response.content_part.added`, `response.output_text.delta`…,
//! `response.output_text.done`, `response.content_part.done`, for a function call
//! `response.function_call_arguments.delta`…, `.done`; `response.output_item.done`; then one
//! terminal event, `response.completed` (with usage), `response.incomplete` (length or content
//! filter) or `response.failed`. Every event has `sequence_number`, from 0, and an `event:`
//! line naming its type, as OpenAI's own stream does. Items never overlap: a message ends
//! before a function call starts, and a call before the next.

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value, json};

use super::object::{ResponseShell, Status, usage_of};

/// One stream's translation state.
#[derive(Debug)]
pub struct ChunksToEvents {
    shell: ResponseShell,
    sequence: u64,
    started: bool,
    /// The item being streamed.
    open: Option<OpenItem>,
    /// Finished items, in output order.
    output: Vec<Value>,
    usage: Option<Value>,
    finish_reason: Option<String>,
    /// Gateway events (the chunk-shaped ones' `midstream` objects), for the final object.
    midstream: Vec<Value>,
    ended: bool,
}

#[derive(Debug)]
enum OpenItem {
    Message {
        id: String,
        text: String,
    },
    Call {
        chat_index: u64,
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl ChunksToEvents {
    /// A translation for the response `shell` describes.
    pub fn new(shell: ResponseShell) -> ChunksToEvents {
        ChunksToEvents {
            shell,
            sequence: 0,
            started: false,
            open: None,
            output: Vec::new(),
            usage: None,
            finish_reason: None,
            midstream: Vec::new(),
            ended: false,
        }
    }

    fn emit(&mut self, kind: &str, mut event: Map<String, Value>, out: &mut BytesMut) {
        event.insert("type".to_owned(), Value::String(kind.to_owned()));
        event.insert("sequence_number".to_owned(), Value::from(self.sequence));
        self.sequence += 1;
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_slice(b"\ndata: ");
        out.put_slice(crate::inflight::json_text(&event).as_bytes());
        out.put_slice(b"\n\n");
    }

    fn start(&mut self, out: &mut BytesMut) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let response = self.shell.object(Status::InProgress, &[], None, None);
        self.emit(
            "response.created",
            object(json!({"response": response})),
            out,
        );
        let response = self.shell.object(Status::InProgress, &[], None, None);
        self.emit(
            "response.in_progress",
            object(json!({"response": response})),
            out,
        );
    }

    /// One chunk of the chat stream (a parsed `data:` object).
    pub fn on_chunk(&mut self, chunk: &Value, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if let Some(error) = chunk.get("error") {
            self.fail(error, out);
            return;
        }
        self.start(out);
        if let Some(event) = chunk.get("midstream") {
            self.midstream.push(event.clone());
            // A `keepalive` event carrying the gateway's event: see the module docs of
            // `protocol::responses` for why this is the form every SDK accepts.
            self.emit("keepalive", object(json!({"midstream": event})), out);
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage_of(usage));
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text_delta(text, out);
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                self.call_delta(call, out);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn text_delta(&mut self, text: &str, out: &mut BytesMut) {
        if !matches!(self.open, Some(OpenItem::Message { .. })) {
            self.close_item(out);
            let id = format!("msg_{}_{}", self.shell.id_suffix(), self.output.len());
            let output_index = self.output.len();
            self.emit(
                "response.output_item.added",
                object(json!({
                    "output_index": output_index,
                    "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []},
                })),
                out,
            );
            self.emit(
                "response.content_part.added",
                object(json!({
                    "item_id": id, "output_index": output_index, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                })),
                out,
            );
            self.open = Some(OpenItem::Message {
                id,
                text: String::new(),
            });
        }
        let output_index = self.output.len();
        if let Some(OpenItem::Message { id, text: so_far }) = &mut self.open {
            so_far.push_str(text);
            let id = id.clone();
            self.emit(
                "response.output_text.delta",
                object(json!({
                    "item_id": id, "output_index": output_index, "content_index": 0,
                    "delta": text, "logprobs": [],
                })),
                out,
            );
        }
    }

    fn call_delta(&mut self, call: &Value, out: &mut BytesMut) {
        let chat_index = call["index"].as_u64().unwrap_or(0);
        let same = matches!(&self.open, Some(OpenItem::Call { chat_index: open, .. }) if *open == chat_index);
        if !same {
            self.close_item(out);
            let call_id = call["id"].as_str().unwrap_or_default().to_owned();
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let id = format!("fc_{}_{}", self.shell.id_suffix(), self.output.len());
            self.emit(
                "response.output_item.added",
                object(json!({
                    "output_index": self.output.len(),
                    "item": {"id": id, "type": "function_call", "status": "in_progress",
                             "call_id": call_id, "name": name, "arguments": ""},
                })),
                out,
            );
            self.open = Some(OpenItem::Call {
                chat_index,
                id,
                call_id,
                name,
                arguments: String::new(),
            });
        }
        let fragment = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let output_index = self.output.len();
        if let Some(OpenItem::Call { id, arguments, .. }) = &mut self.open
            && !fragment.is_empty()
        {
            arguments.push_str(fragment);
            let id = id.clone();
            self.emit(
                "response.function_call_arguments.delta",
                object(json!({"item_id": id, "output_index": output_index, "delta": fragment})),
                out,
            );
        }
    }

    /// Ends the open item, if any, with its `.done` events.
    fn close_item(&mut self, out: &mut BytesMut) {
        let output_index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(OpenItem::Message { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit(
                    "response.output_text.done",
                    object(json!({"item_id": id, "output_index": output_index, "content_index": 0, "text": text, "logprobs": []})),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    object(json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part})),
                    out,
                );
                json!({"id": id, "type": "message", "status": "completed", "role": "assistant", "content": [part]})
            }
            Some(OpenItem::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            }) => {
                self.emit(
                    "response.function_call_arguments.done",
                    object(json!({"item_id": id, "output_index": output_index, "arguments": arguments})),
                    out,
                );
                json!({"id": id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name, "arguments": arguments})
            }
        };
        self.emit(
            "response.output_item.done",
            object(json!({"output_index": output_index, "item": item})),
            out,
        );
        self.output.push(item);
    }

    /// The chat stream ended (`[DONE]`, or its body ended): the terminal event.
    pub fn on_end(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.start(out);
        self.close_item(out);
        self.ended = true;
        let (kind, status) = match self.finish_reason.as_deref() {
            Some("length") => (
                "response.incomplete",
                Status::Incomplete("max_output_tokens"),
            ),
            Some("content_filter") => ("response.incomplete", Status::Incomplete("content_filter")),
            _ => ("response.completed", Status::Completed),
        };
        let response = self.shell.object(
            status,
            &self.output,
            self.usage.as_ref(),
            Some(&self.midstream),
        );
        self.emit(kind, object(json!({"response": response})), out);
    }

    /// An in-band error (`data: {"error": …}`): `response.failed`, the stream's end.
    fn fail(&mut self, error: &Value, out: &mut BytesMut) {
        self.start(out);
        self.close_item(out);
        self.ended = true;
        let failure = json!({
            "code": error["code"].as_str().unwrap_or("server_error"),
            "message": error["message"].as_str().unwrap_or("the stream failed"),
        });
        let mut response = self.shell.object(
            Status::Failed,
            &self.output,
            self.usage.as_ref(),
            Some(&self.midstream),
        );
        response["error"] = failure.clone();
        self.emit(
            "response.failed",
            object(json!({"response": response})),
            out,
        );
    }
}

impl crate::sse::translated::ChunkTranslation for ChunksToEvents {
    fn on_chunk(&mut self, chunk: &Value, out: &mut BytesMut) {
        ChunksToEvents::on_chunk(self, chunk, out);
    }

    fn on_end(&mut self, out: &mut BytesMut) {
        ChunksToEvents::on_end(self, out);
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn shell() -> ResponseShell {
        ResponseShell::new(
            "0190-ab",
            1,
            &Map::from_iter([("model".to_owned(), json!("m"))]),
        )
    }

    fn events_of(bytes: &[u8]) -> Vec<Value> {
        std::str::from_utf8(bytes)
            .expect("utf-8")
            .split("\n\n")
            .filter(|frame| !frame.is_empty())
            .map(|frame| {
                let (event, data) = frame.split_once('\n').expect("two lines");
                let value: Value =
                    serde_json::from_str(data.strip_prefix("data: ").expect("data")).expect("json");
                assert_eq!(
                    event.strip_prefix("event: "),
                    value["type"].as_str(),
                    "event line names the type"
                );
                value
            })
            .collect()
    }

    fn text_chunk(text: &str) -> Value {
        json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    }

    fn call_chunk(index: u64, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
        let mut function = json!({"arguments": arguments});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "type": "function", "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]})
    }

    fn finish(reason: &str) -> Value {
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    }

    /// Checks what every valid stream satisfies; returns its text and calls.
    fn check(events: &[Value]) -> (String, Vec<(String, String)>) {
        for (n, event) in events.iter().enumerate() {
            assert_eq!(
                event["sequence_number"], n,
                "sequence numbers from 0 with no gap"
            );
        }
        assert_eq!(events[0]["type"], "response.created");
        assert_eq!(events[1]["type"], "response.in_progress");
        let last = events.last().expect("events");
        assert!(
            matches!(
                last["type"].as_str(),
                Some("response.completed" | "response.incomplete" | "response.failed")
            ),
            "{last}"
        );
        let mut open: Option<(u64, String)> = None;
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut items = 0;
        for event in &events[2..events.len() - 1] {
            let kind = event["type"].as_str().expect("type");
            match kind {
                "response.output_item.added" => {
                    assert!(open.is_none(), "items never overlap");
                    assert_eq!(event["output_index"], items);
                    open = Some((items, event["item"]["id"].as_str().expect("id").to_owned()));
                }
                "response.output_item.done" => {
                    let (index, id) = open.take().expect("an open item");
                    assert_eq!(event["output_index"], index);
                    assert_eq!(event["item"]["id"], id.as_str());
                    if event["item"]["type"] == "function_call" {
                        calls.push((
                            event["item"]["name"].as_str().expect("name").to_owned(),
                            event["item"]["arguments"]
                                .as_str()
                                .expect("arguments")
                                .to_owned(),
                        ));
                    }
                    items += 1;
                }
                "response.output_text.delta" => {
                    let (_, id) = open.as_ref().expect("inside an item");
                    assert_eq!(event["item_id"], id.as_str());
                    text.push_str(event["delta"].as_str().expect("delta"));
                }
                "response.content_part.added"
                | "response.content_part.done"
                | "response.output_text.done"
                | "response.function_call_arguments.delta"
                | "response.function_call_arguments.done" => {
                    let (_, id) = open.as_ref().expect("inside an item");
                    assert_eq!(event["item_id"], id.as_str(), "{kind}");
                }
                other => assert_eq!(other, "keepalive", "unexpected {other}"),
            }
        }
        assert!(open.is_none(), "every item ends before the response does");
        assert_eq!(
            last["response"]["output"].as_array().map(Vec::len),
            Some(items as usize)
        );
        (text, calls)
    }

    #[test]
    fn text_then_a_call_then_usage_is_the_sequence_openai_sends() {
        let mut translation = ChunksToEvents::new(shell());
        let mut out = BytesMut::new();
        for chunk in [
            text_chunk("Hel"),
            text_chunk("lo"),
            json!({"midstream": {"type": "intent", "id": "int_1"}, "choices": [{"index": 0, "delta": {}, "finish_reason": null}]}),
            call_chunk(0, Some("call_1"), Some("weather"), "{\"ci"),
            call_chunk(0, None, None, "ty\":\"Paris\"}"),
            finish("tool_calls"),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ] {
            translation.on_chunk(&chunk, &mut out);
        }
        translation.on_end(&mut out);
        let events = events_of(&out);
        let (text, calls) = check(&events);
        assert_eq!(text, "Hello");
        assert_eq!(
            calls,
            [("weather".to_owned(), "{\"city\":\"Paris\"}".to_owned())]
        );
        let last = events.last().expect("last");
        assert_eq!(last["type"], "response.completed");
        assert_eq!(last["response"]["usage"]["input_tokens"], 3);
        assert_eq!(last["response"]["usage"]["output_tokens"], 4);
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(last["response"]["midstream"]["events"][0]["type"], "intent");
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "keepalive" && e["midstream"]["type"] == "intent")
        );
    }

    #[test]
    fn length_and_content_filter_are_incomplete_and_an_error_fails() {
        for (reason, expected) in [
            ("length", "max_output_tokens"),
            ("content_filter", "content_filter"),
        ] {
            let mut translation = ChunksToEvents::new(shell());
            let mut out = BytesMut::new();
            translation.on_chunk(&text_chunk("a"), &mut out);
            translation.on_chunk(&finish(reason), &mut out);
            translation.on_end(&mut out);
            let events = events_of(&out);
            check(&events);
            let last = events.last().expect("last");
            assert_eq!(last["type"], "response.incomplete");
            assert_eq!(last["response"]["incomplete_details"]["reason"], expected);
        }
        let mut translation = ChunksToEvents::new(shell());
        let mut out = BytesMut::new();
        translation.on_chunk(&text_chunk("a"), &mut out);
        translation.on_chunk(
            &json!({"error": {"message": "gone", "code": "upstream_disconnected"}}),
            &mut out,
        );
        translation.on_end(&mut out);
        let events = events_of(&out);
        check(&events);
        let last = events.last().expect("last");
        assert_eq!(last["type"], "response.failed");
        assert_eq!(last["response"]["error"]["code"], "upstream_disconnected");
    }

    proptest! {
        /// For any chunk stream of text pieces, tool calls and usage, the events are a valid
        /// Responses stream whose text is the chunks' text and whose calls are theirs.
        #[test]
        fn translated_streams_are_valid_and_keep_text_and_calls(
            steps in prop::collection::vec(
                prop_oneof![
                    "[a-zé ]{0,6}".prop_map(Step::Text),
                    (0u64..3, "[a-z{}\":]{0,5}").prop_map(|(i, a)| Step::Call(i, a)),
                    Just(Step::Usage),
                ],
                0..30,
            ),
            reason in prop_oneof![Just("stop"), Just("tool_calls"), Just("length")],
        ) {
            let mut translation = ChunksToEvents::new(shell());
            let mut out = BytesMut::new();
            let mut expected_text = String::new();
            let mut expected_calls: Vec<(String, String)> = Vec::new();
            let mut current_call: Option<u64> = None;
            for step in &steps {
                match step {
                    Step::Text(text) => {
                        expected_text.push_str(text);
                        if !text.is_empty() {
                            current_call = None;
                        }
                        translation.on_chunk(&text_chunk(text), &mut out);
                    }
                    Step::Call(index, arguments) => {
                        let name = format!("f{index}");
                        if current_call != Some(*index) {
                            expected_calls.push((name.clone(), String::new()));
                            current_call = Some(*index);
                            translation.on_chunk(&call_chunk(*index, Some("c"), Some(&name), arguments), &mut out);
                        } else {
                            translation.on_chunk(&call_chunk(*index, None, None, arguments), &mut out);
                        }
                        if let Some(last) = expected_calls.last_mut() {
                            last.1.push_str(arguments);
                        }
                    }
                    Step::Usage => translation.on_chunk(
                        &json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
                        &mut out,
                    ),
                }
            }
            translation.on_chunk(&finish(reason), &mut out);
            translation.on_end(&mut out);
            let (text, calls) = check(&events_of(&out));
            prop_assert_eq!(text, expected_text);
            prop_assert_eq!(calls, expected_calls);
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Text(String),
        Call(u64, String),
        Usage,
    }
}
