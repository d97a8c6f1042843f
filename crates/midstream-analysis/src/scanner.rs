//! The per-stream handle the gateway drives.

use std::sync::Arc;

use crate::config::Scope;
use crate::detector::Detector;
use crate::output::ScanOutput;
use crate::scan::ScanState;

/// Scans one stream incrementally. Owns an `Arc<Detector>`; `Send`, so it can live in the
/// stream's task. Memory is bounded by the rules, not the stream: a look-back window of about
/// twice the longest rule bound, plus the lazy DFA cache of the scope's regex scan (pooled
/// across streams, see [`crate::Detector`]).
#[derive(Debug)]
pub struct Scanner {
    detector: Arc<Detector>,
    scope: Scope,
    state: ScanState,
}

impl Scanner {
    /// A scanner for a new stream of `scope` text.
    pub fn new(detector: Arc<Detector>, scope: Scope) -> Scanner {
        let state = ScanState::new(detector.engine(scope));
        Scanner {
            detector,
            scope,
            state,
        }
    }

    /// True when the scope has redact or stop rules: the caller must then send
    /// [`ScanOutput::released`] instead of the text it fed. Released text lags the input by at
    /// most the longest redact/stop bound plus 3 bytes (see [`Scanner::held_back`]).
    pub fn guards_output(&self) -> bool {
        self.detector.guards_output(self.scope)
    }

    /// Feeds the next piece of the stream. Bytes may split a UTF-8 character anywhere. After a
    /// stop or [`Scanner::finish`], further feeds are ignored.
    pub fn feed(&mut self, bytes: &[u8], out: &mut ScanOutput) {
        let detector = &self.detector;
        self.state
            .feed(detector.engine(self.scope), detector.rules(), bytes, out);
    }

    /// End of stream: settles pending matches (the end of text is a boundary) and releases the
    /// held text.
    pub fn finish(&mut self, out: &mut ScanOutput) {
        let detector = &self.detector;
        self.state
            .finish(detector.engine(self.scope), detector.rules(), out);
    }

    /// Bytes fed so far (up to the stop, if a stop rule fired).
    pub fn bytes_seen(&self) -> u64 {
        self.state.bytes_seen()
    }

    /// Characters fed so far, counted by their first byte.
    pub fn chars_seen(&self) -> u64 {
        self.state.chars_seen()
    }

    /// Bytes fed but not yet released (always 0 when [`Scanner::guards_output`] is false, and
    /// after a stop or `finish`).
    pub fn held_back(&self) -> u64 {
        self.state.held_back(self.detector.engine(self.scope))
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.state.recycle(self.detector.engine(self.scope));
    }
}
