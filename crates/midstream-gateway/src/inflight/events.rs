//! The events MidStream raises about a stream (docs/architecture.md, "Events inside the
//! OpenAI-compatible stream"), serialised once: the same JSON is recorded and injected under
//! the chunk's top-level `midstream` member.
//!
//! | type | when | links |
//! | --- | --- | --- |
//! | `intent` | a rule matched | `id` (`int_N`), `call_id` when it started (or reused) a call |
//! | `tool.started` | a call began | `id` (the call id), `intent_id` or `model_call_id` |
//! | `tool.result` | a call succeeded | `id`, `result`, `cached`, `duration_ms` |
//! | `tool.error` | a call failed | `id`, `error: {code, message}`, `duration_ms` |
//!
//! Every event has `at_ms` (milliseconds since the request arrived). Text that a `redact` or
//! `stop` rule hides is never put in an event.

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::value::RawValue;

/// An event, as JSON.
#[derive(Debug, Clone)]
pub struct MidstreamEvent {
    kind: &'static str,
    json: String,
}

impl MidstreamEvent {
    fn new(kind: &'static str, event: &impl Serialize) -> MidstreamEvent {
        MidstreamEvent {
            kind,
            json: json_text(event),
        }
    }

    /// `intent`, `tool.started`, `tool.result` or `tool.error`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The event object as JSON.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// `value` as JSON text, written straight from the borrowed data. Events are built from
/// borrowed structs, not `json!` trees: no copy of a tool's arguments or result, no map
/// allocated per event. Building and printing those trees was 7 % of the gateway's user-space
/// instructions for a stream that fires an intent and gets its tool result (callgrind,
/// BENCHMARKS.md "What changed along the way").
///
/// Everything serialised here is strings, numbers, booleans and `serde_json::Value`s, whose
/// serialisation into memory cannot fail, as `Value`'s own `Display` assumes.
pub fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("strings, numbers and JSON values always serialise")
}

/// `value` as JSON kept as text, for JSON written more than once: a call's arguments go into
/// two events and two records, its result into an event and a record; each is serialised
/// once and copied as text (see [`json_text`] for why it cannot fail).
pub fn raw_json(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .expect("strings, numbers and JSON values always serialise")
}

/// Named captures as a JSON object, in the rule's group order (a regex's group names are
/// unique, so no key repeats).
#[derive(Debug, Clone, Copy)]
pub struct Captures<'a>(pub &'a [(String, String)]);

impl Serialize for Captures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, text)| (name, text)))
    }
}

/// Facts of an intent event.
#[derive(Debug)]
pub struct IntentFacts<'a> {
    /// `int_N`.
    pub id: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// `prompt` or `output`.
    pub scope: &'a str,
    /// `tool`, `emit`, `redact` or `stop`.
    pub action: &'a str,
    /// The matched text and captures, unless the rule hides them.
    pub matched: Option<(&'a str, &'a [(String, String)])>,
    /// The call it started or reused.
    pub call_id: Option<&'a str>,
    /// Whether that call was already started by an earlier identical intent.
    pub duplicate: bool,
    /// Milliseconds since the request.
    pub at_ms: f64,
    /// Characters of the scope's text seen when it fired.
    pub chars_seen: u64,
}

/// The wire form of an intent event.
#[derive(Serialize)]
struct IntentEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    rule: &'a str,
    scope: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    captures: Option<Captures<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    at_ms: f64,
    chars_seen: u64,
}

/// `{"type": "intent", ...}`.
pub fn intent(facts: &IntentFacts<'_>) -> MidstreamEvent {
    let event = IntentEvent {
        kind: "intent",
        id: facts.id,
        rule: facts.rule,
        scope: facts.scope,
        action: facts.action,
        matched: facts.matched.map(|(matched, _)| matched),
        captures: facts.matched.map(|(_, captures)| Captures(captures)),
        call_id: facts.call_id,
        duplicate: facts.call_id.is_some() && facts.duplicate,
        at_ms: round_ms(facts.at_ms),
        chars_seen: facts.chars_seen,
    };
    MidstreamEvent::new("intent", &event)
}

