//! The per-stream state machine behind [`crate::Scanner`].
//!
//! Each byte is fed to the scope's forward scan (regex rules) and keyword automaton, one DFA
//! step each, and, in a guarded scope, to the live guard runs (a run starts only on a byte that
//! can begin a guarded match). As long as neither automaton reports a match and no match is in
//! progress, that is all the work there is (the *fast path*); and when the automata hold no
//! match attempt at all, the fast path jumps to the next position where some rule's match can
//! begin ([`crate::openings`]): most bytes of ordinary text are never stepped. Otherwise
//! the byte takes the *slow path* below, in this order:
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
use crate::forward::ForwardScan;
use crate::guard::GuardState;
use crate::output::{Detection, ScanOutput};
use crate::regex_program::RegexProgram;
use crate::rule::{Action, Rule, RuleId};
use crate::utf8::{count_char_starts, settled_len};
use crate::window::Window;

mod keywords;
mod regex;

/// Jumps are only looked for with at least this many bytes left in the piece: the last bytes
/// of a piece are always stepped, so in token-sized pieces looking would cost more than it saves.
const MIN_JUMP_SPAN: usize = 8;

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

/// A stream's place in the scope's forward scan.
///
/// A lazy DFA keeps its states in a cache, and a stream needs one of its own while it scans.
/// Held for the whole stream, that is one cache per open stream (≈ 40 KB each with the default
/// rules), and each step reads a table that no other stream touched lately: under 64 streams
/// most of the scanner's time went to that one load missing the CPU caches (`perf`). So after a
/// piece with no match in progress a stream gives its cache back and keeps only the last byte:
/// its state is then the start state after that byte, the same in any cache (as a jump
/// assumes). Its next piece takes the cache given back last on its thread, and the streams
/// scanning on a worker share a few warm caches.
#[derive(Debug)]
enum ForwardCursor {
    /// No match in progress after `look_behind` (`None`: nothing scanned yet); no cache held.
    Resting { look_behind: Option<u8> },
    /// Scanning, or a match is in progress: the state lives in the stream's cache.
    Holding(HeldCursor),
}

#[derive(Debug)]
struct HeldCursor {
    cache: Box<Cache>,
    /// The cache's clear count when its start states were last tagged.
    tagged_at: usize,
    state: LazyStateID,
}

impl ForwardCursor {
    fn held(&mut self) -> Option<&mut HeldCursor> {
        match self {
            ForwardCursor::Holding(held) => Some(held),
            ForwardCursor::Resting { .. } => None,
        }
    }

    /// Before a piece: a resting stream takes a cache (warm, if one is idle) and resumes at the
    /// start state after its last byte; a cache cleared since its start states were tagged is
    /// tagged again. Should the scan not start (it always can), the stream keeps resting and the
    /// piece is scanned without its regex rules (`None`).
    fn hold(&mut self, scan: &ForwardScan) -> Option<&mut HeldCursor> {
        match self {
            ForwardCursor::Holding(held) => {
                scan.retag_after_clear(&mut held.cache, &mut held.tagged_at);
            }
            ForwardCursor::Resting { look_behind } => {
                let (mut cache, mut tagged_at) = scan.take_cache();
                scan.retag_after_clear(&mut cache, &mut tagged_at);
                match scan.start(&mut cache, *look_behind) {
                    Some(state) => {
                        *self = ForwardCursor::Holding(HeldCursor {
                            cache,
                            tagged_at,
                            state,
                        });
                    }
                    None => scan.return_cache(cache, tagged_at),
                }
            }
        }
        self.held()
    }

    /// After a piece that ended with `last`: gives the cache back unless a match is in progress.
    fn rest(&mut self, scan: &ForwardScan, last: u8) {
        if matches!(self, ForwardCursor::Holding(held) if held.state.is_start()) {
            self.give_back(scan, Some(last));
        }
    }

