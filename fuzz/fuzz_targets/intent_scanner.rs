//! `intent_scanner`: the intent scanner (`midstream_analysis`) reports the same detections,
//! releases the same text and makes the same stop decision however the text is cut into
//! pieces, and never panics (issue 20; the promise is in docs/architecture.md, "Inflight
//! analysis guarantees").
//!
//! The input is the text, any bytes (invalid UTF-8 included). It is scanned whole, one byte
//! per piece (every position is then a cut, inside characters too), and in pieces of 1 to 32
//! bytes whose lengths come from a generator seeded with a hash of the input (so each mutation
//! tries other cuts), in both scopes, with the shipped rules (`config/intents.toml`) and with
//! [`RULES`], which adds the kinds of pattern the shipped file does not use.

#![no_main]

mod cuts;

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use midstream_analysis::{Detection, Detector, ScanOutput, Scanner, Scope};

/// Literals, keywords, whole words, an end anchor, overlapping redactions and a stop.
const RULES: &str = r#"
[[intent]]
name = "secret"
literal = "hunter2"
action = { redact = "[s]" }

[[intent]]
name = "greeting"
keywords = ["hello", "good morning", "morning"]
case_insensitive = true
action = "emit"

[[intent]]
name = "cafe"
literal = "café"
whole_word = true
action = "emit"

[[intent]]
name = "key"
regex = 'sk-[A-Za-z0-9]{8,}'
max_len = 24
action = "redact"

[[intent]]
name = "ending"
regex = '(?-u:\b)(?:bye|ciao)$'
action = "emit"

[[intent]]
name = "amount"
regex = '(?P<n>[0-9]+) ?(?:€|EUR)'
max_len = 12
action = { tool = "convert", args = { n = "$n", all = "${n} in $$" } }

[[intent]]
name = "injection"
regex = '(?i)ignore (?:all )?previous instructions'
action = "stop"
"#;

fn detectors() -> &'static [Arc<Detector>; 2] {
    static DETECTORS: OnceLock<[Arc<Detector>; 2]> = OnceLock::new();
    DETECTORS.get_or_init(|| {
        let shipped = include_str!("../../config/intents.toml");
        [shipped, RULES].map(|rules| Arc::new(Detector::from_toml(rules).expect("rules compile")))
    })
}

fuzz_target!(
    // Compiling the rules takes seconds in an instrumented build: before the first input, whose
    // time libFuzzer's `-timeout` would count.
    init: {
        detectors();
    },
    |text: &[u8]| {
        let random = cuts::piece_lengths(text, 32);
        for detector in detectors() {
            for scope in [Scope::Prompt, Scope::Output] {
                let whole = scan(detector, scope, text, &[text.len()]);
                let bytes = scan(detector, scope, text, &vec![1; text.len()]);
                assert_eq!(whole, bytes, "{scope:?}, one byte per piece: {text:?}");
                let pieces = scan(detector, scope, text, &random);
                assert_eq!(whole, pieces, "{scope:?}, random pieces: {text:?}");
            }
        }
    }
);

/// What a scan of `text`, fed in pieces of these lengths, reported in all.
#[derive(Debug, PartialEq)]
struct Scanned {
    detections: Vec<Detection>,
    released: String,
    stopped: bool,
}

fn scan(detector: &Arc<Detector>, scope: Scope, text: &[u8], lengths: &[usize]) -> Scanned {
    let mut scanner = Scanner::new(Arc::clone(detector), scope);
    let mut out = ScanOutput::default();
    let mut scanned = Scanned {
        detections: Vec::new(),
        released: String::new(),
        stopped: false,
    };
    let mut collect = |out: &mut ScanOutput| {
        scanned.detections.append(&mut out.detections);
        scanned.released.push_str(&out.released);
        scanned.stopped |= out.stopped;
        out.clear();
    };
    let mut rest = text;
    for &length in lengths {
        let (piece, after) = rest.split_at(length.min(rest.len()));
        scanner.feed(piece, &mut out);
        collect(&mut out);
        rest = after;
    }
    scanner.feed(rest, &mut out);
    collect(&mut out);
    scanner.finish(&mut out);
    collect(&mut out);
    assert_eq!(scanner.held_back(), 0, "finish releases everything");
    scanned
}
