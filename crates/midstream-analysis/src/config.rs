//! The rule file as written by users: serde types with `deny_unknown_fields`.
//!
//! These are raw, unvalidated values. [`crate::Detector::new`] validates and compiles them;
//! keeping the two apart lets the gateway embed a [`RuleSet`] in its own configuration file.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{RuleError, RuleLabel, RuleProblem};

/// A whole rule file: a list of `[[intent]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// The intents, in file order. A detection's [`crate::RuleId`] is an index into this list.
    #[serde(default)]
    pub intent: Vec<RuleConfig>,
}

impl RuleSet {
    /// Parses a rule file. Errors name the offending intent (by name, else by position).
    ///
    /// ```
    /// let rules = midstream_analysis::RuleSet::from_toml(r#"
    ///     [[intent]]
    ///     name = "greeting"
    ///     keywords = ["hello"]
    ///     action = "emit"
    /// "#).unwrap();
    /// assert_eq!(rules.intent[0].name, "greeting");
    /// ```
    pub fn from_toml(text: &str) -> Result<RuleSet, RuleError> {
        let document: toml::Table =
            toml::from_str(text).map_err(|error| syntax_error(text, &error))?;
        let mut intent = Vec::new();
        for (key, value) in document {
            if key != "intent" {
                return Err(RuleError::Layout(format!(
                    "unknown top-level key `{key}`; a rule file only contains [[intent]] tables"
                )));
            }
            let toml::Value::Array(entries) = value else {
                return Err(RuleError::Layout(
                    "`intent` must be an array of tables ([[intent]])".into(),
                ));
            };
            for (index, entry) in entries.into_iter().enumerate() {
                let name = entry
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let rule = entry.try_into::<RuleConfig>().map_err(|error| {
                    RuleError::rule(
                        RuleLabel::new(index, &name),
                        RuleProblem::Config(error.message().to_owned()),
                    )
                })?;
                intent.push(rule);
            }
        }
        Ok(RuleSet { intent })
    }
}

/// Converts a TOML syntax error to one line with its position.
fn syntax_error(text: &str, error: &toml::de::Error) -> RuleError {
    let offset = error.span().map_or(0, |span| span.start).min(text.len());
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    RuleError::Syntax {
        line,
        column,
        message: crate::error::one_line(&error.message()),
    }
}

/// Which text a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The user messages of the request, scanned once before it goes upstream.
    Prompt,
    /// The model's streamed content.
    Output,
}

/// One `[[intent]]` table, before validation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique, non-empty name.
    pub name: String,
    /// Which texts the rule watches; default `["output"]`.
    #[serde(default = "default_scope")]
    pub scope: Vec<Scope>,
    /// One exact string.
    #[serde(default)]
    pub literal: Option<String>,
    /// Any of these exact strings.
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
    /// A regular expression (regex-syntax dialect); named groups become tool arguments.
    #[serde(default)]
    pub regex: Option<String>,
    /// Literal/keywords only: ASCII case folding (use `(?i)` in a regex for Unicode folding).
    #[serde(default)]
    pub case_insensitive: bool,
    /// Literal/keywords only: the match must not touch a word character on either side.
    /// Default: `true` for keywords, `false` for a literal.
    #[serde(default)]
    pub whole_word: Option<bool>,
    /// Regex only: the longest match in bytes, i.e. the look-back window. Default 256.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// What to do on a match.
    pub action: ActionConfig,
}

fn default_scope() -> Vec<Scope> {
    vec![Scope::Output]
}

/// What a rule does when it matches, as written.
///
/// In TOML: `"emit"`, `"redact"`, `"stop"`, `{ redact = "replacement" }`, or
/// `{ tool = "name", args = { key = "$group", other = "text ${group}" } }`.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionConfig {
    /// Dispatch a tool with arguments built from the match.
    Tool {
        /// Tool name.
        tool: String,
        /// Argument template (see [`crate::Action::Tool`]).
        args: serde_json::Map<String, serde_json::Value>,
    },
    /// Annotate only.
    Emit,
    /// Replace the matched text before the client sees it.
    Redact {
        /// The replacement; `None` means [`crate::DEFAULT_REDACTION`].
        replacement: Option<String>,
    },
    /// End the stream.
    Stop,
}

impl<'de> Deserialize<'de> for ActionConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ActionConfig, D::Error> {
        deserializer.deserialize_any(ActionVisitor)
    }
}

/// Accepts the bare-word and table forms of an action with messages that say which forms exist
/// (an untagged enum would only say "did not match any variant").
struct ActionVisitor;

