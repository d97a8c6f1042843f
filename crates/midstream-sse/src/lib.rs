//! Incremental splitting of an SSE byte stream into frames, without copying.
//!
//! A frame is everything up to and including the blank line that ends it. Lines end in
//! `\n`, `\r\n` or `\r` (WHATWG). Bytes are never altered: concatenating the frames gives
//! back the input exactly, so frames can be forwarded byte for byte. When a network read
//! holds whole frames (the usual case) they are zero-copy slices of it; only a frame that
//! spans reads is assembled in the carry buffer.
//!
//! The gateway forwards the frames; the test kit's parser and the load generator's scanner
//! read their fields. One splitter for the three, so they agree on where a frame ends.
//!
//! ```
//! use bytes::Bytes;
//! use midstream_sse::{FrameKind, FrameSplitter, frame_data};
//!
//! let mut splitter = FrameSplitter::new(1024);
//! let mut frames = Vec::new();
//! splitter.push(Bytes::from_static(b"data: {\"a\":1}\n\n: ping\r\n\r\ndata: [DO"), |frame| {
//!     frames.push(frame)
//! })?;
//! splitter.push(Bytes::from_static(b"NE]\n\n"), |frame| frames.push(frame))?;
//! assert_eq!(frames, [&b"data: {\"a\":1}\n\n"[..], b": ping\r\n\r\n", b"data: [DONE]\n\n"]);
//! assert_eq!(frame_data(&frames[0]), FrameKind::Data(b"{\"a\":1}"));
//! assert_eq!(frame_data(&frames[1]), FrameKind::NoData);
//! # Ok::<(), midstream_sse::FrameTooLarge>(())
//! ```

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into SSE frames. Bounded: a frame longer than the limit given to
/// [`FrameSplitter::new`] is an error (an upstream that never ends a frame must not grow
/// our memory without bound).
#[derive(Debug)]
pub struct FrameSplitter {
    carry: BytesMut,
    at_line_start: bool,
    after_cr: bool,
    /// The carried frame ended with a blank line's `\r` at the very end of a read: whether its
    /// terminator is `\r` or `\r\n` is known only from the next read's first byte.
    ends_after_cr: bool,
    max_frame: usize,
}

/// The upstream sent a frame longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an SSE frame exceeded {0} bytes")]
pub struct FrameTooLarge(pub usize);

