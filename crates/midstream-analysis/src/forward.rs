//! The scope-wide forward scan: one lazy DFA over every regex rule of the scope, unanchored,
//! stepped once per byte whatever the number of rules. Its match states say which rules have a
//! match ending at the current position; [`crate::regex_program`] takes it from there.
//!
//! The lazy DFA needs a mutable cache per stream while it scans. Caches are pooled (at most
//! [`IDLE_CACHE_LIMIT`] idle ones per scope) so that a stream starts with the states earlier
//! streams already built: after warm-up, scanning ordinary text builds no new state and does not
//! allocate. A stream holds a cache only while it scans a piece or a match is in progress (see
//! the scanner's `ForwardCursor`), so the few caches in use stay in the CPU's caches.

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
    /// Idle caches, each with the clear count at which its start states were last tagged.
    /// Boxed: a stream takes and returns one per piece, and a `Cache` is a few hundred bytes.
    idle: Mutex<Vec<(Box<Cache>, usize)>>,
}

impl ForwardScan {
    /// Builds the scan; pattern `i` reports rule slot `i`.
    pub(crate) fn build(patterns: &[&str]) -> Result<ForwardScan, String> {
        // MatchKind::All: a match state lists every pattern with a match ending there. With no
        // minimum clear count the lazy DFA never gives up: when its cache is full it clears it
        // and goes on (we only ever hold one state, the current one, so a clear is harmless).
        // Start states are tagged, so the scanner sees for free when no match is in progress
        // (and jumps ahead, see `crate::openings`).
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .minimum_cache_clear_count(None)
                    .specialize_start_states(true),
            )
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(patterns)
            .map_err(|error| one_line(&error))?;
        Ok(ForwardScan {
            dfa,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A cache for a new stream, warm if one is idle, with the clear count at which its start
    /// states were last tagged.
    pub(crate) fn take_cache(&self) -> (Box<Cache>, usize) {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| {
            let mut cache = Box::new(self.dfa.create_cache());
            self.tag_start_states(&mut cache);
            let tagged_at = cache.clear_count();
            (cache, tagged_at)
        })
    }

    /// Tags the start states again if the cache was cleared since `tagged_at` (see
    /// [`ForwardScan::tag_start_states`]).
    pub(crate) fn retag_after_clear(&self, cache: &mut Cache, tagged_at: &mut usize) {
        if cache.clear_count() != *tagged_at {
            self.tag_start_states(cache);
            *tagged_at = cache.clear_count();
        }
    }

    /// Builds the start state of every look-behind before anything else, so that each is built
    /// as a start state and tagged. A state first reached by stepping is not tagged, and a start
    /// state equal to it would then not be either: the scan would be right, just never jump.
    /// Done on a new cache and again after the cache was cleared (by then, states reached
    /// since the clear may already exist untagged; only jumps are lost until the next clear).
    fn tag_start_states(&self, cache: &mut Cache) {
        for look_behind in std::iter::once(None).chain((0..=255u8).map(Some)) {
            // Cannot fail (see `start`); a failure only means fewer jumps.
            let _ = self.dfa.start_state(cache, &unanchored_start(look_behind));
        }
    }

    /// Gives a stream's cache back for reuse.
    pub(crate) fn return_cache(&self, cache: Box<Cache>, tagged_at: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CACHE_LIMIT {
            idle.push((cache, tagged_at));
        }
    }

    /// The state after `look_behind` (`None`: at the start of the text) when no match is in
    /// progress. `None` cannot happen (unanchored starts always exist, there are no quit bytes
    /// and the cache never gives up); callers then skip regex rules.
    pub(crate) fn start(&self, cache: &mut Cache, look_behind: Option<u8>) -> Option<LazyStateID> {
        self.dfa
            .start_state(cache, &unanchored_start(look_behind))
            .ok()
    }

    /// The state at a position right after `look_behind`, when no match is in progress there.
    #[inline]
    pub(crate) fn start_after(
        &self,
        cache: &mut Cache,
        look_behind: u8,
        current: LazyStateID,
    ) -> LazyStateID {
        self.dfa
            .start_state(cache, &unanchored_start(Some(look_behind)))
            .unwrap_or_else(|_| self.restart(cache, current))
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
        self.start(cache, None).unwrap_or(state)
    }

    /// Appends the slots of every rule with a match ending at `state` (a match state).
    pub(crate) fn matches(&self, cache: &Cache, state: LazyStateID, slots: &mut Vec<usize>) {
        for index in 0..self.dfa.match_len(cache, state) {
            slots.push(self.dfa.match_pattern(cache, state, index).as_usize());
        }
    }
}

/// The scan's start configuration after `look_behind` (`None`: the start of the text).
fn unanchored_start(look_behind: Option<u8>) -> start::Config {
    start::Config::new()
        .anchored(Anchored::No)
        .look_behind(look_behind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of `a`/`b` from a fixed xorshift sequence.
    fn ab_text(len: usize) -> Vec<u8> {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if seed & 1 == 0 { b'a' } else { b'b' }
            })
            .collect()
    }

    #[test]
    fn start_states_are_tagged_on_a_new_cache_and_again_after_a_clear() {
        // The unanchored scan of this pattern needs 2^16 states: random text fills the cache.
        let scan = ForwardScan::build(&["a[ab]{16}c"]).unwrap();
        let (mut cache, mut tagged_at) = scan.take_cache();
        let mut state = scan.start(&mut cache, None).unwrap();
        assert!(state.is_start());
        assert!(scan.start_after(&mut cache, b' ', state).is_start());
        for &byte in &ab_text(1 << 20) {
            state = scan.next(&mut cache, state, byte);
            if cache.clear_count() > 0 {
                break;
            }
        }
        assert!(
            cache.clear_count() > 0,
            "the cache should have been cleared"
        );
        scan.retag_after_clear(&mut cache, &mut tagged_at);
        assert_eq!(tagged_at, cache.clear_count());
        // Not reached by stepping since the clear (only `a`/`b` were), so tagged again.
        assert!(scan.start_after(&mut cache, b' ', state).is_start());
        assert!(scan.start_after(&mut cache, b'x', state).is_start());
    }
}
