//! Steering the mock per request, for benchmarks and manual runs.
//!
//! A load generator talks to the gateway, not to the mock, but the gateway forwards unknown
//! request fields, so a `"mock"` object in the request body reaches the mock:
//! `"mock": {"tokens": 50, "delay_ms": 2, "first_token_delay_ms": 0, "hold": false, "tag": "abc",
//! "text": "Some words"}`. Every field is optional; a missing one takes the profile's value.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::scenario::Scenario;

/// Most tokens one response may have; larger requests are clamped to it.
pub const MAX_LOAD_TOKENS: usize = 100_000;

/// Words the generated answers cycle through unless a text is given.
const VOCABULARY: [&str; 10] = [
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

/// The answer shape a [`MockUpstream`](super::MockUpstream) gives when no scenario was
/// pushed: `tokens` text chunks, `delay` between chunks, `first_token_delay` before the
/// response headers. A request's `"mock"` object overrides any of them, and can also ask
/// to `hold` (send the role chunk, then nothing, keeping the stream open) and give a `tag`
/// under which an early disconnect is reported by `GET /mock/stats`.
///
/// The answer's text cycles through a word list: [`VOCABULARY`] by default, the words of
/// [`with_text`](Self::with_text) or of a request's `"text"` otherwise, one word (with its
/// leading space) per chunk.
#[derive(Debug, Clone)]
pub struct LoadProfile {
    tokens: usize,
    delay: Duration,
    first_token_delay: Duration,
    /// The words answers cycle through.
    words: Arc<[String]>,
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
    /// Text whose words this answer cycles through instead of the profile's.
    text: Option<String>,
}

impl LoadProfile {
    /// A profile of `tokens` chunks (at most [`MAX_LOAD_TOKENS`]) paced by `delay`, after
    /// `first_token_delay` before the headers.
    pub fn new(tokens: usize, delay: Duration, first_token_delay: Duration) -> Self {
        let tokens = tokens.min(MAX_LOAD_TOKENS);
        let words: Arc<[String]> = VOCABULARY.iter().map(|word| (*word).to_owned()).collect();
        Self {
            tokens,
            delay,
            first_token_delay,
            default_pieces: pieces(&words, tokens),
            words,
        }
    }

    /// Answers cycle through the words of `text` instead of the built-in ones (an empty
    /// text keeps them): benchmarks use a realistic paragraph so intent rules fire.
    pub fn with_text(mut self, text: &str) -> Self {
        if let Some(words) = words_of(text) {
            self.default_pieces = pieces(&words, self.tokens);
            self.words = words;
        }
        self
    }

    /// The scenario for one request carrying `params`.
    pub(crate) fn scenario_for(&self, params: Option<&MockParams>) -> Scenario {
        let params = params.unwrap_or(&NO_PARAMS);
        let tokens = params
            .tokens
            .map_or(self.tokens, |tokens| tokens.min(MAX_LOAD_TOKENS));
        let pieces = match params.text.as_deref().and_then(words_of) {
            Some(words) => pieces(&words, tokens),
            None if tokens == self.tokens => self.default_pieces.clone(),
            None => pieces(&self.words, tokens),
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
    text: None,
};

/// The first `tokens` pieces of the endless cycle through `words`; the answer does not
/// start with a space.
fn pieces(words: &[String], tokens: usize) -> Arc<[String]> {
    words
        .iter()
        .cycle()
        .take(tokens)
        .enumerate()
        .map(|(index, word)| {
            if index == 0 {
                word.trim_start().to_owned()
            } else {
                word.clone()
            }
        })
        .collect()
}

/// The words of `text`, each with one leading space as model tokens have it, so the cycle
/// reads naturally when it wraps; `None` for a text without words.
fn words_of(text: &str) -> Option<Arc<[String]>> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| format!(" {word}"))
        .collect();
    (!words.is_empty()).then(|| words.into())
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
    fn a_text_replaces_the_words_and_wraps_with_a_space() {
        let profile = LoadProfile::new(5, Duration::ZERO, Duration::ZERO)
            .with_text("  the weather in\nParis ");
        let scenario = profile.scenario_for(None);
        assert_eq!(
            scenario.content_pieces(),
            ["the", " weather", " in", " Paris", " the"]
        );
        let params: MockParams =
            serde_json::from_value(serde_json::json!({"text": "Hi there", "tokens": 3}))
                .expect("valid params");
        assert_eq!(
            profile.scenario_for(Some(&params)).text_content(),
            "Hi there Hi"
        );
        let other_count: MockParams =
            serde_json::from_value(serde_json::json!({"tokens": 2})).expect("valid params");
        assert_eq!(
            profile.scenario_for(Some(&other_count)).text_content(),
            "the weather"
        );
    }

    #[test]
    fn an_empty_text_keeps_the_built_in_words() {
        let profile = LoadProfile::new(2, Duration::ZERO, Duration::ZERO).with_text(" \n");
        assert_eq!(profile.scenario_for(None).text_content(), "The quick");
    }

    #[test]
    fn token_counts_are_bounded() {
        let profile = LoadProfile::new(usize::MAX, Duration::ZERO, Duration::ZERO);
        assert_eq!(profile.tokens, MAX_LOAD_TOKENS);
    }
}
