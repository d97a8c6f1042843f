//! The answer to a request that a prompt `stop` rule blocked.
//!
//! The upstream is never called, so the gateway writes the whole answer, and it must be as
//! complete as an upstream's (issue 20): clients that wait for the role chunk before they yield
//! anything (LlamaIndex's async stream) would otherwise yield nothing at all, and a client that
//! asked for usage (`stream_options.include_usage`, or any non-streaming request) reads it from
//! the last chunk or the `usage` member. A stream is: the role chunk, the `stop` intent, the
//! `content_filter` chunk, the usage chunk when asked, `[DONE]`.
//!
//! Nothing was generated, so the completion tokens are 0; the prompt tokens are estimated, as
//! the gateway has no tokenizer, and the usage object says so in a `midstream` member, which
//! the official SDKs keep or ignore as they do any unknown field.

use serde_json::Value;

use crate::protocol::chunk::UsageView;
use crate::protocol::request::{ChatRequest, message_text};

/// Characters per token: OpenAI's rule of thumb for English text.
const CHARS_PER_TOKEN: usize = 4;
/// Tokens that frame each message in the chat format (its role and delimiters), and that
/// prime the reply, as OpenAI's cookbook counts them for its chat models.
const TOKENS_PER_MESSAGE: usize = 3;

/// A request a prompt `stop` rule blocked: what its answer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptStop {
    prompt_tokens: i64,
    include_usage: bool,
}

impl PromptStop {
    /// The answer to `request` (as the client sent it).
    pub fn new(request: &ChatRequest) -> PromptStop {
        PromptStop {
            prompt_tokens: i64::try_from(estimate_prompt_tokens(request.messages()))
                .unwrap_or(i64::MAX),
            include_usage: request.include_usage,
        }
    }

    /// Whether a stream ends with a usage chunk (`stream_options.include_usage`).
    pub fn include_usage(&self) -> bool {
        self.include_usage
    }

    /// The usage, for the record.
    pub fn usage(&self) -> UsageView {
        UsageView {
            prompt_tokens: Some(self.prompt_tokens),
            completion_tokens: Some(0),
            total_tokens: Some(self.prompt_tokens),
        }
    }

    /// The usage object sent to the client: OpenAI's fields, and
    /// `"midstream": {"usage_estimated": true}`.
    pub fn usage_json(&self) -> String {
        format!(
            r#"{{"prompt_tokens":{0},"completion_tokens":0,"total_tokens":{0},"midstream":{{"usage_estimated":true}}}}"#,
            self.prompt_tokens
        )
    }
}

/// About as many tokens as OpenAI's tokenizers make of these messages: a quarter of the
/// characters of their text (rounded up), plus the chat format's framing. Text in other
/// languages than English, code, and images are counted less well; tool definitions not at all.
fn estimate_prompt_tokens(messages: &[Value]) -> usize {
    let text: usize = messages
        .iter()
        .filter_map(|message| message.get("content").and_then(message_text))
        .map(|text| text.chars().count().div_ceil(CHARS_PER_TOKEN))
        .sum();
    text + TOKENS_PER_MESSAGE * (messages.len() + 1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(body: Value) -> ChatRequest {
        ChatRequest::parse(body.to_string().as_bytes(), 100).expect("valid")
    }

    #[test]
    fn prompt_tokens_are_a_quarter_of_the_characters_plus_the_framing() {
        let stop = PromptStop::new(&request(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "héllo wörld!"}]}
            ]
        })));
        // 9 characters -> 3, 12 characters -> 3, 2 messages and the reply -> 9.
        assert_eq!(stop.usage().prompt_tokens, Some(15));
        assert!(!stop.include_usage());
        let usage: Value = serde_json::from_str(&stop.usage_json()).expect("JSON");
        assert_eq!(
            usage,
            json!({"prompt_tokens": 15, "completion_tokens": 0, "total_tokens": 15,
                   "midstream": {"usage_estimated": true}})
        );
    }

    #[test]
    fn include_usage_is_the_request_s() {
        let stop = PromptStop::new(&request(json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": null}]
        })));
        assert!(stop.include_usage());
        assert_eq!(stop.usage().total_tokens, Some(6));
    }
}