    /// Gives the cache back (if held) and rests after `look_behind`.
    fn give_back(&mut self, scan: &ForwardScan, look_behind: Option<u8>) {
        if let ForwardCursor::Holding(held) =
            std::mem::replace(self, ForwardCursor::Resting { look_behind })
        {
            scan.return_cache(held.cache, held.tagged_at);
        }
    }
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
    /// A fresh stream over `engine` (it takes a forward-scan cache when it first scans).
    pub(crate) fn new(engine: &ScopeEngine) -> ScanState {
        let forward = engine
            .forward
            .as_ref()
            .map(|_| ForwardCursor::Resting { look_behind: None });
        let literal_count = engine.literals.as_ref().map_or(0, |set| set.rules().len());
        ScanState {
            forward,
            literal_state: engine
                .literals
                .as_ref()
                .map_or(LiteralStateID::ZERO, |set| set.start()),
            regex_tracks: engine
                .regexes
                .iter()
                .map(|_| RegexTrack::default())
                .collect(),
            pending_regex: Vec::with_capacity(engine.regexes.len()),
            literal_tracks: (0..literal_count)
                .map(|_| LiteralTrack::default())
                .collect(),
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
        if let (Some(scan), Some(cursor)) = (&engine.forward, &mut self.forward) {
            cursor.give_back(scan, None);
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
    pub(crate) fn feed(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        bytes: &[u8],
        out: &mut ScanOutput,
    ) {
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
            let scanned = usize::try_from(self.fed - self.piece_start).unwrap_or(piece.len());
            self.chars += count_char_starts(&piece[..scanned.min(piece.len())]);
            if stopped {
                return;
            }
            if engine.guard.is_some() {
                let frontier = self.frontier(engine);
                self.release(rules, frontier, out);
            }
        }
        if let (Some(scan), Some(cursor), Some(&last)) =
            (&engine.forward, &mut self.forward, bytes.last())
        {
            cursor.rest(scan, last);
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
        if let (Some(scan), Some(cursor)) = (&engine.forward, &mut self.forward)
            && let Some(cursor) = cursor.hold(scan)
        {
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
    fn scan_piece(
        &mut self,
        engine: &ScopeEngine,
        rules: &[Rule],
        piece: &[u8],
        out: &mut ScanOutput,
    ) -> bool {
        if let (Some(scan), Some(cursor)) = (&engine.forward, &mut self.forward) {
            cursor.hold(scan);
        }
        let base = self.fed;
        let mut from = 0;
        while let Some((at, forward_hit, keyword_hit)) = self.skim(engine, piece, from, base) {
            if self.slow_byte(
                engine,
                rules,
                base + at as u64,
                piece[at],
                forward_hit,
                keyword_hit,
                out,
            ) {
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
    fn skim(
        &mut self,
        engine: &ScopeEngine,
        piece: &[u8],
        from: usize,
        base: u64,
    ) -> Option<(usize, bool, bool)> {
        // Disjoint borrows keep the hot state in registers instead of behind `self`.
        let ScanState {
            forward,
            literal_state,
            guard,
            window,
            scratch_slots,
            pending_regex,
            pending_literal,
            ..
        } = self;
        let every_byte = !pending_regex.is_empty() || !pending_literal.is_empty();
        let mut forward = engine
            .forward
            .as_ref()
            .zip(forward.as_mut().and_then(ForwardCursor::held));
        // The common case, both automata present: their states stay in registers (the loop is
        // bound by the latency of the two dependent table lookups per byte).
        if let (Some((scan, cursor)), Some(set)) = (&mut forward, &engine.literals) {
            let mut state = cursor.state;
            let mut keyword_state = *literal_state;
            let mut index = from;
            while index < piece.len() {
                // One branch for the whole test (`&`, not `&&`): its parts change from byte to
                // byte, and each would be a branch to mispredict.
                if piece.len() - index >= MIN_JUMP_SPAN
                    && (state.is_start()
                        & (keyword_state == set.start())
                        & !every_byte
                        & !guard.has_runs())
                {
                    index = jump(
                        engine,
                        Some((scan, &mut cursor.cache, &mut state)),
                        piece,
                        index,
                    );
                }
                let byte = piece[index];
                state = scan.next(&mut cursor.cache, state, byte);
                keyword_state = set.next(keyword_state, byte);
                step_guard(engine, guard, window, piece, base, index);
                let forward_hit = state.is_match();
                let keyword_hit = set.is_match(keyword_state);
                if forward_hit || keyword_hit || every_byte {
                    cursor.state = state;
                    *literal_state = keyword_state;
                    if forward_hit {
                        scratch_slots.clear();
                        scan.matches(&cursor.cache, state, scratch_slots);
                    }
                    return Some((index, forward_hit, keyword_hit));
                }
                index += 1;
            }
            cursor.state = state;
            *literal_state = keyword_state;
            return None;
        }
        let mut index = from;
        while index < piece.len() {
            let quiet = piece.len() - index >= MIN_JUMP_SPAN
                && forward
                    .as_ref()
                    .is_none_or(|(_, cursor)| cursor.state.is_start())
                && engine
                    .literals
                    .as_ref()
                    .is_none_or(|set| *literal_state == set.start())
                && !every_byte
                && !guard.has_runs();
            if quiet {
                let forward = forward
                    .as_mut()
                    .map(|(scan, cursor)| (*scan, &mut *cursor.cache, &mut cursor.state));
                index = jump(engine, forward, piece, index);
            }
            let byte = piece[index];
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
            step_guard(engine, guard, window, piece, base, index);
            if forward_hit || keyword_hit || every_byte {
                return Some((index, forward_hit, keyword_hit));
            }
            index += 1;
        }
        None
    }

    /// A byte on which something happens (see the module documentation for the order).
    #[expect(
        clippy::too_many_arguments,
        reason = "the byte and what the fast path learnt about it"
    )]
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
        let captures = program
            .map(|program| program.captures(haystack, from, to))
            .unwrap_or_default();
        let args = rule.args_template().map(|template| {
            template.fill(&Found {
                matched: &matched,
                captures: &captures,
            })
        });
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
            Action::Stop => {
                self.stop_at = Some(self.stop_at.map_or(start, |earlier| earlier.min(start)))
            }
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
            if let (true, Some(extension)) =
                (engine.regexes[slot].guard, &self.regex_tracks[slot].pending)
            {
                frontier = frontier.min(extension.start);
            }
        }
        if let Some(set) = &engine.literals {
            for &slot in &self.pending_literal {
                if let (true, Some((start, _))) =
                    (set.rules()[slot].guard, self.literal_tracks[slot].pending)
                {
                    frontier = frontier.min(start);
                }
            }
        }
        frontier
    }

    fn release(&mut self, rules: &[Rule], frontier: u64, out: &mut ScanOutput) {
        self.guard.release(
            frontier,
            &self.window,
            |id| replacement(rules, id),
            &mut out.released,
        );
    }

    /// A stop rule fired: release the text before its match and close the stream.
    fn cut(&mut self, rules: &[Rule], cut: u64, out: &mut ScanOutput) {
        self.release(rules, cut, out);
        self.guard.close();
        self.phase = Phase::Stopped;
        out.stopped = true;
    }
}

/// Where stepping resumes when the automata hold no match attempt before `piece[index]`: the
/// next position where some rule's match may begin, with the forward scan restarted there from
/// its start state (see [`crate::openings`]).
#[inline(always)]
fn jump(
    engine: &ScopeEngine,
    forward: Option<(&ForwardScan, &mut Cache, &mut LazyStateID)>,
    piece: &[u8],
    index: usize,
) -> usize {
    let target = engine.openings.next_candidate(piece, index);
    if target > index
        && let Some((scan, cache, state)) = forward
    {
        *state = scan.start_after(cache, piece[target - 1], *state);
    }
    target
}

/// Steps the live guard runs over `piece[index]` and starts one there if the byte can begin a
/// guarded match. Runs only move the release frontier, so doing this before the slow path
/// handles the byte makes no difference.
#[inline(always)]
fn step_guard(
    engine: &ScopeEngine,
    guard: &mut GuardState,
    window: &Window,
    piece: &[u8],
    base: u64,
    index: usize,
) {
    let (Some(automaton), Some(&byte)) = (&engine.guard, piece.get(index)) else {
        return;
    };
    if guard.has_runs()
        || automaton.may_start(byte)
            // With the next byte in hand, a start that it cannot continue is no start: the
            // tentative run would be dropped on that byte, and nothing is released in between.
            && piece
                .get(index + 1)
                .is_none_or(|&next| automaton.may_start_pair(byte, next))
    {
        let position = base + index as u64;
        let look_behind = match index.checked_sub(1) {
            Some(before) => piece.get(before).copied(),
            None => position
                .checked_sub(1)
                .and_then(|before| window.bytes().get(window.index(before)).copied()),
        };
        guard.step(automaton, position, byte, look_behind);
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
        self.captures
            .iter()
            .find(|(group, _)| group == name)
            .map(|(_, text)| text.as_str())
    }
}
