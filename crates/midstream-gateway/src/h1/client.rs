//! The client side of HTTP/1.1, as the driven upstream client speaks it: the request it
//! writes and the response head it parses (with `httparse`); [`super::framing`] decodes the body.
//!
//! Only what a client of an OpenAI-compatible API meets is supported: one request at a time
//! (no pipelining), bodies framed by `Content-Length`, `chunked` or the end of the connection.
//! Anything else in a response is an error, never a guess.

use std::io;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::framing::{Framing, chunked_coding, content_length, has_token, invalid};

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;

/// Most response headers accepted.
const MAX_HEADERS: usize = 128;

/// The request head and body of a POST, ready to be written in one go.
pub(crate) fn post(path: &str, host: &str, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
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

/// A final response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The connection may carry another request once this body has ended.
    pub(crate) reusable: bool,
}

/// Parses a response head at the start of `buf`, consuming it (and any interim 1xx heads
/// before it). `Ok(None)`: more bytes are needed.
pub(crate) fn parse_head(buf: &mut BytesMut) -> io::Result<Option<ResponseHead>> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
            Ok(_) => return Err(invalid("response head larger than 64 KiB")),
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
    Ok(match (chunked_coding(headers), content_length(headers)?) {
        (Some(true), _) => Framing::Chunked,
        // A last coding other than chunked: the body runs to the end of the connection.
        (Some(false), _) | (None, None) => Framing::UntilClose,
        (None, Some(length)) => Framing::Length(length),
    })
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
