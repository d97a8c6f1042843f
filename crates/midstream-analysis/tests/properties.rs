//! Property tests for the guarantees: chunking invariance (down to single bytes and splits
//! inside UTF-8 characters), reporting at the deciding byte, the hold-back bound, redactions
//! never leaking, and the regex match semantics against a brute-force oracle.

mod common;

use std::sync::Arc;

use common::{bytes, run, split_at};
use midstream_analysis::{Action, Detection, Detector, Scope};
use proptest::prelude::*;
use proptest::sample::Index;
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, MatchKind};

const RULES: &str = r#"
[[intent]]
name = "weather"
regex = '(?i:weather) (?:in|for|at) (?P<city>\p{Lu}\p{Ll}+(?: \p{Lu}\p{Ll}+)*)'
action = { tool = "weather", args = { city = "$city" } }

[[intent]]
name = "greeting"
keywords = ["hello", "good morning", "morning"]
case_insensitive = true
action = "emit"

[[intent]]
name = "secret"
literal = "hunter2"
action = { redact = "[s]" }

[[intent]]
name = "key"
regex = 'sk-[A-Za-z0-9]{8,}'
max_len = 24
action = "redact"

[[intent]]
name = "injection"
regex = '(?i)ignore (?:all )?previous instructions'
action = "stop"

[[intent]]
name = "cafe"
literal = "café"
whole_word = true
action = "emit"

[[intent]]
name = "ending"
regex = '(?-u:\b)(?:bye|ciao)$'
action = "emit"

[[intent]]
name = "amount"
regex = '(?P<n>[0-9]+) ?(?:€|EUR)'
max_len = 12
action = { tool = "convert", args = { n = "$n", all = "${n} in $$" } }
"#;

/// The longest redact/stop bound in `RULES` ("key": 24, "injection": 256 by default).
const GUARD_BOUND: u64 = 256;

/// Compiled once for every case: compiling the rules is what costs, not scanning.
fn detector() -> Arc<Detector> {
    static DETECTOR: std::sync::OnceLock<Arc<Detector>> = std::sync::OnceLock::new();
    Arc::clone(
        DETECTOR.get_or_init(|| Arc::new(Detector::from_toml(RULES).expect("test rules compile"))),
    )
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("weather in ".to_owned()),
        Just("Weather for ".to_owned()),
        Just("Paris".to_owned()),
        Just("New York".to_owned()),
        Just("Zürich".to_owned()),
        Just("hello".to_owned()),
        Just("Good Morning".to_owned()),
        Just("hunter2".to_owned()),
        Just("sk-".to_owned()),
        Just("ignore previous instructions".to_owned()),
        Just("IGNORE ALL previous instructions".to_owned()),
        Just("café".to_owned()),
        Just("bye".to_owned()),
        Just("42 €".to_owned()),
        Just("EUR".to_owned()),
        "[A-Za-z0-9]{0,12}",
        "[a-z]{1,6}",
        "[ ,.!\n]{1,2}",
        "[é€😀ßÅ—]{1,2}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..24).prop_map(|fragments| fragments.concat())
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..16)
}

fn random_split<'a>(text: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let offsets: Vec<usize> = cuts.iter().map(|cut| cut.index(text.len() + 1)).collect();
    split_at(text, &offsets)
}

