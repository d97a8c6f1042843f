//! Rule loading and compilation errors.
//!
//! Every error renders as one line that names the intent and the problem, so the gateway
//! can print it as-is when it refuses to start.

use std::fmt;

/// A rule file could not be loaded or a rule could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The text is not valid TOML.
    #[error("rules: TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What the TOML parser complained about.
        message: String,
    },
    /// The document is valid TOML but not shaped like a rule file.
    #[error("rules: {0}")]
    Layout(String),
    /// One intent is invalid.
    #[error("{rule}: {problem}")]
    Rule {
        /// Which intent.
        rule: RuleLabel,
        /// What is wrong with it.
        problem: RuleProblem,
    },
}

impl RuleError {
    pub(crate) fn rule(rule: RuleLabel, problem: RuleProblem) -> RuleError {
        RuleError::Rule { rule, problem }
    }
}

/// How an error names an intent: by its name, or by its position when it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleLabel {
    /// The intent's `name`.
    Named(String),
    /// 1-based position in the `[[intent]]` list (the intent has no usable name).
    Position(usize),
}

impl RuleLabel {
    /// The label for the intent at `index` (0-based) with this `name`.
    pub(crate) fn new(index: usize, name: &str) -> RuleLabel {
        if name.is_empty() {
            RuleLabel::Position(index + 1)
        } else {
            RuleLabel::Named(name.to_owned())
        }
    }
}

impl fmt::Display for RuleLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleLabel::Named(name) => write!(f, "intent {name:?}"),
            RuleLabel::Position(position) => write!(f, "intent #{position}"),
        }
    }
}

/// What is wrong with one intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// A field is missing, unknown or of the wrong type.
    #[error("{0}")]
    Config(String),
    /// `name` is empty.
    #[error("name must not be empty")]
    EmptyName,
    /// Another intent has the same name.
    #[error("the name is used by another intent")]
    DuplicateName,
    /// Not exactly one of `literal`, `keywords`, `regex`.
    #[error("exactly one of `literal`, `keywords`, `regex` is required (found {found})")]
    PatternChoice {
        /// The pattern fields that were present ("none" when none).
        found: String,
    },
    /// `literal = ""`.
    #[error("literal must not be empty")]
    EmptyLiteral,
    /// `keywords = []`.
    #[error("keywords must list at least one keyword")]
    NoKeywords,
    /// One keyword is `""`.
    #[error("keyword #{position} is empty")]
    EmptyKeyword {
        /// 1-based position in the list.
        position: usize,
    },
    /// A literal or keyword is longer than the look-back window allows.
    #[error("a literal or keyword is {len} bytes long; the limit is {limit}")]
    LiteralTooLong {
        /// Its length in bytes.
        len: usize,
        /// [`crate::MAX_PATTERN_BOUND`].
        limit: usize,
    },
    /// The regex does not parse or does not compile.
    #[error("regex: {0}")]
    Regex(String),
    /// The regex matches the empty string, which would fire everywhere.
    #[error("regex: can match the empty string; an intent must match at least one character")]
    RegexMatchesEmpty,
    /// The regex can never match anything.
    #[error("regex: can never match")]
    RegexNeverMatches,
    /// The regex uses a Unicode word boundary, which a streaming DFA cannot evaluate.
    #[error(
        "regex: Unicode word boundaries (\\b, \\B, \\b{{start}}, ...) are not supported on streamed \
         text; use the ASCII form, e.g. (?-u:\\b)"
    )]
    UnicodeWordBoundary,
    /// A compiled automaton would exceed its memory budget.
    #[error(
        "regex: the compiled automaton exceeds {limit} bytes; simplify the pattern (counted \
         repetitions of large Unicode classes are the usual cause)"
    )]
    RegexTooLarge {
        /// The budget in bytes.
        limit: usize,
    },
    /// `max_len` is outside `1..=MAX_PATTERN_BOUND`.
    #[error("max_len must be between 1 and {limit} (got {value})")]
    MaxLenRange {
        /// The configured value.
        value: usize,
        /// [`crate::MAX_PATTERN_BOUND`].
        limit: usize,
    },
    /// `max_len` is shorter than any match of the regex.
    #[error("max_len {max_len} is shorter than the shortest possible match ({min} bytes)")]
    MaxLenTooShort {
        /// The configured value.
        max_len: usize,
        /// The regex's shortest match in bytes.
        min: usize,
    },
    /// An option that only applies to another pattern kind.
    #[error("`{option}` applies to {applies_to}; {hint}")]
    MisplacedOption {
        /// The option's key.
        option: &'static str,
        /// The pattern kinds it applies to.
        applies_to: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// `scope = []`.
    #[error("scope must name at least one of \"prompt\", \"output\"")]
    EmptyScope,
    /// `action = { tool = "" }`.
    #[error("tool name must not be empty")]
    EmptyTool,
    /// Tool args reference a group the regex does not have.
    #[error("args reference ${name} but the regex has no group named {name}")]
    MissingGroup {
        /// The referenced name.
        name: String,
    },
    /// Tool args reference a group on a literal/keywords intent.
    #[error("args reference ${name} but literal and keywords intents have no groups (only $0)")]
    GroupOnLiteral {
        /// The referenced name.
        name: String,
    },
}

/// Renders an error on one line: multi-line messages (regex syntax errors draw a caret under
/// the pattern) are joined with "; " so that a start-up failure stays a single log line.
pub(crate) fn one_line(error: &dyn fmt::Display) -> String {
    let text = error.to_string();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_named_and_unnamed_rules_on_one_line() {
        let named = RuleError::rule(
            RuleLabel::new(0, "weather"),
            RuleProblem::MissingGroup {
                name: "town".into(),
            },
        );
        assert_eq!(
            named.to_string(),
            "intent \"weather\": args reference $town but the regex has no group named town"
        );
        let unnamed = RuleError::rule(RuleLabel::new(2, ""), RuleProblem::EmptyName);
        assert_eq!(unnamed.to_string(), "intent #3: name must not be empty");
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line(&"a\n  ^\nb"), "a; ^; b");
    }
}
