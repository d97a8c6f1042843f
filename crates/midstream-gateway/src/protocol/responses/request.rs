//! A Responses API request as a chat-completions request, for upstreams that speak only chat
//! completions (`api = "chat"`, and the demo model).
//!
//! What maps: `input` (a string, or items: messages with text or image parts, `function_call`
//! and `function_call_output` items), `instructions` (a first system message), function
//! `tools` and `tool_choice`, `text.format` (`response_format`), `reasoning.effort`,
//! `max_output_tokens`, and the sampling fields chat completions share. What cannot be done
//! without a Responses upstream is refused with a 400 that says so: `previous_response_id`
//! (the upstream keeps that conversation), built-in tools (`web_search`, `file_search`, …) and
//! `item_reference` inputs.

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Fields with the same name and meaning in both APIs, copied as they are.
const SHARED_FIELDS: &[&str] = &[
    "model",
    "temperature",
    "top_p",
    "user",
    "parallel_tool_calls",
    "seed",
    "metadata",
    "top_logprobs",
    "service_tier",
];

/// What a Responses request is, for the route.
#[derive(Debug)]
pub struct Translated {
    /// The chat-completions body.
    pub chat: Map<String, Value>,
    /// `stream: true`.
    pub stream: bool,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message, Some(param))
}

/// Translates a Responses request body into a chat-completions body.
pub fn to_chat(request: &Map<String, Value>) -> Result<Translated, ApiError> {
    if request
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err(invalid(
            "previous_response_id",
            "`previous_response_id` needs an upstream that serves the Responses API \
             (`api = \"responses\"`); this model's upstream speaks chat completions: send the \
             conversation in `input`",
        ));
    }
    let mut chat = Map::new();
    for field in SHARED_FIELDS {
        if let Some(value) = request.get(*field).filter(|v| !v.is_null()) {
            chat.insert((*field).to_owned(), value.clone());
        }
    }
    let stream = match request.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(invalid("stream", "`stream` must be a boolean")),
    };
    chat.insert("stream".to_owned(), Value::Bool(stream));
    if stream {
        chat.insert("stream_options".to_owned(), json!({"include_usage": true}));
    }
    let mut messages = Vec::new();
    match request.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(instructions)) => {
            messages.push(json!({"role": "system", "content": instructions}));
        }
        Some(_) => return Err(invalid("instructions", "`instructions` must be a string")),
    }
    match request.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => input_items(items, &mut messages)?,
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "missing_required_parameter",
                "`input` is required",
                Some("input"),
            ));
        }
        Some(_) => {
            return Err(invalid(
                "input",
                "`input` must be a string or an array of items",
            ));
        }
    }
    chat.insert("messages".to_owned(), Value::Array(messages));
    if let Some(max) = request.get("max_output_tokens").filter(|v| !v.is_null()) {
        chat.insert("max_tokens".to_owned(), max.clone());
    }
    if let Some(effort) = request
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|v| !v.is_null())
    {
        chat.insert("reasoning_effort".to_owned(), effort.clone());
    }
    if let Some(format) = request
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| !v.is_null())
    {
        chat.insert("response_format".to_owned(), response_format(format)?);
    }
    if let Some(tools) = request.get("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".to_owned(), Value::Array(tools_of(tools)?));
    }
    if let Some(choice) = request.get("tool_choice").filter(|v| !v.is_null()) {
        chat.insert("tool_choice".to_owned(), tool_choice(choice)?);
    }
    Ok(Translated { chat, stream })
}

