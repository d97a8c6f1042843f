//! The server side's reading of a request head (with `httparse`): method, target, headers,
//! how the body is framed, and whether the connection may carry another request.

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version, header};

use super::framing::{Framing, chunked_coding, content_length, has_token};

/// Largest request head accepted (request line and headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Most request headers accepted.
const MAX_HEADERS: usize = 100;

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) parts: http::request::Parts,
    /// [`Framing::Length`] or [`Framing::Chunked`] (a request without either has no body).
    pub(crate) framing: Framing,
    /// The client may send another request on this connection.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a go-ahead before sending the body.
    pub(crate) expects_continue: bool,
}

/// A request that cannot be served, with the status that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::BAD_REQUEST, message)
    }

    /// A request that did not arrive in time.
    pub(crate) fn timeout() -> Rejection {
        Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request did not arrive in time",
        )
    }

    /// The stable error code clients see (OpenAI's `error.code`).
    pub(crate) fn code(&self) -> &'static str {
        match self.status {
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "request_header_too_large",
            StatusCode::NOT_IMPLEMENTED => "unsupported_transfer_coding",
            StatusCode::HTTP_VERSION_NOT_SUPPORTED => "http_version_not_supported",
            _ => "invalid_http_request",
        }
    }
}

/// Parses a request head at the start of `buf`, consuming it. `Ok(None)`: more bytes are
/// needed.
pub(crate) fn parse_request_head(buf: &mut BytesMut) -> Result<Option<RequestHead>, Rejection> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let too_large = || {
        Rejection::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request head exceeds {MAX_HEAD} bytes or {MAX_HEADERS} headers"),
        )
    };
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(_) => return Err(too_large()),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(httparse::Error::Version) => {
            return Err(Rejection::new(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "only HTTP/1.1 and HTTP/1.0 are served",
            ));
        }
        Err(error) => {
            return Err(Rejection::bad_request(format!(
                "malformed request: {error}"
            )));
        }
    };
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| Rejection::bad_request("invalid method"))?;
    let uri = Uri::try_from(request.path.unwrap_or_default())
        .map_err(|_| Rejection::bad_request("invalid request target"))?;
    let version = match request.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for slot in request.headers.iter() {
        let name = HeaderName::from_bytes(slot.name.as_bytes())
            .map_err(|_| Rejection::bad_request(format!("invalid header name {:?}", slot.name)))?;
        let value = HeaderValue::from_bytes(slot.value).map_err(|_| {
            Rejection::bad_request(format!("invalid value of header {}", slot.name))
        })?;
        headers.append(name, value);
    }
    buf.advance(len);
    let framing = request_framing(&headers)?;
    let keep_alive = match version {
        Version::HTTP_11 => !has_token(&headers, &header::CONNECTION, "close"),
        _ => has_token(&headers, &header::CONNECTION, "keep-alive"),
    };
    let expects_continue = version == Version::HTTP_11
        && headers
            .get(header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut parts = Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(RequestHead {
        parts,
        framing,
        keep_alive,
        expects_continue,
    }))
}

/// RFC 9112 §6.3 for requests, strictly: a message with both `Transfer-Encoding` and
/// `Content-Length` is how requests are smuggled past proxies, so it is refused.
fn request_framing(headers: &HeaderMap) -> Result<Framing, Rejection> {
    let length =
        content_length(headers).map_err(|error| Rejection::bad_request(error.to_string()))?;
    match (chunked_coding(headers), length) {
        (Some(_), Some(_)) => Err(Rejection::bad_request(
            "a request may not carry both Transfer-Encoding and Content-Length",
        )),
        (Some(true), None) => Ok(Framing::Chunked),
        (Some(false), None) => Err(Rejection::new(
            StatusCode::NOT_IMPLEMENTED,
            "only the chunked transfer coding is supported",
        )),
        (None, length) => Ok(Framing::Length(length.unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, Rejection> {
        parse_request_head(&mut BytesMut::from(text))
    }

    fn status_of(text: &str) -> StatusCode {
        parse(text).expect_err(text).status
    }

    #[test]
    fn a_request_head_gives_method_target_headers_and_framing() {
        let mut buf = BytesMut::from(
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}",
        );
        let head = parse_request_head(&mut buf)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/v1/chat/completions?x=1");
        assert_eq!(head.parts.headers["host"], "a");
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive && head.expects_continue);
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(&buf[..], b"{}", "the body is left in the buffer");

        assert!(
            parse("GET / HTTP/1.1\r\nHost: a\r\n")
                .expect("partial")
                .is_none()
        );
        let chunked = parse("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n").expect("ok");
        assert_eq!(chunked.expect("complete").framing, Framing::Chunked);
        let closing = parse("GET / HTTP/1.1\r\nconnection: close\r\n\r\n").expect("ok");
        assert!(!closing.expect("complete").keep_alive);
        let old = parse("GET / HTTP/1.0\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert!(!old.keep_alive);
        assert_eq!(old.parts.version, Version::HTTP_10);
        assert_eq!(old.framing, Framing::Length(0));
    }

    #[test]
    fn requests_that_cannot_be_served_say_why() {
        let smuggled = "POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(status_of(smuggled), StatusCode::BAD_REQUEST);
        let conflicting = "POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n";
        assert_eq!(status_of(conflicting), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_of("POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n"),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            status_of("GET / HTTP/2.0\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(status_of("G@T / HTTP/1.1\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_of("\u{0}\u{1}\u{2}\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        let mut many = "GET / HTTP/1.1\r\n".to_owned();
        for index in 0..=MAX_HEADERS {
            many.push_str(&format!("x-{index}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(
            status_of(&many),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            status_of(&long),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
