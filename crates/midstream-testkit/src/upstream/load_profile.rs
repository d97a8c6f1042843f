//! Steering the mock per request, for benchmarks and manual runs.
//!
//! A load generator talks to the gateway, not to the mock, but the gateway forwards unknown
//! request fields, so a `"mock"` object in the request body reaches the mock:
//! `"mock": {"tokens": 50, "delay_ms": 2, "first_token_delay_ms": 0, "hold": false, "tag": "abc"}`.
//! Every field is optional; a missing one takes the profile's value.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::scenario::Scenario;

/// Most tokens one response may have; larger requests are clamped to it.
pub const MAX_LOAD_TOKENS: usize = 100_000;

/// Words the generated answers cycle through.
const VOCABULARY: [&str; 10] = [
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

/// The answer shape a [`MockUpstream`](super::MockUpstream) gives when no scenario was
/// pushed: `tokens` text chunks, `delay` between chunks, `first_token_delay` before the
/// response headers. A request's `"mock"` object overrides any of them, and can also ask
/// to `hold` (send the role chunk, then nothing, keeping the stream open) and give a `tag`
/// under which an early disconnect is reported by `GET /mock/stats`.
#[derive(Debug, Clone)]
pub struct LoadProfile {
    tokens: usize,
    delay: Duration,
    first_token_delay: Duration,
    /// The pieces for `tokens`, built once and shared by every response that uses them.
    default_pieces: Arc<[String]>,
}

/// The `"mock"` object of one request.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MockParams {
    tokens: Option<usize>,
    delay_ms: Option<u64>,
    first_token_delay_ms: Option<u64>,
    #[serde(default)]
    hold: bool,
    tag: Option<String>,
}

impl LoadProfile {
    /// A profile of `tokens` chunks (at most [`MAX_LOAD_TOKENS`]) paced by `delay`, after
    /// `first_token_delay` before the headers.
    pub fn new(tokens: usize, delay: Duration, first_token_delay: Duration) -> Self {
        let tokens = tokens.min(MAX_LOAD_TOKENS);
        Self {
            tokens,
            delay,
            first_token_delay,
            default_pieces: pieces(tokens),
        }
    }

    /// The scenario for one request carrying `params`.
    pub(crate) fn scenario_for(&self, params: Option<&MockParams>) -> Scenario {
        let params = params.unwrap_or(&NO_PARAMS);
        let tokens = params
            .tokens
            .map_or(self.tokens, |tokens| tokens.min(MAX_LOAD_TOKENS));
        let pieces = if tokens == self.tokens {
            self.default_pieces.clone()
        } else {
            pieces(tokens)
        };
        let mut scenario = Scenario::from_shared_pieces(pieces)
            .delay(params.delay_ms.map_or(self.delay, Duration::from_millis))
            .first_byte_delay(
                params
                    .first_token_delay_ms
                    .map_or(self.first_token_delay, Duration::from_millis),
            );
        if params.hold {
            scenario = scenario.stall_after(1);
        }
        if let Some(tag) = &params.tag {
            scenario = scenario.tag(tag.clone());
        }
        scenario
    }
}

const NO_PARAMS: MockParams = MockParams {
    tokens: None,
    delay_ms: None,
    first_token_delay_ms: None,
    hold: false,
    tag: None,
};

fn pieces(tokens: usize) -> Arc<[String]> {
    VOCABULARY
        .iter()
        .cycle()
        .take(tokens)
        .map(|word| (*word).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::scenario::Ending;

    #[test]
    fn the_profile_applies_when_the_request_says_nothing() {
        let profile = LoadProfile::new(12, Duration::from_millis(2), Duration::from_millis(5));
        let scenario = profile.scenario_for(None);
        assert_eq!(scenario.content_pieces().len(), 12);
        assert_eq!(
            scenario.text_content(),
            "The quick brown fox jumps over the lazy dog.The quick"
        );
        assert_eq!(scenario.delay, Duration::from_millis(2));
        assert_eq!(scenario.first_byte_delay, Duration::from_millis(5));
        assert_eq!(scenario.ending, Ending::Done);
        assert_eq!(scenario.tag, None);
    }

    #[test]
    fn the_mock_object_overrides_every_field() {
        let profile = LoadProfile::new(12, Duration::from_millis(2), Duration::ZERO);
        let params: MockParams = serde_json::from_value(serde_json::json!({
            "tokens": 3, "delay_ms": 0, "first_token_delay_ms": 7, "hold": true, "tag": "abc"
        }))
        .expect("valid params");
        let scenario = profile.scenario_for(Some(&params));
        assert_eq!(scenario.content_pieces().len(), 3);
        assert_eq!(scenario.delay, Duration::ZERO);
        assert_eq!(scenario.first_byte_delay, Duration::from_millis(7));
        assert_eq!(scenario.ending, Ending::Stall { after: Some(1) });
        assert_eq!(scenario.tag.as_deref(), Some("abc"));
    }

    #[test]
    fn token_counts_are_bounded() {
        let profile = LoadProfile::new(usize::MAX, Duration::ZERO, Duration::ZERO);
        assert_eq!(profile.tokens, MAX_LOAD_TOKENS);
    }
}
