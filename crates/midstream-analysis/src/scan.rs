//! The per-stream state machine behind [`crate::Scanner`].
//!
//! Each byte is fed to the scope's forward scan (regex rules) and keyword automaton, one DFA
//! step each, and, in a guarded scope, to the live guard runs (a run starts only on a byte that
//! can begin a guarded match). As long as neither automaton reports a match and no match is in
//! progress, that is all the work there is (the *fast path*). Otherwise the byte takes the
//! *slow path* below, in this order:
//!
//! 1. pending regex matches (extensions) take the byte; those that cannot grow any more settle;
//! 2. rules the forward scan reports as having a match ending here start an extension;
//! 3. whole-word keyword candidates waiting for the next character are decided, then new
//!    keyword matches are examined;
//! 4. the detections fired at this byte are ordered by rule, and a stop rule ends the stream.
//!
//! See the crate documentation for the exact match semantics.

use aho_corasick::automaton::StateID as LiteralStateID;
use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::Cache;
use regex_automata::util::primitives::StateID;

use crate::args::MatchText;
use crate::engine::ScopeEngine;
use crate::guard::GuardState;
use crate::output::{Detection, ScanOutput};
use crate::regex_program::RegexProgram;
use crate::rule::{Action, Rule, RuleId};
use crate::utf8::{count_char_starts, settled_len, word_char_at, word_char_before};
use crate::window::Window;

/// Input is processed in slices of at most this many bytes, so the window never has to hold
/// more than the history plus one slice, whatever the size of a chunk.
const FEED_SLICE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Stopped,
    Finished,
}

/// How pending matches are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// In the stream: a match that may still grow stays pending.
    Stream,
    /// A stop rule cut the stream: settle at the longest match so far; a whole-word keyword whose
    /// next character is not known yet counts as followed by a boundary.
    Cut,
    /// End of text: it is a boundary and end-of-text assertions (`$`, `\z`) apply.
    End,
}

/// A regex match in progress: it exists, but may still grow.
#[derive(Debug, Clone, Copy)]
struct Extension {
    start: u64,
    state: StateID,
    last_end: Option<u64>,
}

#[derive(Debug, Default)]
struct RegexTrack {
    /// End of the rule's previous match: the next one starts at or after it.
    prev_end: u64,
    pending: Option<Extension>,
    /// Match ends the forward scan reported while `pending` was growing; examined once it
    /// settles (they may start after its end). At most `max_len` + 1 entries.
    deferred: Vec<u64>,
}

#[derive(Debug, Default)]
struct LiteralTrack {
    prev_end: u64,
    /// A whole-word candidate waiting for the character after it.
    pending: Option<(u64, u64)>,
}

#[derive(Debug)]
struct ForwardCursor {
    cache: Cache,
    state: LazyStateID,
}

/// Everything one stream needs besides the shared [`ScopeEngine`].
#[derive(Debug)]
pub(crate) struct ScanState {
    forward: Option<ForwardCursor>,
    literal_state: LiteralStateID,
    regex_tracks: Vec<RegexTrack>,
    /// Slots whose `pending` is set.
    pending_regex: Vec<usize>,
    literal_tracks: Vec<LiteralTrack>,
    /// Slots whose `pending` is set.
    pending_literal: Vec<usize>,
    guard: GuardState,
    window: Window,
    fed: u64,
    chars: u64,
    /// Where the slice being scanned started, and the characters before it (for `seen_chars`).
    piece_start: u64,
    piece_chars: u64,
    phase: Phase,
    /// Start of the earliest stop match fired at the current byte.
    stop_at: Option<u64>,
    scratch_slots: Vec<usize>,
    scratch_keywords: Vec<(usize, usize)>,
}

impl ScanState {
    /// A fresh stream over `engine`; takes a forward-scan cache from the engine's pool.
    pub(crate) fn new(engine: &ScopeEngine) -> ScanState {
        let forward = engine.forward.as_ref().and_then(|scan| {
            let mut cache = scan.take_cache();
            scan.start(&mut cache).map(|state| ForwardCursor { cache, state })
        });
        let literal_count = engine.literals.as_ref().map_or(0, |set| set.rules().len());
        ScanState {
            forward,
            literal_state: engine.literals.as_ref().map_or(LiteralStateID::ZERO, |set| set.start()),
            regex_tracks: engine.regexes.iter().map(|_| RegexTrack::default()).collect(),
            pending_regex: Vec::with_capacity(engine.regexes.len()),
            literal_tracks: (0..literal_count).map(|_| LiteralTrack::default()).collect(),
            pending_literal: Vec::with_capacity(literal_count),
            guard: GuardState::default(),
            window: Window::new(engine.history, FEED_SLICE),
            fed: 0,
            chars: 0,
            piece_start: 0,
            piece_chars: 0,
            phase: Phase::Open,
            stop_at: None,
            scratch_slots: Vec::new(),
            scratch_keywords: Vec::new(),
        }
    }

