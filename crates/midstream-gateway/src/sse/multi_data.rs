//! A chunk whose JSON the upstream sent in several `data:` lines of one event.
//!
//! That is legal SSE: a client joins the lines with `\n` and parses the result, so a chunk
//! framed this way is as much a chunk as a one-line one, and must be read, analysed, redacted
//! and recorded like one (issue 20, "no frame escapes the analysis"). Rather than a second path
//! through the analysis, the event is turned into an equivalent one-line frame and takes the
//! one-line path; the frame forwarded, when the analysis changes nothing, is still the
//! upstream's own.

use std::ops::Range;

use bytes::Bytes;
use serde::de::IgnoredAny;

/// The frame with its data on one line, and where the payload sits in it; `None` when the
/// joined data is not JSON, which a client cannot read as a chunk either (such a frame is
/// forwarded untouched, as a one-line frame that is not JSON is).
///
/// Valid JSON holds a raw `\n` only between tokens (a string must escape it), so each `\n` the
/// join added becomes a space: the same JSON, at the same offsets. JSON is checked first, as
/// joined: a `\n` inside a string would make a space a client never reads.
pub fn one_line(frame: &[u8], mut joined: Vec<u8>) -> Option<(Bytes, Range<usize>)> {
    serde_json::from_slice::<IgnoredAny>(&joined).ok()?;
    for byte in &mut joined {
        if *byte == b'\n' {
            *byte = b' ';
        }
    }
    midstream_sse::with_one_data_line(frame, &joined)
}

#[cfg(test)]
mod tests {
    use midstream_sse::{FrameKind, frame_data};

    use super::*;

    fn joined(frame: &[u8]) -> Vec<u8> {
        match frame_data(frame) {
            FrameKind::MultiData(joined) => joined,
            other => panic!("not several data lines: {other:?}"),
        }
    }

    #[test]
    fn json_split_between_tokens_reads_as_one_line() {
        let frame = b"data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"hi\"}}]}\n\n";
        let (one, at) = one_line(frame, joined(frame)).expect("JSON");
        assert_eq!(
            &one[..],
            b"data: {\"choices\":[{\"delta\": {\"content\":\"hi\"}}]}\n\n"
        );
        let value: serde_json::Value = serde_json::from_slice(&one[at]).expect("JSON");
        assert_eq!(value["choices"][0]["delta"]["content"], "hi");
    }

    #[test]
    fn a_line_break_inside_a_string_is_not_json() {
        let frame = b"data: {\"content\":\"sec\ndata: ret\"}\n\n";
        assert_eq!(one_line(frame, joined(frame)), None);
    }
}
