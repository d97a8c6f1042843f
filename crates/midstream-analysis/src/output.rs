//! What a scan reports: detections, released text, and whether a stop rule ended the stream.

use crate::rule::RuleId;

/// One match of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The rule, an index into [`crate::Detector::rules`].
    pub rule: RuleId,
    /// The matched text (invalid UTF-8, if any was fed, shows as U+FFFD).
    pub matched: String,
    /// Named groups that took part in the match, `(name, text)`, in pattern order. Empty for
    /// literal/keywords rules.
    pub captures: Vec<(String, String)>,
    /// Tool rules: the argument template filled in from the match.
    pub args: Option<serde_json::Value>,
    /// Byte offset of the match in the scope's text.
    pub start: u64,
    /// Byte offset just past the match.
    pub end: u64,
    /// Bytes fed when the detection became certain: the byte at `seen_bytes - 1` decided it
    /// (at `finish`, the text's length).
    pub seen_bytes: u64,
    /// Characters (counted by their first byte) among those `seen_bytes` bytes.
    pub seen_chars: u64,
}

/// The result of one [`crate::Scanner::feed`] or [`crate::Scanner::finish`] call. Reuse one
/// across calls with [`ScanOutput::clear`] so that steady-state scanning does not allocate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanOutput {
    /// Detections that became certain during the call, ordered by the byte that decided them,
    /// then by rule order.
    pub detections: Vec<Detection>,
    /// Only when [`crate::Scanner::guards_output`]: the text that is now safe to show, with
    /// redactions applied. Always ends on a UTF-8 character boundary (a partial character is
    /// held back); the concatenation over all calls is the same however the stream was split.
    pub released: String,
    /// A stop rule matched: the caller ends the stream. `released` then holds only text before
    /// the match (the stop phrase itself is never released), and later feeds are ignored.
    pub stopped: bool,
}

impl ScanOutput {
    /// Empties the output for the next call, keeping the allocated capacity.
    pub fn clear(&mut self) {
        self.detections.clear();
        self.released.clear();
        self.stopped = false;
    }
}