    /// Gives the forward-scan cache back to the engine's pool.
    pub(crate) fn recycle(&mut self, engine: &ScopeEngine) {
        if let (Some(scan), Some(cursor)) = (&engine.forward, self.forward.take()) {
            scan.return_cache(cursor.cache);
        }
    }

    pub(crate) fn bytes_seen(&self) -> u64 {
        self.fed
    }

    pub(crate) fn chars_seen(&self) -> u64 {
        self.chars
    }

    /// Bytes fed but not yet accounted for in released text (0 when the scope is unguarded, and
    /// once the stream is closed: after a stop the rest is dropped, not held).
    pub(crate) fn held_back(&self, engine: &ScopeEngine) -> u64 {
        if engine.guard.is_some() && self.phase == Phase::Open {
            self.fed.saturating_sub(self.guard.released_to())
        } else {
            0
        }
    }

    /// Feeds the next bytes of the stream.
    pub(crate) fn feed(&mut self, engine: &ScopeEngine, rules: &[Rule], bytes: &[u8], out: &mut ScanOutput) {
        if self.phase != Phase::Open {
            return;
        }
        for piece in bytes.chunks(FEED_SLICE) {
            let mut keep_from = self.fed.saturating_sub(engine.history as u64);
            if engine.guard.is_some() {
                keep_from = keep_from.min(self.guard.released_to());
            }
            self.window.push(piece, keep_from);
            self.piece_start = self.fed;
            self.piece_chars = self.chars;
            let stopped = self.scan_piece(engine, rules, piece, out);
            self.chars = self.chars_through_fed();
            if stopped {
                return;
            }
            if engine.guard.is_some() {
                let frontier = self.frontier(engine);
                self.release(rules, frontier, out);
            }
        }
    }

    /// Ends the stream: settles everything pending and releases the rest.
    pub(crate) fn finish(&mut self, engine: &ScopeEngine, rules: &[Rule], out: &mut ScanOutput) {
        if self.phase != Phase::Open {
            return;
        }
        self.piece_start = self.fed;
        self.piece_chars = self.chars;
        let mark = out.detections.len();
        while let Some(slot) = self.pending_regex.pop() {
            self.settle_extension(engine, rules, slot, Settle::End, out);
        }
        if let (Some(scan), Some(cursor)) = (&engine.forward, &mut self.forward) {
            cursor.state = scan.next_eoi(&mut cursor.cache, cursor.state);
            if cursor.state.is_match() {
                self.scratch_slots.clear();
                scan.matches(&cursor.cache, cursor.state, &mut self.scratch_slots);
                self.forward_matches(engine, rules, self.fed, Settle::End, out);
            }
        }
        self.resolve_keywords(engine, rules, Settle::End, out);
        order_fired(&mut out.detections[mark..]);
        if let Some(cut) = self.stop_at {
            self.cut(rules, cut, out);
            return;
        }
        if engine.guard.is_some() {
            self.release(rules, self.fed, out);
        }
        self.guard.close();
        self.phase = Phase::Finished;
    }

    fn chars_through_fed(&self) -> u64 {
        self.piece_chars + count_char_starts(self.window.slice(self.piece_start, self.fed))
    }

    /// Scans one slice (already in the window). Returns true if a stop rule ended the stream.
    fn scan_piece(&mut self, engine: &ScopeEngine, rules: &[Rule], piece: &[u8], out: &mut ScanOutput) -> bool {
        let base = self.fed;
        let mut from = 0;
        while let Some((at, forward_hit, keyword_hit)) = self.skim(engine, piece, from, base) {
            if self.slow_byte(engine, rules, base + at as u64, piece[at], forward_hit, keyword_hit, out) {
                return true;
            }
            from = at + 1;
        }
        self.fed = base + piece.len() as u64;
        false
    }

