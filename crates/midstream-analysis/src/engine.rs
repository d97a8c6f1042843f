//! Everything compiled for one scope (prompt or output): the forward scan over its regex rules,
//! the Aho-Corasick automaton over its literal rules, and the guard over its redact/stop rules.

use std::sync::Arc;

use crate::config::Scope;
use crate::error::RuleError;
use crate::forward::ForwardScan;
use crate::guard::GuardAutomaton;
use crate::literal::{LiteralRule, LiteralSet, LiteralSource, literal_regex};
use crate::openings::Openings;
use crate::regex_program::RegexProgram;
use crate::rule::{Pattern, Rule, RuleId};

/// Bytes of context kept beyond the longest rule bound: the look-behind character before a
/// match start and the look-ahead character after its end (a UTF-8 character is 4 bytes).
const CONTEXT_BYTES: usize = 8;

/// One regex rule of the scope.
#[derive(Debug)]
pub(crate) struct RegexSlot {
    pub(crate) id: RuleId,
    pub(crate) program: Arc<RegexProgram>,
    pub(crate) guard: bool,
}

/// The compiled rules of one scope.
#[derive(Debug)]
pub(crate) struct ScopeEngine {
    /// Regex rules; forward-scan pattern `i` is slot `i`.
    pub(crate) regexes: Vec<RegexSlot>,
    pub(crate) forward: Option<ForwardScan>,
    pub(crate) literals: Option<LiteralSet>,
    pub(crate) guard: Option<GuardAutomaton>,
    /// What a match of some rule of the scope can begin with (the scanner jumps over the rest).
    pub(crate) openings: Openings,
    /// Bytes of stream history a scanner keeps: every look-back the rules need, plus text a
    /// guarded scope has not released yet (both at most the longest bound plus context).
    pub(crate) history: usize,
}

impl ScopeEngine {
    /// Compiles the rules of `scope`; `programs[i]` is rule `i`'s regex program, if a regex.
    pub(crate) fn build(
        scope: Scope,
        rules: &[Rule],
        programs: &[Option<Arc<RegexProgram>>],
    ) -> Result<ScopeEngine, RuleError> {
        let scope_error = |what: &str, problem: String| {
            RuleError::Layout(
                format!("the {scope:?} rules' {what} failed to compile: {problem}").to_lowercase(),
            )
        };
        let mut regexes = Vec::new();
        let mut literal_sources = Vec::new();
        let mut guard_patterns = Vec::new();
        let mut guard_bound = 0;
        let mut longest = 0;
        for (index, rule) in rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.applies_to(scope))
        {
            let guard = rule.action.guards_output();
            longest = longest.max(rule.bound());
            if guard {
                guard_bound = guard_bound.max(rule.bound());
            }
            match (&rule.pattern, &programs[index]) {
                (Pattern::Regex { regex, .. }, Some(program)) => {
                    if guard {
                        guard_patterns.push(regex.clone());
                    }
                    regexes.push(RegexSlot {
                        id: RuleId(index),
                        program: Arc::clone(program),
                        guard,
                    });
                }
                (
                    Pattern::Keywords {
                        keywords,
                        case_insensitive,
                        whole_word,
                    },
                    _,
                ) => {
                    if guard {
                        guard_patterns.extend(
                            keywords
                                .iter()
                                .map(|keyword| literal_regex(keyword, *case_insensitive)),
                        );
                    }
                    literal_sources.push(LiteralSource {
                        rule: LiteralRule {
                            id: RuleId(index),
                            whole_word: *whole_word,
                            guard,
                        },
                        keywords,
                        case_insensitive: *case_insensitive,
                    });
                }
                (Pattern::Regex { .. }, None) => {}
            }
        }
        let forward = if regexes.is_empty() {
            None
        } else {
            let patterns: Vec<&str> = regexes.iter().map(|slot| slot.program.pattern()).collect();
            Some(
                ForwardScan::build(&patterns)
                    .map_err(|problem| scope_error("regex scan", problem))?,
            )
        };
        let literals = LiteralSet::build(&literal_sources)
            .map_err(|problem| scope_error("keyword automaton", problem))?;
        let guard = if guard_patterns.is_empty() {
            None
        } else {
            Some(
                GuardAutomaton::build(&guard_patterns, guard_bound)
                    .map_err(|problem| scope_error("redact/stop guard", problem))?,
            )
        };
        let mut openings = Openings::none();
        for slot in &regexes {
            slot.program.add_openings(&mut openings);
        }
        if let Some(set) = &literals {
            set.add_openings(&mut openings);
        }
        Ok(ScopeEngine {
            regexes,
            forward,
            literals,
            guard,
            openings: openings.finish(),
            history: 2 * (longest + CONTEXT_BYTES),
        })
    }

    /// A scope without rules: scanning only counts bytes.
    pub(crate) fn empty() -> ScopeEngine {
        ScopeEngine {
            regexes: Vec::new(),
            forward: None,
            literals: None,
            guard: None,
            openings: Openings::none(),
            history: 2 * CONTEXT_BYTES,
        }
    }

    /// Whether the scope has any rule.
    pub(crate) fn has_rules(&self) -> bool {
        !self.regexes.is_empty() || self.literals.is_some()
    }
}
