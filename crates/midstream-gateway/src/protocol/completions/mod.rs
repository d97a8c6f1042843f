//! Legacy text completions (`POST /v1/completions`), for clients that still default to them
//! (LlamaIndex's `OpenAILike` without `is_chat_model`, older LangChain `OpenAI` classes).
//!
//! Departure from the "proxied unchanged": the request is translated to a chat
//! completion (the prompt becomes the user message) and the answer back to `text_completion`
//! objects, like the Responses API for chat upstreams. So the demo model and every
//! chat-completions server answer it, with prompt and output rules, tools and the record. An
//! upstream that serves `/completions` for a base model (where the raw prompt matters) is not
//! reached as such yet.
//!
//! Gateway events ride in `text_completion` chunks with an empty `text` and a top-level
//! `midstream` object, as on the chat endpoint; a loop that prints `choices[0].text` keeps
//! working.

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Fields copied as they are.
const SHARED_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
    "logit_bias",
];

/// The chat-completions body for a completions request, and whether it streams.
pub fn to_chat(request: &Map<String, Value>) -> Result<(Map<String, Value>, bool), ApiError> {
    let prompt = match request.get("prompt") {
        Some(Value::String(prompt)) => prompt.clone(),
        Some(Value::Array(prompts)) if prompts.len() == 1 && prompts[0].is_string() => {
            prompts[0].as_str().unwrap_or_default().to_owned()
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`prompt` must be one string (several prompts or token arrays are not served)",
                Some("prompt"),
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "missing_required_parameter",
                "`prompt` is required: a string",
                Some("prompt"),
            ));
        }
    };
    if request
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
        || request
            .get("best_of")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1)
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`n` and `best_of` above 1 are not served",
            Some("n"),
        ));
    }
    let mut chat = Map::new();
    for field in SHARED_FIELDS {
        if let Some(value) = request.get(*field).filter(|v| !v.is_null()) {
            chat.insert((*field).to_owned(), value.clone());
        }
    }
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    chat.insert("stream".to_owned(), Value::Bool(stream));
    if stream {
        chat.insert("stream_options".to_owned(), json!({"include_usage": true}));
    }
    chat.insert(
        "messages".to_owned(),
        json!([{"role": "user", "content": prompt}]),
    );
    Ok((chat, stream))
}

/// A chat chunk → a `text_completion` chunk (`None` for nothing to send: a role-only chunk).
pub fn chunk(chat: &Value) -> Option<Value> {
    if chat.get("error").is_some() {
        return Some(chat.clone());
    }
    let choice = chat.pointer("/choices/0");
    let text = choice
        .and_then(|c| c.pointer("/delta/content"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let finish = choice.map_or(Value::Null, |c| c["finish_reason"].clone());
    let midstream = chat.get("midstream");
    let usage = chat.get("usage").filter(|u| u.is_object());
    if text.is_empty() && finish.is_null() && midstream.is_none() && usage.is_none() {
        return None;
    }
    let choices = if choice.is_some() {
        json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}])
    } else {
        json!([])
    };
    let mut out = json!({
        "id": chat["id"], "object": "text_completion", "created": chat["created"],
        "model": chat["model"], "choices": choices,
    });
    if let Some(usage) = usage {
        out["usage"] = usage.clone();
    }
    if let Some(midstream) = midstream {
        out["midstream"] = midstream.clone();
    }
    Some(out)
}

/// A chat completion → a `text_completion`.
pub fn completion(chat: &Value) -> Value {
    let choice = &chat["choices"][0];
    let mut out = json!({
        "id": chat["id"], "object": "text_completion", "created": chat["created"],
        "model": chat["model"],
        "choices": [{
            "text": choice["message"]["content"].as_str().unwrap_or_default(),
            "index": 0, "logprobs": null, "finish_reason": choice["finish_reason"],
        }],
        "usage": chat["usage"],
    });
    if let Some(midstream) = chat.get("midstream") {
        out["midstream"] = midstream.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_becomes_the_user_message() {
        let request = json!({"model": "m", "prompt": ["Say hi"], "max_tokens": 5, "stream": true, "echo": false});
        let (chat, stream) = to_chat(request.as_object().expect("object")).expect("valid");
        assert!(stream);
        assert_eq!(
            Value::Object(chat),
            json!({"model": "m", "max_tokens": 5, "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "Say hi"}]})
        );
        for bad in [
            json!({"model": "m"}),
            json!({"model": "m", "prompt": ["a", "b"]}),
            json!({"model": "m", "prompt": "a", "n": 2}),
        ] {
            assert!(to_chat(bad.as_object().expect("object")).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_and_completions_become_text_completions() {
        let head = json!({"id": "c1", "created": 1, "model": "m"});
        let with = |extra: Value| {
            let mut chunk = head.clone();
            for (k, v) in extra.as_object().expect("object") {
                chunk[k] = v.clone();
            }
            chunk
        };
        assert_eq!(
            chunk(&with(
                json!({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]})
            )),
            None
        );
        let text = chunk(&with(
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}),
        ))
        .expect("chunk");
        assert_eq!(text["object"], "text_completion");
        assert_eq!(text["choices"][0]["text"], "Hi");
        let event = chunk(&with(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": null}], "midstream": {"type": "intent"}}))).expect("event");
        assert_eq!(event["choices"][0]["text"], "");
        assert_eq!(event["midstream"]["type"], "intent");
        let done = completion(&with(
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}], "usage": {"total_tokens": 3}}),
        ));
        assert_eq!(done["choices"][0]["text"], "Hello");
        assert_eq!(done["usage"]["total_tokens"], 3);
    }
}
