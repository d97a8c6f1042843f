//! Holding back output that a redact or stop rule may still claim, and releasing the rest.
//!
//! One anchored DFA recognises every guarded pattern of the scope. A *run* is that DFA started
//! at one stream position; a run is kept while a guarded match starting there is still
//! possible ([`Liveness`]) and not longer than the longest guarded bound. Together with the
//! guarded matches already found but not final, the earliest run start is the *frontier*:
//! nothing before it can become part of a guarded match any more, so it is released at once,
//! with settled redactions applied. A new run is only started on a byte that can begin a
//! guarded match (a 256-entry table), so text without such bytes never creates a run.

use regex_automata::MatchKind;
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::primitives::StateID;

use crate::error::one_line;
use crate::liveness::{DenseDfa, Liveness, start_configs};
use crate::openings::FirstPairs;
use crate::rule::RuleId;
use crate::window::Window;

/// Memory budget of a scope's guard automaton, in bytes.
pub(crate) const GUARD_SIZE_LIMIT: usize = 16 << 20;

/// The scope's guarded patterns, compiled.
#[derive(Debug)]
pub(crate) struct GuardAutomaton {
    dfa: DenseDfa,
    liveness: Liveness,
    /// Start state per look-behind: index 256 is the start of the text, else the byte.
    starts: Vec<StateID>,
    /// Bytes that can begin a guarded match after some look-behind.
    first_byte: [bool; 256],
    /// The byte pairs a guarded match can begin with, after some look-behind. Most bytes that
    /// can begin a match are common letters whose run dies on the next byte; this table lets
    /// those die without DFA work.
    first_pair: FirstPairs,
    /// Longest guarded match, in bytes.
    bound: u64,
}

impl GuardAutomaton {
    /// Compiles the guarded patterns (regex syntax); `bound` is the longest of their bounds.
    pub(crate) fn build(patterns: &[String], bound: usize) -> Result<GuardAutomaton, String> {
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(GUARD_SIZE_LIMIT))
                    .determinize_size_limit(Some(GUARD_SIZE_LIMIT)),
            )
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(patterns)
            .map_err(|error| one_line(&error))?;
        let liveness = Liveness::analyze(&dfa);
        let mut starts = Vec::with_capacity(257);
        for config in start_configs() {
            starts.push(dfa.start_state(&config).map_err(|error| one_line(&error))?);
        }
        // `start_configs` yields the start of text first, then bytes 0..=255.
        starts.rotate_left(1);
        let mut first_byte = [false; 256];
        for (byte, can_start) in (0..=255u8).zip(first_byte.iter_mut()) {
            *can_start = starts
                .iter()
                .any(|&start| liveness.can_match_later(dfa.next_state(start, byte)));
        }
        let mut first_pair = FirstPairs::none();
        first_pair.add_automaton(&dfa, &liveness);
        Ok(GuardAutomaton {
            dfa,
            liveness,
            starts,
            first_byte,
            first_pair,
            bound: bound as u64,
        })
    }

    /// Whether `byte` may begin a guarded match.
    #[inline]
    pub(crate) fn may_start(&self, byte: u8) -> bool {
        self.first_byte[usize::from(byte)]
    }

    fn start(&self, look_behind: Option<u8>) -> StateID {
        self.starts[look_behind.map_or(256, usize::from)]
    }

    /// Whether a guarded match can begin with `first` followed by `second`.
    #[inline]
    pub(crate) fn may_start_pair(&self, first: u8, second: u8) -> bool {
        self.first_pair.contains(first, second)
    }

    /// The state of a run after one more byte, or `None` when no guarded match can come of it.
    fn advance(&self, state: StateID, byte: u8) -> Option<StateID> {
        liveness_step(&self.dfa, &self.liveness, state, byte)
    }
}

fn liveness_step(dfa: &DenseDfa, liveness: &Liveness, state: StateID, byte: u8) -> Option<StateID> {
    let next = dfa.next_state(state, byte);
    liveness.can_match_later(next).then_some(next)
}

/// A position from which a guarded match may still start.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: u64,
    state: StateID,
}

/// A settled redaction waiting to be applied when the frontier passes its start.
#[derive(Debug, Clone, Copy)]
struct Redaction {
    start: u64,
    end: u64,
    rule: RuleId,
}

/// A byte that may begin a guarded match, waiting for the next byte to tell (see
/// [`GuardAutomaton::first_pair`]).
#[derive(Debug, Clone, Copy)]
struct Tentative {
    start: u64,
    byte: u8,
    /// The run's state after `byte`.
    state: StateID,
}

/// Per-stream guard state.
#[derive(Debug, Default)]
pub(crate) struct GuardState {
    tentative: Option<Tentative>,
    runs: Vec<Run>,
    redactions: Vec<Redaction>,
    released_to: u64,
}

impl GuardState {
    /// Whether any run is alive or tentative (the scanner then steps the guard on every byte).
    #[inline]
    pub(crate) fn has_runs(&self) -> bool {
        self.tentative.is_some() || !self.runs.is_empty()
    }

    /// The stream position up to which text has been released (or redacted).
    pub(crate) fn released_to(&self) -> u64 {
        self.released_to
    }

    /// The earliest start of a live run, if any.
    pub(crate) fn earliest_run(&self) -> Option<u64> {
        self.runs
            .iter()
            .map(|run| run.start)
            .chain(self.tentative.map(|tentative| tentative.start))
            .min()
    }