impl FrameSplitter {
    /// A splitter refusing frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> FrameSplitter {
        FrameSplitter {
            carry: BytesMut::new(),
            at_line_start: true,
            after_cr: false,
            ends_after_cr: false,
            max_frame,
        }
    }

    /// The frame-size limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Feeds the next read; calls `on_frame` for each frame it completes, in order.
    pub fn push(
        &mut self,
        input: Bytes,
        mut on_frame: impl FnMut(Bytes),
    ) -> Result<(), FrameTooLarge> {
        let mut pos = 0;
        if self.ends_after_cr {
            self.ends_after_cr = false;
            self.after_cr = false;
            pos = usize::from(input.first() == Some(&b'\n'));
            on_frame(self.take_frame(&input, 0, pos));
        }
        let mut frame_start = pos;
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &input[pos..]) {
            let eol = pos + offset;
            if eol > pos {
                self.at_line_start = false;
                self.after_cr = false;
            }
            let byte = input[eol];
            pos = eol + 1;
            if byte == b'\n' && self.after_cr {
                // The `\n` of a `\r\n` whose `\r` already ended the line.
                self.after_cr = false;
                continue;
            }
            self.after_cr = byte == b'\r';
            if !self.at_line_start {
                self.at_line_start = true;
                continue;
            }
            // A blank line: the frame ends here, with the `\n` of a `\r\n`.
            if self.after_cr && pos == input.len() {
                self.ends_after_cr = true;
                break;
            }
            if self.after_cr && input.get(pos) == Some(&b'\n') {
                self.after_cr = false;
                pos += 1;
            }
            on_frame(self.take_frame(&input, frame_start, pos));
            frame_start = pos;
        }
        if pos < input.len() {
            self.at_line_start = false;
            self.after_cr = false;
        }
        self.carry.extend_from_slice(&input[frame_start..]);
        if self.carry.len() > self.max_frame {
            return Err(FrameTooLarge(self.max_frame));
        }
        Ok(())
    }

    /// The frame whose blank line is a `\r` at the very end of the last read. It is complete,
    /// but [`push`](Self::push) hands it out only with the next read (or [`finish`](Self::finish)),
    /// which tells whether a `\n` belongs to it too. A reader that parses fields instead of
    /// forwarding bytes can read it now (that `\n` would add no line) and skip it when it
    /// comes out.
    pub fn ended_by_cr(&self) -> Option<&[u8]> {
        self.ends_after_cr.then_some(&self.carry[..])
    }

    /// At the end of the stream: the last frame if it is complete (it ended with `\r` at the
    /// very end). An unfinished frame is discarded, as the SSE rules say; its length is returned
    /// so the caller can report it.
    pub fn finish(&mut self) -> (Option<Bytes>, usize) {
        let rest = self.carry.split().freeze();
        if std::mem::take(&mut self.ends_after_cr) {
            (Some(rest), 0)
        } else {
            (None, rest.len())
        }
    }

    fn take_frame(&mut self, input: &Bytes, start: usize, end: usize) -> Bytes {
        if self.carry.is_empty() {
            input.slice(start..end)
        } else {
            self.carry.extend_from_slice(&input[start..end]);
            self.carry.split().freeze()
        }
    }
}

/// What a frame carries, as far as the proxy cares.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameKind<'a> {
    /// One `data:` payload (the usual case), borrowed from the frame.
    Data(&'a [u8]),
    /// Several `data:` lines, joined with `\n` as the SSE rules say.
    MultiData(Vec<u8>),
    /// No data: comments, `event:`/`id:`/`retry:` only, or an empty frame.
    NoData,
}

/// Reads the data of a frame (field `data`, one optional space after the colon stripped).
pub fn frame_data(frame: &[u8]) -> FrameKind<'_> {
    // Fast path, nearly every frame: `data: <payload>\n\n` with no other line break.
    if let Some(payload) = frame
        .strip_prefix(b"data: ")
        .and_then(|rest| rest.strip_suffix(b"\n\n"))
        .filter(|payload| memchr::memchr2(b'\n', b'\r', payload).is_none())
    {
        return FrameKind::Data(payload);
    }
    let mut found: Option<&[u8]> = None;
    let mut joined: Option<Vec<u8>> = None;
    for value in lines(frame).filter_map(data_value) {
        match (&mut joined, found) {
            (Some(all), _) => {
                all.push(b'\n');
                all.extend_from_slice(value);
            }
            (None, Some(first)) => {
                let mut all = first.to_vec();
                all.push(b'\n');
                all.extend_from_slice(value);
                joined = Some(all);
            }
            (None, None) => found = Some(value),
        }
    }
    match (joined, found) {
        (Some(all), _) => FrameKind::MultiData(all),
        (None, Some(one)) => FrameKind::Data(one),
        (None, None) => FrameKind::NoData,
    }
}

