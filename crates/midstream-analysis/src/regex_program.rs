//! The compiled form of one regex rule: what is needed once the scope-wide forward scan has
//! said "a match of this rule ends here".
//!
//! - a reverse anchored DFA finds the leftmost start of a match ending there (within the
//!   rule's bound and after the rule's previous match);
//! - a forward anchored DFA, stepped from that start with each new byte, finds the longest
//!   match (leftmost-longest) and, with [`Liveness`], the first byte after which it is certain;
//! - a PikeVM extracts the named groups of that exact span.
//!
//! All three are shared by every stream: dense DFAs need no per-stream cache, and their size
//! is capped ([`AUTOMATON_SIZE_LIMIT`]) so a pathological pattern is rejected when the rules
//! load instead of eating memory later. The PikeVM's scratch space is kept in a pool between
//! matches (a fresh one is allocated and zeroed in proportion to the pattern's size).

use regex_automata::dfa::{Automaton, StartKind, dense};
use std::panic::{RefUnwindSafe, UnwindSafe};

use regex_automata::nfa::thompson::pikevm::{self, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, Input, MatchKind, PatternID};
use regex_syntax::hir::Hir;

use crate::error::{RuleProblem, one_line};
use crate::liveness::{DenseDfa, Liveness};
use crate::openings::Openings;

/// Memory budget of each dense DFA of one rule (forward and reverse), in bytes.
pub(crate) const AUTOMATON_SIZE_LIMIT: usize = 4 << 20;

/// Builds a PikeVM cache for the pool (the same type regex's own `meta::Regex` pools).
type NewCache = Box<dyn Fn() -> pikevm::Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// One compiled regex rule.
#[derive(Debug)]
pub(crate) struct RegexProgram {
    pattern: String,
    forward: DenseDfa,
    liveness: Liveness,
    reverse: DenseDfa,
    captures: PikeVM,
    /// Scratch space of `captures`, reused across matches and streams.
    capture_caches: Pool<pikevm::Cache, NewCache>,
    /// Named groups: (group index, name), in pattern order.
    group_names: Vec<(usize, String)>,
    max_len: u64,
}

impl RegexProgram {
    /// Parses, validates and compiles `pattern` with a match-length bound of `max_len` bytes.
    pub(crate) fn compile(pattern: &str, max_len: usize) -> Result<RegexProgram, RuleProblem> {
        let hir = parse(pattern)?;
        let properties = hir.properties();
        if properties.look_set().contains_word_unicode() {
            return Err(RuleProblem::UnicodeWordBoundary);
        }
        match properties.minimum_len() {
            None => return Err(RuleProblem::RegexNeverMatches),
            Some(0) => return Err(RuleProblem::RegexMatchesEmpty),
            Some(min) if min > max_len => return Err(RuleProblem::MaxLenTooShort { max_len, min }),
            Some(_) => {}
        }
        let forward = build_dense(pattern, false)?;
        let reverse = build_dense(pattern, true)?;
        let captures = PikeVM::builder()
            .configure(PikeVM::config().match_kind(MatchKind::All))
            .build(pattern)
            .map_err(|error| RuleProblem::Regex(one_line(&error)))?;
        let group_names = captures
            .get_nfa()
            .group_info()
            .pattern_names(PatternID::ZERO)
            .enumerate()
            .filter_map(|(index, name)| name.map(|name| (index, name.to_owned())))
            .collect();
        let vm = captures.clone();
        let capture_caches = Pool::new(Box::new(move || vm.create_cache()) as NewCache);
        Ok(RegexProgram {
            pattern: pattern.to_owned(),
            liveness: Liveness::analyze(&forward),
            forward,
            reverse,
            captures,
            capture_caches,
            group_names,
            max_len: max_len as u64,
        })
    }

    /// The source pattern (the scope-wide forward scan is built from it).
    pub(crate) fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The longest match in bytes.
    pub(crate) fn max_len(&self) -> u64 {
        self.max_len
    }

    /// The names of the pattern's named groups, in pattern order.
    pub(crate) fn group_names(&self) -> impl Iterator<Item = &str> {
        self.group_names.iter().map(|(_, name)| name.as_str())
    }

    /// The anchored start state for a match starting right after `look_behind` (`None`: at the
    /// start of the text).
    pub(crate) fn start(&self, look_behind: Option<u8>) -> Option<StateID> {
        let config = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(look_behind);
        self.forward.start_state(&config).ok()
    }

    /// Steps the anchored forward DFA.
    pub(crate) fn next(&self, state: StateID, byte: u8) -> StateID {
        self.forward.next_state(state, byte)
    }

    /// Steps the anchored forward DFA over the end of the text.
    pub(crate) fn next_eoi(&self, state: StateID) -> StateID {
        self.forward.next_eoi_state(state)
    }

    /// Whether `state` (reached after feeding the byte at position `p`) says a match ends at `p`.
    pub(crate) fn is_match(&self, state: StateID) -> bool {
        self.forward.is_match_state(state)
    }

    /// Adds what a match of this rule can begin with.
    pub(crate) fn add_openings(&self, openings: &mut Openings) {
        openings.add_automaton(&self.forward, &self.liveness);
    }

