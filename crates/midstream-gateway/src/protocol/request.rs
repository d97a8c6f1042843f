//! Parsing and validating a chat-completions request.
//!
//! The request is kept as a JSON object so that every field the gateway does not know
//! (`tools`, `response_format`, `reasoning_effort`, vendor extensions, ...) reaches the
//! upstream unchanged; only the fields the gateway relies on are checked, each with a 400
//! that names the field.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Roles OpenAI accepts in `messages`.
const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// A validated request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The requested model (before alias resolution).
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// The whole request object, forwarded upstream with at most `model` replaced.
    pub body: Map<String, Value>,
}

impl ChatRequest {
    /// Parses and validates a request body.
    pub fn parse(bytes: &[u8], max_messages: usize) -> Result<ChatRequest, ApiError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
                None,
            )
        })?;
        let Value::Object(body) = value else {
            return Err(ApiError::bad_request(
                "invalid_type",
                "the request body must be a JSON object",
                None,
            ));
        };
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            Some(Value::String(_)) => return Err(invalid("model", "`model` must not be empty")),
            Some(_) => return Err(invalid("model", "`model` must be a string")),
            None => return Err(missing("model")),
        };
        validate_messages(body.get("messages"), max_messages)?;
        let stream = optional_bool(&body, "stream")?.unwrap_or(false);
        let include_usage = match body.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(options)) => optional_bool(options, "include_usage")
                .map_err(|_| {
                    invalid(
                        "stream_options.include_usage",
                        "`stream_options.include_usage` must be a boolean",
                    )
                })?
                .unwrap_or(false),
            Some(_) => {
                return Err(invalid(
                    "stream_options",
                    "`stream_options` must be an object",
                ));
            }
        };
        if body
            .get("tools")
            .is_some_and(|t| !t.is_array() && !t.is_null())
        {
            return Err(invalid("tools", "`tools` must be an array"));
        }
        if body
            .get("n")
            .is_some_and(|n| !n.is_null() && n.as_u64().is_none_or(|n| n == 0))
        {
            return Err(invalid("n", "`n` must be a positive integer"));
        }
        Ok(ChatRequest {
            model,
            stream,
            include_usage,
            body,
        })
    }

    /// The messages (validated to be an array of objects).
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The text of the last user message: what prompt-scope rules read. Only the last one,
    /// so that a long conversation does not fire the same early intents on every turn.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages()
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| message_text(m.get("content")?))
    }

    /// Calls `rewrite` with each text of the last user message (the string content, or each
    /// `text` part) and replaces the text where it returns a new one. This is how prompt-scope
    /// `redact` rules scrub what is sent upstream.
    pub fn rewrite_last_user_text(&mut self, mut rewrite: impl FnMut(&str) -> Option<String>) {
        let Some(Value::Array(messages)) = self.body.get_mut("messages") else {
            return;
        };
        let Some(content) = messages
            .iter_mut()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get_mut("content"))
        else {
            return;
        };
        let texts: Vec<&mut Value> = match content {
            Value::String(_) => vec![content],
            Value::Array(parts) => parts
                .iter_mut()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get_mut("text"))
                .collect(),
            _ => Vec::new(),
        };
        for text in texts {
            if let Some(new) = text.as_str().and_then(&mut rewrite) {
                *text = Value::String(new);
            }
        }
    }

    /// The body to send upstream, with the model name the route chose.
    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        let mut body = self.body.clone();
        body.insert("model".to_owned(), Value::String(upstream_model.to_owned()));
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// The text of a message's `content`: a string, or the `text` parts of an array.
pub fn message_text(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

fn validate_messages(messages: Option<&Value>, max: usize) -> Result<(), ApiError> {
    let messages = match messages {
        Some(Value::Array(m)) => m,
        Some(_) => return Err(invalid("messages", "`messages` must be an array")),
        None => return Err(missing("messages")),
    };
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    if messages.len() > max {
        return Err(invalid(
            "messages",
            &format!(
                "`messages` has {} messages; the limit is {max}",
                messages.len()
            ),
        ));
    }
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(invalid(
                &format!("messages[{i}]"),
                &format!("`messages[{i}]` must be an object"),
            ));
        };
        match message.get("role") {
            Some(Value::String(role)) if ROLES.contains(&role.as_str()) => {}
            Some(Value::String(role)) => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    &format!(
                        "`messages[{i}].role` {role:?} is not one of {}",
                        ROLES.join(", ")
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    &format!("`messages[{i}].role` must be a string"),
                ));
            }
        }
        match message.get("content") {
            None | Some(Value::Null | Value::String(_) | Value::Array(_)) => {}
            Some(_) => {
                return Err(invalid(
                    &format!("messages[{i}].content"),
                    &format!("`messages[{i}].content` must be a string, an array of parts or null"),
                ));
            }
        }
    }
    Ok(())
}

