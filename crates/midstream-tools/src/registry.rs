//! The registry: every tool the gateway can run, with its settings and compiled schema.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::{Tool, ToolError};

/// Longest tool name, as for OpenAI function names (which models use to call our tools).
const MAX_NAME_LEN: usize = 64;
/// Schema violations listed in one [`ToolError::InvalidArguments`]; the rest are counted.
const MAX_LISTED_VIOLATIONS: usize = 8;

/// How the dispatcher runs one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSettings {
    /// Bound on the whole call: waiting for an execution slot, the cache, and the tool itself.
    pub timeout: Duration,
    /// How long a successful result is reused for identical arguments; `None` = never cached,
    /// and then identical calls from different streams each run (right for tools with effects,
    /// such as booking a meeting).
    pub cache_ttl: Option<Duration>,
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            timeout: Duration::from_secs(10),
            cache_ttl: None,
        }
    }
}

/// A tool with its settings and its compiled argument schema.
pub struct RegisteredTool {
    tool: Arc<dyn Tool>,
    settings: ToolSettings,
    validator: jsonschema::Validator,
}

impl RegisteredTool {
    /// The tool.
    pub fn tool(&self) -> &Arc<dyn Tool> {
        &self.tool
    }

    /// Its settings.
    pub fn settings(&self) -> ToolSettings {
        self.settings
    }

    /// Checks `args` against the tool's JSON Schema. The error lists every violation (up to a
    /// bound) with its JSON pointer, e.g. `/city: "" is shorter than 1 character`.
    pub fn validate(&self, args: &Value) -> Result<(), ToolError> {
        if self.validator.is_valid(args) {
            return Ok(());
        }
        let violations: Vec<String> = self
            .validator
            .iter_errors(args)
            .map(|error| {
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("{path}: {error}")
                }
            })
            .collect();
        let mut message = violations
            .iter()
            .take(MAX_LISTED_VIOLATIONS)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if violations.len() > MAX_LISTED_VIOLATIONS {
            let more = violations.len() - MAX_LISTED_VIOLATIONS;
            message.push_str(&format!("; and {more} more"));
        }
        Err(ToolError::InvalidArguments(message))
    }
}

/// What a client or model needs to know to call a tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDescription {
    /// The tool's name.
    pub name: String,
    /// One sentence about it.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// Every tool the gateway can run, by name. Built once at start-up, then shared read-only by
/// the [`Dispatcher`](crate::Dispatcher).
#[derive(Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, RegisteredTool>,
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ToolRegistry::default()
    }

    /// Adds a tool, compiling its schema once. Fails on a duplicate name, a name that is not
    /// 1–64 characters of `[A-Za-z0-9_-]` (what models accept as a function name), or a schema
    /// that does not compile.
    pub fn register(
        &mut self,
        tool: Arc<dyn Tool>,
        settings: ToolSettings,
    ) -> Result<(), ToolError> {
        let name = tool.name().to_owned();
        let refuse = |message: String| ToolError::Registration {
            tool: name.clone(),
            message,
        };
        let valid_name = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(refuse(format!(
                "a name must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '_' or '-'"
            )));
        }
        if self.tools.contains_key(&name) {
            return Err(refuse("a tool of that name is already registered".into()));
        }
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(tool.parameters())
            .map_err(|error| refuse(format!("invalid parameters schema: {error}")))?;
        self.tools.insert(
            name,
            RegisteredTool {
                tool,
                settings,
                validator,
            },
        );
        Ok(())
    }

    /// The tool registered under `name`.
    pub fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.tools.get(name)
    }

    /// Registered names, in alphabetical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Name, description and parameters of every tool, in alphabetical order: for the docs and
    /// the models list.
    pub fn describe(&self) -> Vec<ToolDescription> {
        self.tools
            .values()
            .map(|registered| ToolDescription {
                name: registered.tool.name().to_owned(),
                description: registered.tool.description().to_owned(),
                parameters: registered.tool.parameters().clone(),
            })
            .collect()
    }
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::CallContext;

    struct Fixed {
        name: &'static str,
        parameters: Value,
    }

    #[async_trait]
    impl Tool for Fixed {
        fn name(&self) -> &str {
            self.name
        }
        fn description(&self) -> &str {
            "returns nothing"
        }
        fn parameters(&self) -> &Value {
            &self.parameters
        }
        async fn call(&self, _args: Value, _ctx: &CallContext) -> Result<Value, ToolError> {
            Ok(Value::Null)
        }
    }

    fn tool(name: &'static str, parameters: Value) -> Arc<dyn Tool> {
        Arc::new(Fixed { name, parameters })
    }

    fn city_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "days": {"type": "integer", "maximum": 7}
            },
            "required": ["city"],
            "additionalProperties": false
        })
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut registry = ToolRegistry::new();
        registry
            .register(tool("a", json!({})), ToolSettings::default())
            .unwrap();
        let error = registry
            .register(tool("a", json!({})), ToolSettings::default())
            .unwrap_err();
        assert_eq!(error.code(), "registration");
        assert!(error.to_string().contains("already registered"), "{error}");
    }

    #[test]
    fn malformed_names_and_schemas_are_refused() {
        let mut registry = ToolRegistry::new();
        for name in ["", "has space", "ünïcode"] {
            assert!(
                registry
                    .register(tool(name, json!({})), ToolSettings::default())
                    .is_err()
            );
        }
        let error = registry
            .register(
                tool("bad_schema", json!({"type": 12})),
                ToolSettings::default(),
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("invalid parameters schema"),
            "{error}"
        );
        assert_eq!(registry.names().count(), 0);
    }

    #[test]
    fn names_and_descriptions_are_sorted() {
        let mut registry = ToolRegistry::new();
        registry
            .register(tool("zeta", json!({})), ToolSettings::default())
            .unwrap();
        registry
            .register(tool("alpha", city_schema()), ToolSettings::default())
            .unwrap();
        assert_eq!(registry.names().collect::<Vec<_>>(), ["alpha", "zeta"]);
        let described = registry.describe();
        assert_eq!(described[0].name, "alpha");
        assert_eq!(described[0].parameters, city_schema());
        assert_eq!(described[0].description, "returns nothing");
    }

    #[test]
    fn validation_lists_every_violation_with_its_path() {
        let mut registry = ToolRegistry::new();
        registry
            .register(tool("weather", city_schema()), ToolSettings::default())
            .unwrap();
        let registered = registry.get("weather").unwrap();
        registered.validate(&json!({"city": "Paris"})).unwrap();

        let error = registered
            .validate(&json!({"city": "", "days": 9, "extra": true}))
            .unwrap_err();
        let ToolError::InvalidArguments(message) = &error else {
            panic!("expected invalid arguments, got {error:?}");
        };
        assert!(message.contains("/city"), "{message}");
        assert!(message.contains("/days"), "{message}");
        assert!(message.contains("extra"), "{message}");

        let missing = registered.validate(&json!({})).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("\"city\" is a required property"),
            "{missing}"
        );
        assert!(registered.validate(&json!("Paris")).is_err());
    }
}
