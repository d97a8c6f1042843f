//! `sse_frames`: the SSE frame splitter (`midstream_sse`) finds the same frames however the
//! stream is cut into reads, keeps every byte, and never panics (issue 20).
//!
//! The input is the stream. It is fed whole, one byte per read (every position is then a read
//! boundary, a `\r` at the end of a read included), and in reads of 1 to 64 bytes whose lengths
//! come from a generator seeded with a hash of the input (so each mutation tries other cuts).
//! Each way must give the same frames, each ending in a blank line, whose bytes are the input's
//! up to the unfinished rest. Each frame's data is read too: a frame of several `data:` lines,
//! put on one line by `with_one_data_line`, must read back as that one line.

#![no_main]

mod cuts;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use midstream_sse::{FrameKind, FrameSplitter, frame_data, with_one_data_line};

fuzz_target!(|input: &[u8]| {
    let whole = split(input, &[input.len()]);
    let bytes = split(input, &vec![1; input.len()]);
    assert_eq!(whole, bytes, "one byte per read: {input:?}");
    let random = split(input, &cuts::piece_lengths(input, 64));
    assert_eq!(whole, random, "random reads: {input:?}");

    let (frames, unfinished) = &whole;
    let kept: Vec<u8> = frames.concat();
    assert_eq!(kept.len() + unfinished, input.len());
    assert_eq!(
        &input[..kept.len()],
        &kept[..],
        "frames are the input's bytes"
    );
    for frame in frames {
        assert!(ends_with_blank_line(frame), "{frame:?}");
        if let FrameKind::MultiData(joined) = frame_data(frame) {
            let one_line: Vec<u8> = joined
                .iter()
                .map(|&b| if b == b'\n' { b' ' } else { b })
                .collect();
            let (rewritten, at) =
                with_one_data_line(frame, &one_line).expect("a frame with data lines");
            assert_eq!(&rewritten[at.clone()], &one_line[..]);
            assert_eq!(frame_data(&rewritten), FrameKind::Data(&rewritten[at]));
        }
    }

    // A small limit may refuse a frame, but never panics.
    let mut bounded = FrameSplitter::new(64);
    for piece in input.chunks(7) {
        if bounded.push(Bytes::copy_from_slice(piece), |_| {}).is_err() {
            break;
        }
    }
});

/// Whether the frame's last line is blank: its last line break, taken off, leaves nothing or
/// another line break.
fn ends_with_blank_line(frame: &[u8]) -> bool {
    let Some(rest) = frame
        .strip_suffix(b"\r\n")
        .or_else(|| frame.strip_suffix(b"\n"))
        .or_else(|| frame.strip_suffix(b"\r"))
    else {
        return false;
    };
    rest.is_empty() || rest.ends_with(b"\n") || rest.ends_with(b"\r")
}

/// The frames of `input` read in pieces of these lengths (the last piece takes the rest), and
/// the length of the unfinished frame left at the end.
fn split(input: &[u8], lengths: &[usize]) -> (Vec<Bytes>, usize) {
    let mut splitter = FrameSplitter::new(usize::MAX);
    let mut frames = Vec::new();
    let mut rest = input;
    for &length in lengths {
        let (piece, after) = rest.split_at(length.min(rest.len()));
        splitter
            .push(Bytes::copy_from_slice(piece), |frame| frames.push(frame))
            .expect("no limit");
        rest = after;
    }
    if !rest.is_empty() {
        splitter
            .push(Bytes::copy_from_slice(rest), |frame| frames.push(frame))
            .expect("no limit");
    }
    let (last, unfinished) = splitter.finish();
    frames.extend(last);
    (frames, unfinished)
}
