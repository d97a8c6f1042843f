//! Regex rules of one stream: starting a match where the forward scan reports an end,
//! growing it byte by byte (leftmost-longest within `max_len`), and examining the ends that
//! arrived while it grew.

use super::{Extension, ScanState, Settle};
use crate::engine::ScopeEngine;
use crate::output::ScanOutput;
use crate::regex_program::RegexProgram;
use crate::rule::Rule;

impl ScanState {
    pub(super) fn advance_extensions(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        position: u64,
        byte: u8,
        out: &mut ScanOutput,
    ) {
        let mut index = 0;
        while index < self.pending_regex.len() {
            let slot = self.pending_regex[index];
            let program = &engine.regexes[slot].program;
            let Some(extension) = self.regex_tracks[slot].pending.as_mut() else {
                self.pending_regex.swap_remove(index);
                continue;
            };
            extension.state = program.next(extension.state, byte);
            if program.is_match(extension.state) {
                extension.last_end = Some(position);
            }
            let still_growing = program.can_extend(extension.state)
                && position < extension.start + program.max_len();
            if still_growing || self.settle_extension(engine, rules, slot, Settle::Stream, out) {
                index += 1;
            } else {
                self.pending_regex.swap_remove(index);
            }
        }
    }

    /// Settles the slot's extension, then examines the ends deferred while it grew. Returns
    /// whether one of them left a new extension pending (only with [`Settle::Stream`]).
    pub(super) fn settle_extension(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        slot: usize,
        mode: Settle,
        out: &mut ScanOutput,
    ) -> bool {
        let program = &engine.regexes[slot].program;
        if let Some(mut extension) = self.regex_tracks[slot].pending.take() {
            if mode == Settle::End && program.is_match(program.next_eoi(extension.state)) {
                extension.last_end = Some(self.fed);
            }
            if let Some(end) = extension.last_end {
                self.conclude_regex(engine, rules, slot, extension.start, end, out);
            }
        }
        let mut examined = 0;
        let mut pending = false;
        while examined < self.regex_tracks[slot].deferred.len() {
            let end = self.regex_tracks[slot].deferred[examined];
            examined += 1;
            if end > self.regex_tracks[slot].prev_end
                && self.begin(engine, rules, slot, end, mode, out)
            {
                pending = true;
                break;
            }
        }
        self.regex_tracks[slot].deferred.drain(..examined);
        pending
    }

    /// Every rule in `scratch_slots` (the forward scan's match state) has a match ending at
    /// `end`: start its extension, or defer the end if the rule already has one growing.
    pub(super) fn forward_matches(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        end: u64,
        mode: Settle,
        out: &mut ScanOutput,
    ) {
        for index in 0..self.scratch_slots.len() {
            let slot = self.scratch_slots[index];
            if self.regex_tracks[slot].pending.is_some() {
                self.regex_tracks[slot].deferred.push(end);
            } else if self.begin(engine, rules, slot, end, mode, out) {
                self.pending_regex.push(slot);
            }
        }
    }

    /// A match of the slot's rule ends at `end`: find its leftmost start (after the previous
    /// match, within `max_len`), then replay the anchored DFA from there over the bytes already
    /// fed. Returns true if the match may still grow (left pending, [`Settle::Stream`] only);
    /// otherwise it fired.
    fn begin(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        slot: usize,
        end: u64,
        mode: Settle,
        out: &mut ScanOutput,
    ) -> bool {
        let program: &RegexProgram = &engine.regexes[slot].program;
        let max_len = program.max_len();
        let low = self.regex_tracks[slot]
            .prev_end
            .max(end.saturating_sub(max_len));
        if low >= end {
            return false;
        }
        let haystack = self.haystack();
        let Some(start_index) =
            program.leftmost_start(haystack, self.window.index(low), self.window.index(end))
        else {
            return false;
        };
        let start = self.window.offset() + start_index as u64;
        let Some(mut state) = program.start(self.byte_before(start)) else {
            return false;
        };
        let mut last_end = None;
        let mut settled = false;
        for (position, &byte) in (start..).zip(self.window.slice(start, self.fed)) {
            state = program.next(state, byte);
            if program.is_match(state) {
                last_end = Some(position);
            }
            if !program.can_extend(state) || position >= start + max_len {
                settled = true;
                break;
            }
        }
        if !settled {
            match mode {
                Settle::Stream => {
                    self.regex_tracks[slot].pending = Some(Extension {
                        start,
                        state,
                        last_end,
                    });
                    return true;
                }
                Settle::End if program.is_match(program.next_eoi(state)) => {
                    last_end = Some(self.fed)
                }
                Settle::End | Settle::Cut => {}
            }
        }
        if let Some(end) = last_end {
            self.conclude_regex(engine, rules, slot, start, end, out);
        }
        false
    }

    fn conclude_regex(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        slot: usize,
        start: u64,
        end: u64,
        out: &mut ScanOutput,
    ) {
        self.regex_tracks[slot].prev_end = end;
        let regex = &engine.regexes[slot];
        self.fire(rules, regex.id, start, end, Some(&regex.program), out);
    }
}
