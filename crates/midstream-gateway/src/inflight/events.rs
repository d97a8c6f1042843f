//! The events MidStream raises about a stream (DESIGN.md 3.1), serialised once: the same JSON
//! is recorded and injected under the chunk's top-level `midstream` member.
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

use serde_json::{Map, Value, json};

/// An event, as JSON.
#[derive(Debug, Clone)]
pub struct MidstreamEvent {
    kind: &'static str,
    json: String,
}

impl MidstreamEvent {
    fn new(kind: &'static str, value: &Value) -> MidstreamEvent {
        MidstreamEvent {
            kind,
            json: value.to_string(),
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

/// `{"type": "intent", ...}`.
pub fn intent(facts: &IntentFacts<'_>) -> MidstreamEvent {
    let mut event = json!({
        "type": "intent",
        "id": facts.id,
        "rule": facts.rule,
        "scope": facts.scope,
        "action": facts.action,
        "at_ms": round_ms(facts.at_ms),
        "chars_seen": facts.chars_seen,
    });
    if let Some((matched, captures)) = facts.matched {
        event["matched"] = Value::from(matched);
        event["captures"] = captures_object(captures);
    }
    if let Some(call_id) = facts.call_id {
        event["call_id"] = Value::from(call_id);
        if facts.duplicate {
            event["duplicate"] = Value::Bool(true);
        }
    }
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

    fn link(&self, event: &mut Value) {
        event["source"] = Value::from(self.name());
        match self {
            CallSource::Intent(id) => event["intent_id"] = Value::from(id.as_str()),
            CallSource::Model(Some(id)) => event["model_call_id"] = Value::from(id.as_str()),
            CallSource::Model(None) => {}
        }
    }
}

/// `{"type": "tool.started", ...}`.
pub fn tool_started(
    call_id: &str,
    tool: &str,
    arguments: &Value,
    source: &CallSource,
    at_ms: f64,
) -> MidstreamEvent {
    let mut event = json!({
        "type": "tool.started",
        "id": call_id,
        "tool": tool,
        "arguments": arguments,
        "at_ms": round_ms(at_ms),
    });
    source.link(&mut event);
    MidstreamEvent::new("tool.started", &event)
}

/// How a call ended.
#[derive(Debug)]
pub struct CallEnd<'a> {
    /// The call.
    pub call_id: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// Its arguments.
    pub arguments: &'a Value,
    /// Who asked for it.
    pub source: &'a CallSource,
    /// The result, or `(code, message)`.
    pub outcome: Result<&'a Value, (&'a str, String)>,
    /// Served from the cache (or a shared identical execution).
    pub cached: bool,
    /// How long the call took.
    pub duration_ms: f64,
    /// Milliseconds since the request.
    pub at_ms: f64,
}

/// `{"type": "tool.result", ...}` or `{"type": "tool.error", ...}`.
pub fn tool_end(end: &CallEnd<'_>) -> MidstreamEvent {
    let mut event = json!({
        "id": end.call_id,
        "tool": end.tool,
        "arguments": end.arguments,
        "cached": end.cached,
        "duration_ms": round_ms(end.duration_ms),
        "at_ms": round_ms(end.at_ms),
    });
    end.source.link(&mut event);
    let kind = match &end.outcome {
        Ok(result) => {
            event["result"] = (*result).clone();
            "tool.result"
        }
        Err((code, message)) => {
            event["error"] = json!({"code": code, "message": message});
            "tool.error"
        }
    };
    event["type"] = Value::from(kind);
    MidstreamEvent::new(kind, &event)
}

/// Named captures as a JSON object.
pub fn captures_object(captures: &[(String, String)]) -> Value {
    Value::Object(
        captures
            .iter()
            .map(|(name, text)| (name.clone(), Value::from(text.as_str())))
            .collect::<Map<String, Value>>(),
    )
}

/// Microsecond resolution is plenty for event timings and keeps the JSON short.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
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
    fn tool_events_link_to_their_source() {
        let args = json!({"city": "Paris"});
        let source = CallSource::Intent("int_1".into());
        let started = parse(&tool_started("call_1", "weather", &args, &source, 1.0));
        assert_eq!(
            (started["type"].as_str(), started["intent_id"].as_str()),
            (Some("tool.started"), Some("int_1"))
        );
        let result = json!({"temperature": 21});
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
            outcome: Err(("timeout", "took too long".into())),
            cached: false,
            duration_ms: 3000.0,
            at_ms: 3001.0,
        }));
        assert_eq!(failed["type"], "tool.error");
        assert_eq!(failed["error"]["code"], "timeout");
        assert_eq!(failed["model_call_id"], "call_abc");
    }
}
