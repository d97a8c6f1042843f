//! The scope-wide forward scan: one lazy DFA over every regex rule of the scope, unanchored,
//! stepped once per byte whatever the number of rules. Its match states say which rules have a
//! match ending at the current position; [`crate::regex_program`] takes it from there.
//!
//! The lazy DFA needs a mutable cache per stream. Caches are pooled (at most
//! [`IDLE_CACHE_LIMIT`] idle ones per scope) so that a new stream starts with the states earlier
//! streams already built: after warm-up, scanning ordinary text builds no new state and does not
//! allocate.

use std::sync::{Mutex, PoisonError};

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use crate::error::one_line;

/// How many idle caches a scope keeps for reuse.
pub(crate) const IDLE_CACHE_LIMIT: usize = 64;

/// The compiled scan and its cache pool.
#[derive(Debug)]
pub(crate) struct ForwardScan {
    dfa: DFA,
    idle: Mutex<Vec<Cache>>,
}

impl ForwardScan {
    /// Builds the scan; pattern `i` reports rule slot `i`.
    pub(crate) fn build(patterns: &[&str]) -> Result<ForwardScan, String> {
        // MatchKind::All: a match state lists every pattern with a match ending there. With no
        // minimum clear count the lazy DFA never gives up: when its cache is full it clears it
        // and goes on (we only ever hold one state, the current one, so a clear is harmless).
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .minimum_cache_clear_count(None),
            )
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(patterns)
            .map_err(|error| one_line(&error))?;
        Ok(ForwardScan {
            dfa,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A cache for a new stream, warm if one is idle.
    pub(crate) fn take_cache(&self) -> Cache {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| self.dfa.create_cache())
    }

    /// Gives a stream's cache back for reuse.
    pub(crate) fn return_cache(&self, cache: Cache) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CACHE_LIMIT {
            idle.push(cache);
        }
    }

    /// The state at the start of the text. `None` cannot happen (unanchored starts always exist,
    /// there are no quit bytes and the cache never gives up); callers then skip regex rules.
    pub(crate) fn start(&self, cache: &mut Cache) -> Option<LazyStateID> {
        self.dfa
            .start_state(cache, &start::Config::new().anchored(Anchored::No))
            .ok()
    }

    /// One step. Should the cache ever give up (it is configured not to), the cache is reset
    /// and the scan restarts from the start state rather than panicking: only matches in
    /// progress are lost.
    #[inline]
    pub(crate) fn next(&self, cache: &mut Cache, state: LazyStateID, byte: u8) -> LazyStateID {
        match self.dfa.next_state(cache, state, byte) {
            Ok(next) => next,
            Err(_) => self.restart(cache, state),
        }
    }

    /// The step over the end of the text.
    pub(crate) fn next_eoi(&self, cache: &mut Cache, state: LazyStateID) -> LazyStateID {
        self.dfa
            .next_eoi_state(cache, state)
            .unwrap_or_else(|_| self.restart(cache, state))
    }

    fn restart(&self, cache: &mut Cache, state: LazyStateID) -> LazyStateID {
        cache.reset(&self.dfa);
        self.start(cache).unwrap_or(state)
    }

    /// Appends the slots of every rule with a match ending at `state` (a match state).
    pub(crate) fn matches(&self, cache: &Cache, state: LazyStateID, slots: &mut Vec<usize>) {
        for index in 0..self.dfa.match_len(cache, state) {
            slots.push(self.dfa.match_pattern(cache, state, index).as_usize());
        }
    }
}