    /// The fast path: steps the automata (and live guard runs) over `piece[from..]` until a
    /// byte needs the slow path. Returns that byte's index and whether the forward scan
    /// (slots in `scratch_slots`) and the keyword automaton reported a match on it.
    #[inline]
    fn skim(&mut self, engine: &ScopeEngine, piece: &[u8], from: usize, base: u64) -> Option<(usize, bool, bool)> {
        // Disjoint borrows keep the hot state in registers instead of behind `self`.
        let ScanState { forward, literal_state, guard, window, scratch_slots, pending_regex, pending_literal, .. } =
            self;
        let every_byte = !pending_regex.is_empty() || !pending_literal.is_empty();
        let mut forward = engine.forward.as_ref().zip(forward.as_mut());
        for (index, &byte) in piece.iter().enumerate().skip(from) {
            let mut forward_hit = false;
            if let Some((scan, cursor)) = &mut forward {
                cursor.state = scan.next(&mut cursor.cache, cursor.state, byte);
                if cursor.state.is_match() {
                    forward_hit = true;
                    scratch_slots.clear();
                    scan.matches(&cursor.cache, cursor.state, scratch_slots);
                }
            }
            let mut keyword_hit = false;
            if let Some(set) = &engine.literals {
                *literal_state = set.next(*literal_state, byte);
                keyword_hit = set.is_match(*literal_state);
            }
            if let Some(automaton) = &engine.guard
                && (automaton.may_start(byte) || guard.has_runs())
            {
                let position = base + index as u64;
                let look_behind = match index.checked_sub(1) {
                    Some(before) => Some(piece[before]),
                    None => position.checked_sub(1).and_then(|before| window.bytes().get(window.index(before)).copied()),
                };
                guard.step(automaton, position, byte, look_behind);
            }
            if forward_hit || keyword_hit || every_byte {
                return Some((index, forward_hit, keyword_hit));
            }
        }
        None
    }

    /// A byte on which something happens (see the module documentation for the order).
    #[expect(clippy::too_many_arguments, reason = "the byte and what the fast path learnt about it")]
    fn slow_byte(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        position: u64,
        byte: u8,
        forward_hit: bool,
        keyword_hit: bool,
        out: &mut ScanOutput,
    ) -> bool {
        self.fed = position + 1;
        let mark = out.detections.len();
        self.advance_extensions(engine, rules, position, byte, out);
        if forward_hit {
            self.forward_matches(engine, rules, position, Settle::Stream, out);
        }
        self.resolve_keywords(engine, rules, Settle::Stream, out);
        if keyword_hit {
            self.keyword_matches(engine, rules, position + 1, out);
        }
        if self.stop_at.is_some() {
            while let Some(slot) = self.pending_regex.pop() {
                self.settle_extension(engine, rules, slot, Settle::Cut, out);
            }
            self.resolve_keywords(engine, rules, Settle::Cut, out);
        }
        order_fired(&mut out.detections[mark..]);
        match self.stop_at {
            Some(cut) => {
                self.cut(rules, cut, out);
                true
            }
            None => false,
        }
    }

    /// The byte before stream position `position`, `None` at the start of the text.
    fn byte_before(&self, position: u64) -> Option<u8> {
        let before = position.checked_sub(1)?;
        self.window.bytes().get(self.window.index(before)).copied()
    }

    /// The window up to the last byte fed.
    fn haystack(&self) -> &[u8] {
        &self.window.bytes()[..self.window.index(self.fed)]
    }

    // ----- regex rules -----

