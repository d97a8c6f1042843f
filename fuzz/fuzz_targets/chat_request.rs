//! `chat_request`: the request body parser (`ChatRequest::parse`) never panics, accepts exactly
//! the bodies its contract accepts, reads its fields as serde_json reads them, and names the
//! field at fault in every 400 (issue 20).
//!
//! The oracle is the contract written out again here over a `serde_json::Value`: a JSON object
//! with a non-blank string `model`; a non-empty `messages` array of at most [`MAX_MESSAGES`]
//! objects, each with a `role` OpenAI knows and a `content` that is a string, an array or null
//! (or absent); `stream` and `stream_options.include_usage` booleans or null; `tools` an array
//! or null; `n` a positive integer or null; any other field kept as it is. Fields are checked in
//! that order, so the first one at fault is the one a 400 names. An accepted request must also
//! be whole upstream: its body, with the routed model, parses to the same request.
//!
//! Input: a request body, any bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use midstream_gateway::error::ApiError;
use midstream_gateway::protocol::request::ChatRequest;
use serde_json::{Map, Value};

/// Small, so the fuzzer reaches the limit.
const MAX_MESSAGES: usize = 4;

/// The roles OpenAI accepts in `messages`.
const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// What the contract says of a body: the fields read, or the field a 400 names (`None` when
/// the body is not a JSON object at all).
type Expected = Result<(String, bool, bool, Map<String, Value>), Option<String>>;

fuzz_target!(|input: &[u8]| {
    let parsed = ChatRequest::parse(input, MAX_MESSAGES);
    let text = String::from_utf8_lossy(input);
    match (parsed, contract(input)) {
        (Ok(request), Ok((model, stream, include_usage, body))) => {
            assert_eq!(
                (
                    &request.model,
                    request.stream,
                    request.include_usage,
                    &request.body
                ),
                (&model, stream, include_usage, &body),
                "{text:?}"
            );
            let upstream = request.upstream_body("routed");
            let again = ChatRequest::parse(&upstream, MAX_MESSAGES)
                .unwrap_or_else(|error| panic!("the upstream body is refused: {error}: {text:?}"));
            assert_eq!(again.model, "routed");
            assert_eq!(
                (again.stream, again.include_usage, again.messages()),
                (request.stream, request.include_usage, request.messages())
            );
        }
        (Err(ApiError::BadRequest { param, .. }), Err(expected)) => {
            assert_eq!(param, expected, "{text:?}");
        }
        (parsed, expected) => {
            panic!("parse gave {parsed:?}, the contract {expected:?}: {text:?}")
        }
    }
});

fn contract(input: &[u8]) -> Expected {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(input) else {
        return Err(None);
    };
    let fault = |param: &str| Err(Some(param.to_owned()));
    let model = match body.get("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => model.clone(),
        _ => return fault("model"),
    };
    match body.get("messages") {
        Some(Value::Array(messages)) if (1..=MAX_MESSAGES).contains(&messages.len()) => {
            for (i, message) in messages.iter().enumerate() {
                let Value::Object(message) = message else {
                    return fault(&format!("messages[{i}]"));
                };
                let role = message.get("role").and_then(Value::as_str);
                if !role.is_some_and(|role| ROLES.contains(&role)) {
                    return fault(&format!("messages[{i}].role"));
                }
                if matches!(
                    message.get("content"),
                    Some(Value::Bool(_) | Value::Number(_) | Value::Object(_))
                ) {
                    return fault(&format!("messages[{i}].content"));
                }
            }
        }
        _ => return fault("messages"),
    }
    let Some(stream) = optional_bool(body.get("stream")) else {
        return fault("stream");
    };
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => match optional_bool(options.get("include_usage")) {
            Some(include_usage) => include_usage,
            None => return fault("stream_options.include_usage"),
        },
        Some(_) => return fault("stream_options"),
    };
    if body
        .get("tools")
        .is_some_and(|tools| !tools.is_array() && !tools.is_null())
    {
        return fault("tools");
    }
    match body.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64().is_some_and(|n| n > 0) => {}
        Some(_) => return fault("n"),
    }
    Ok((model, stream, include_usage, body))
}

/// A boolean field: absent or null is `false`; `None` when it is something else.
fn optional_bool(value: Option<&Value>) -> Option<bool> {
    match value {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(value)) => Some(*value),
        Some(_) => None,
    }
}
