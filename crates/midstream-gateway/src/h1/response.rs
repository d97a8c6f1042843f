//! The server side's writing of a response: its head, and its body framed for the client.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{StatusCode, header};

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body: a HEAD request, or a status that has none (1xx, 204, 304).
    Omitted,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunks as they come (HTTP/1.1 clients).
    Chunked,
    /// Bytes as they come, ended by closing the connection (HTTP/1.0 clients).
    UntilClose,
}

impl BodyFraming {
    /// The framing for a body of `exact_len` (when known up front).
    pub(crate) fn choose(
        head_request: bool,
        status: StatusCode,
        exact_len: Option<u64>,
        http11: bool,
    ) -> BodyFraming {
        let bodiless = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        match exact_len {
            _ if head_request || bodiless => BodyFraming::Omitted,
            Some(len) => BodyFraming::Length(len),
            None if http11 => BodyFraming::Chunked,
            None => BodyFraming::UntilClose,
        }
    }

    /// Whether the connection must close after this body.
    pub(crate) fn closes(self) -> bool {
        self == BodyFraming::UntilClose
    }
}

/// Appends the response head to `out`. Framing headers are ours: the response's own
/// `Content-Length`, `Transfer-Encoding` and `Connection` are replaced (a HEAD or 304 response
/// keeps its `Content-Length`, which describes the body it does not carry).
pub(crate) fn encode_head(
    parts: &http::response::Parts,
    framing: BodyFraming,
    close: bool,
    out: &mut Vec<u8>,
) {
    let status = parts.status;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        let ours = name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || name == "keep-alive"
            || (name == header::CONTENT_LENGTH && framing != BodyFraming::Omitted);
        if !ours {
            for part in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
    }
    match framing {
        BodyFraming::Length(len) => {
            let _ = write!(out, "content-length: {len}\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyFraming::Omitted | BodyFraming::UntilClose => {}
    }
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        push_date(out);
        out.extend_from_slice(b"\r\n");
    }
    if close || framing.closes() {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body.
pub(crate) fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if !data.is_empty() {
        push_hex(out, data.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `n` in lowercase hex. Once per frame: `write!` through `fmt` cost ≈ 300
/// instructions for it, most of a frame's framing (callgrind).
fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; usize::BITS as usize / 4];
    let mut start = text.len();
    loop {
        start -= 1;
        text[start] = DIGITS[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// The end of a chunked body (no trailers).
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends the current time in IMF-fixdate form, formatted at most once a second per thread.
fn push_date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second || cached.1.is_empty() {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Response};

    use super::*;

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for n in [0, 1, 9, 10, 15, 16, 255, 256, 4096, 65_535, usize::MAX] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").into_bytes());
        }
        let mut out = Vec::new();
        push_chunk(&mut out, &[b'x'; 300]);
        assert!(out.starts_with(b"12c\r\nxxx"));
        assert!(out.ends_with(b"x\r\n"));
    }

    fn head_of(response: Response<()>, framing: BodyFraming, close: bool) -> String {
        let mut out = Vec::new();
        encode_head(&response.into_parts().0, framing, close, &mut out);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn heads_carry_our_framing_a_date_and_the_response_headers() {
        let mut response = Response::new(());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        let head = head_of(response, BodyFraming::Chunked, false);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
        assert!(head.contains("transfer-encoding: chunked\r\n"));
        assert!(
            !head.contains("999"),
            "the handler's length is replaced: {head}"
        );
        assert!(
            head.contains("\r\ndate: ") && head.ends_with(" GMT\r\n\r\n"),
            "{head}"
        );

        let mut response = Response::new(());
        *response.status_mut() = StatusCode::NOT_FOUND;
        let head = head_of(response, BodyFraming::Length(12), true);
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n"));
        assert!(head.ends_with("connection: close\r\n\r\n"));
    }

    #[test]
    fn framing_follows_method_status_size_and_version() {
        let ok = StatusCode::OK;
        assert_eq!(
            BodyFraming::choose(true, ok, Some(5), true),
            BodyFraming::Omitted
        );
        assert_eq!(
            BodyFraming::choose(false, StatusCode::NO_CONTENT, None, true),
            BodyFraming::Omitted
        );
        assert_eq!(
            BodyFraming::choose(false, ok, Some(5), true),
            BodyFraming::Length(5)
        );
        assert_eq!(
            BodyFraming::choose(false, ok, None, true),
            BodyFraming::Chunked
        );
        assert_eq!(
            BodyFraming::choose(false, ok, None, false),
            BodyFraming::UntilClose
        );
        let mut out = Vec::new();
        push_chunk(&mut out, b"hello, world");
        push_chunk(&mut out, b"");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(out, b"c\r\nhello, world\r\n0\r\n\r\n");
    }
}
