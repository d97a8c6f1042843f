//! The token usage a chat scenario reports.

use serde_json::json;

use super::scenario::MockToolCall;

/// Prompt tokens reported for every request: the mock does not tokenize prompts.
const PROMPT_TOKENS: usize = 12;

/// Token counts of one chat answer: one completion token per content piece and per
/// tool-call argument fragment, plus one per tool-call header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    completion_tokens: usize,
}

impl Usage {
    pub(crate) fn for_chat(pieces: &[String], tool_calls: &[MockToolCall]) -> Self {
        let tool_tokens: usize = tool_calls
            .iter()
            .map(|call| 1 + call.argument_fragments.len())
            .sum();
        Self {
            completion_tokens: pieces.len() + tool_tokens,
        }
    }

    /// The `usage` object, shaped like OpenAI's current one.
    pub(crate) fn to_json(self) -> serde_json::Value {
        json!({
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": self.completion_tokens,
            "total_tokens": PROMPT_TOKENS + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0
            }
        })
    }
}
