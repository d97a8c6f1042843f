//! Helpers shared by the integration tests: feed a text in given pieces and collect what the
//! scanner reported, piece by piece.

use std::sync::Arc;

use midstream_analysis::{Detection, Detector, ScanOutput, Scanner, Scope};

/// What one run over a text reported.
#[derive(Debug)]
pub struct Run {
    /// Detections reported by each feed call, then (last entry) by `finish`.
    pub per_call: Vec<Vec<Detection>>,
    /// Concatenated released text.
    pub released: String,
    /// Whether a stop rule ended the stream.
    pub stopped: bool,
    /// The largest `held_back()` seen after any feed.
    pub max_held_back: u64,
}

impl Run {
    /// Every detection in report order.
    pub fn detections(&self) -> Vec<Detection> {
        self.per_call.iter().flatten().cloned().collect()
    }
}

/// Feeds `pieces` one by one, then finishes.
pub fn run(detector: &Arc<Detector>, scope: Scope, pieces: &[&[u8]]) -> Run {
    let mut scanner = Scanner::new(Arc::clone(detector), scope);
    let mut out = ScanOutput::default();
    let mut per_call = Vec::new();
    let mut released = String::new();
    let mut stopped = false;
    let mut max_held_back = 0;
    for piece in pieces {
        out.clear();
        scanner.feed(piece, &mut out);
        per_call.push(out.detections.clone());
        released.push_str(&out.released);
        stopped |= out.stopped;
        max_held_back = max_held_back.max(scanner.held_back());
    }
    out.clear();
    scanner.finish(&mut out);
    per_call.push(out.detections.clone());
    released.push_str(&out.released);
    stopped |= out.stopped;
    assert_eq!(scanner.held_back(), 0, "finish releases everything");
    Run {
        per_call,
        released,
        stopped,
        max_held_back,
    }
}

/// Splits `text` at the given byte offsets (sorted, deduplicated, clamped).
pub fn split_at<'a>(text: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&cut| cut.min(text.len())).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(&text[from..cut]);
        from = cut;
    }
    pieces.push(&text[from..]);
    pieces
}

/// One byte per piece.
pub fn bytes(text: &[u8]) -> Vec<&[u8]> {
    text.chunks(1).collect()
}
