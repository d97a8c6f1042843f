//! Which states of a dense DFA can still lead to a match.
//!
//! A DFA only "dies" when no thread is left, but a match is already certain one step earlier:
//! after "hunter2!" the anchored DFA for `hunter2` sits in a match state (matches are reported
//! one byte late) whose every transition is dead. Knowing that such a state has no future is
//! what lets a detection fire on the `!` rather than on the byte after it. The analysis runs once
//! per automaton when the detector is built.

use regex_automata::Anchored;
use regex_automata::dfa::{Automaton, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;

/// A dense DFA as the rest of the crate uses it.
pub(crate) type DenseDfa = dense::DFA<Vec<u32>>;

/// For each state: can a match still end after it (at a later position, or at the end of the
/// text right here)?
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    productive: Vec<bool>,
    stride2: usize,
}

impl Liveness {
    /// Explores every state reachable from the anchored start states (one per possible
    /// look-behind byte, plus the start of the text).
    pub(crate) fn analyze(dfa: &DenseDfa) -> Liveness {
        let stride2 = dfa.stride2();
        let index_of = |sid: StateID| sid.as_usize() >> stride2;
        let mut seen: Vec<bool> = Vec::new();
        let mut order: Vec<StateID> = Vec::new();
        let visit = |sid: StateID, seen: &mut Vec<bool>, order: &mut Vec<StateID>| {
            let index = index_of(sid);
            if seen.len() <= index {
                seen.resize(index + 1, false);
            }
            if !seen[index] {
                seen[index] = true;
                order.push(sid);
            }
        };
        for look_behind in start_configs() {
            if let Ok(sid) = dfa.start_state(&look_behind) {
                visit(sid, &mut seen, &mut order);
            }
        }
        // Breadth-first over one representative byte per equivalence class.
        let representatives: Vec<u8> = {
            let classes = dfa.byte_classes();
            let mut seen_class = [false; 256];
            (0..=255u8)
                .filter(|&byte| {
                    !std::mem::replace(&mut seen_class[usize::from(classes.get(byte))], true)
                })
                .collect()
        };
        let mut successors: Vec<Vec<StateID>> = Vec::new();
        let mut next = 0;
        while next < order.len() {
            let sid = order[next];
            next += 1;
            let mut targets = Vec::with_capacity(representatives.len());
            for &byte in &representatives {
                let target = dfa.next_state(sid, byte);
                visit(target, &mut seen, &mut order);
                targets.push(target);
            }
            successors.push(targets);
        }
        // productive(S) = a match at the end of the text right after S, or a successor that is a
        // match state or productive itself: seed with the first kind, then walk edges backwards.
        let position_of = {
            let mut position_of = vec![usize::MAX; seen.len()];
            for (position, &sid) in order.iter().enumerate() {
                position_of[index_of(sid)] = position;
            }
            position_of
        };
        let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
        let mut productive = vec![false; seen.len()];
        let mut work = Vec::new();
        for (position, &sid) in order.iter().enumerate() {
            for &target in &successors[position] {
                predecessors[position_of[index_of(target)]].push(position);
            }
            let seeds = dfa.is_match_state(dfa.next_eoi_state(sid))
                || successors[position]
                    .iter()
                    .any(|&target| dfa.is_match_state(target));
            if seeds && !dfa.is_dead_state(sid) {
                productive[index_of(sid)] = true;
                work.push(position);
            }
        }
        while let Some(position) = work.pop() {
            for &before in &predecessors[position] {
                let sid = order[before];
                if !productive[index_of(sid)] && !dfa.is_dead_state(sid) {
                    productive[index_of(sid)] = true;
                    work.push(before);
                }
            }
        }
        Liveness {
            productive,
            stride2,
        }
    }

    /// Whether a match can still end after `sid` (by more bytes, or at the end of the text).
    pub(crate) fn can_match_later(&self, sid: StateID) -> bool {
        self.productive
            .get(sid.as_usize() >> self.stride2)
            .copied()
            .unwrap_or(false)
    }
}

/// Anchored start configurations for every look-behind: start of text and each byte.
pub(crate) fn start_configs() -> impl Iterator<Item = start::Config> {
    std::iter::once(None)
        .chain((0..=255u8).map(Some))
        .map(|look_behind| {
            start::Config::new()
                .anchored(Anchored::Yes)
                .look_behind(look_behind)
        })
}

/// An anchored dense DFA built the way the crate builds its rule automata, for tests.
#[cfg(test)]
pub(crate) fn anchored(pattern: &str) -> DenseDfa {
    use regex_automata::MatchKind;
    use regex_automata::dfa::StartKind;

    dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored),
        )
        .build(pattern)
        .expect("test pattern compiles")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(dfa: &DenseDfa, text: &[u8]) -> StateID {
        let mut sid = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .unwrap();
        for &byte in text {
            sid = dfa.next_state(sid, byte);
        }
        sid
    }

    #[test]
    fn a_finished_literal_has_no_future() {
        let dfa = anchored("hunter2");
        let liveness = Liveness::analyze(&dfa);
        assert!(liveness.can_match_later(walk(&dfa, b"hunt")));
        assert!(
            liveness.can_match_later(walk(&dfa, b"hunter2")),
            "the end of text would confirm it"
        );
        let after = walk(&dfa, b"hunter2!");
        assert!(dfa.is_match_state(after));
        assert!(!liveness.can_match_later(after));
        assert!(!liveness.can_match_later(walk(&dfa, b"x")));
    }

    #[test]
    fn a_repetition_stays_alive() {
        let dfa = anchored(r"\p{Lu}\p{Ll}+");
        let liveness = Liveness::analyze(&dfa);
        assert!(liveness.can_match_later(walk(&dfa, "Parí".as_bytes())));
        assert!(!liveness.can_match_later(walk(&dfa, b"Paris ")));
    }

    #[test]
    fn an_end_anchor_waits_for_the_end() {
        let dfa = anchored(r"ab$");
        let liveness = Liveness::analyze(&dfa);
        assert!(liveness.can_match_later(walk(&dfa, b"ab")));
        assert!(!liveness.can_match_later(walk(&dfa, b"abc")));
    }
}
