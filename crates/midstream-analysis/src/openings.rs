//! The bytes a match can begin with, so that text in which no match can begin is jumped over
//! instead of stepped through the automata byte by byte.
//!
//! A *thread* is one rule's match attempt started at one position. An [`Openings`] set holds
//! every four-byte *opening* some thread can begin with and not be finished with: a thread
//! whose first four bytes are not in the set reports no match while it reads them and is dead
//! after them. When the scanner's automata hold no thread but the ones starting at the current
//! byte (the forward scan is in a start state, the keyword automaton at its root, no guard run
//! is alive), it may jump to the next position whose opening is in the set: every thread it
//! leaves out would have died without a report, so restarting the forward scan from its start
//! state there (for the byte before it) reports exactly what stepping every byte would have.
//! A jump never lands in the last three bytes of a piece: those are stepped, so every thread
//! left out has died before the piece ends and the guard's hold-back at the end of the piece is
//! the same too (guard runs start from the same patterns).
//!
//! The set is built once per scope from every rule's anchored automaton (regex rules, with every
//! look-behind) and every keyword (with the keyword automaton's case folding), so it never
//! leaves out an opening. A position is tested in two steps: its first two bytes and a bucket
//! of the third ([`FirstPairs`], exact, 64 KiB), which turns away nine positions in ten of
//! English text at a few instructions each; then the whole opening, hashed (32 KiB, a few per
//! cent of false positives, which only cost a few bytes of stepping). Rules with too many
//! openings (a regex beginning with `\w+`, a keyword of one or two bytes) leave only the first
//! step, with two bytes stepped at the end of a piece instead of three.

use regex_automata::dfa::Automaton;
use regex_automata::util::primitives::StateID;

use crate::liveness::{DenseDfa, Liveness, start_configs};

/// The four-byte openings are hashed to this many bits.
const QUAD_BITS: u32 = 18;
/// Openings a scope may enumerate before it falls back to pairs (about 2 ms of work).
const QUAD_BUDGET: usize = 1 << 20;
/// Above this share of bits set, hashed openings would let through more than pairs do.
const QUAD_MAX_FILL: f64 = 0.125;

/// For each pair `(first, second)`, which third bytes can follow it at the beginning of a
/// match: a mask of eight buckets (`third & 7`; `a` and `A` share one, three or four letters
/// each), zero when no match begins with the pair. One byte per pair, indexed by the two bytes
/// as a `u16`: the fewest instructions per position scanned.
#[derive(Clone)]
pub(crate) struct FirstPairs {
    thirds: Box<[u8; 1 << 16]>,
}

/// Every third byte.
const ANY_THIRD: u8 = u8::MAX;

impl std::fmt::Debug for FirstPairs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs = self.thirds.iter().filter(|&&mask| mask != 0).count();
        formatter
            .debug_struct("FirstPairs")
            .field("pairs", &pairs)
            .finish()
    }
}

impl FirstPairs {
    /// The empty set: no match can begin anywhere.
    pub(crate) fn none() -> FirstPairs {
        FirstPairs {
            thirds: Box::new([0; 1 << 16]),
        }
    }

    fn allow(&mut self, first: u8, second: u8, thirds: u8) {
        self.thirds[usize::from(pair(first, second))] |= thirds;
    }

    fn allow_every_second(&mut self, first: u8) {
        let row = usize::from(first) << 8;
        self.thirds[row..row + 256].fill(ANY_THIRD);
    }

    /// Whether some match can begin with `first` followed by `second`.
    #[inline]
    pub(crate) fn contains(&self, first: u8, second: u8) -> bool {
        self.thirds[usize::from(pair(first, second))] != 0
    }

    /// Whether some match can begin with `pair` (as [`pair`] makes it) followed by `third`.
    #[inline]
    fn may_open(&self, pair: u16, third: u8) -> bool {
        self.thirds[usize::from(pair)] & bucket(third) != 0
    }

