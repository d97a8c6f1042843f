//! Validated rules: what a [`crate::Detection`] refers to, and the compilation of one
//! [`RuleConfig`] into it.

use crate::args::{ArgsTemplate, Reference};
use crate::config::{ActionConfig, RuleConfig, Scope};
use crate::error::{RuleError, RuleLabel, RuleProblem};
use crate::regex_program::RegexProgram;

/// Default `max_len` of a regex rule, in bytes.
pub const DEFAULT_MAX_LEN: usize = 256;

/// The largest bound a rule may have (a regex's `max_len`, a literal's length), in bytes. It caps
/// each stream's look-back window.
pub const MAX_PATTERN_BOUND: usize = 16 * 1024;

/// Replacement text of `action = "redact"`.
pub const DEFAULT_REDACTION: &str = "[redacted]";

/// Index of a rule in [`crate::Detector::rules`] (file order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub usize);

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// The scopes it watches (sorted, without duplicates).
    pub scope: Vec<Scope>,
    /// What it matches.
    pub pattern: Pattern,
    /// What to do on a match.
    pub action: Action,
    args: Option<ArgsTemplate>,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `literal` (one entry) or `keywords`.
    Keywords {
        /// The exact strings.
        keywords: Vec<String>,
        /// ASCII case folding.
        case_insensitive: bool,
        /// The match must not touch a word character on either side.
        whole_word: bool,
    },
    /// `regex`.
    Regex {
        /// The pattern.
        regex: String,
        /// The longest match in bytes.
        max_len: usize,
    },
}

/// What a rule does on a match.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Dispatch `tool`. `args` is the template as written; [`crate::Detection::args`] carries it
    /// filled in: a string `"$name"` becomes the text of group `name` (`null` if the group did not
    /// take part), `"$0"` the whole match, and `${name}` inside a longer string is replaced by the
    /// group's text (`""` if it did not take part); `$$` is a literal `$`.
    Tool {
        /// Tool name.
        tool: String,
        /// Argument template.
        args: serde_json::Map<String, serde_json::Value>,
    },
    /// Annotate only.
    Emit,
    /// Replace the match with `replacement` in the released text.
    Redact {
        /// Replacement text.
        replacement: String,
    },
    /// End the stream; the match and what follows are never released.
    Stop,
}

impl Action {
    /// Redact and stop actions change what the client may see.
    pub fn guards_output(&self) -> bool {
        matches!(self, Action::Redact { .. } | Action::Stop)
    }
}

impl Rule {
    /// Whether the rule watches `scope`.
    pub fn applies_to(&self, scope: Scope) -> bool {
        self.scope.contains(&scope)
    }

    /// The longest text a match can span, in bytes: `max_len` for a regex, the longest keyword
    /// otherwise. It is how far back the scanner must be able to look for this rule.
    pub fn bound(&self) -> usize {
        match &self.pattern {
            Pattern::Keywords { keywords, .. } => {
                keywords.iter().map(String::len).max().unwrap_or(0)
            }
            Pattern::Regex { max_len, .. } => *max_len,
        }
    }

    /// Tool arguments for a match.
    pub(crate) fn args_template(&self) -> Option<&ArgsTemplate> {
        self.args.as_ref()
    }
}

/// A validated rule and, for a regex, its automata.
pub(crate) struct CompiledRule {
    pub(crate) rule: Rule,
    pub(crate) regex: Option<RegexProgram>,
}

/// Validates and compiles the rule at `index` of the file.
pub(crate) fn compile(index: usize, config: &RuleConfig) -> Result<CompiledRule, RuleError> {
    let fail = |problem| RuleError::rule(RuleLabel::new(index, &config.name), problem);
    if config.name.is_empty() {
        return Err(fail(RuleProblem::EmptyName));
    }
    let mut scope = config.scope.clone();
    scope.sort();
    scope.dedup();
    if scope.is_empty() {
        return Err(fail(RuleProblem::EmptyScope));
    }
    let (pattern, regex) = compile_pattern(config).map_err(fail)?;
    let (action, args) = compile_action(&config.action).map_err(fail)?;
    if let Some(template) = &args {
        check_references(template, regex.as_ref()).map_err(fail)?;
    }
    Ok(CompiledRule {
        rule: Rule {
            name: config.name.clone(),
            scope,
            pattern,
            action,
            args,
        },
        regex,
    })
}

