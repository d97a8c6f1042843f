//! Tool calls the model streams (`delta.tool_calls`), assembled from their fragments.
//!
//! A call to a tool the gateway owns is started as soon as its arguments are complete — the
//! moment the accumulated fragments parse as a JSON object — not at the end of the stream.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// One call being assembled.
#[derive(Debug, Clone)]
pub struct ModelCall {
    /// Position in the `tool_calls` array.
    pub index: u32,
    /// The upstream's id (`call_…`).
    pub id: Option<String>,
    /// The function name.
    pub name: String,
    /// The arguments text so far.
    pub arguments: String,
    /// Whether the gateway owns the tool.
    pub owned: bool,
    /// Whether the gateway started it.
    pub started: bool,
}

/// A call whose arguments are complete (or, at the end, that never completed).
#[derive(Debug)]
pub struct ReadyCall {
    /// The upstream's id.
    pub id: Option<String>,
    /// The tool.
    pub name: String,
    /// Parsed arguments, or why they are not valid.
    pub arguments: Result<Value, String>,
}

/// What one chunk's `tool_calls` carried.
#[derive(Debug, Default)]
pub struct Absorbed {
    /// Owned calls whose arguments just became complete.
    pub ready: Vec<ReadyCall>,
    /// Every fragment in the chunk belongs to a tool the gateway owns.
    pub all_owned: bool,
}

/// The calls of one model response.
#[derive(Debug)]
pub struct ModelCalls {
    owned: Arc<HashSet<String>>,
    calls: Vec<ModelCall>,
}

impl ModelCalls {
    /// Tracks calls to the `owned` tools.
    pub fn new(owned: Arc<HashSet<String>>) -> ModelCalls {
        ModelCalls {
            owned,
            calls: Vec::new(),
        }
    }

    /// Reads a delta's `tool_calls` array (its raw JSON text). A malformed array is ignored
    /// (forwarded as is).
    pub fn absorb(&mut self, tool_calls_json: &str) -> Absorbed {
        let Ok(deltas) = serde_json::from_str::<Vec<ToolCallDelta>>(tool_calls_json) else {
            return Absorbed::default();
        };
        let mut absorbed = Absorbed {
            ready: Vec::new(),
            all_owned: !deltas.is_empty(),
        };
        for delta in deltas {
            let position = match self.calls.iter().position(|c| c.index == delta.index) {
                Some(position) => position,
                None => {
                    self.calls.push(ModelCall {
                        index: delta.index,
                        id: None,
                        name: String::new(),
                        arguments: String::new(),
                        owned: false,
                        started: false,
                    });
                    self.calls.len() - 1
                }
            };
            let call = &mut self.calls[position];
            if delta.id.is_some() {
                call.id = delta.id;
            }
            if let Some(function) = delta.function {
                if let Some(name) = function.name {
                    call.name.push_str(&name);
                    call.owned = self.owned.contains(&call.name);
                }
                if let Some(arguments) = function.arguments {
                    call.arguments.push_str(&arguments);
                }
            }
            absorbed.all_owned &= call.owned;
            // Parse only once the text could be a whole object: not on every fragment.
            if call.owned
                && !call.started
                && call.arguments.trim_end().ends_with('}')
                && let Ok(arguments @ Value::Object(_)) =
                    serde_json::from_str::<Value>(&call.arguments)
            {
                call.started = true;
                absorbed.ready.push(ReadyCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: Ok(arguments),
                });
            }
        }
        absorbed
    }

    /// The response ended: owned calls whose arguments never became a JSON object.
    pub fn finish(&mut self) -> Vec<ReadyCall> {
        self.calls
            .iter_mut()
            .filter(|c| c.owned && !c.started)
            .map(|call| {
                call.started = true;
                ReadyCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: Err(format!(
                        "the model's arguments are not a JSON object: {:?}",
                        call.arguments
                    )),
                }
            })
            .collect()
    }

    /// Whether this response called tools, all of them owned by the gateway.
    pub fn all_owned(&self) -> bool {
        !self.calls.is_empty() && self.calls.iter().all(|c| c.owned)
    }

    /// The assistant message that asked for these calls, for a follow-up request.
    pub fn assistant_message(&self) -> Value {
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        json!({"role": "assistant", "content": null, "tool_calls": calls})
    }

    /// Starts over for the next response.
    pub fn reset(&mut self) {
        self.calls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls() -> ModelCalls {
        ModelCalls::new(Arc::new(HashSet::from(["get_weather".to_owned()])))
    }

    #[test]
    fn an_owned_call_is_ready_the_moment_its_arguments_are_complete() {
        let mut model = calls();
        let first = model.absorb(r#"[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]"#);
        assert!(first.all_owned && first.ready.is_empty());
        assert!(
            model
                .absorb(r#"[{"index":0,"function":{"arguments":"{\"city\": \"Par"}}]"#)
                .ready
                .is_empty()
        );
        let done = model.absorb(r#"[{"index":0,"function":{"arguments":"is\"}"}}]"#);
        assert_eq!(done.ready.len(), 1);
        assert_eq!(
            done.ready[0].arguments.as_ref().ok(),
            Some(&json!({"city": "Paris"}))
        );
        assert_eq!(done.ready[0].id.as_deref(), Some("call_1"));
        assert!(model.finish().is_empty(), "already started");
        assert!(model.all_owned());
    }

    #[test]
    fn other_tools_pass_and_broken_arguments_are_reported_at_the_end() {
        let mut model = calls();
        let other = model
            .absorb(r#"[{"index":0,"id":"c0","function":{"name":"search","arguments":"{}"}}]"#);
        assert!(!other.all_owned && other.ready.is_empty());
        model.absorb(
            r#"[{"index":1,"id":"c1","function":{"name":"get_weather","arguments":"{\"city\":"}}]"#,
        );
        assert!(!model.all_owned());
        let broken = model.finish();
        assert_eq!(broken.len(), 1);
        assert!(broken[0].arguments.is_err());
        assert_eq!(
            model.assistant_message()["tool_calls"][1]["function"]["name"],
            "get_weather"
        );
    }
}