/// Who asked for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSource {
    /// A rule fired; the intent's id.
    Intent(String),
    /// The model streamed a `tool_calls` entry for a tool the gateway owns; its id.
    Model(Option<String>),
}

impl CallSource {
    /// `intent` or `model`.
    pub fn name(&self) -> &'static str {
        match self {
            CallSource::Intent(_) => "intent",
            CallSource::Model(_) => "model",
        }
    }

    /// The intent id, for intent calls.
    pub fn intent_id(&self) -> Option<&str> {
        match self {
            CallSource::Intent(id) => Some(id),
            CallSource::Model(_) => None,
        }
    }

    /// The upstream's tool-call id, for model calls.
    pub fn model_call_id(&self) -> Option<&str> {
        match self {
            CallSource::Model(id) => id.as_deref(),
            CallSource::Intent(_) => None,
        }
    }
}

/// What every tool event says about its call: which call, of which tool, with which
/// arguments, asked for by whom.
#[derive(Serialize)]
struct CallLink<'a> {
    id: &'a str,
    tool: &'a str,
    arguments: &'a RawValue,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    intent_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_call_id: Option<&'a str>,
}

impl<'a> CallLink<'a> {
    fn new(
        call_id: &'a str,
        tool: &'a str,
        arguments: &'a RawValue,
        source: &'a CallSource,
    ) -> Self {
        CallLink {
            id: call_id,
            tool,
            arguments,
            source: source.name(),
            intent_id: source.intent_id(),
            model_call_id: source.model_call_id(),
        }
    }
}

/// The wire form of a `tool.started` event.
#[derive(Serialize)]
struct StartedEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    call: CallLink<'a>,
    at_ms: f64,
}

/// `{"type": "tool.started", ...}`.
pub fn tool_started(
    call_id: &str,
    tool: &str,
    arguments: &RawValue,
    source: &CallSource,
    at_ms: f64,
) -> MidstreamEvent {
    let event = StartedEvent {
        kind: "tool.started",
        call: CallLink::new(call_id, tool, arguments, source),
        at_ms: round_ms(at_ms),
    };
    MidstreamEvent::new("tool.started", &event)
}

/// How a call ended.
#[derive(Debug)]
pub struct CallEnd<'a> {
    /// The call.
    pub call_id: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// Its arguments, as JSON.
    pub arguments: &'a RawValue,
    /// Who asked for it.
    pub source: &'a CallSource,
    /// The result as JSON, or `(code, message)`.
    pub outcome: Result<&'a RawValue, (&'a str, &'a str)>,
    /// Served from the cache (or a shared identical execution).
    pub cached: bool,
    /// How long the call took.
    pub duration_ms: f64,
    /// Milliseconds since the request.
    pub at_ms: f64,
}

/// A failed call's `error` member.
#[derive(Serialize)]
pub struct CallError<'a> {
    /// The error code (`timeout`, `invalid_arguments`, ...).
    pub code: &'a str,
    /// What went wrong, for people.
    pub message: &'a str,
}

/// The wire form of a `tool.result` or `tool.error` event.
#[derive(Serialize)]
struct EndEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    call: CallLink<'a>,
    cached: bool,
    duration_ms: f64,
    at_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<CallError<'a>>,
}

/// `{"type": "tool.result", ...}` or `{"type": "tool.error", ...}`.
pub fn tool_end(end: &CallEnd<'_>) -> MidstreamEvent {
    let (kind, result, error) = match end.outcome {
        Ok(result) => ("tool.result", Some(result), None),
        Err((code, message)) => ("tool.error", None, Some(CallError { code, message })),
    };
    let event = EndEvent {
        kind,
        call: CallLink::new(end.call_id, end.tool, end.arguments, end.source),
        cached: end.cached,
        duration_ms: round_ms(end.duration_ms),
        at_ms: round_ms(end.at_ms),
        result,
        error,
    };
    MidstreamEvent::new(kind, &event)
}

