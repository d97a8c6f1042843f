//! Extractors whose rejections come back in OpenAI's error shape, not axum's plain text.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use http::StatusCode;
use tower_http::timeout::TimeoutError;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole request body, read under axum's `DefaultBodyLimit` (set from
/// `MIDSTREAM_MAX_BODY_BYTES` in [`crate::app`]) and the per-piece read timeout that the server
/// puts on every request body (`MIDSTREAM_CLIENT_READ_TIMEOUT_MS`, [`crate::listener`]).
#[derive(Debug)]
pub struct RequestBody(pub Bytes);

impl FromRequest<AppState> for RequestBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RequestBody)
            .map_err(|rejection| body_error(&rejection, state.config.limits.max_body_bytes))
    }
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge { limit };
    }
    if caused_by_timeout(rejection) {
        return ApiError::RequestTimeout;
    }
    ApiError::bad_request(
        "invalid_body",
        format!(
            "the request body could not be read: {}",
            rejection.body_text()
        ),
        None,
    )
}

/// Whether the body read failed because a piece of it did not arrive in time.
fn caused_by_timeout(rejection: &BytesRejection) -> bool {
    std::iter::successors(
        Some(rejection as &(dyn std::error::Error + 'static)),
        |error| error.source(),
    )
    .any(|error| error.is::<TimeoutError>())
}

/// A request body that must be one JSON object (400 naming what is wrong otherwise).
#[derive(Debug)]
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let RequestBody(bytes) = RequestBody::from_request(request, state).await?;
        match serde_json::from_slice(&bytes) {
            Ok(serde_json::Value::Object(object)) => Ok(JsonObject(object)),
            Ok(_) => Err(ApiError::bad_request(
                "invalid_type",
                "the request body must be a JSON object",
                None,
            )),
            Err(e) => Err(ApiError::bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
                None,
            )),
        }
    }
}
