//! Checks every request passes before it is routed, answered in OpenAI's error shape with the
//! request id and CORS headers like any other answer.
//!
//! - **Host** (RFC 9112 §3.2): an HTTP/1.1 request must carry exactly one `Host` header, and it
//!   must be a valid authority; otherwise 400. hyper leaves this to the application. HTTP/2
//!   requests carry `:authority` instead, and HTTP/1.0 predates `Host`.
//! - **Declared body length**: a `Content-Length` over `MIDSTREAM_MAX_BODY_BYTES` is answered 413
//!   before the body is read, so a client that sent `Expect: 100-continue` is never told to go
//!   ahead. A body that turns out too long while it is read (chunked, or a lying length) is
//!   caught by axum's `DefaultBodyLimit` in [`crate::extract::RequestBody`].

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::uri::Authority;
use http::{Version, header};

use crate::error::ApiError;

/// 400 for an HTTP/1.1 request whose `Host` is missing, repeated or invalid.
pub async fn require_host(request: Request, next: Next) -> Response {
    if request.version() == Version::HTTP_11
        && let Err(problem) = host_problem(&request)
    {
        return ApiError::bad_request("invalid_host", problem, None).into_response();
    }
    next.run(request).await
}

fn host_problem(request: &Request) -> Result<(), String> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let Some(host) = hosts.next() else {
        return Err("an HTTP/1.1 request must carry a Host header".to_owned());
    };
    if hosts.next().is_some() {
        return Err("the request carries more than one Host header".to_owned());
    }
    let valid = std::str::from_utf8(host.as_bytes())
        .ok()
        .and_then(|host| host.parse::<Authority>().ok())
        .is_some_and(|authority| authority.as_str().find('@').is_none());
    if valid {
        Ok(())
    } else {
        Err("the Host header is not a valid host[:port]".to_owned())
    }
}

/// 413 for a request whose declared `Content-Length` exceeds `limit`.
pub async fn refuse_declared_oversized_bodies(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    next.run(request).await
}