/// Input items → chat messages. Consecutive `function_call` items become one assistant message
/// with several `tool_calls`, as chat completions expects.
fn input_items(items: &[Value], messages: &mut Vec<Value>) -> Result<(), ApiError> {
    for (at, item) in items.iter().enumerate() {
        let param = format!("input[{at}]");
        let kind = item.get("type").and_then(Value::as_str);
        match kind {
            None | Some("message") => messages.push(message(item, &param)?),
            Some("function_call") => {
                let call = json!({
                    "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": item.get("name").cloned().unwrap_or(Value::Null),
                        "arguments": item.get("arguments").cloned().unwrap_or_else(|| json!("{}")),
                    },
                });
                let last_is_calls = messages.last().is_some_and(|m| {
                    m["role"] == "assistant"
                        && m.get("tool_calls").is_some()
                        && m["content"].is_null()
                });
                if last_is_calls {
                    if let Some(Value::Array(calls)) =
                        messages.last_mut().and_then(|m| m.get_mut("tool_calls"))
                    {
                        calls.push(call);
                    }
                } else {
                    messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
                }
            }
            Some("function_call_output") => {
                let output = match item.get("output") {
                    Some(Value::String(text)) => Value::String(text.clone()),
                    Some(other) => Value::String(other.to_string()),
                    None => return Err(invalid(&param, "a `function_call_output` needs `output`")),
                };
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": item.get("call_id").cloned().unwrap_or(Value::Null),
                    "content": output,
                }));
            }
            // Reasoning the model produced earlier: chat completions has no place for it.
            Some("reasoning") => {}
            Some(other) => {
                return Err(invalid(
                    &param,
                    format!(
                        "input items of type `{other}` need an upstream that serves the \
                         Responses API (`api = \"responses\"`)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A message item → a chat message: its text parts joined (or chat content parts when it has
/// images).
fn message(item: &Value, param: &str) -> Result<Value, ApiError> {
    let role = item
        .get("role")
        .and_then(Value::as_str)
        .filter(|r| matches!(*r, "user" | "assistant" | "system" | "developer"))
        .ok_or_else(|| {
            invalid(
                param,
                "a message needs a `role`: user, assistant, system or developer",
            )
        })?;
    let content = match item.get("content") {
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(Value::Array(parts)) => content_parts(parts, param)?,
        _ => {
            return Err(invalid(
                param,
                "a message needs `content`: a string or parts",
            ));
        }
    };
    Ok(json!({"role": role, "content": content}))
}

fn content_parts(parts: &[Value], param: &str) -> Result<Value, ApiError> {
    let mut chat_parts = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => chat_parts.push(json!({
                "type": "text",
                "text": part.get("text").cloned().unwrap_or_else(|| json!("")),
            })),
            Some("refusal") => chat_parts.push(json!({
                "type": "text",
                "text": part.get("refusal").cloned().unwrap_or_else(|| json!("")),
            })),
            Some("input_image") => chat_parts.push(json!({
                "type": "image_url",
                "image_url": {
                    "url": part.get("image_url").cloned().unwrap_or(Value::Null),
                    "detail": part.get("detail").cloned().unwrap_or_else(|| json!("auto")),
                },
            })),
            other => {
                return Err(invalid(
                    param,
                    format!(
                        "content parts of type {} need an upstream that serves the Responses API",
                        other.unwrap_or("(none)")
                    ),
                ));
            }
        }
    }
    // All text: one string, which every chat-completions server accepts.
    if chat_parts.iter().all(|p| p["type"] == "text") {
        let text: String = chat_parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("");
        return Ok(Value::String(text));
    }
    Ok(Value::Array(chat_parts))
}

fn tools_of(tools: &Value) -> Result<Vec<Value>, ApiError> {
    let Value::Array(tools) = tools else {
        return Err(invalid("tools", "`tools` must be an array"));
    };
    tools
        .iter()
        .enumerate()
        .map(
            |(at, tool)| match tool.get("type").and_then(Value::as_str) {
                Some("function") => {
                    let mut function = Map::new();
                    for field in ["name", "description", "parameters", "strict"] {
                        if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
                            function.insert(field.to_owned(), value.clone());
                        }
                    }
                    Ok(json!({"type": "function", "function": function}))
                }
                other => Err(invalid(
                    &format!("tools[{at}]"),
                    format!(
                        "built-in tools ({}) need an upstream that serves the Responses API \
                     (`api = \"responses\"`); chat-completions upstreams take function tools",
                        other.unwrap_or("untyped")
                    ),
                )),
            },
        )
        .collect()
}

fn tool_choice(choice: &Value) -> Result<Value, ApiError> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(object) if object.get("type") == Some(&json!("function")) => Ok(json!({
            "type": "function",
            "function": {"name": object.get("name").cloned().unwrap_or(Value::Null)},
        })),
        _ => Err(invalid(
            "tool_choice",
            "`tool_choice` must be auto, none, required or a function",
        )),
    }
}

fn response_format(format: &Value) -> Result<Value, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(json!({"type": "text"})),
        Some("json_object") => Ok(json!({"type": "json_object"})),
        Some("json_schema") => {
            let mut schema = Map::new();
            for field in ["name", "schema", "strict", "description"] {
                if let Some(value) = format.get(field).filter(|v| !v.is_null()) {
                    schema.insert(field.to_owned(), value.clone());
                }
            }
            Ok(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => Err(invalid(
            "text.format",
            "`text.format.type` must be text, json_object or json_schema",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(request: Value) -> Result<Translated, ApiError> {
        to_chat(request.as_object().expect("object"))
    }

    #[test]
    fn a_string_input_with_instructions_becomes_system_and_user_messages() {
        let chat = translate(json!({
            "model": "m", "input": "Hi", "instructions": "Be brief.", "stream": true,
            "max_output_tokens": 50, "temperature": 0.2, "store": false,
        }))
        .expect("valid");
        assert!(chat.stream);
        assert_eq!(
            Value::Object(chat.chat),
            json!({
                "model": "m", "temperature": 0.2, "stream": true,
                "stream_options": {"include_usage": true}, "max_tokens": 50,
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            })
        );
    }

    #[test]
    fn items_calls_and_outputs_map_to_a_chat_conversation() {
        let chat = translate(json!({
            "model": "m",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather in "}, {"type": "input_text", "text": "Paris?"}]},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "c2", "name": "time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "{\"temp\":21}"},
                {"type": "reasoning", "summary": []},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "21 degrees."}]},
            ],
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "reasoning": {"effort": "low"},
        }))
        .expect("valid")
        .chat;
        assert_eq!(
            chat["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\":21}"},
                {"role": "assistant", "content": "21 degrees."},
            ])
        );
        assert_eq!(
            chat["tools"],
            json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}])
        );
        assert_eq!(
            chat["tool_choice"],
            json!({"type": "function", "function": {"name": "weather"}})
        );
        assert_eq!(
            chat["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}})
        );
        assert_eq!(chat["reasoning_effort"], "low");
    }

    #[test]
    fn what_needs_a_responses_upstream_is_a_400_that_says_so() {
        for (request, param) in [
            (
                json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
                "tools[0]",
            ),
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
                "input[0]",
            ),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": 3}), "input"),
        ] {
            let error = translate(request).expect_err("refused");
            assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
            assert_eq!(error.body().param.as_deref(), Some(param));
        }
    }
}
