//! HTTP/1.1 message bodies on the wire (RFC 9112 §6–7), for both directions: how a body's end
//! is known, decoding `Content-Length`, `chunked` and close-delimited bodies as their bytes
//! arrive, and the header rules that choose between them.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, header};

/// Longest chunk-size line (hex size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Largest trailer section accepted (trailers are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// How the end of a body is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body ends when the upstream closes the connection.
    UntilClose,
}

/// The transfer codings of a message, if it has any: `Some(true)` when the last one is
/// `chunked`, `Some(false)` for any other.
pub(crate) fn chunked_coding(headers: &HeaderMap) -> Option<bool> {
    if !headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    let last = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|coding| !coding.is_empty());
    Some(last.is_some_and(|coding| coding.eq_ignore_ascii_case("chunked")))
}

/// The `Content-Length` of a message, if it has one; repeated values must agree.
pub(crate) fn content_length(headers: &HeaderMap) -> io::Result<Option<u64>> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&byte| byte == b',') {
            let parsed = std::str::from_utf8(part)
                .ok()
                .map(str::trim)
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<u64>().ok())
                .ok_or_else(|| invalid("invalid Content-Length"))?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(invalid("conflicting Content-Length values"));
            }
            length = Some(parsed);
        }
    }
    Ok(length)
}

/// Whether a comma-separated header (such as `Connection`) lists `token`.
pub(crate) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Body bytes, in the order they were sent.
    Data(Bytes),
    /// The buffer holds no complete piece: read more.
    Incomplete,
    /// The body is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer lines up to an empty one; `seen` bytes of them so far.
    Trailers {
        seen: usize,
    },
    UntilClose,
    Done,
}

/// Turns the bytes of a response body, as they arrive, into its data.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub(crate) fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(length) => State::Length(length),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// Consumes framing bytes from the front of `buf` and returns the next piece of data.
    /// Data is split off the buffer, not copied.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Decoded> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::UntilClose if buf.is_empty() => return Ok(Decoded::Incomplete),
                State::UntilClose => return Ok(Decoded::Data(buf.split().freeze())),
                State::Length(remaining) | State::ChunkData(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::Incomplete);
                    }
                    let take = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let left = remaining - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                // The usual poll between two chunks: nothing has arrived yet.
                State::ChunkSize if buf.is_empty() => return Ok(Decoded::Incomplete),
                State::ChunkSize => {
                    let Some(line) = front_line(buf, MAX_CHUNK_LINE, "chunk size line")? else {
                        return Ok(Decoded::Incomplete);
                    };
                    let size = chunk_size(&buf[..line.len])?;
                    buf.advance(line.taken);
                    self.state = if size == 0 {
                        State::Trailers { seen: 0 }
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => match buf.first() {
                    None => return Ok(Decoded::Incomplete),
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = State::ChunkSize;
                    }
                    Some(b'\r') if buf.len() < 2 => return Ok(Decoded::Incomplete),
                    Some(b'\r') if buf[1] == b'\n' => {
                        buf.advance(2);
                        self.state = State::ChunkSize;
                    }
                    Some(_) => return Err(invalid("chunk data longer than its size")),
                },
                State::Trailers { seen } => {
                    let room = MAX_TRAILERS.saturating_sub(seen);
                    let Some(line) = front_line(buf, room, "trailer section")? else {
                        return Ok(Decoded::Incomplete);
                    };
                    buf.advance(line.taken);
                    self.state = if line.len == 0 {
                        State::Done
                    } else {
                        State::Trailers {
                            seen: seen + line.len + 2,
                        }
                    };
                }
            }
        }
    }

    /// The upstream closed the connection: the end of the body if it runs until the close,
    /// otherwise the body was cut short.
    pub(crate) fn closed(&mut self) -> io::Result<Decoded> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(Decoded::End)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the response body ended",
            )),
        }
    }
}

/// A line at the front of a buffer.
struct Line {
    /// Its length without its CRLF or bare LF.
    len: usize,
    /// Its length with them: what to advance past it.
    taken: usize,
}

/// The line at the front of `buf`; `None` if no line end arrived yet. A line longer than
/// `limit` is an error. Read in place: splitting it off as `Bytes` cost an allocation and two
/// reference counts per upstream frame.
fn front_line(buf: &[u8], limit: usize, what: &str) -> io::Result<Option<Line>> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > limit {
            Err(invalid(&format!("{what} too long")))
        } else {
            Ok(None)
        };
    };
    if end > limit {
        return Err(invalid(&format!("{what} too long")));
    }
    let len = if end > 0 && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    Ok(Some(Line {
        len,
        taken: end + 1,
    }))
}

