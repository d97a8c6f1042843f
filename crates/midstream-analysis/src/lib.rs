//! Incremental intent detection over streamed text. Pure and synchronous: no I/O, no async.
//!
//! Rules are loaded from TOML and compiled once into a [`Detector`]; each stream gets a
//! [`Scanner`] that is fed the stream's bytes chunk by chunk and reports [`Detection`]s as soon
//! as they are certain.
//!
//! ```
//! use std::sync::Arc;
//! use midstream_analysis::{Detector, ScanOutput, Scanner, Scope};
//!
//! let detector = Arc::new(Detector::from_toml(r#"
//!     [[intent]]
//!     name = "weather"
//!     regex = '(?i:weather) (?:in|for|at) (?P<city>\p{Lu}\p{Ll}+(?: \p{Lu}\p{Ll}+)*)'
//!     action = { tool = "weather", args = { city = "$city" } }
//!
//!     [[intent]]
//!     name = "secret"
//!     literal = "hunter2"
//!     action = { redact = "[redacted]" }
//! "#)?);
//!
//! let mut scanner = Scanner::new(Arc::clone(&detector), Scope::Output);
//! let mut out = ScanOutput::default();
//! let mut shown = String::new();
//! for chunk in ["the weather in Par", "is looks sunny; pass", "word: hunter2."] {
//!     out.clear();
//!     scanner.feed(chunk.as_bytes(), &mut out);
//!     for detection in &out.detections {
//!         let rule = &detector.rules()[detection.rule.0];
//!         println!("{} fired on {:?} with {:?}", rule.name, detection.matched, detection.args);
//!     }
//!     // The scope has a redact rule, so the client is sent `released`, not the chunk.
//!     shown.push_str(&out.released);
//! }
//! out.clear();
//! scanner.finish(&mut out);
//! shown.push_str(&out.released);
//! assert_eq!(shown, "the weather in Paris looks sunny; password: [redacted].");
//! # Ok::<(), midstream_analysis::RuleError>(())
//! ```
//!
//! # Match semantics
//!
//! Positions are byte offsets in the scope's text. Each rule is matched on its own; matches of
//! one rule never overlap, matches of different rules may.
//!
//! **Regex rules** (leftmost-longest, bounded by `max_len`):
//! 1. *End*: the scope's forward scan (one lazy DFA over all regex rules, unanchored) reports
//!    the first position `e` at which some match of rule `r` ends.
//! 2. *Start*: `s` is the smallest position with `r` matching `text[s..e]`, subject to
//!    `s >= ` the end of `r`'s previous match and `e - s <= max_len` (a reverse anchored DFA
//!    over the window). If none exists, nothing happens at `e`.
//! 3. *End, final*: from `s`, the match is the longest `text[s..x]` with `x - s <= max_len`
//!    (an anchored forward DFA stepped with each new byte). A longer match than `max_len`
//!    allows is thus settled at its last match end within the bound.
//! 4. It fires on the first byte after which no longer match is possible: the byte that
//!    makes the anchored DFA unable to reach any further match state, the byte at
//!    `s + max_len`, or [`Scanner::finish`]. In "the weather in Paris looks sunny" the weather
//!    rule fires on the `l` of "looks" (a space might have been followed by " Lyon"), with
//!    `city = "Paris"`.
//! 5. The next match of `r` is searched from the end of this one; ends reported by the forward
//!    scan while this match grew are examined then.
//!
//! Look-around works across chunk edges (`^`, `$`, ASCII `(?-u:\b)`, `(?m)`): `^` is the start
//! of the scope's text and `$` its end. Unicode word boundaries (`\b` without `(?-u)`) are
//! rejected when rules load, because a DFA cannot evaluate them on non-ASCII text.
//!
//! **Literal and keywords rules**: a keyword matches where its bytes occur (ASCII case folding
//! with `case_insensitive`; use a regex with `(?i)` for Unicode folding). Among keywords of one
//! rule ending at the same position the longest wins; a match overlapping the rule's previous
//! match is skipped. Without `whole_word` a match fires on its last byte. With `whole_word`
//! the characters before and after it must not be word characters (alphanumeric or `_`;
//! the start and end of the text count as non-word): the match fires once the next character
//! is complete (or at `finish`).
//!
//! **Order**: detections are reported by the `feed` call containing the byte that decided them
//! (never later), ordered by that byte, then by rule order.
//!
//! **Guarded output**: when the scope has `redact` or `stop` rules, text is held back only
//! while a redact/stop match could still start in it: from the earliest position from which an
//! anchored run of the guarded patterns can still reach a match, at most the longest guarded
//! bound (a regex's `max_len`, a literal's length) plus 3 bytes of a character not yet known.
//! Everything before is released at once; a redaction replaces its match (overlapping
//! redactions are applied in order of start, each replacing what the earlier ones left). A stop
//! match releases only the text before it, sets [`ScanOutput::stopped`], settles the other
//! pending matches at their longest match so far, and ends the scan. Redact and stop matches
//! are reported as detections too.
//!
//! **Cost**: two DFA steps per byte (regex scan and keyword automaton) on the common path,
//! whatever the number of rules; bytes that may begin a guarded match and bytes inside a
//! pending match cost work bounded by the rules' bounds. Nothing is ever rescanned beyond a
//! rule's bound, and a scanner's memory is bounded by the rules, not by the stream.

mod args;
mod config;
mod detector;
mod engine;
mod error;
mod forward;
mod guard;
mod literal;
mod liveness;
mod openings;
mod output;
mod regex_program;
mod rule;
mod scan;
mod scanner;
mod utf8;
mod window;

pub use config::{ActionConfig, RuleConfig, RuleSet, Scope};
pub use detector::Detector;
pub use error::{RuleError, RuleLabel, RuleProblem};
pub use output::{Detection, ScanOutput};
pub use rule::{
    Action, DEFAULT_MAX_LEN, DEFAULT_REDACTION, MAX_PATTERN_BOUND, Pattern, Rule, RuleId,
};
pub use scanner::Scanner;