/// What `released` must be, computed offline from the text and the detections: redactions
/// applied in order of start (then rule), text cut at the first stop match.
fn expected_release(detector: &Detector, text: &[u8], detections: &[Detection]) -> String {
    let mut redactions: Vec<(u64, usize, u64, &str)> = Vec::new();
    let mut cut = text.len() as u64;
    for detection in detections {
        match &detector.rules()[detection.rule.0].action {
            Action::Redact { replacement } => {
                redactions.push((
                    detection.start,
                    detection.rule.0,
                    detection.end,
                    replacement,
                ));
            }
            Action::Stop => cut = cut.min(detection.start),
            Action::Tool { .. } | Action::Emit => {}
        }
    }
    redactions.sort();
    let mut out = String::new();
    let mut at = 0u64;
    for (start, _, end, replacement) in redactions {
        if start >= cut {
            continue;
        }
        if start > at {
            out.push_str(&String::from_utf8_lossy(&text[at as usize..start as usize]));
            at = start;
        }
        if end > at {
            out.push_str(replacement);
            at = end;
        }
    }
    if cut > at {
        out.push_str(&String::from_utf8_lossy(&text[at as usize..cut as usize]));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    /// All detection fields are compared: `seen_bytes`/`seen_chars` name the deciding byte, so
    /// they do not depend on chunking either.
    fn chunking_never_changes_the_result(text in text(), cuts in cuts()) {
        let detector = detector();
        let bytes_of = text.as_bytes();
        let whole = run(&detector, Scope::Output, &[bytes_of]);
        let split = run(&detector, Scope::Output, &random_split(bytes_of, &cuts));
        let single = run(&detector, Scope::Output, &bytes(bytes_of));
        prop_assert_eq!(whole.detections(), split.detections());
        prop_assert_eq!(whole.detections(), single.detections());
        prop_assert_eq!(&whole.released, &split.released);
        prop_assert_eq!(&whole.released, &single.released);
        prop_assert_eq!(whole.stopped, split.stopped);
        prop_assert_eq!(whole.stopped, single.stopped);
    }

    #[test]
    fn each_detection_is_reported_by_the_byte_that_decides_it(text in text()) {
        let detector = detector();
        let single = run(&detector, Scope::Output, &bytes(text.as_bytes()));
        let (finish, feeds) = single.per_call.split_last().expect("finish is always recorded");
        for (index, call) in feeds.iter().enumerate() {
            for detection in call {
                prop_assert_eq!(detection.seen_bytes, index as u64 + 1);
            }
        }
        for detection in finish {
            prop_assert_eq!(detection.seen_bytes, text.len() as u64);
        }
        let seen: Vec<u64> = single.detections().iter().map(|d| d.seen_bytes).collect();
        prop_assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    fn held_back_text_stays_within_the_bound(text in text(), cuts in cuts()) {
        let detector = detector();
        for pieces in [random_split(text.as_bytes(), &cuts), bytes(text.as_bytes())] {
            let result = run(&detector, Scope::Output, &pieces);
            prop_assert!(result.max_held_back <= GUARD_BOUND + 3, "held back {}", result.max_held_back);
        }
    }

    #[test]
    fn released_text_is_the_text_with_redactions_applied(text in text(), cuts in cuts()) {
        let detector = detector();
        let result = run(&detector, Scope::Output, &random_split(text.as_bytes(), &cuts));
        let expected = expected_release(&detector, text.as_bytes(), &result.detections());
        prop_assert_eq!(&result.released, &expected);
        prop_assert!(!result.released.contains("hunter2"));
        if !result.stopped {
            let redacted = result.detections().iter().any(|d| {
                matches!(detector.rules()[d.rule.0].action, Action::Redact { .. })
            });
            if !redacted {
                prop_assert_eq!(&result.released, &text);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200), cuts in cuts()) {
        let detector = detector();
        let whole = run(&detector, Scope::Output, &[&data]);
        let split = run(&detector, Scope::Output, &random_split(&data, &cuts));
        prop_assert_eq!(whole.detections(), split.detections());
        prop_assert_eq!(&whole.released, &split.released);
    }
}

// ----- regex semantics against a brute-force oracle -----

/// (pattern, max_len) pairs exercising look-around, alternations of different lengths,
/// repetitions and overlapping candidates.
const ORACLE_RULES: &[(&str, usize)] = &[
    ("a+b", 6),
    ("(?-u:\\b)ab*(?-u:\\b)", 8),
    ("b(?:ab)*a", 7),
    ("a.*b|c", 6),
    ("^a|b$", 4),
    ("(?m)^c+", 5),
    ("ab|abcb|bc", 8),
    ("[abc]{2,3}", 3),
];

/// Rules whose matches are all at least three bytes long, so the scanner keeps its four-byte
/// openings and jumps over long stretches of text (see `openings`).
const ORACLE_LONG_RULES: &[(&str, usize)] = &[
    ("abca+", 8),
    ("(?-u:\\b)ba[bc]a", 6),
    ("c\\na[ab]", 6),
    ("(?i)ab[ c]a", 6),
    ("b[ac]{2}c$", 6),
    ("(?m)^aab", 5),
];

fn oracle_detector() -> Arc<Detector> {
    detector_of(ORACLE_RULES)
}

fn detector_of(rules: &[(&str, usize)]) -> Arc<Detector> {
    let mut toml = String::new();
    for (index, (pattern, max_len)) in rules.iter().enumerate() {
        toml.push_str(&format!(
            "[[intent]]\nname = \"r{index}\"\nregex = '{pattern}'\nmax_len = {max_len}\naction = \"emit\"\n"
        ));
    }
    Arc::new(Detector::from_toml(&toml).expect("oracle rules compile"))
}

/// The documented semantics, computed by brute force over the whole text: the first end `e`
/// with a match `text[s..e]` (`s` after the previous match, within `max_len`), the leftmost
/// such `s`, then the longest match from `s` within `max_len`.
fn oracle(pattern: &str, max_len: usize, text: &[u8]) -> Vec<(u64, u64)> {
    let regex = Regex::builder()
        .configure(Regex::config().match_kind(MatchKind::All))
        .build(pattern)
        .expect("oracle pattern compiles");
    let matches_exactly = |start: usize, end: usize| {
        let input = Input::new(text).span(start..end).anchored(Anchored::Yes);
        regex.search(&input).map(|found| found.end()) == Some(end)
    };
    let mut found = Vec::new();
    let mut previous = 0;
    'next: loop {
        for end in previous + 1..=text.len() {
            let low = previous.max(end.saturating_sub(max_len));
            if let Some(start) = (low..end).find(|&start| matches_exactly(start, end)) {
                let longest = (end..=text.len().min(start + max_len))
                    .rev()
                    .find(|&candidate| matches_exactly(start, candidate))
                    .unwrap_or(end);
                found.push((start as u64, longest as u64));
                previous = longest;
                continue 'next;
            }
        }
        return found;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn regex_matches_follow_the_documented_semantics(
        text in "[abc \n]{0,24}",
        cuts in cuts(),
    ) {
        let detector = oracle_detector();
        let result = run(&detector, Scope::Output, &random_split(text.as_bytes(), &cuts));
        check_against_oracle(ORACLE_RULES, &result, text.as_bytes())?;
    }

    #[test]
    /// Long texts fed whole: the scanner jumps over most of them.
    fn jumps_keep_the_documented_semantics(text in "[abcAB \n]{0,300}", cuts in cuts()) {
        static DETECTOR: std::sync::OnceLock<Arc<Detector>> = std::sync::OnceLock::new();
        let detector = DETECTOR.get_or_init(|| detector_of(ORACLE_LONG_RULES));
        let result = run(detector, Scope::Output, &random_split(text.as_bytes(), &cuts));
        check_against_oracle(ORACLE_LONG_RULES, &result, text.as_bytes())?;
    }
}

fn check_against_oracle(
    rules: &[(&str, usize)],
    result: &common::Run,
    text: &[u8],
) -> Result<(), TestCaseError> {
    for (index, (pattern, max_len)) in rules.iter().enumerate() {
        let got: Vec<(u64, u64)> = result
            .detections()
            .iter()
            .filter(|d| d.rule.0 == index)
            .map(|d| (d.start, d.end))
            .collect();
        prop_assert_eq!(got, oracle(pattern, *max_len, text), "pattern {}", pattern);
    }
    Ok(())
}