    /// Advances every run over the byte at `position`, drops the ones with no future, and
    /// starts a run at `position` if the byte can begin a guarded match.
    #[inline]
    pub(crate) fn step(
        &mut self,
        automaton: &GuardAutomaton,
        position: u64,
        byte: u8,
        look_behind: Option<u8>,
    ) {
        if !self.runs.is_empty() {
            let mut kept = 0;
            for index in 0..self.runs.len() {
                let run = self.runs[index];
                if let Some(state) = automaton.advance(run.state, byte)
                    && position < run.start + automaton.bound
                {
                    self.runs[kept] = Run {
                        start: run.start,
                        state,
                    };
                    kept += 1;
                }
            }
            self.runs.truncate(kept);
        }
        if let Some(tentative) = self.tentative.take()
            && automaton.may_start_pair(tentative.byte, byte)
            && let Some(state) = automaton.advance(tentative.state, byte)
            && position < tentative.start + automaton.bound
        {
            self.runs.push(Run {
                start: tentative.start,
                state,
            });
        }
        // The byte filter is cheap; the DFA step also honours look-behind, so a pattern that
        // begins with a word boundary holds nothing back in the middle of a word.
        if automaton.may_start(byte)
            && let Some(state) = automaton.advance(automaton.start(look_behind), byte)
        {
            self.tentative = Some(Tentative {
                start: position,
                byte,
                state,
            });
        }
    }

    /// Records a settled redaction; they are applied in order of start, then rule.
    pub(crate) fn redact(&mut self, start: u64, end: u64, rule: RuleId) {
        let at = self
            .redactions
            .partition_point(|queued| (queued.start, queued.rule) <= (start, rule));
        self.redactions.insert(at, Redaction { start, end, rule });
    }

    /// Appends to `out` the text before `frontier`, every redaction starting before it applied.
    /// `replacement` gives a redact rule's replacement text.
    ///
    /// Redactions are applied in order of start: one that starts inside text already replaced
    /// only replaces what is left of it, so overlapping matches never leak their tail.
    pub(crate) fn release<'r>(
        &mut self,
        frontier: u64,
        window: &Window,
        replacement: impl Fn(RuleId) -> &'r str,
        out: &mut String,
    ) {
        if !self.redactions.is_empty() {
            let applied = self
                .redactions
                .partition_point(|queued| queued.start < frontier);
            for redaction in self.redactions.drain(..applied) {
                if redaction.start > self.released_to {
                    push_text(out, window.slice(self.released_to, redaction.start));
                    self.released_to = redaction.start;
                }
                if redaction.end > self.released_to {
                    out.push_str(replacement(redaction.rule));
                    self.released_to = redaction.end;
                }
            }
        }
        if frontier > self.released_to {
            push_text(out, window.slice(self.released_to, frontier));
            self.released_to = frontier;
        }
    }

    /// Forgets every run and queued redaction (the stream ended).
    pub(crate) fn close(&mut self) {
        self.tentative = None;
        self.runs.clear();
        self.redactions.clear();
    }
}

/// Appends stream bytes as text. Cut points are always settled UTF-8 positions, so decoding a
/// piece on its own gives the same text as decoding the whole stream; invalid bytes become
/// U+FFFD. Valid text is copied without allocating.
fn push_text(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_table_and_runs_follow_the_patterns() {
        let automaton = GuardAutomaton::build(
            &["sk-[a-z]{3,}".to_owned(), "(?-u:\\b)no(?-u:\\b)".to_owned()],
            16,
        )
        .unwrap();
        assert!(automaton.may_start(b's'));
        assert!(automaton.may_start(b'n'));
        assert!(!automaton.may_start(b'k'));
        let mut state = GuardState::default();
        let text = b"xsk-abc no";
        for (position, &byte) in text.iter().enumerate() {
            let look_behind = position.checked_sub(1).map(|before| text[before]);
            state.step(&automaton, position as u64, byte, look_behind);
        }
        // "sk-abc" was complete at the space (which no guarded match can continue); "no" may
        // still be confirmed by the end of the text.
        let starts: Vec<u64> = state.runs.iter().map(|run| run.start).collect();
        assert_eq!(starts, vec![8]);
    }

    #[test]
    fn runs_expire_at_the_bound() {
        let automaton = GuardAutomaton::build(&["a+".to_owned()], 3).unwrap();
        let mut state = GuardState::default();
        for position in 0..10u64 {
            state.step(&automaton, position, b'a', Some(b'a'));
            assert!(state.runs.iter().all(|run| position < run.start + 3));
        }
        assert_eq!(state.earliest_run(), Some(7));
    }

    #[test]
    fn release_applies_overlapping_redactions_in_order() {
        let mut window = Window::new(64, 64);
        window.push(b"0123456789abcdef", 0);
        let mut state = GuardState::default();
        state.redact(6, 12, RuleId(1));
        state.redact(2, 8, RuleId(0));
        let mut out = String::new();
        state.release(
            4,
            &window,
            |rule| if rule == RuleId(0) { "<A>" } else { "<B>" },
            &mut out,
        );
        assert_eq!(out, "01<A>");
        assert_eq!(state.released_to(), 8);
        state.release(
            14,
            &window,
            |rule| if rule == RuleId(0) { "<A>" } else { "<B>" },
            &mut out,
        );
        assert_eq!(out, "01<A><B>cd");
    }
}