/// The frame with its `data` lines replaced by one `data: ` line carrying `data`, where the first
/// of them was, and where `data` sits in it. Every other line (comments, `event:`, `id:`,
/// `retry:`) is kept in its order; each line then ends in `\n`. `None` when the frame has no
/// `data` line, or when `data` holds a line break, which one line cannot carry.
///
/// For a reader that must rewrite a [`FrameKind::MultiData`] frame (the gateway's redaction):
/// the joined value holds the `\n`s of the join, so the caller first puts it on one line in a
/// way its format allows (for JSON, where those `\n`s lie between tokens, a space reads the
/// same), then hands the new frame on wherever a one-line frame goes.
///
/// ```
/// use midstream_sse::{FrameKind, frame_data, with_one_data_line};
///
/// let frame = b"event: x\ndata: {\"a\":\ndata: 1}\n\n";
/// let FrameKind::MultiData(joined) = frame_data(frame) else { unreachable!() };
/// let one_line: Vec<u8> = joined.iter().map(|&b| if b == b'\n' { b' ' } else { b }).collect();
/// let (rewritten, at) = with_one_data_line(frame, &one_line).expect("no line break");
/// assert_eq!(&rewritten[..], b"event: x\ndata: {\"a\": 1}\n\n");
/// assert_eq!(&rewritten[at], b"{\"a\": 1}");
/// ```
pub fn with_one_data_line(frame: &[u8], data: &[u8]) -> Option<(Bytes, Range<usize>)> {
    if memchr::memchr2(b'\n', b'\r', data).is_some() {
        return None;
    }
    let mut out = BytesMut::with_capacity(frame.len() + data.len());
    let mut at = None;
    for line in lines(frame) {
        if data_value(line).is_none() {
            out.extend_from_slice(line);
        } else if at.is_none() {
            out.extend_from_slice(b"data: ");
            at = Some(out.len()..out.len() + data.len());
            out.extend_from_slice(data);
        } else {
            continue;
        }
        out.extend_from_slice(b"\n");
    }
    let at = at?;
    out.extend_from_slice(b"\n");
    Some((out.freeze(), at))
}

/// The non-empty lines of a frame. A frame holds one blank line, the one that ends it, so
/// dropping empty pieces drops that line and the empty piece between a `\r\n`, nothing else.
fn lines(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    frame
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter(|line| !line.is_empty())
}

