//! After warm-up, feeding text in which nothing is detected does not allocate: the lazy DFA
//! cache comes warm from the pool, the window and scratch buffers keep their capacity.

use std::sync::Arc;

use midstream_analysis::{Detector, ScanOutput, Scanner, Scope};

const RULES: &str = r#"
[[intent]]
name = "weather"
regex = '(?i:weather) (?:in|for|at) (?P<city>\p{Lu}\p{Ll}+(?: \p{Lu}\p{Ll}+)*)'
action = { tool = "weather", args = { city = "$city" } }

[[intent]]
name = "greeting"
keywords = ["hello", "good morning"]
case_insensitive = true
action = "emit"

[[intent]]
name = "key"
regex = 'sk-[A-Za-z0-9]{20,}'
action = "redact"
"#;

const TEXT: &str = "The forecast says it will be sunny, so pack a hat — and some water. \
    Skies stay clear; winds are light and the sea is calm. Über café 😀 tasks, desk, risk. ";

fn feed_all(scanner: &mut Scanner, out: &mut ScanOutput, released: &mut usize) {
    for chunk in TEXT.as_bytes().chunks(4) {
        out.clear();
        scanner.feed(chunk, out);
        *released += out.released.len();
        assert!(out.detections.is_empty());
    }
}

#[test]
fn steady_state_feed_does_not_allocate() {
    let detector = Arc::new(Detector::from_toml(RULES).expect("test rules compile"));
    let mut out = ScanOutput::default();
    out.released.reserve(4096);
    out.detections.reserve(16);
    let mut released = 0;
    {
        // Warm-up: builds the lazy DFA states this text needs; the cache goes back to the pool.
        let mut warm = Scanner::new(Arc::clone(&detector), Scope::Output);
        feed_all(&mut warm, &mut out, &mut released);
        feed_all(&mut warm, &mut out, &mut released);
    }
    let mut scanner = Scanner::new(Arc::clone(&detector), Scope::Output);
    assert!(scanner.guards_output());
    feed_all(&mut scanner, &mut out, &mut released);
    let info = allocation_counter::measure(|| {
        for _ in 0..20 {
            feed_all(&mut scanner, &mut out, &mut released);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    assert!(released > 0);
}
