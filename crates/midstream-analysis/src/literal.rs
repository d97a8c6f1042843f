//! The literal and keyword rules of one scope, as a single Aho-Corasick DFA.
//!
//! The DFA is stepped one byte at a time with `Automaton::next_state` (no rescans); standard
//! match semantics make every state list all keywords ending there, overlapping or not. Case
//! folding is ASCII-only and automaton-wide: when some rules fold case and others do not, the
//! automaton folds and candidates of exact rules are compared byte for byte.

use aho_corasick::automaton::Automaton;
use aho_corasick::automaton::StateID;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};

use crate::error::one_line;
use crate::openings::Openings;
use crate::rule::RuleId;

/// One literal/keywords rule of the scope.
#[derive(Debug, Clone)]
pub(crate) struct LiteralRule {
    /// The rule.
    pub(crate) id: RuleId,
    /// Both neighbours of a match must be non-word characters.
    pub(crate) whole_word: bool,
    /// Redact or stop.
    pub(crate) guard: bool,
}

#[derive(Debug)]
struct Keyword {
    slot: usize,
    bytes: Box<[u8]>,
    /// The automaton folds case but this keyword's rule does not.
    exact: bool,
}

/// The scope's literal rules and their automaton.
#[derive(Debug)]
pub(crate) struct LiteralSet {
    dfa: DFA,
    start: StateID,
    /// The automaton folds ASCII case (some rule asks for it).
    fold: bool,
    keywords: Vec<Keyword>,
    rules: Vec<LiteralRule>,
}

/// A literal rule as [`LiteralSet::build`] needs it.
pub(crate) struct LiteralSource<'a> {
    pub(crate) rule: LiteralRule,
    pub(crate) keywords: &'a [String],
    pub(crate) case_insensitive: bool,
}

impl LiteralSet {
    /// Builds the automaton; `None` when there are no literal rules.
    pub(crate) fn build(sources: &[LiteralSource<'_>]) -> Result<Option<LiteralSet>, String> {
        if sources.is_empty() {
            return Ok(None);
        }
        let fold = sources.iter().any(|source| source.case_insensitive);
        let mut keywords = Vec::new();
        for (slot, source) in sources.iter().enumerate() {
            for keyword in source.keywords {
                keywords.push(Keyword {
                    slot,
                    bytes: keyword.as_bytes().into(),
                    exact: fold && !source.case_insensitive,
                });
            }
        }
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(fold)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(keywords.iter().map(|keyword| &keyword.bytes))
            .map_err(|error| one_line(&error))?;
        let start = dfa
            .start_state(Anchored::No)
            .map_err(|error| one_line(&error))?;
        let rules = sources.iter().map(|source| source.rule.clone()).collect();
        Ok(Some(LiteralSet {
            dfa,
            start,
            fold,
            keywords,
            rules,
        }))
    }

    /// The rules, indexed by slot.
    pub(crate) fn rules(&self) -> &[LiteralRule] {
        &self.rules
    }

    /// Adds what a keyword can begin with, as the automaton sees them.
    pub(crate) fn add_openings(&self, openings: &mut Openings) {
        for keyword in &self.keywords {
            openings.add_keyword(&keyword.bytes, self.fold);
        }
    }

    /// The state before any byte (the automaton returns to it whenever no keyword is begun).
    pub(crate) fn start(&self) -> StateID {
        self.start
    }

    /// One step.
    #[inline]
    pub(crate) fn next(&self, state: StateID, byte: u8) -> StateID {
        self.dfa.next_state(Anchored::No, state, byte)
    }

    /// Whether some keyword ends at `state`.
    #[inline]
    pub(crate) fn is_match(&self, state: StateID) -> bool {
        self.dfa.is_special(state) && self.dfa.is_match(state)
    }

    /// Appends (slot, keyword length) for every keyword ending at `state` whose text matches
    /// `text_before_end` (the stream up to the end of the match) with the rule's case rule.
    pub(crate) fn candidates(
        &self,
        state: StateID,
        text_before_end: &[u8],
        found: &mut Vec<(usize, usize)>,
    ) {
        for index in 0..self.dfa.match_len(state) {
            let Some(keyword) = self
                .keywords
                .get(self.dfa.match_pattern(state, index).as_usize())
            else {
                continue;
            };
            let len = keyword.bytes.len();
            if keyword.exact && !text_before_end.ends_with(&keyword.bytes) {
                continue;
            }
            found.push((keyword.slot, len));
        }
    }
}

/// A regex matching exactly what a literal rule matches (used by the output guard): the text
/// escaped, with ASCII letters as `[xX]` when folding case.
pub(crate) fn literal_regex(keyword: &str, case_insensitive: bool) -> String {
    let mut regex = String::with_capacity(keyword.len() * 2);
    for c in keyword.chars() {
        if case_insensitive && c.is_ascii_alphabetic() {
            regex.push('[');
            regex.push(c.to_ascii_lowercase());
            regex.push(c.to_ascii_uppercase());
            regex.push(']');
        } else {
            regex_syntax::escape_into(c.encode_utf8(&mut [0; 4]), &mut regex);
        }
    }
    regex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(
        slot: usize,
        keywords: &'a [String],
        case_insensitive: bool,
    ) -> LiteralSource<'a> {
        LiteralSource {
            rule: LiteralRule {
                id: RuleId(slot),
                whole_word: false,
                guard: false,
            },
            keywords,
            case_insensitive,
        }
    }

    fn walk(set: &LiteralSet, text: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut state = set.start();
        let mut found = Vec::new();
        let mut all = Vec::new();
        for (index, &byte) in text.iter().enumerate() {
            state = set.next(state, byte);
            if set.is_match(state) {
                found.clear();
                set.candidates(state, &text[..=index], &mut found);
                found.sort_unstable();
                all.extend(found.iter().map(|&(slot, len)| (index + 1, slot, len)));
            }
        }
        all
    }

    #[test]
    fn reports_overlapping_keywords_and_checks_case_per_rule() {
        let exact = vec!["Hello".to_owned(), "lo w".to_owned()];
        let folded = vec!["hello world".to_owned()];
        let set = LiteralSet::build(&[source(0, &exact, false), source(1, &folded, true)])
            .unwrap()
            .unwrap();
        assert_eq!(walk(&set, b"Hello World"), vec![(5, 0, 5), (11, 1, 11)]);
        assert_eq!(walk(&set, b"hello lo world"), vec![(10, 0, 4)]);
        assert_eq!(walk(&set, b"HELLO WORLD"), vec![(11, 1, 11)]);
    }

    #[test]
    fn literal_regex_matches_the_literal_only() {
        assert_eq!(literal_regex("a.b", false), r"a\.b");
        assert_eq!(literal_regex("Hé!", true), "[hH]é!");
    }
}
