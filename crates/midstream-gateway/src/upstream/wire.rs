//! HTTP/1.1 as the driven upstream client speaks it (RFC 9112): the request it writes, the
//! response head it parses (with `httparse`), and the body framing it decodes.
//!
//! Why not hyper's client: a hyper connection keeps an 8 KiB read buffer, a dispatch channel
//! (a 9 KiB block) and a body channel, and hands every frame through those channels. A held
//! stream paid ≈ 20 KB for it and every frame a channel hop. Here a connection is its socket
//! and one small buffer; body bytes are cut out of that buffer and handed on as they are.
//!
//! Only what a client of an OpenAI-compatible API meets is supported: one request at a time
//! (no pipelining), bodies framed by `Content-Length`, `chunked` or the end of the connection.
//! Anything else in a response is an error, never a guess.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;

/// Most response headers accepted.
const MAX_HEADERS: usize = 128;

/// Longest chunk-size line (hex size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Largest trailer section accepted (trailers are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// The request head and body of a POST, ready to be written in one go.
pub(super) fn post(path: &str, host: &str, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let mut request = Vec::with_capacity(64 + path.len() + host.len() + header_bytes + body.len());
    for part in [
        b"POST ",
        path.as_bytes(),
        b" HTTP/1.1\r\nhost: ",
        host.as_bytes(),
    ] {
        request.extend_from_slice(part);
    }
    for (name, value) in headers {
        for part in [b"\r\n", name.as_str().as_bytes(), b": ", value.as_bytes()] {
            request.extend_from_slice(part);
        }
    }
    request.extend_from_slice(b"\r\ncontent-length: ");
    request.extend_from_slice(body.len().to_string().as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    request
}

/// How the end of a response body is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body ends when the upstream closes the connection.
    UntilClose,
}

/// A final response head.
#[derive(Debug)]
pub(super) struct ResponseHead {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) framing: Framing,
    /// The connection may carry another request once this body has ended.
    pub(super) reusable: bool,
}

/// Parses a response head at the start of `buf`, consuming it (and any interim 1xx heads
/// before it). `Ok(None)`: more bytes are needed.
pub(super) fn parse_head(buf: &mut BytesMut) -> io::Result<Option<ResponseHead>> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(invalid("response head larger than 64 KiB"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(invalid(&format!("malformed response head: {error}"))),
        };
        let code = response.code.unwrap_or_default();
        let status = StatusCode::from_u16(code)
            .map_err(|_| invalid(&format!("invalid status code {code}")))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(invalid("unexpected protocol switch (101)"));
        }
        if status.is_informational() {
            buf.advance(len);
            continue;
        }
        let mut headers = HeaderMap::with_capacity(response.headers.len());
        for slot in response.headers.iter() {
            let name = HeaderName::from_bytes(slot.name.as_bytes())
                .map_err(|_| invalid(&format!("invalid header name {:?}", slot.name)))?;
            let value = HeaderValue::from_bytes(slot.value)
                .map_err(|_| invalid(&format!("invalid value of header {}", slot.name)))?;
            headers.append(name, value);
        }
        let http11 = response.version == Some(1);
        buf.advance(len);
        let framing = framing(status, &headers)?;
        let ambiguous = headers.contains_key(header::TRANSFER_ENCODING)
            && headers.contains_key(header::CONTENT_LENGTH);
        let reusable = http11
            && framing != Framing::UntilClose
            && !ambiguous
            && !has_token(&headers, &header::CONNECTION, "close");
        return Ok(Some(ResponseHead {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

fn framing(status: StatusCode, headers: &HeaderMap) -> io::Result<Framing> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        // Transfer-Encoding overrides Content-Length; a last coding other than chunked means
        // the body runs to the end of the connection.
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .rfind(|coding| !coding.is_empty());
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
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
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether a comma-separated header (such as `Connection`) lists `token`.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
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
pub(super) struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub(super) fn new(framing: Framing) -> BodyDecoder {
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
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Decoded> {
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
                State::ChunkSize => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE, "chunk size line")? else {
                        return Ok(Decoded::Incomplete);
                    };
                    let size = chunk_size(&line)?;
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
                    let Some(line) = take_line(buf, room, "trailer section")? else {
                        return Ok(Decoded::Incomplete);
                    };
                    self.state = if line.is_empty() {
                        State::Done
                    } else {
                        State::Trailers {
                            seen: seen + line.len() + 2,
                        }
                    };
                }
            }
        }
    }

    /// The upstream closed the connection: the end of the body if it runs until the close,
    /// otherwise the body was cut short.
    pub(super) fn closed(&mut self) -> io::Result<Decoded> {
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

/// Takes one line (without its CRLF or bare LF) off the front of `buf`; `None` if no line end
/// arrived yet. A line longer than `limit` is an error.
fn take_line(buf: &mut BytesMut, limit: usize, what: &str) -> io::Result<Option<Bytes>> {
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
    let mut line = buf.split_to(end + 1).freeze();
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line))
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
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| invalid("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| invalid("invalid chunk size"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> io::Result<Option<ResponseHead>> {
        parse_head(&mut BytesMut::from(text))
    }

    fn complete_head(text: &str) -> ResponseHead {
        head(text).expect("valid head").expect("complete head")
    }

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
    fn a_post_carries_host_headers_and_length() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let request = post("/v1/chat/completions", "127.0.0.1:8000", &headers, b"{}");
        assert_eq!(
            request,
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:8000\r\naccept: text/event-stream\r\ncontent-length: 2\r\n\r\n{}"
        );
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
    fn heads_give_status_headers_framing_and_reuse() {
        assert!(
            head("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
                .expect("ok")
                .is_none()
        );

        let sse = complete_head(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-request-id: r1\r\n\r\n",
        );
        assert_eq!(sse.status, StatusCode::OK);
        assert_eq!(sse.headers["x-request-id"], "r1");
        assert_eq!((sse.framing, sse.reusable), (Framing::Chunked, true));

        let closing = complete_head(
            "HTTP/1.1 429 Too Many\r\ncontent-length: 2\r\nconnection: keep-alive, Close\r\n\r\n",
        );
        assert_eq!(closing.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            (closing.framing, closing.reusable),
            (Framing::Length(2), false)
        );

        let old = complete_head("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!((old.framing, old.reusable), (Framing::UntilClose, false));

        let both = complete_head(
            "HTTP/1.1 200 OK\r\ncontent-length: 9\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        assert_eq!((both.framing, both.reusable), (Framing::Chunked, false));

        let gzip = complete_head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n");
        assert_eq!(gzip.framing, Framing::UntilClose);

        let repeated =
            complete_head("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ncontent-length: 3\r\n\r\n");
        assert_eq!(repeated.framing, Framing::Length(3));

        let empty = complete_head("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((empty.framing, empty.reusable), (Framing::Empty, true));
    }

    #[test]
    fn malformed_heads_are_errors() {
        for text in [
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
        ] {
            let error = head(text).expect_err(text);
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{text}");
        }
        let mut huge = "HTTP/1.1 200 OK\r\n".to_owned();
        while huge.len() <= MAX_HEAD {
            huge.push_str(
                "x-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        assert!(head(&huge).is_err(), "too many or too large headers");
    }
}