/// Microsecond resolution is plenty for event timings and keeps the JSON short.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(event: &MidstreamEvent) -> Value {
        serde_json::from_str(event.json()).expect("json")
    }

    #[test]
    fn intents_hide_matched_text_when_asked() {
        let captures = [("city".to_owned(), "Paris".to_owned())];
        let shown = intent(&IntentFacts {
            id: "int_1",
            rule: "weather",
            scope: "output",
            action: "tool",
            matched: Some(("weather in Paris", &captures)),
            call_id: Some("call_1"),
            duplicate: false,
            at_ms: 12.34567,
            chars_seen: 40,
        });
        assert_eq!(
            parse(&shown),
            json!({"type": "intent", "id": "int_1", "rule": "weather", "scope": "output", "action": "tool",
                   "matched": "weather in Paris", "captures": {"city": "Paris"}, "call_id": "call_1",
                   "at_ms": 12.346, "chars_seen": 40})
        );
        let hidden = intent(&IntentFacts {
            id: "int_2",
            rule: "key",
            scope: "output",
            action: "redact",
            matched: None,
            call_id: None,
            duplicate: false,
            at_ms: 1.0,
            chars_seen: 3,
        });
        assert!(!hidden.json().contains("matched"));
    }

    #[test]
    fn captures_keep_the_rules_group_order_and_duplicates_are_flagged() {
        let captures = [
            ("when".to_owned(), "at 10".to_owned()),
            ("who".to_owned(), "Ann \"A\" Lee".to_owned()),
        ];
        let event = intent(&IntentFacts {
            id: "int_3",
            rule: "meeting",
            scope: "output",
            action: "tool",
            matched: Some(("meet Ann at 10", &captures)),
            call_id: Some("call_1"),
            duplicate: true,
            at_ms: 5.0,
            chars_seen: 14,
        });
        assert!(
            event
                .json()
                .contains(r#""captures":{"when":"at 10","who":"Ann \"A\" Lee"}"#),
            "{}",
            event.json()
        );
        assert_eq!(parse(&event)["duplicate"], true);
        assert_eq!(json_text(&Captures(&[])), "{}");
    }

    #[test]
    fn tool_events_link_to_their_source() {
        let args = raw_json(&json!({"city": "Paris"}));
        let source = CallSource::Intent("int_1".into());
        let started = parse(&tool_started("call_1", "weather", &args, &source, 1.0));
        assert_eq!(
            (started["type"].as_str(), started["intent_id"].as_str()),
            (Some("tool.started"), Some("int_1"))
        );
        assert_eq!(started["arguments"], json!({"city": "Paris"}));
        let result = raw_json(&json!({"temperature": 21}));
        let ok = parse(&tool_end(&CallEnd {
            call_id: "call_1",
            tool: "weather",
            arguments: &args,
            source: &source,
            outcome: Ok(&result),
            cached: true,
            duration_ms: 0.5,
            at_ms: 2.0,
        }));
        assert_eq!(
            (
                ok["type"].as_str(),
                ok["cached"].as_bool(),
                ok["result"]["temperature"].as_i64()
            ),
            (Some("tool.result"), Some(true), Some(21))
        );
        let model = CallSource::Model(Some("call_abc".into()));
        let failed = parse(&tool_end(&CallEnd {
            call_id: "call_2",
            tool: "weather",
            arguments: &args,
            source: &model,
            outcome: Err(("timeout", "took too long")),
            cached: false,
            duration_ms: 3000.0,
            at_ms: 3001.0,
        }));
        assert_eq!(failed["type"], "tool.error");
        assert_eq!(failed["error"]["code"], "timeout");
        assert_eq!(failed["model_call_id"], "call_abc");
    }
}
