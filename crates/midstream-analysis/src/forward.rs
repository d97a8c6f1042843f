//! The scope-wide forward scan: one lazy DFA over every regex rule of the scope, unanchored,
//! stepped once per byte whatever the number of rules. Its match states say which rules have a
//! match ending at the current position; [`crate::regex_program`] takes it from there.
//!
//! The lazy DFA needs a mutable cache per stream while it scans. Caches are pooled (at most
//! [`IDLE_CACHE_LIMIT`] idle ones per scope) so that a stream starts with the states earlier
//! streams already built: after warm-up, scanning ordinary text builds no new state and does not
//! allocate. A stream holds a cache only while it scans a piece or a match is in progress (see
//! the scanner's `ForwardCursor`), so the few caches in use stay in the CPU's caches.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use crate::error::one_line;

/// How many idle caches a scope keeps for reuse.
pub(crate) const IDLE_CACHE_LIMIT: usize = 64;

/// How many idle caches a thread keeps, whatever their scan.
const THREAD_CACHE_LIMIT: usize = 8;

thread_local! {
    /// Caches given back on this thread, the most recent last. A stream takes a cache for a piece
    /// and gives it back at the end of that piece, on the same thread: a worker scanning piece
    /// after piece reuses one warm cache and never touches the shared pool's lock (two locks per
    /// piece were most of what giving caches back cost). Beyond the limit the oldest goes to its
    /// scan's shared pool, or is dropped if that scan is gone.
    static THREAD_CACHES: RefCell<Vec<IdleCache>> = const { RefCell::new(Vec::new()) };
}

/// Idle caches shared by every thread.
type SharedPool = Mutex<Vec<IdleCache>>;

/// An idle cache: boxed (it moves at every piece, and a `Cache` is a few hundred bytes), with
/// the clear count at which its start states were last tagged and the shared pool of its scan
/// (which also tells whose it is: the pool's memory, held by this `Weak`, is never reused).
#[derive(Debug)]
struct IdleCache {
    home: Weak<SharedPool>,
    cache: Box<Cache>,
    tagged_at: usize,
}

impl IdleCache {
    fn belongs_to(&self, pool: &Arc<SharedPool>) -> bool {
        std::ptr::eq(self.home.as_ptr(), Arc::as_ptr(pool))
    }

    /// Back to its scan's shared pool (bounded), or dropped if the scan is gone.
    fn share(self) {
        if let Some(pool) = self.home.upgrade() {
            let mut shared = pool.lock().unwrap_or_else(PoisonError::into_inner);
            if shared.len() < IDLE_CACHE_LIMIT {
                shared.push(self);
            }
        }
    }
}

/// The compiled scan and its cache pool.
#[derive(Debug)]
pub(crate) struct ForwardScan {
    dfa: DFA,
    /// Caches shared by every thread: what threads keep beyond their own few, for threads that
    /// have none of this scan's yet.
    idle: Arc<SharedPool>,
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
            idle: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// A cache for a new stream, warm if one is idle, with the clear count at which its start
    /// states were last tagged.
    pub(crate) fn take_cache(&self) -> (Box<Cache>, usize) {
        let own = with_thread_caches(|caches| {
            let at = caches
                .iter()
                .rposition(|idle| idle.belongs_to(&self.idle))?;
            Some(caches.remove(at))
        })
        .flatten();
        let reused = own.or_else(|| {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
        });
        match reused {
            Some(idle) => (idle.cache, idle.tagged_at),
            None => {
                let mut cache = Box::new(self.dfa.create_cache());
                self.tag_start_states(&mut cache);
                let tagged_at = cache.clear_count();
                (cache, tagged_at)
            }
        }
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

    /// Gives a stream's cache back for reuse: to this thread's caches, whose oldest moves to
    /// its scan's shared pool when there are too many.
    pub(crate) fn return_cache(&self, cache: Box<Cache>, tagged_at: usize) {
        let mut returned = Some(IdleCache {
            home: Arc::downgrade(&self.idle),
            cache,
            tagged_at,
        });
        let pushed_out = with_thread_caches(|caches| {
            caches.extend(returned.take());
            (caches.len() > THREAD_CACHE_LIMIT).then(|| caches.remove(0))
        })
        .flatten();
        // `returned` is still here if the thread's caches are gone (it is being torn down).
        if let Some(idle) = returned.or(pushed_out) {
            idle.share();
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

/// Runs `f` on this thread's idle caches; `None` while the thread is being torn down.
fn with_thread_caches<T>(f: impl FnOnce(&mut Vec<IdleCache>) -> T) -> Option<T> {
    THREAD_CACHES
        .try_with(|caches| {
            caches
                .try_borrow_mut()
                .ok()
                .map(|mut caches| f(&mut caches))
        })
        .ok()
        .flatten()
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

    /// Where a cache lives, to tell caches apart (compared, never dereferenced).
    fn address(cache: &Cache) -> *const Cache {
        cache
    }

    #[test]
    fn a_thread_gets_back_its_own_cache_of_the_same_scan_only() {
        let first = ForwardScan::build(&["abc"]).unwrap();
        let second = ForwardScan::build(&["abc"]).unwrap();
        let (cache, tagged_at) = first.take_cache();
        let kept = address(&cache);
        first.return_cache(cache, tagged_at);
        let (other, other_tagged_at) = second.take_cache();
        assert_ne!(address(&other), kept, "another scan never gets it");
        second.return_cache(other, other_tagged_at);
        let (again, _) = first.take_cache();
        assert_eq!(
            address(&again),
            kept,
            "the same scan on the same thread does"
        );
        // On another thread it comes from the shared pool (empty here): a new cache.
        let elsewhere = std::thread::scope(|scope| {
            scope
                .spawn(|| address(&first.take_cache().0) as usize)
                .join()
                .unwrap()
        });
        assert_ne!(elsewhere, kept as usize);
    }

    #[test]
    fn a_thread_keeps_a_few_caches_and_shares_the_rest() {
        let scan = ForwardScan::build(&["abc"]).unwrap();
        let caches: Vec<_> = (0..THREAD_CACHE_LIMIT + 2)
            .map(|_| scan.take_cache())
            .collect();
        for (cache, tagged_at) in caches {
            scan.return_cache(cache, tagged_at);
        }
        let shared = scan.idle.lock().unwrap().len();
        assert_eq!(shared, 2, "the oldest two moved to the shared pool");
        // Another scan's caches push this one's out to its pool, not away.
        let other = ForwardScan::build(&["xyz"]).unwrap();
        let others: Vec<_> = (0..THREAD_CACHE_LIMIT)
            .map(|_| other.take_cache())
            .collect();
        for (cache, tagged_at) in others {
            other.return_cache(cache, tagged_at);
        }
        assert_eq!(scan.idle.lock().unwrap().len(), 2 + THREAD_CACHE_LIMIT);
        let kept = with_thread_caches(|caches| caches.len()).unwrap();
        assert_eq!(kept, THREAD_CACHE_LIMIT);
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