impl<'de> Visitor<'de> for ActionVisitor {
    type Value = ActionConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            r#""emit", "redact", "stop", { redact = "..." } or { tool = "...", args = { ... } }"#,
        )
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ActionConfig, E> {
        match value {
            "emit" => Ok(ActionConfig::Emit),
            "redact" => Ok(ActionConfig::Redact { replacement: None }),
            "stop" => Ok(ActionConfig::Stop),
            "tool" => Err(E::custom(
                r#"a tool action is a table: action = { tool = "name", args = { ... } }"#,
            )),
            other => Err(E::custom(format!(
                r#"unknown action "{other}", expected "emit", "redact", "stop", {{ redact = "..." }} or {{ tool = "...", args = {{ ... }} }}"#
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ActionConfig, A::Error> {
        let mut tool: Option<String> = None;
        let mut args: Option<serde_json::Map<String, serde_json::Value>> = None;
        let mut redact: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tool" => tool = Some(map.next_value()?),
                "args" => args = Some(map.next_value()?),
                "redact" => redact = Some(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown action key `{other}`, expected `tool`, `args` or `redact`"
                    )));
                }
            }
        }
        match (tool, redact) {
            (Some(tool), None) => Ok(ActionConfig::Tool {
                tool,
                args: args.unwrap_or_default(),
            }),
            (None, Some(replacement)) if args.is_none() => Ok(ActionConfig::Redact {
                replacement: Some(replacement),
            }),
            (None, Some(_)) => Err(de::Error::custom("`args` only applies to tool actions")),
            (Some(_), Some(_)) => Err(de::Error::custom(
                "an action is either a tool or a redaction, not both",
            )),
            (None, None) => Err(de::Error::custom(
                "an action table needs `tool` or `redact`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_rule(text: &str) -> Result<RuleConfig, RuleError> {
        RuleSet::from_toml(text).map(|set| {
            set.intent
                .into_iter()
                .next()
                .expect("one rule in the test text")
        })
    }

    #[test]
    fn parses_every_action_form() {
        let set = RuleSet::from_toml(
            r#"
            [[intent]]
            name = "a"
            literal = "x"
            action = "emit"
            [[intent]]
            name = "b"
            literal = "x"
            action = "redact"
            [[intent]]
            name = "c"
            literal = "x"
            action = { redact = "[gone]" }
            [[intent]]
            name = "d"
            literal = "x"
            action = "stop"
            [[intent]]
            name = "e"
            regex = 'in (?P<city>\w+)'
            scope = ["prompt", "output"]
            action = { tool = "weather", args = { city = "$city", n = 3 } }
            "#,
        )
        .unwrap();
        let actions: Vec<_> = set.intent.iter().map(|rule| rule.action.clone()).collect();
        assert_eq!(actions[0], ActionConfig::Emit);
        assert_eq!(actions[1], ActionConfig::Redact { replacement: None });
        assert_eq!(
            actions[2],
            ActionConfig::Redact {
                replacement: Some("[gone]".into())
            }
        );
        assert_eq!(actions[3], ActionConfig::Stop);
        let ActionConfig::Tool { tool, args } = &actions[4] else {
            panic!("tool action expected")
        };
        assert_eq!(tool, "weather");
        assert_eq!(args["city"], "$city");
        assert_eq!(args["n"], 3);
        assert_eq!(set.intent[4].scope, vec![Scope::Prompt, Scope::Output]);
        assert_eq!(set.intent[0].scope, vec![Scope::Output]);
    }

    #[test]
    fn unknown_field_names_the_rule() {
        let error = first_rule(
            r#"
            [[intent]]
            name = "weather"
            regexp = "x"
            action = "emit"
            "#,
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("intent \"weather\": unknown field `regexp`"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn bad_action_names_the_rule_and_the_forms() {
        let error = first_rule("[[intent]]\nname = \"x\"\nliteral = \"a\"\naction = \"shout\"\n")
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("intent \"x\": unknown action \"shout\""),
            "{text}"
        );
        let error = first_rule("[[intent]]\nname = \"x\"\nliteral = \"a\"\naction = { tool = \"t\", redact = \"r\" }\n")
            .unwrap_err();
        assert!(error.to_string().contains("not both"), "{error}");
    }

    #[test]
    fn unnamed_rule_is_named_by_position() {
        let error =
            RuleSet::from_toml("[[intent]]\nliteral = \"a\"\naction = \"emit\"\n").unwrap_err();
        assert_eq!(error.to_string(), "intent #1: missing field `name`");
    }

    #[test]
    fn syntax_errors_have_a_position_and_one_line() {
        let error = RuleSet::from_toml("[[intent]]\nname = \"x\n").unwrap_err();
        let RuleError::Syntax { line, .. } = &error else {
            panic!("syntax error expected, got {error}")
        };
        assert_eq!(*line, 2);
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn rejects_unknown_top_level_keys_and_accepts_empty_files() {
        assert!(matches!(
            RuleSet::from_toml("rules = 1"),
            Err(RuleError::Layout(_))
        ));
        assert!(matches!(
            RuleSet::from_toml("intent = 1"),
            Err(RuleError::Layout(_))
        ));
        assert_eq!(RuleSet::from_toml("").unwrap(), RuleSet::default());
    }
}