fn compile_pattern(config: &RuleConfig) -> Result<(Pattern, Option<RegexProgram>), RuleProblem> {
    let present: Vec<&str> = [
        ("literal", config.literal.is_some()),
        ("keywords", config.keywords.is_some()),
        ("regex", config.regex.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, present)| present.then_some(key))
    .collect();
    if present.len() != 1 {
        let found = if present.is_empty() {
            "none".to_owned()
        } else {
            present.join(" and ")
        };
        return Err(RuleProblem::PatternChoice { found });
    }
    if let Some(regex) = &config.regex {
        if config.case_insensitive {
            return Err(RuleProblem::MisplacedOption {
                option: "case_insensitive",
                applies_to: "literal and keywords",
                hint: "use (?i) inside the regex",
            });
        }
        if config.whole_word.is_some() {
            return Err(RuleProblem::MisplacedOption {
                option: "whole_word",
                applies_to: "literal and keywords",
                hint: "use (?-u:\\b) inside the regex",
            });
        }
        let max_len = config.max_len.unwrap_or(DEFAULT_MAX_LEN);
        if !(1..=MAX_PATTERN_BOUND).contains(&max_len) {
            return Err(RuleProblem::MaxLenRange {
                value: max_len,
                limit: MAX_PATTERN_BOUND,
            });
        }
        let program = RegexProgram::compile(regex, max_len)?;
        return Ok((
            Pattern::Regex {
                regex: regex.clone(),
                max_len,
            },
            Some(program),
        ));
    }
    if config.max_len.is_some() {
        return Err(RuleProblem::MisplacedOption {
            option: "max_len",
            applies_to: "regex",
            hint: "a literal's bound is its own length",
        });
    }
    let (keywords, whole_word_default) = match (&config.literal, &config.keywords) {
        (Some(literal), _) if literal.is_empty() => return Err(RuleProblem::EmptyLiteral),
        (Some(literal), _) => (vec![literal.clone()], false),
        (None, Some(keywords)) if keywords.is_empty() => return Err(RuleProblem::NoKeywords),
        (None, Some(keywords)) => (keywords.clone(), true),
        (None, None) => {
            return Err(RuleProblem::PatternChoice {
                found: "none".into(),
            });
        }
    };
    if let Some(position) = keywords.iter().position(String::is_empty) {
        return Err(RuleProblem::EmptyKeyword {
            position: position + 1,
        });
    }
    if let Some(len) = keywords
        .iter()
        .map(String::len)
        .find(|&len| len > MAX_PATTERN_BOUND)
    {
        return Err(RuleProblem::LiteralTooLong {
            len,
            limit: MAX_PATTERN_BOUND,
        });
    }
    let pattern = Pattern::Keywords {
        keywords,
        case_insensitive: config.case_insensitive,
        whole_word: config.whole_word.unwrap_or(whole_word_default),
    };
    Ok((pattern, None))
}

fn compile_action(config: &ActionConfig) -> Result<(Action, Option<ArgsTemplate>), RuleProblem> {
    Ok(match config {
        ActionConfig::Tool { tool, .. } if tool.is_empty() => return Err(RuleProblem::EmptyTool),
        ActionConfig::Tool { tool, args } => (
            Action::Tool {
                tool: tool.clone(),
                args: args.clone(),
            },
            Some(ArgsTemplate::parse(args)),
        ),
        ActionConfig::Emit => (Action::Emit, None),
        ActionConfig::Redact { replacement } => (
            Action::Redact {
                replacement: replacement
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REDACTION.to_owned()),
            },
            None,
        ),
        ActionConfig::Stop => (Action::Stop, None),
    })
}

