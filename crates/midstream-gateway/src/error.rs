//! The one place where failures become HTTP responses, in OpenAI's error shape:
//! `{"error": {"message", "type", "code", "param"}}`. A failure after the SSE headers were
//! sent is the same [`ApiError`], sent in-band as `data: {"error": ...}` with the same object
//! ([`crate::sse::authored::error_frame`]), so an error reads the same before and after.
//!
//! 5xx bodies stay generic; the real cause travels in the response's extensions as
//! [`ErrorDetail`] and is logged once by [`crate::app`]'s error-logging middleware.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::upstream::ErrorReply;

/// OpenAI's error object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable; says what to fix.
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `server_error`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Machine-readable code, e.g. `invalid_json`, `model_not_found`.
    pub code: Option<&'static str>,
    /// The request field at fault, when known.
    pub param: Option<String>,
}

/// The wire form: `{"error": {...}}`. Also used in-band once a stream has started.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEnvelope<'a> {
    /// The error.
    pub error: &'a ErrorBody,
}

/// The hidden cause of a 5xx, for the log.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Everything a request can fail with, before its response starts (an HTTP error) or while it
/// streams (an in-band error event, then the end).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or asks for something impossible (400).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The field at fault.
        param: Option<String>,
        /// Stable code.
        code: &'static str,
    },
    /// No key, or a wrong or revoked key (401).
    #[error("invalid or missing API key")]
    Unauthorized,
    /// A stream URL's signed token is malformed, forged, expired or for another stream (401).
    #[error("the stream token is invalid or expired: start the stream again for a fresh URL")]
    InvalidStreamToken,
    /// No such route, model or stream (404).
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// Stable code.
        code: &'static str,
    },
    /// The request conflicts with the resource's state (409).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// Stable code.
        code: &'static str,
    },
    /// The method is not allowed on this route (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A piece of the request body did not arrive within the read timeout (408).
    #[error("the request body arrived too slowly")]
    RequestTimeout,
    /// The body exceeds the configured limit (413).
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The API key is over one of its own limits (429, with `Retry-After`).
    #[error(transparent)]
    KeyLimited(#[from] crate::auth::limits::LimitExceeded),
    /// The process-wide requests per minute are spent (503, with `Retry-After`).
    #[error("the gateway is at its limit of {limit} requests per minute; retry after {} s", retry_after.as_secs())]
    GatewayRateLimited {
        /// `MIDSTREAM_MAX_RPM`.
        limit: u32,
        /// When a request is allowed again (whole seconds).
        retry_after: Duration,
    },
    /// Too many streams open at once (503, with `Retry-After`).
    #[error("the gateway is at its limit of {limit} concurrent streams")]
    Overloaded {
        /// The configured limit.
        limit: usize,
    },
    /// The upstream could not be reached, timed out, or failed with a 5xx before streaming (502).
    #[error("upstream failed: {message}")]
    UpstreamFailed {
        /// Safe to show: which upstream and what happened (never its key).
        message: String,
        /// Whether a retry might succeed (`x-should-retry`).
        retryable: bool,
    },
    /// The upstream answered 4xx: its status, body (verbatim when JSON) and `retry-after`
    /// and rate-limit headers are passed through.
    #[error("upstream answered {}", .0.status)]
    UpstreamRejected(Box<ErrorReply>),
    /// The upstream broke off a response it had started: it closed before the end or its
    /// connection failed (502).
    #[error("{0}")]
    UpstreamDisconnected(String),
    /// The upstream sent nothing for longer than the idle limit (504).
    #[error("the upstream sent nothing for {} s", .0.as_secs())]
    UpstreamIdle(Duration),
    /// The stream ran past the gateway's maximum stream duration (504; only ever sent
    /// in-band, the response having started).
    #[error("the stream ran past the gateway's maximum duration of {} s", .0.as_secs())]
    StreamTooLong(Duration),
    /// The upstream broke the SSE framing (a frame past the bound) (502).
    #[error(transparent)]
    UpstreamProtocol(#[from] midstream_sse::FrameTooLarge),
    /// The stream was cancelled through its cancel endpoint. Only ever sent in-band: the
    /// response had started (409 if it were a status).
    #[error("the stream was cancelled")]
    Cancelled,
    /// The gateway is shutting down and its grace period is over (503).
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The database is unreachable (503).
    #[error("database unavailable")]
    StoreUnavailable(#[source] midstream_store::StoreError),
    /// A bug or an unexpected failure (500). The detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a field name.
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            param: param.map(str::to_owned),
            code,
        }
    }

    /// The status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidStreamToken => StatusCode::UNAUTHORIZED,
            ApiError::Cancelled | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::KeyLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. }
            | ApiError::GatewayRateLimited { .. }
            | ApiError::StoreUnavailable(_)
            | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpstreamFailed { .. }
            | ApiError::UpstreamDisconnected(_)
            | ApiError::UpstreamProtocol(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamIdle(_) | ApiError::StreamTooLong(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::UpstreamRejected(reply) => reply.status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error object for this error (what a client sees).
    pub fn body(&self) -> ErrorBody {
        let (kind, code, param) = match self {
            ApiError::BadRequest { code, param, .. } => {
                ("invalid_request_error", Some(*code), param.clone())
            }
            ApiError::Unauthorized => ("authentication_error", Some("invalid_api_key"), None),
            ApiError::InvalidStreamToken => {
                ("authentication_error", Some("invalid_stream_token"), None)
            }
            ApiError::Cancelled => ("invalid_request_error", Some("stream_cancelled"), None),
            ApiError::NotFound { code, .. } | ApiError::Conflict { code, .. } => {
                ("invalid_request_error", Some(*code), None)
            }
            ApiError::MethodNotAllowed => {
                ("invalid_request_error", Some("method_not_allowed"), None)
            }
            ApiError::RequestTimeout => ("invalid_request_error", Some("request_timeout"), None),
            ApiError::PayloadTooLarge { .. } => {
                ("invalid_request_error", Some("request_too_large"), None)
            }
            // OpenAI's own shape for a rate limit: type `requests`.
            ApiError::KeyLimited(limit) => ("requests", Some(limit.code()), None),
            ApiError::Overloaded { .. } | ApiError::GatewayRateLimited { .. } => {
                ("server_error", Some("overloaded"), None)
            }
            ApiError::UpstreamFailed { .. } | ApiError::UpstreamRejected(_) => {
                ("upstream_error", Some("upstream_error"), None)
            }
            ApiError::UpstreamDisconnected(_) => {
                ("upstream_error", Some("upstream_disconnected"), None)
            }
            ApiError::UpstreamIdle(_) => ("upstream_error", Some("upstream_timeout"), None),
            ApiError::StreamTooLong(_) => ("server_error", Some("stream_duration_exceeded"), None),
            ApiError::UpstreamProtocol(_) => {
                ("upstream_error", Some("upstream_protocol_error"), None)
            }
            ApiError::ShuttingDown => ("server_error", Some("shutting_down"), None),
            ApiError::StoreUnavailable(_) => ("server_error", Some("database_unavailable"), None),
            ApiError::Internal(_) => ("server_error", Some("internal_error"), None),
        };
        let message = match self {
            ApiError::Internal(_) => {
                "the gateway failed unexpectedly; the error was logged".to_owned()
            }
            other => other.to_string(),
        };
        ErrorBody {
            message,
            kind,
            code,
            param,
        }
    }
}

/// Retry hint for 503s: streams free up quickly.
const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            ApiError::UpstreamRejected(reply) => {
                let ErrorReply { body, headers, .. } = reply.as_ref();
                let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
                let mut response = if is_json {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        body.clone(),
                    )
                        .into_response()
                } else {
                    json_response(&ErrorBody {
                        message: format!(
                            "upstream answered {status}: {}",
                            String::from_utf8_lossy(body)
                                .chars()
                                .take(500)
                                .collect::<String>()
                        ),
                        kind: "upstream_error",
                        code: Some("upstream_error"),
                        param: None,
                    })
                };
                response.headers_mut().extend(headers.clone());
                response
            }
            _ => json_response(&self.body()),
        };
        *response.status_mut() = status;
        let headers = response.headers_mut();
        match &self {
            ApiError::Overloaded { .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(OVERLOADED_RETRY_AFTER.as_secs()),
                );
            }
            ApiError::KeyLimited(limit) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(limit.retry_after_secs()),
                );
            }
            ApiError::GatewayRateLimited { retry_after, .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
            }
            ApiError::UpstreamFailed { retryable, .. } => {
                headers.insert(
                    "x-should-retry",
                    HeaderValue::from_static(if *retryable { "true" } else { "false" }),
                );
            }
            ApiError::BadRequest { .. } | ApiError::PayloadTooLarge { .. } => {
                headers.insert("x-should-retry", HeaderValue::from_static("false"));
            }
            _ => {}
        }
        if status.is_server_error() {
            response
                .extensions_mut()
                .insert(ErrorDetail(format!("{self:#}")));
        }
        response
    }
}

