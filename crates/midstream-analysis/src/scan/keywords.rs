//! Literal and keyword rules of one stream: candidates from the Aho-Corasick automaton,
//! non-overlap per rule, and whole-word boundaries (which may wait for the next character).

use super::{ScanState, Settle};
use crate::engine::ScopeEngine;
use crate::output::ScanOutput;
use crate::rule::Rule;
use crate::utf8::{word_char_at, word_char_before};

impl ScanState {
    /// Decides the whole-word candidates whose next character is now known.
    pub(super) fn resolve_keywords(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        mode: Settle,
        out: &mut ScanOutput,
    ) {
        let Some(set) = &engine.literals else { return };
        let at_end = mode != Settle::Stream;
        let mut index = 0;
        while index < self.pending_literal.len() {
            let slot = self.pending_literal[index];
            let Some((start, end)) = self.literal_tracks[slot].pending else {
                self.pending_literal.swap_remove(index);
                continue;
            };
            match word_char_at(self.haystack(), self.window.index(end), at_end) {
                None => {
                    index += 1;
                    continue;
                }
                Some(true) => {}
                Some(false) => {
                    self.literal_tracks[slot].prev_end = end;
                    self.fire(rules, set.rules()[slot].id, start, end, None, out);
                }
            }
            self.literal_tracks[slot].pending = None;
            self.pending_literal.swap_remove(index);
        }
    }

    /// Keywords ending at `end`: per rule, the leftmost candidate that does not overlap the
    /// rule's previous match (and, for whole words, follows a non-word character) fires, or
    /// waits for the next character if the rule wants whole words.
    pub(super) fn keyword_matches(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        end: u64,
        out: &mut ScanOutput,
    ) {
        let Some(set) = &engine.literals else { return };
        let end_index = self.window.index(end);
        self.scratch_keywords.clear();
        set.candidates(
            self.literal_state,
            &self.window.bytes()[..end_index],
            &mut self.scratch_keywords,
        );
        // Per slot, longest (= leftmost) first.
        self.scratch_keywords
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut decided_slot = None;
        for index in 0..self.scratch_keywords.len() {
            let (slot, len) = self.scratch_keywords[index];
            if decided_slot == Some(slot) {
                continue;
            }
            let start = end - len as u64;
            let track = &self.literal_tracks[slot];
            let rule = &set.rules()[slot];
            // A pending candidate is always decided before the next one of its rule can end
            // (its next character lies within the newer match or before it).
            if track.pending.is_some() || start < track.prev_end {
                continue;
            }
            if rule.whole_word && word_char_before(self.window.bytes(), self.window.index(start)) {
                continue;
            }
            decided_slot = Some(slot);
            if rule.whole_word {
                self.literal_tracks[slot].pending = Some((start, end));
                self.pending_literal.push(slot);
            } else {
                self.literal_tracks[slot].prev_end = end;
                self.fire(rules, rule.id, start, end, None, out);
            }
        }
    }
}
