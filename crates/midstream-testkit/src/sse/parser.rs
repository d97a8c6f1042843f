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

/// Parses bytes pushed in any split into [`SseFrame`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read.
    line: Vec<u8>,
    /// The previous byte was a CR, so an LF right after it ends nothing new.
    after_cr: bool,
    /// No line has ended yet (the byte-order mark is only skipped on the first line).
    seen_line: bool,
    frame: SseFrame,
    /// The current block has at least one line.
    frame_started: bool,
    /// Bytes of the current block's finished lines.
    frame_bytes: usize,
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    /// Largest frame accepted, in bytes (16 MiB): the parser's memory bound.
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
        let mut frames = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => frames.extend(self.end_line()),
                _ => {
                    self.line.push(byte);
                    if self.frame_bytes + self.line.len() > Self::MAX_FRAME_BYTES {
                        self.line.clear();
                        self.frame = SseFrame::default();
                        self.frame_started = false;
                        self.frame_bytes = 0;
                        return Err(SseParseError::FrameTooLarge {
                            limit: Self::MAX_FRAME_BYTES,
                        });
                    }
                }
            }
        }
        Ok(frames)
    }

    fn end_line(&mut self) -> Option<SseFrame> {
        let mut line = std::mem::take(&mut self.line);
        if !self.seen_line {
            self.seen_line = true;
            if line.starts_with(BYTE_ORDER_MARK) {
                line.drain(..BYTE_ORDER_MARK.len());
            }
        }
        if line.is_empty() {
            if !self.frame_started {
                return None;
            }
            self.frame_started = false;
            self.frame_bytes = 0;
            return Some(std::mem::take(&mut self.frame));
        }
        self.frame_started = true;
        self.frame_bytes += line.len();
        let line = String::from_utf8_lossy(&line);
        if let Some(comment) = line.strip_prefix(':') {
            let comment = comment.strip_prefix(' ').unwrap_or(comment);
            self.frame.comments.push(comment.to_owned());
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.frame.event = Some(value.to_owned()),
            "data" => match &mut self.frame.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.frame.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.frame.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) => {
                if let Ok(retry) = value.parse() {
                    self.frame.retry = Some(retry);
                }
            }
            _ => {}
        }
        None
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
