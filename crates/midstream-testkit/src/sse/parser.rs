//! An incremental `text/event-stream` parser following the WHATWG rules.
//!
//! Lines end with LF, CR or CRLF (a CRLF split across two pushes is still one line end).
//! A line starting with `:` is a comment; otherwise the field name runs to the first `:`
//! and one leading space of the value is dropped; a line with no colon is a field with an
//! empty value. `data` lines accumulate joined by `\n`; `id` containing NUL is ignored;
//! `retry` that is not all ASCII digits is ignored; unknown fields are ignored. A leading
//! UTF-8 byte-order mark is skipped and invalid UTF-8 becomes U+FFFD, per line, so splits
//! inside a multi-byte character do not matter.
//!
//! Unlike a browser, which only dispatches blocks that have data, the parser returns every
//! block of lines ended by a blank line as an [`SseFrame`], so tests can see comment-only
//! keep-alives, stray `event:` lines and junk lines. A final block without its blank line
//! is not a frame (the spec discards it too).

use bytes::Bytes;
use midstream_sse::FrameSplitter;

/// One block of lines ended by a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseFrame {
    /// The last `event:` value of the block.
    pub event: Option<String>,
    /// The last valid `id:` value of the block (browsers would carry it over; this does not).
    pub id: Option<String>,
    /// The `data:` values joined by `\n`; `None` if the block had no `data` line.
    pub data: Option<String>,
    /// The last valid `retry:` value of the block, in milliseconds.
    pub retry: Option<u64>,
    /// The text of each comment line, after the `:` and one optional space.
    pub comments: Vec<String>,
}

impl SseFrame {
    /// The chat content (`choices[0].delta.content`) this frame carries; "" for any other
    /// frame (an injected event, `[DONE]`, a comment).
    pub fn chat_content(&self) -> String {
        let chunk: serde_json::Value = self
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        chunk["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The input broke a bound of the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseParseError {
    /// One frame (its lines and the unfinished line) grew past the limit.
    #[error("an SSE frame grew past {limit} bytes without a blank line")]
    FrameTooLarge {
        /// [`SseParser::MAX_FRAME_BYTES`].
        limit: usize,
    },
}

/// Parses bytes pushed in any split into [`SseFrame`]s. Frames are cut by the gateway's own
/// splitter ([`FrameSplitter`]), so the tests see frame ends exactly where the gateway does;
/// this only reads their fields.
#[derive(Debug)]
pub struct SseParser {
    splitter: FrameSplitter,
    /// No line has ended yet (the byte-order mark is only skipped on the first line).
    seen_line: bool,
    /// The splitter's frame ended by a `\r` at the end of a push was returned already; the
    /// splitter hands it out again with the next push, to be skipped then.
    returned_cr_frame: bool,
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

impl Default for SseParser {
    fn default() -> Self {
        SseParser {
            splitter: FrameSplitter::new(Self::MAX_FRAME_BYTES),
            seen_line: false,
            returned_cr_frame: false,
        }
    }
}

impl SseParser {
    /// Largest frame accepted, in bytes, line ends included (16 MiB): the parser's memory
    /// bound.
    pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes and returns the frames they complete, in order.
    ///
    /// # Errors
    ///
    /// [`SseParseError::FrameTooLarge`] if a frame exceeds [`Self::MAX_FRAME_BYTES`]; the
    /// parser then drops that frame and the rest of `bytes`, and reads the next push as
    /// the middle of a line.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseFrame>, SseParseError> {
        let mut raw = Vec::new();
        let pushed = self
            .splitter
            .push(Bytes::copy_from_slice(bytes), |frame| raw.push(frame));
        if pushed.is_err() || raw.iter().any(|frame| frame.len() > Self::MAX_FRAME_BYTES) {
            self.splitter = FrameSplitter::new(Self::MAX_FRAME_BYTES);
            self.returned_cr_frame = false;
            return Err(SseParseError::FrameTooLarge {
                limit: Self::MAX_FRAME_BYTES,
            });
        }
        let skip = usize::from(std::mem::take(&mut self.returned_cr_frame) && !raw.is_empty());
        let mut frames: Vec<SseFrame> = raw[skip..]
            .iter()
            .filter_map(|frame| self.frame(frame))
            .collect();
        if let Some(frame) = self.splitter.ended_by_cr() {
            let frame = frame.to_vec();
            frames.extend(self.frame(&frame));
            self.returned_cr_frame = true;
        }
        Ok(frames)
    }

    /// The fields of one frame; `None` for a frame with no line (a blank line alone).
    fn frame(&mut self, bytes: &[u8]) -> Option<SseFrame> {
        let mut frame = SseFrame::default();
        let mut lines = 0;
        for line in lines_of(bytes) {
            let line = if std::mem::replace(&mut self.seen_line, true) {
                line
            } else {
                line.strip_prefix(BYTE_ORDER_MARK).unwrap_or(line)
            };
            if line.is_empty() {
                // The blank line that ends the frame, or a first line that was only the
                // byte-order mark (a blank line before the frame, once the mark is skipped).
                if lines > 0 {
                    break;
                }
                continue;
            }
            lines += 1;
            read_line(&mut frame, &String::from_utf8_lossy(line));
        }
        (lines > 0).then_some(frame)
    }
}

/// The lines of a frame, without their ends (`\n`, `\r\n` or `\r`); the last is the
/// blank line that ends the frame.
fn lines_of(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = frame;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|byte| matches!(byte, b'\n' | b'\r'))
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let after = match rest[end..] {
            [b'\r', b'\n', ..] => end + 2,
            [] => end,
            _ => end + 1,
        };
        rest = &rest[after..];
        Some(line)
    })
}