fn optional_bool(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(key, &format!("`{key}` must be a boolean"))),
    }
}

fn invalid(param: &str, message: &str) -> ApiError {
    ApiError::bad_request("invalid_type", message, Some(param))
}

fn missing(param: &str) -> ApiError {
    ApiError::bad_request(
        "missing_field",
        format!("`{param}` is required"),
        Some(param),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(body: &str) -> (String, Option<String>) {
        match ChatRequest::parse(body.as_bytes(), 4) {
            Err(ApiError::BadRequest { message, param, .. }) => (message, param),
            other => panic!("expected a 400 for {body}, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_keeps_unknown_fields() {
        let request = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,
                "stream_options":{"include_usage":true},"reasoning_effort":"low"}"#,
            4,
        )
        .expect("valid");
        assert!(request.stream && request.include_usage);
        let upstream: Value =
            serde_json::from_slice(&request.upstream_body("gpt-x")).expect("json");
        assert_eq!(upstream["model"], "gpt-x");
        assert_eq!(upstream["reasoning_effort"], "low");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            ("{", None, "not valid JSON"),
            ("[]", None, "must be a JSON object"),
            (
                r#"{"messages":[{"role":"user","content":"x"}]}"#,
                Some("model"),
                "`model` is required",
            ),
            (
                r#"{"model":3,"messages":[]}"#,
                Some("model"),
                "must be a string",
            ),
            (
                r#"{"model":"m"}"#,
                Some("messages"),
                "`messages` is required",
            ),
            (
                r#"{"model":"m","messages":"hi"}"#,
                Some("messages"),
                "must be an array",
            ),
            (
                r#"{"model":"m","messages":[]}"#,
                Some("messages"),
                "at least one",
            ),
            (
                r#"{"model":"m","messages":[1]}"#,
                Some("messages[0]"),
                "must be an object",
            ),
            (
                r#"{"model":"m","messages":[{"role":"boss"}]}"#,
                Some("messages[0].role"),
                "is not one of",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                Some("messages[0].content"),
                "must be a string",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                Some("stream"),
                "must be a boolean",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream_options":{"include_usage":1}}"#,
                Some("stream_options.include_usage"),
                "must be a boolean",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"tools":{}}"#,
                Some("tools"),
                "must be an array",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"n":0}"#,
                Some("n"),
                "positive integer",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"},{"role":"user"},{"role":"user"},{"role":"user"},{"role":"user"}]}"#,
                Some("messages"),
                "the limit is 4",
            ),
        ];
        for (body, param, needle) in cases {
            let (message, got_param) = error_of(body);
            assert!(message.contains(needle), "{body}: {message}");
            assert_eq!(got_param.as_deref(), param, "{body}");
        }
    }

    #[test]
    fn the_last_user_texts_can_be_rewritten() {
        let mut request = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"old key sk-1"},
                {"role":"user","content":[{"type":"text","text":"a sk-2"},{"type":"text","text":"plain"}]}]}"#,
            8,
        )
        .expect("valid");
        request.rewrite_last_user_text(|t| t.contains("sk-").then(|| t.replace("sk-2", "[x]")));
        let body: Value = serde_json::from_slice(&request.upstream_body("m")).expect("json");
        assert_eq!(
            body["messages"][0]["content"], "old key sk-1",
            "only the last user message"
        );
        assert_eq!(body["messages"][1]["content"][0]["text"], "a [x]");
        assert_eq!(body["messages"][1]["content"][1]["text"], "plain");
    }

    #[test]
    fn the_last_user_message_is_what_prompt_rules_read() {
        let request = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"old"},{"role":"assistant","content":"a"},
                {"role":"user","content":[{"type":"text","text":"weather in"},{"type":"image_url","image_url":{}},{"type":"text","text":"Paris"}]}]}"#,
            8,
        )
        .expect("valid");
        assert_eq!(
            request.last_user_text().as_deref(),
            Some("weather in\nParis")
        );
    }
}
