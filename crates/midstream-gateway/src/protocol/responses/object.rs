//! The Responses API's `response` object, built from what a chat completion said: the same
//! object for the stream's lifecycle events and for a non-streaming answer.

use serde_json::{Value, json};

/// Where a response is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Streaming.
    InProgress,
    /// Finished normally.
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    /// Failed.
    Failed,
}

/// What every `response` object of one stream shares.
#[derive(Debug, Clone)]
pub struct ResponseShell {
    /// `resp_…`, from the stream's id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The model the client asked for.
    pub model: String,
    /// Request fields echoed in the object (`instructions`, `tools`, `temperature`, …).
    pub echo: serde_json::Map<String, Value>,
}

/// Request fields a `response` object echoes.
pub const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "user",
    "reasoning",
];

impl ResponseShell {
    /// The shell of the response to `request`, for stream `stream_id`.
    pub fn new(
        stream_id: &str,
        created_at: i64,
        request: &serde_json::Map<String, Value>,
    ) -> ResponseShell {
        let echo = ECHOED
            .iter()
            .filter_map(|f| request.get(*f).map(|v| ((*f).to_owned(), v.clone())))
            .collect();
        ResponseShell {
            id: format!("resp_{}", stream_id.replace('-', "")),
            created_at,
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            echo,
        }
    }

    /// The stream id a `resp_…` id stands for (`None` when it is not one of ours).
    pub fn stream_id_of(response_id: &str) -> Option<String> {
        let hex = response_id.strip_prefix("resp_")?;
        uuid::Uuid::try_parse(hex).ok().map(|id| id.to_string())
    }

    /// The part of the id item ids are made from.
    pub fn id_suffix(&self) -> &str {
        self.id.trim_start_matches("resp_")
    }

    /// The object with this status, output and usage (and the gateway's events, when any).
    pub fn object(
        &self,
        status: Status,
        output: &[Value],
        usage: Option<&Value>,
        midstream: Option<&[Value]>,
    ) -> Value {
        let (status, incomplete) = match status {
            Status::InProgress => ("in_progress", Value::Null),
            Status::Completed => ("completed", Value::Null),
            Status::Incomplete(reason) => ("incomplete", json!({"reason": reason})),
            Status::Failed => ("failed", Value::Null),
        };
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output,
            "usage": usage.cloned().unwrap_or(Value::Null),
        });
        if let Value::Object(fields) = &mut object {
            for (field, value) in &self.echo {
                fields.entry(field.clone()).or_insert_with(|| value.clone());
            }
            if let Some(events) = midstream.filter(|e| !e.is_empty()) {
                fields.insert("midstream".to_owned(), json!({"events": events}));
            }
        }
        object
    }
}

/// Chat usage → Responses usage.
pub fn usage_of(usage: &Value) -> Value {
    let number = |name: &str| usage.get(name).and_then(Value::as_i64).unwrap_or(0);
    json!({
        "input_tokens": number("prompt_tokens"),
        "input_tokens_details": {"cached_tokens": usage.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_i64).unwrap_or(0)},
        "output_tokens": number("completion_tokens"),
        "output_tokens_details": {"reasoning_tokens": usage.pointer("/completion_tokens_details/reasoning_tokens").and_then(Value::as_i64).unwrap_or(0)},
        "total_tokens": number("total_tokens"),
    })
}

/// A non-streaming chat completion → the `response` object.
pub fn from_completion(shell: &ResponseShell, completion: &Value) -> Value {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let mut output = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        output.push(json!({
            "id": format!("msg_{}_0", shell.id_suffix()), "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}],
        }));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        output.push(json!({
            "id": format!("fc_{}_{}", shell.id_suffix(), output.len()), "type": "function_call", "status": "completed",
            "call_id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"],
        }));
    }
    let status = match choice["finish_reason"].as_str() {
        Some("length") => Status::Incomplete("max_output_tokens"),
        Some("content_filter") => Status::Incomplete("content_filter"),
        _ => Status::Completed,
    };
    let usage = completion
        .get("usage")
        .filter(|u| u.is_object())
        .map(usage_of);
    let events: Vec<Value> = completion
        .pointer("/midstream/events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    shell.object(status, &output, usage.as_ref(), Some(&events))
}

/// A recorded stream → the `response` object, for `GET /v1/responses/{id}`: its text as one
/// message, its usage, its status.
pub fn from_record(shell: &ResponseShell, row: &midstream_store::StreamRow) -> Value {
    let mut output = Vec::new();
    if let Some(text) = row.response_text.as_deref().filter(|t| !t.is_empty()) {
        output.push(json!({
            "id": format!("msg_{}_0", shell.id_suffix()), "type": "message", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}],
        }));
    }
    let status = match (row.status.as_str(), row.finish_reason.as_deref()) {
        ("streaming", _) => Status::InProgress,
        ("completed", Some("length")) => Status::Incomplete("max_output_tokens"),
        ("completed", Some("content_filter")) => Status::Incomplete("content_filter"),
        ("completed", _) => Status::Completed,
        _ => Status::Failed,
    };
    let usage = row.total_tokens.map(|_| {
        usage_of(&json!({
            "prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens,
            "total_tokens": row.total_tokens,
        }))
    });
    let mut object = shell.object(status, &output, usage.as_ref(), None);
    if status == Status::Failed {
        object["error"] = json!({"code": row.status, "message": row.error});
    }
    object
}