    /// Adds how every match of an anchored automaton can begin, after any look-behind: the
    /// bytes after which a match is already reported (matches show one byte late) or can still
    /// come.
    pub(crate) fn add_automaton(&mut self, dfa: &DenseDfa, liveness: &Liveness) {
        let alive = |state: StateID| dfa.is_match_state(state) || liveness.can_match_later(state);
        for start in distinct_starts(dfa) {
            for first in 0..=255u8 {
                let after_first = dfa.next_state(start, first);
                if dfa.is_match_state(after_first) {
                    self.allow_every_second(first);
                    continue;
                }
                if !liveness.can_match_later(after_first) {
                    continue;
                }
                for second in 0..=255u8 {
                    let after_second = dfa.next_state(after_first, second);
                    if dfa.is_match_state(after_second) {
                        self.allow(first, second, ANY_THIRD);
                    } else if liveness.can_match_later(after_second) {
                        let thirds = (0..=255u8)
                            .filter(|&third| alive(dfa.next_state(after_second, third)))
                            .fold(0, |mask, third| mask | bucket(third));
                        // No third byte but a match at the end of the text right after the pair:
                        // the pair still begins one.
                        self.allow(first, second, if thirds == 0 { ANY_THIRD } else { thirds });
                    }
                }
            }
        }
    }

    /// Adds how a keyword begins; `fold` when the keyword automaton folds ASCII case (it then
    /// leaves its root on either case, whatever the keyword's own rule says).
    pub(crate) fn add_keyword(&mut self, keyword: &[u8], fold: bool) {
        match keyword {
            [] => self.thirds.fill(ANY_THIRD),
            [first] => {
                for first in case_variants(*first, fold) {
                    self.allow_every_second(first);
                }
            }
            [first, second, rest @ ..] => {
                let thirds = rest.first().map_or(ANY_THIRD, |&third| {
                    case_variants(third, fold)
                        .into_iter()
                        .fold(0, |mask, third| mask | bucket(third))
                });
                for first in case_variants(*first, fold) {
                    for second in case_variants(*second, fold) {
                        self.allow(first, second, thirds);
                    }
                }
            }
        }
    }
}

/// The bucket of a third byte in [`FirstPairs`]' masks.
fn bucket(third: u8) -> u8 {
    1 << (third & 7)
}

/// Four-byte openings, hashed: a superset of the real ones.
#[derive(Clone)]
struct Quads {
    bits: Box<[u64]>,
    /// Openings inserted so far (with repeats), against [`QUAD_BUDGET`].
    inserted: usize,
}

impl std::fmt::Debug for Quads {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Quads")
            .field("inserted", &self.inserted)
            .finish()
    }
}

impl Quads {
    fn new() -> Quads {
        Quads {
            bits: vec![0; (1 << QUAD_BITS) / 64].into_boxed_slice(),
            inserted: 0,
        }
    }

    fn slot(quad: u32) -> usize {
        (quad.wrapping_mul(0x9E37_79B1) >> (32 - QUAD_BITS)) as usize
    }