fn json_response(body: &ErrorBody) -> Response {
    let bytes = serde_json::to_vec(&ErrorEnvelope { error: body }).unwrap_or_else(|_| {
        br#"{"error":{"message":"error","type":"server_error","code":null,"param":null}}"#.to_vec()
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

impl From<midstream_store::StoreError> for ApiError {
    fn from(error: midstream_store::StoreError) -> Self {
        ApiError::StoreUnavailable(error)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;

    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn errors_have_openai_shape_and_status() {
        let response =
            ApiError::bad_request("invalid_json", "bad", Some("messages")).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": {"message": "bad", "type": "invalid_request_error", "code": "invalid_json", "param": "messages"}})
        );
    }

    #[tokio::test]
    async fn an_error_is_the_same_object_as_a_response_and_as_an_in_band_event() {
        for (error, status, code) in [
            (
                ApiError::UpstreamDisconnected("closed early".into()),
                StatusCode::BAD_GATEWAY,
                "upstream_disconnected",
            ),
            (
                ApiError::UpstreamIdle(Duration::from_secs(300)),
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
            ),
            (
                ApiError::StreamTooLong(Duration::from_secs(3600)),
                StatusCode::GATEWAY_TIMEOUT,
                "stream_duration_exceeded",
            ),
            (
                ApiError::from(midstream_sse::FrameTooLarge(1024)),
                StatusCode::BAD_GATEWAY,
                "upstream_protocol_error",
            ),
            (
                ApiError::ShuttingDown,
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
            ),
        ] {
            let frame = crate::sse::authored::error_frame(&error);
            let in_band: serde_json::Value = serde_json::from_slice(
                frame
                    .strip_prefix(b"data: ")
                    .and_then(|rest| rest.strip_suffix(b"\n\n"))
                    .expect("one data frame"),
            )
            .expect("json");
            let response = error.into_response();
            assert_eq!(response.status(), status);
            let body = body_json(response).await;
            assert_eq!(body["error"]["code"], code);
            assert_eq!(in_band, body, "{code}");
        }
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause_from_the_client() {
        let response = ApiError::Internal("secret path /etc/x".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let detail = response
            .extensions()
            .get::<ErrorDetail>()
            .cloned()
            .expect("detail");
        assert!(detail.0.contains("/etc/x"));
        let body = body_json(response).await;
        assert!(!body.to_string().contains("/etc/x"));
    }

    #[tokio::test]
    async fn upstream_rejections_pass_status_body_and_retry_after_through() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        let body = Bytes::from_static(br#"{"error":{"message":"slow down","type":"rate_limit"}}"#);
        let response = ApiError::UpstreamRejected(Box::new(ErrorReply {
            upstream: "default".into(),
            status: StatusCode::TOO_MANY_REQUESTS,
            body: body.clone(),
            headers,
        }))
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        assert_eq!(bytes, body);
    }
}