    fn advance_extensions(
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
            let still_growing =
                program.can_extend(extension.state) && position < extension.start + program.max_len();
            if still_growing || self.settle_extension(engine, rules, slot, Settle::Stream, out) {
                index += 1;
            } else {
                self.pending_regex.swap_remove(index);
            }
        }
    }

    /// Settles the slot's extension, then examines the ends deferred while it grew. Returns
    /// whether one of them left a new extension pending (only with [`Settle::Stream`]).
    fn settle_extension(
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
            if end > self.regex_tracks[slot].prev_end && self.begin(engine, rules, slot, end, mode, out) {
                pending = true;
                break;
            }
        }
        self.regex_tracks[slot].deferred.drain(..examined);
        pending
    }

    /// Every rule in `scratch_slots` (the forward scan's match state) has a match ending at
    /// `end`: start its extension, or defer the end if the rule already has one growing.
    fn forward_matches(&mut self, engine: &ScopeEngine, rules: &[Rule], end: u64, mode: Settle, out: &mut ScanOutput) {
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
        let low = self.regex_tracks[slot].prev_end.max(end.saturating_sub(max_len));
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
        let Some(mut state) = program.start(self.byte_before(start)) else { return false };
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
                    self.regex_tracks[slot].pending = Some(Extension { start, state, last_end });
                    return true;
                }
                Settle::End if program.is_match(program.next_eoi(state)) => last_end = Some(self.fed),
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

    // ----- keyword rules -----

    /// Decides the whole-word candidates whose next character is now known.
    fn resolve_keywords(&mut self, engine: &ScopeEngine, rules: &[Rule], mode: Settle, out: &mut ScanOutput) {
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
    fn keyword_matches(&mut self, engine: &ScopeEngine, rules: &[Rule], end: u64, out: &mut ScanOutput) {
        let Some(set) = &engine.literals else { return };
        let end_index = self.window.index(end);
        self.scratch_keywords.clear();
        set.candidates(self.literal_state, &self.window.bytes()[..end_index], &mut self.scratch_keywords);
        // Per slot, longest (= leftmost) first.
        self.scratch_keywords.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
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

    // ----- firing, releasing, stopping -----

    /// Reports a match of rule `id` at `start..end`, fired by the last byte fed.
    fn fire(
        &mut self,
        rules: &[Rule],
        id: RuleId,
        start: u64,
        end: u64,
        program: Option<&RegexProgram>,
        out: &mut ScanOutput,
    ) {
        let Some(rule) = rules.get(id.0) else { return };
        let haystack = self.haystack();
        let (from, to) = (self.window.index(start), self.window.index(end));
        let matched = String::from_utf8_lossy(&haystack[from..to]).into_owned();
        let captures = program.map(|program| program.captures(haystack, from, to)).unwrap_or_default();
        let args = rule.args_template().map(|template| template.fill(&Found { matched: &matched, captures: &captures }));
        out.detections.push(Detection {
            rule: id,
            matched,
            captures,
            args,
            start,
            end,
            seen_bytes: self.fed,
            seen_chars: self.chars_through_fed(),
        });
        match rule.action {
            Action::Redact { .. } => self.guard.redact(start, end, id),
            Action::Stop => self.stop_at = Some(self.stop_at.map_or(start, |earlier| earlier.min(start))),
            Action::Tool { .. } | Action::Emit => {}
        }
    }

    /// The earliest position a guarded match may still start from: nothing before it can change.
    fn frontier(&self, engine: &ScopeEngine) -> u64 {
        let mut frontier = self.window.offset() + settled_len(self.haystack()) as u64;
        if let Some(run) = self.guard.earliest_run() {
            frontier = frontier.min(run);
        }
        for &slot in &self.pending_regex {
            if let (true, Some(extension)) = (engine.regexes[slot].guard, &self.regex_tracks[slot].pending) {
                frontier = frontier.min(extension.start);
            }
        }
        if let Some(set) = &engine.literals {
            for &slot in &self.pending_literal {
                if let (true, Some((start, _))) = (set.rules()[slot].guard, self.literal_tracks[slot].pending) {
                    frontier = frontier.min(start);
                }
            }
        }
        frontier
    }

    fn release(&mut self, rules: &[Rule], frontier: u64, out: &mut ScanOutput) {
        self.guard.release(frontier, &self.window, |id| replacement(rules, id), &mut out.released);
    }

    /// A stop rule fired: release the text before its match and close the stream.
    fn cut(&mut self, rules: &[Rule], cut: u64, out: &mut ScanOutput) {
        self.release(rules, cut, out);
        self.guard.close();
        self.phase = Phase::Stopped;
        out.stopped = true;
    }
}

fn replacement(rules: &[Rule], id: RuleId) -> &str {
    match rules.get(id.0).map(|rule| &rule.action) {
        Some(Action::Redact { replacement }) => replacement,
        _ => "",
    }
}

/// Detections fired by the same byte are reported in rule order (a stable sort keeps two
/// matches of one rule in the order they were found, i.e. by position).
fn order_fired(fired: &mut [Detection]) {
    if fired.len() > 1 {
        fired.sort_by_key(|detection| detection.rule);
    }
}

/// A match as argument templates see it.
struct Found<'a> {
    matched: &'a str,
    captures: &'a [(String, String)],
}

impl MatchText for Found<'_> {
    fn whole(&self) -> &str {
        self.matched
    }

    fn group(&self, name: &str) -> Option<&str> {
        self.captures.iter().find(|(group, _)| group == name).map(|(_, text)| text.as_str())
    }
}