/// One field line (or comment) into `frame`.
fn read_line(frame: &mut SseFrame, line: &str) {
    if let Some(comment) = line.strip_prefix(':') {
        let comment = comment.strip_prefix(' ').unwrap_or(comment);
        frame.comments.push(comment.to_owned());
        return;
    }
    let (field, value) = match line.split_once(':') {
        Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    };
    match field {
        "event" => frame.event = Some(value.to_owned()),
        "data" => match &mut frame.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => frame.data = Some(value.to_owned()),
        },
        "id" if !value.contains('\0') => frame.id = Some(value.to_owned()),
        "retry" if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) => {
            if let Ok(retry) = value.parse() {
                frame.retry = Some(retry);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_whole(bytes: &[u8]) -> Vec<SseFrame> {
        SseParser::new().push(bytes).expect("within bounds")
    }

    fn data(text: &str) -> SseFrame {
        SseFrame {
            data: Some(text.to_owned()),
            ..SseFrame::default()
        }
    }

    /// Input exercising every rule, with CR, LF and CRLF line ends.
    const MIXED: &[u8] = b"\xEF\xBB\xBFdata: first\n\n\
        : keep-alive\r\n\r\n\
        event: tool.result\rid: 7\rretry: 1500\rdata:{\"a\":1}\rdata:  two spaces\r\r\
        data\n\n\
        id: bad\0id\nretry: 12x\nunknown: field\nno colon line\n\n\
        data: caf\xc3\xa9 \xff\r\n\r\n\
        data: unterminated";

    fn mixed_expected() -> Vec<SseFrame> {
        vec![
            data("first"),
            SseFrame {
                comments: vec!["keep-alive".into()],
                ..SseFrame::default()
            },
            SseFrame {
                event: Some("tool.result".into()),
                id: Some("7".into()),
                retry: Some(1500),
                data: Some("{\"a\":1}\n two spaces".into()),
                comments: Vec::new(),
            },
            data(""),
            SseFrame::default(),
            data("caf\u{e9} \u{fffd}"),
        ]
    }

    #[test]
    fn whole_input_follows_the_whatwg_rules() {
        assert_eq!(parse_whole(MIXED), mixed_expected());
    }

    #[test]
    fn every_two_way_split_gives_the_same_frames() {
        for cut in 0..=MIXED.len() {
            let mut parser = SseParser::new();
            let mut frames = parser.push(&MIXED[..cut]).expect("within bounds");
            frames.extend(parser.push(&MIXED[cut..]).expect("within bounds"));
            assert_eq!(frames, mixed_expected(), "split at byte {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames() {
        let mut parser = SseParser::new();
        let frames: Vec<SseFrame> = MIXED
            .iter()
            .flat_map(|byte| parser.push(&[*byte]).expect("within bounds"))
            .collect();
        assert_eq!(frames, mixed_expected());
    }

    #[test]
    fn a_cr_then_lf_in_separate_pushes_is_one_line_end() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: a\r").expect("ok").is_empty());
        assert!(parser.push(b"\n").expect("ok").is_empty());
        assert_eq!(parser.push(b"\r\n").expect("ok"), [data("a")]);
    }

    #[test]
    fn a_frame_ended_by_cr_is_returned_by_the_push_that_ends_it() {
        let mut parser = SseParser::new();
        assert_eq!(parser.push(b"data: a\r\r").expect("ok"), [data("a")]);
        assert_eq!(
            parser.push(b"\ndata: b\r\r").expect("ok"),
            [data("b")],
            "the LF after it ends no line, and the frame is not returned twice"
        );
        assert_eq!(parser.push(b"data: c\n\n").expect("ok"), [data("c")]);
    }

    #[test]
    fn a_byte_order_mark_alone_on_the_first_line_is_a_blank_line() {
        assert_eq!(parse_whole(b"\xEF\xBB\xBF\ndata: x\n\n"), [data("x")]);
    }

    #[test]
    fn every_fixture_parses_the_same_one_byte_at_a_time() {
        for name in crate::upstream::fixture_names() {
            let bytes = crate::upstream::fixture_bytes(name).expect("a fixture");
            let whole = parse_whole(bytes);
            assert_eq!(whole.last(), Some(&data("[DONE]")), "{name}");
            let mut parser = SseParser::new();
            let bytewise: Vec<SseFrame> = bytes
                .iter()
                .flat_map(|byte| parser.push(&[*byte]).expect("within bounds"))
                .collect();
            assert_eq!(bytewise, whole, "{name}");
        }
    }

    #[test]
    fn a_fixture_parses_the_same_at_every_two_way_split() {
        let bytes = crate::upstream::fixture_bytes("tool-call").expect("a fixture");
        let whole = parse_whole(bytes);
        for cut in 0..=bytes.len() {
            let mut parser = SseParser::new();
            let mut frames = parser.push(&bytes[..cut]).expect("within bounds");
            frames.extend(parser.push(&bytes[cut..]).expect("within bounds"));
            assert_eq!(frames, whole, "split at byte {cut}");
        }
    }

    #[test]
    fn an_oversized_frame_is_an_error_and_parsing_resumes() {
        let mut parser = SseParser::new();
        let huge = vec![b'x'; SseParser::MAX_FRAME_BYTES + 1];
        assert_eq!(
            parser.push(&huge),
            Err(SseParseError::FrameTooLarge {
                limit: SseParser::MAX_FRAME_BYTES
            })
        );
        assert_eq!(parser.push(b"\n\ndata: ok\n\n").expect("ok"), [data("ok")]);
    }
}