/// The size in a chunk-size line: hex digits, then optional whitespace and `;` extensions.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .iter()
        .take_while(|byte| byte.is_ascii_hexdigit())
        .count();
    let rest = &line[digits..];
    let extensions_ok = rest
        .iter()
        .position(|&byte| byte != b' ' && byte != b'\t')
        .is_none_or(|first| rest[first] == b';');
    if digits == 0 || digits > 16 || !extensions_ok {
        return Err(invalid(&format!(
            "invalid chunk size line {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        )));
    }
    // At most 16 hex digits: the size fits in a u64.
    Ok(line[..digits].iter().fold(0, |size, &digit| {
        size << 4 | u64::from(char::from(digit).to_digit(16).unwrap_or(0))
    }))
}

pub(crate) fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::h1::client::parse_head;
    use crate::h1::request::parse_request_head;
    use crate::h1::response::{LAST_CHUNK, push_chunk};

    /// Feeds `wire` in pieces of `step` bytes, as reads would deliver it.
    fn decode_all(framing: Framing, wire: &[u8], step: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut pieces = wire.chunks(step.max(1));
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(bytes) => {
                    assert!(!bytes.is_empty(), "no empty data pieces");
                    data.extend_from_slice(&bytes);
                }
                Decoded::End => return Ok((data, true)),
                Decoded::Incomplete => match pieces.next() {
                    Some(piece) => buf.extend_from_slice(piece),
                    None => {
                        return match decoder.closed()? {
                            Decoded::End => Ok((data, false)),
                            other => panic!("closed() returned {other:?}"),
                        };
                    }
                },
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let wire = b"5;name=value\r\nhello\r\n6 \r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=wire.len() {
            let (data, ended) = decode_all(Framing::Chunked, wire, step).expect("valid");
            assert_eq!(data, b"hello world", "step {step}");
            assert!(ended, "the last chunk ends the body (step {step})");
        }
        let lenient = decode_all(Framing::Chunked, b"3\nabc\n0\n\n", 2).expect("bare LF");
        assert_eq!(lenient, (b"abc".to_vec(), true));
    }

    #[test]
    fn length_and_close_delimited_bodies_end_where_they_should() {
        let (data, ended) = decode_all(Framing::Length(5), b"hello", 2).expect("valid");
        assert_eq!((data.as_slice(), ended), (&b"hello"[..], true));
        let (data, ended) = decode_all(Framing::UntilClose, b"data: x\n\n", 3).expect("valid");
        assert_eq!((data.as_slice(), ended), (&b"data: x\n\n"[..], false));
        assert_eq!(
            decode_all(Framing::Empty, b"", 1).expect("empty"),
            (vec![], true)
        );
    }

    #[test]
    fn bodies_cut_short_or_malformed_are_errors() {
        let cut = decode_all(Framing::Length(10), b"hello", 5).expect_err("cut short");
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
        let cut = decode_all(Framing::Chunked, b"5\r\nhel", 5).expect_err("cut short");
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
        for wire in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"5 x\r\nhello\r\n",
            b"11111111111111111\r\n",
            b"3\r\nabcdef\r\n",
        ] {
            let error = decode_all(Framing::Chunked, wire, 64).expect_err("malformed");
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{wire:?}");
        }
        let endless = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert!(decode_all(Framing::Chunked, &endless, 1).is_err());
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b"x: y\r\n".as_slice(), 4000).flatten());
        assert!(decode_all(Framing::Chunked, &trailers, 512).is_err());
    }

    #[test]
    fn framing_headers_are_read_strictly() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, http::HeaderValue::from_static(value));
            }
            map
        };
        assert_eq!(chunked_coding(&headers(&[])), None);
        assert_eq!(
            chunked_coding(&headers(&[("transfer-encoding", "gzip, Chunked")])),
            Some(true)
        );
        assert_eq!(
            chunked_coding(&headers(&[("transfer-encoding", "chunked, gzip")])),
            Some(false)
        );
        let repeated = headers(&[("content-length", "3, 3"), ("content-length", "3")]);
        assert_eq!(content_length(&repeated).expect("agree"), Some(3));
        for bad in ["-1", "", "1 2", "99999999999999999999999"] {
            let map = headers(&[("content-length", bad)]);
            assert!(content_length(&map).is_err(), "{bad:?}");
        }
        assert!(
            content_length(&headers(&[
                ("content-length", "3"),
                ("content-length", "4")
            ]))
            .is_err()
        );
        assert!(has_token(
            &headers(&[("connection", "keep-alive, Close")]),
            &header::CONNECTION,
            "close"
        ));
    }

    /// Heads that get a parser past its first line, so the random tails reach the deeper code.
    const STARTS: &[&str] = &[
        "",
        "POST /v1/chat/completions HTTP/1.1\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n",
        "5\r\nhello\r\n",
    ];

    proptest! {
        /// What is chunked is decoded back to the same bytes, however the reads fall.
        #[test]
        fn chunked_bodies_round_trip_at_any_read_size(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            step in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for chunk in &chunks {
                push_chunk(&mut wire, chunk);
            }
            wire.extend_from_slice(LAST_CHUNK);
            let (data, ended) = decode_all(Framing::Chunked, &wire, step).expect("valid");
            prop_assert_eq!(data, chunks.concat());
            prop_assert!(ended);
        }

        /// Any bytes at all: the parsers answer or refuse, never panic, and a decoder never
        /// hands on more than it was given.
        #[test]
        fn no_input_panics_or_invents_data(
            start in prop::sample::select(STARTS),
            tail in prop::collection::vec(any::<u8>(), 0..512),
            step in 1usize..64,
            length in 0u64..600,
        ) {
            let mut bytes = start.as_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            let _ = parse_request_head(&mut BytesMut::from(&bytes[..]));
            let _ = parse_head(&mut BytesMut::from(&bytes[..]));
            for framing in [Framing::Chunked, Framing::Length(length), Framing::UntilClose] {
                if let Ok((data, _)) = decode_all(framing, &bytes, step) {
                    prop_assert!(data.len() <= bytes.len());
                }
            }
        }
    }
}