    /// Whether a longer match may still follow `state`.
    pub(crate) fn can_extend(&self, state: StateID) -> bool {
        self.liveness.can_match_later(state)
    }

    /// The smallest `start >= low` such that `haystack[start..end]` matches, where `haystack`
    /// extends past `end` by the look-ahead byte if the text goes on, and by one byte before
    /// `low` for look-behind.
    pub(crate) fn leftmost_start(&self, haystack: &[u8], low: usize, end: usize) -> Option<usize> {
        let input = Input::new(haystack).span(low..end).anchored(Anchored::Yes);
        // MatchKind::All makes the reverse search run until the DFA dies, so it reports the
        // furthest start; errors cannot happen (no quit bytes, no cache) and mean "no match".
        self.reverse
            .try_search_rev(&input)
            .ok()
            .flatten()
            .map(|half| half.offset())
    }

    /// The named groups of the match `haystack[start..end]` that took part in it, in pattern
    /// order, as (name, text).
    pub(crate) fn captures(
        &self,
        haystack: &[u8],
        start: usize,
        end: usize,
    ) -> Vec<(String, String)> {
        let mut cache = self.capture_caches.get();
        let mut captures = self.captures.create_captures();
        let input = Input::new(haystack)
            .span(start..end)
            .anchored(Anchored::Yes);
        // With MatchKind::All the PikeVM reports the longest match from `start` within the
        // span, which is exactly the detected match.
        self.captures.search(&mut cache, &input, &mut captures);
        if captures.get_match().map(|found| found.range()) != Some(start..end) {
            return Vec::new();
        }
        self.group_names
            .iter()
            .filter_map(|(index, name)| {
                let span = captures.get_group(*index)?;
                Some((
                    name.clone(),
                    String::from_utf8_lossy(&haystack[span.range()]).into_owned(),
                ))
            })
            .collect()
    }
}

/// Parses with the same syntax options regex-automata uses by default, so its properties
/// (minimum length, look-around) describe what is compiled.
fn parse(pattern: &str) -> Result<Hir, RuleProblem> {
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|error| {
            RuleProblem::Regex(match &error {
                regex_syntax::Error::Parse(parse) => {
                    format!("{} at byte {}", parse.kind(), parse.span().start.offset)
                }
                regex_syntax::Error::Translate(translate) => {
                    format!(
                        "{} at byte {}",
                        translate.kind(),
                        translate.span().start.offset
                    )
                }
                other => one_line(other),
            })
        })
}

fn build_dense(pattern: &str, reverse: bool) -> Result<DenseDfa, RuleProblem> {
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .dfa_size_limit(Some(AUTOMATON_SIZE_LIMIT))
                .determinize_size_limit(Some(AUTOMATON_SIZE_LIMIT)),
        )
        .thompson(
            thompson::Config::new()
                .reverse(reverse)
                .which_captures(WhichCaptures::None),
        )
        .build(pattern)
        .map_err(|error| {
            if error.is_size_limit_exceeded() {
                RuleProblem::RegexTooLarge {
                    limit: AUTOMATON_SIZE_LIMIT,
                }
            } else {
                RuleProblem::Regex(one_line(&error))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_cannot_stream() {
        assert_eq!(
            RegexProgram::compile(r"\bword\b", 64).unwrap_err(),
            RuleProblem::UnicodeWordBoundary
        );
        assert!(RegexProgram::compile(r"(?-u:\b)word(?-u:\b)", 64).is_ok());
        assert_eq!(
            RegexProgram::compile("a*", 64).unwrap_err(),
            RuleProblem::RegexMatchesEmpty
        );
        assert_eq!(
            RegexProgram::compile("[a&&b]", 64).unwrap_err(),
            RuleProblem::RegexNeverMatches
        );
        assert_eq!(
            RegexProgram::compile("abcdef", 3).unwrap_err(),
            RuleProblem::MaxLenTooShort { max_len: 3, min: 6 }
        );
        let RuleProblem::Regex(message) = RegexProgram::compile("(abc", 64).unwrap_err() else {
            panic!("syntax error expected")
        };
        assert_eq!(message, "unclosed group at byte 0");
    }

    #[test]
    fn finds_leftmost_start_within_bounds_and_groups() {
        let program = RegexProgram::compile(r"(?P<word>[a-z]+)!", 64).unwrap();
        let haystack = b"xx abc! yy";
        assert_eq!(program.leftmost_start(haystack, 0, 7), Some(3));
        assert_eq!(program.leftmost_start(haystack, 5, 7), Some(5));
        assert_eq!(program.leftmost_start(haystack, 0, 6), None);
        assert_eq!(
            program.captures(haystack, 4, 7),
            vec![("word".to_owned(), "bc".to_owned())]
        );
        assert_eq!(program.group_names().collect::<Vec<_>>(), ["word"]);
    }

    #[test]
    fn too_large_patterns_are_rejected_not_built() {
        let problem = RegexProgram::compile(r"\w{500}", 4096).unwrap_err();
        assert_eq!(
            problem,
            RuleProblem::RegexTooLarge {
                limit: AUTOMATON_SIZE_LIMIT
            }
        );
    }
}