fn check_references(
    template: &ArgsTemplate,
    regex: Option<&RegexProgram>,
) -> Result<(), RuleProblem> {
    for reference in template.references() {
        let Reference::Group(name) = reference else {
            continue;
        };
        match regex {
            Some(program) if program.group_names().any(|group| group == name) => {}
            Some(_) => return Err(RuleProblem::MissingGroup { name: name.clone() }),
            None => return Err(RuleProblem::GroupOnLiteral { name: name.clone() }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuleSet;

    fn compile_text(text: &str) -> Result<CompiledRule, RuleError> {
        let set = RuleSet::from_toml(text)?;
        compile(0, &set.intent[0])
    }

    fn problem(text: &str) -> String {
        match compile_text(text) {
            Ok(_) => panic!("expected an error for {text}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn exactly_one_pattern_kind() {
        assert_eq!(
            problem("[[intent]]\nname = \"x\"\naction = \"emit\"\n"),
            "intent \"x\": exactly one of `literal`, `keywords`, `regex` is required (found none)"
        );
        assert_eq!(
            problem(
                "[[intent]]\nname = \"x\"\nliteral = \"a\"\nregex = \"b\"\naction = \"emit\"\n"
            ),
            "intent \"x\": exactly one of `literal`, `keywords`, `regex` is required (found literal and regex)"
        );
    }

    #[test]
    fn regex_errors_are_one_line_and_name_the_rule() {
        assert_eq!(
            problem("[[intent]]\nname = \"weather\"\nregex = \"(abc\"\naction = \"emit\"\n"),
            "intent \"weather\": regex: unclosed group at byte 0"
        );
        let text = problem("[[intent]]\nname = \"w\"\nregex = '\\bx'\naction = \"emit\"\n");
        assert!(text.contains("(?-u:\\b)"), "{text}");
    }

    #[test]
    fn args_must_reference_existing_groups() {
        assert_eq!(
            problem(
                "[[intent]]\nname = \"x\"\nregex = 'in (?P<city>\\w+)'\naction = { tool = \"w\", args = { city = \"$town\" } }\n"
            ),
            "intent \"x\": args reference $town but the regex has no group named town"
        );
        assert!(
            problem("[[intent]]\nname = \"x\"\nliteral = \"a\"\naction = { tool = \"w\", args = { a = \"${b}\" } }\n")
                .contains("literal and keywords intents have no groups")
        );
        let ok = compile_text(
            "[[intent]]\nname = \"x\"\nliteral = \"a\"\naction = { tool = \"w\", args = { a = \"$0\" } }\n",
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn options_apply_to_their_pattern_kind() {
        // (the rule's fields after `[[intent]]`, what the error must say)
        let cases = [
            (
                "name = \"x\"\nregex = \"a\"\ncase_insensitive = true",
                "use (?i) inside the regex",
            ),
            (
                "name = \"x\"\nregex = \"a\"\nwhole_word = true",
                "(?-u:\\b)",
            ),
            (
                "name = \"x\"\nliteral = \"a\"\nmax_len = 3",
                "`max_len` applies to regex",
            ),
            (
                "name = \"x\"\nregex = \"a\"\nmax_len = 0",
                "max_len must be between 1 and",
            ),
            ("name = \"x\"\nkeywords = []", "at least one"),
            (
                "name = \"x\"\nkeywords = [\"a\", \"\"]",
                "keyword #2 is empty",
            ),
            ("name = \"x\"\nliteral = \"\"", "literal must not be empty"),
            ("name = \"x\"\nscope = []\nliteral = \"a\"", "scope"),
        ];
        for (fields, expected) in cases {
            let message = problem(&format!("[[intent]]\n{fields}\naction = \"emit\"\n"));
            assert!(message.contains(expected), "{fields:?}: {message}");
        }
        assert!(
            problem("[[intent]]\nname = \"\"\nliteral = \"a\"\naction = \"emit\"\n")
                .starts_with("intent #1: name")
        );
        assert!(
            problem("[[intent]]\nname = \"x\"\nliteral = \"a\"\naction = { tool = \"\" }\n")
                .contains("tool name")
        );
    }

    #[test]
    fn defaults() {
        let compiled = compile_text(
            "[[intent]]\nname = \"k\"\nkeywords = [\"hi\", \"hello\"]\naction = \"redact\"\n",
        )
        .unwrap();
        let rule = compiled.rule;
        assert_eq!(
            rule.pattern,
            Pattern::Keywords {
                keywords: vec!["hi".into(), "hello".into()],
                case_insensitive: false,
                whole_word: true
            }
        );
        assert_eq!(
            rule.action,
            Action::Redact {
                replacement: DEFAULT_REDACTION.into()
            }
        );
        assert_eq!(rule.bound(), 5);
        assert!(rule.action.guards_output());
        let literal =
            compile_text("[[intent]]\nname = \"l\"\nliteral = \"x\"\naction = \"emit\"\n")
                .unwrap()
                .rule;
        assert!(matches!(
            literal.pattern,
            Pattern::Keywords {
                whole_word: false,
                ..
            }
        ));
        let regex = compile_text("[[intent]]\nname = \"r\"\nregex = \"x+\"\naction = \"stop\"\n")
            .unwrap()
            .rule;
        assert_eq!(regex.bound(), DEFAULT_MAX_LEN);
    }
}