    #[inline]
    fn contains(&self, quad: [u8; 4]) -> bool {
        let slot = Quads::slot(u32::from_le_bytes(quad));
        self.bits[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// Inserts every opening that begins with `prefix` (3 or 4 bytes); `false` when that would
    /// exceed the budget, or for a shorter prefix (a match or keyword of one or two bytes): its
    /// 2^16 or more openings would fill the table beyond use.
    fn insert_prefix(&mut self, prefix: &[u8]) -> bool {
        if prefix.len() < 3 {
            return false;
        }
        let fixed_len = prefix.len().min(4);
        let count: u32 = 1 << (8 * (4 - fixed_len));
        if self.inserted + count as usize > QUAD_BUDGET {
            return false;
        }
        self.inserted += count as usize;
        let fixed = prefix
            .iter()
            .take(4)
            .enumerate()
            .fold(0u32, |quad, (index, &byte)| {
                quad | u32::from(byte) << (8 * index)
            });
        for rest in 0..count {
            let quad = fixed | rest.checked_shl(8 * fixed_len as u32).unwrap_or(0);
            let slot = Quads::slot(quad);
            self.bits[slot / 64] |= 1 << (slot % 64);
        }
        true
    }

    /// Walks the automaton from `state` (after `prefix[..depth]`) and inserts every opening
    /// it can begin; `false` when the budget ran out.
    fn walk(
        &mut self,
        dfa: &DenseDfa,
        liveness: &Liveness,
        state: StateID,
        prefix: &mut [u8; 4],
        depth: usize,
    ) -> bool {
        for byte in 0..=255u8 {
            let next = dfa.next_state(state, byte);
            prefix[depth] = byte;
            let complete = if dfa.is_match_state(next) {
                self.insert_prefix(&prefix[..=depth])
            } else if !liveness.can_match_later(next) {
                true
            } else if depth == 3 {
                self.insert_prefix(&prefix[..])
            } else {
                self.walk(dfa, liveness, next, prefix, depth + 1)
            };
            if !complete {
                return false;
            }
        }
        true
    }
}

/// What the matches of a scope's rules can begin with.
#[derive(Debug, Clone)]
pub(crate) struct Openings {
    pairs: FirstPairs,
    /// `None` once some rule had too many openings: jumps then look at pairs only.
    quads: Option<Quads>,
}

impl Openings {
    /// The empty set: no match can begin anywhere.
    pub(crate) fn none() -> Openings {
        Openings {
            pairs: FirstPairs::none(),
            quads: Some(Quads::new()),
        }
    }

    /// Adds what the matches of an anchored automaton can begin with, after any look-behind.
    pub(crate) fn add_automaton(&mut self, dfa: &DenseDfa, liveness: &Liveness) {
        self.pairs.add_automaton(dfa, liveness);
        if let Some(quads) = &mut self.quads {
            let mut prefix = [0u8; 4];
            let complete = distinct_starts(dfa)
                .into_iter()
                .all(|start| quads.walk(dfa, liveness, start, &mut prefix, 0));
            if !complete {
                self.quads = None;
            }
        }
    }

    /// Adds what a keyword begins with; `fold` when the keyword automaton folds ASCII case.
    pub(crate) fn add_keyword(&mut self, keyword: &[u8], fold: bool) {
        self.pairs.add_keyword(keyword, fold);
        let Some(quads) = &mut self.quads else { return };
        let head = &keyword[..keyword.len().min(4)];
        // Every combination of cases of the head: bit `i` of `cases` picks byte `i`'s variant.
        let complete = !head.is_empty()
            && (0..1u32 << head.len()).all(|cases| {
                let prefix: Vec<u8> = head
                    .iter()
                    .enumerate()
                    .map(|(index, &byte)| case_variants(byte, fold)[(cases >> index & 1) as usize])
                    .collect();
                quads.insert_prefix(&prefix)
            });
        if !complete {
            self.quads = None;
        }
    }

    /// The set to scan with: hashed openings are dropped if so many are set that nearly every
    /// position would look like one.
    pub(crate) fn finish(mut self) -> Openings {
        if let Some(quads) = &self.quads {
            let set: u32 = quads.bits.iter().map(|word| word.count_ones()).sum();
            if f64::from(set) > QUAD_MAX_FILL * f64::from(1u32 << QUAD_BITS) {
                self.quads = None;
            }
        }
        self
    }

    /// The first index at or after `from` where a match may begin; when there is none, the
    /// first of the last bytes of `bytes` whose opening is not whole yet (the last three, or
    /// the last two when only pairs are known), as those are never jumped over.
    #[inline]
    pub(crate) fn next_candidate(&self, bytes: &[u8], from: usize) -> usize {
        let unknown_tail = if self.quads.is_some() { 3 } else { 2 };
        let end = bytes.len().saturating_sub(unknown_tail);
        let (Some(&first), Some(&second), Some(thirds)) = (
            bytes.get(from),
            bytes.get(from + 1),
            bytes.get(from + 2..end + 2),
        ) else {
            return end.max(from);
        };
        // The pair at `at` rolls along: one byte loaded and one mask tested per position; the
        // hashed opening is only looked up where the pair and third byte can begin a match.
        let mut pair = pair(first, second);
        for (at, &third) in (from..).zip(thirds) {
            if self.pairs.may_open(pair, third)
                && self.quads.as_ref().is_none_or(|quads| {
                    bytes
                        .get(at..at + 4)
                        .is_some_and(|quad| quads.contains([quad[0], quad[1], quad[2], quad[3]]))
                })
            {
                return at;
            }
            pair = pair << 8 | u16::from(third);
        }
        end.max(from)
    }
}

/// The distinct anchored start states of `dfa`, over every look-behind.
fn distinct_starts(dfa: &DenseDfa) -> Vec<StateID> {
    let mut starts: Vec<StateID> = start_configs()
        .filter_map(|config| dfa.start_state(&config).ok())
        .collect();
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// Two bytes as one index.
fn pair(first: u8, second: u8) -> u16 {
    u16::from(first) << 8 | u16::from(second)
}

/// The byte and, when folding ASCII case, its other case (the same byte twice otherwise).
fn case_variants(byte: u8, fold: bool) -> [u8; 2] {
    if fold {
        [byte.to_ascii_lowercase(), byte.to_ascii_uppercase()]
    } else {
        [byte, byte]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::anchored;

    fn openings_of(patterns: &[&str]) -> Openings {
        let mut openings = Openings::none();
        for pattern in patterns {
            let dfa = anchored(pattern);
            openings.add_automaton(&dfa, &Liveness::analyze(&dfa));
        }
        openings.finish()
    }

    fn pairs_of(pattern: &str) -> FirstPairs {
        let dfa = anchored(pattern);
        let mut pairs = FirstPairs::none();
        pairs.add_automaton(&dfa, &Liveness::analyze(&dfa));
        pairs
    }

    #[test]
    fn pairs_follow_the_automaton_and_every_look_behind() {
        let pairs = pairs_of(r"(?i:or)der [0-9]+");
        assert!(pairs.contains(b'o', b'r') && pairs.contains(b'O', b'R'));
        assert!(!pairs.contains(b'o', b'x') && !pairs.contains(b'r', b'd'));
        // After a word byte the boundary fails, after a space it holds: both starts count.
        let bounded = pairs_of(r"(?-u:\b)ab");
        assert!(bounded.contains(b'a', b'b') && !bounded.contains(b'b', b'a'));
        // A one-byte match is reported on the byte after it, whatever that byte is.
        let digit = pairs_of(r"[0-9]");
        assert!(digit.contains(b'7', b'x') && digit.contains(b'7', b'\n'));
        assert!(!digit.contains(b'x', b'7'));
    }

    #[test]
    fn keyword_pairs_follow_the_automaton_s_case_folding() {
        let mut pairs = FirstPairs::none();
        pairs.add_keyword(b"refund", true);
        pairs.add_keyword(b"x", false);
        pairs.add_keyword(b"Qu", false);
        assert!(pairs.contains(b'r', b'e') && pairs.contains(b'R', b'E'));
        assert!(pairs.contains(b'x', b'!') && !pairs.contains(b'X', b'!'));
        assert!(pairs.contains(b'Q', b'u') && !pairs.contains(b'q', b'u'));
        let mut everything = FirstPairs::none();
        everything.add_keyword(b"", false);
        assert!(everything.contains(0, 0) && everything.contains(255, 255));
    }

    #[test]
    fn openings_of_a_regex_skip_what_only_starts_like_it() {
        let openings = openings_of(&[r"(?i:or)der [0-9]+"]);
        assert!(openings.quads.is_some());
        assert_eq!(
            openings.next_candidate(b"xx ordinary ORDER 7 ORder 8", 0),
            20
        );
        assert_eq!(
            openings.next_candidate(b"xx order", 4),
            5,
            "the tail is stepped"
        );
    }

    #[test]
    fn a_rule_with_very_short_matches_falls_back_to_pairs() {
        let openings = openings_of(&[r"[0-9]"]);
        assert!(openings.quads.is_none());
        assert_eq!(openings.next_candidate(b"ab7cd", 0), 2);
        assert_eq!(
            openings.next_candidate(b"abcde", 0),
            3,
            "the last two bytes are stepped"
        );
        let mut one_byte = Openings::none();
        one_byte.add_keyword(b"x", false);
        assert!(one_byte.finish().quads.is_none());
    }

    #[test]
    fn keyword_openings_cover_every_case_of_the_head() {
        let mut openings = Openings::none();
        openings.add_keyword(b"refund", true);
        openings.add_keyword(b"abc", false);
        let openings = openings.finish();
        assert!(openings.quads.is_some());
        assert_eq!(openings.next_candidate(b"xx ReFuNd", 0), 3);
        assert_eq!(openings.next_candidate(b"xxxabcxxx", 0), 3);
        assert_eq!(openings.next_candidate(b"xxxabxxxx", 0), 6);
        assert_eq!(openings.next_candidate(b"xxxxxxxxx", 0), 6);
        assert_eq!(openings.next_candidate(b"xxxxxxxxx", 7), 7);
        assert_eq!(openings.next_candidate(b"xx", 0), 0);
        assert_eq!(openings.next_candidate(b"", 0), 0);
    }
}