/// The value of a `data` line (one optional space after the colon stripped); `None` for any
/// other line.
fn data_value(line: &[u8]) -> Option<&[u8]> {
    match line.strip_prefix(b"data")? {
        [] => Some(&[]),
        [b':', b' ', rest @ ..] | [b':', rest @ ..] => Some(rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn split_all(splitter: &mut FrameSplitter, pieces: &[&[u8]]) -> Vec<Bytes> {
        let mut frames = Vec::new();
        for piece in pieces {
            splitter
                .push(Bytes::copy_from_slice(piece), |f| frames.push(f))
                .expect("within limit");
        }
        frames
    }

    #[test]
    fn whole_frames_are_zero_copy_slices() {
        let input = Bytes::from_static(b"data: a\n\ndata: b\n\n");
        let mut frames = Vec::new();
        FrameSplitter::new(1024)
            .push(input.clone(), |f| frames.push(f))
            .expect("ok");
        assert_eq!(frames, vec![&b"data: a\n\n"[..], &b"data: b\n\n"[..]]);
        assert_eq!(frames[0].as_ptr(), input.as_ptr(), "sliced, not copied");
    }

    #[test]
    fn every_line_ending_ends_a_frame() {
        let mut s = FrameSplitter::new(1024);
        let frames = split_all(&mut s, &[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n: x\n\n"]);
        assert_eq!(
            frames,
            vec![
                &b"data: a\r\n\r\n"[..],
                &b"data: b\r\r"[..],
                &b"data: c\n\n"[..],
                &b": x\n\n"[..]
            ]
        );
    }

    #[test]
    fn a_partial_frame_waits_for_its_end() {
        let mut s = FrameSplitter::new(1024);
        assert!(split_all(&mut s, &[b"data: {\"a\"", b":1}\n"]).is_empty());
        assert_eq!(
            split_all(&mut s, &[b"\n"]),
            vec![&b"data: {\"a\":1}\n\n"[..]]
        );
        assert_eq!(s.finish(), (None, 0));
        split_all(&mut s, &[b"data: cut"]);
        assert_eq!(
            s.finish(),
            (None, 9),
            "an unfinished frame is dropped at the end"
        );
    }

    #[test]
    fn a_frame_ended_by_a_cr_at_the_end_of_a_read_can_be_read_before_it_comes_out() {
        let mut s = FrameSplitter::new(1024);
        assert!(split_all(&mut s, &[b"data: a\r"]).is_empty());
        assert_eq!(s.ended_by_cr(), None, "one line end is not a blank line");
        assert!(split_all(&mut s, &[b"\r"]).is_empty());
        assert_eq!(s.ended_by_cr(), Some(&b"data: a\r\r"[..]));
        assert_eq!(split_all(&mut s, &[b"\ndata: b"]), [&b"data: a\r\r\n"[..]]);
        assert_eq!(s.ended_by_cr(), None);
    }

    #[test]
    fn an_endless_frame_is_refused() {
        let mut s = FrameSplitter::new(8);
        assert_eq!(
            s.push(Bytes::from_static(b"data: 0123456789"), |_| {}),
            Err(FrameTooLarge(8))
        );
    }

    #[test]
    fn data_fields_follow_the_sse_rules() {
        assert_eq!(
            frame_data(b"data: {\"x\":1}\n\n"),
            FrameKind::Data(b"{\"x\":1}")
        );
        assert_eq!(frame_data(b"data:[DONE]\n\n"), FrameKind::Data(b"[DONE]"));
        assert_eq!(
            frame_data(b"event: x\r\ndata:  two\r\n\r\n"),
            FrameKind::Data(b" two")
        );
        assert_eq!(frame_data(b": ping\n\n"), FrameKind::NoData);
        assert_eq!(frame_data(b"database: not data\n\n"), FrameKind::NoData);
        assert_eq!(
            frame_data(b"data: a\ndata: b\n\n"),
            FrameKind::MultiData(b"a\nb".to_vec())
        );
    }

    #[test]
    fn several_data_lines_become_one_and_other_lines_stay() {
        let frame = b": c\r\ndata: {\"a\":\r\nid: 7\r\ndata\r\ndata:1}\r\n\r\n";
        assert_eq!(
            frame_data(frame),
            FrameKind::MultiData(b"{\"a\":\n\n1}".to_vec())
        );
        let (one, at) = with_one_data_line(frame, b"{\"a\":  1}").expect("rewritten");
        assert_eq!(&one[..], b": c\ndata: {\"a\":  1}\nid: 7\n\n");
        assert_eq!(frame_data(&one), FrameKind::Data(&one[at]));
        assert_eq!(with_one_data_line(frame, b"a\nb"), None);
        assert_eq!(with_one_data_line(b": ping\n\n", b"x"), None);
    }

    proptest! {
        /// However the stream is cut, the frames are the same and their bytes are the input's.
        #[test]
        fn splitting_is_chunking_invariant(
            frames in prop::collection::vec(
                prop::sample::select(vec![
                    "data: {\"content\":\"h\u{e9}llo\"}\n\n",
                    "data: [DONE]\n\n",
                    ": ping\n\n",
                    "data: x\r\n\r\n",
                    "data: y\r\r",
                    "event: e\ndata: z\n\n",
                ]),
                1..12,
            ),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let input: Vec<u8> = frames.concat().into_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            points.sort_unstable();
            points.dedup();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for p in points {
                pieces.push(&input[last..p]);
                last = p;
            }
            pieces.push(&input[last..]);
            let mut splitter = FrameSplitter::new(1 << 20);
            let mut got = split_all(&mut splitter, &pieces);
            got.extend(splitter.finish().0);
            let mut one = FrameSplitter::new(1 << 20);
            let mut whole = split_all(&mut one, &[&input]);
            whole.extend(one.finish().0);
            prop_assert_eq!(&got, &whole);
            prop_assert_eq!(got.concat(), input.clone());
            prop_assert_eq!(got.len(), frames.len());
        }
    }
}
