//! The answer of a chat completion rewritten into another API's: the stream through a
//! [`ChunkTranslation`], a whole completion through a function. Shared by `/v1/responses` and
//! `/v1/completions`, whose handlers run the request as a chat completion.

use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::chat::{self, Api};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::inflight::json_text;
use crate::live::Publish;
use crate::sse::translated::{ChunkTranslation, TranslatedBody};
use crate::state::AppState;

/// Runs `chat`, translated from the `original` request of another API, exactly as a chat
/// completion (the record keeps `original`).
pub async fn start_translated(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    api: Api,
    chat: &Map<String, Value>,
    original: &Map<String, Value>,
    started: Instant,
) -> Result<Response, ApiError> {
    let incoming = chat::StartRequest {
        api,
        chat: Bytes::from(json_text(chat)),
        original: Some(Bytes::from(json_text(original))),
        started,
        publish: Publish::WhenFollowed,
    };
    chat::start(state, caller, headers, incoming).await
}

/// Largest translated completion read back (the inflight layer bounds it first).
const MAX_COMPLETION_BYTES: usize = 64 << 20;

/// `response` (a chat answer, streamed or not) as the other API's answer.
pub async fn translate_answer<T: ChunkTranslation>(
    response: Response,
    stream: T,
    whole: impl FnOnce(&Value) -> Value,
) -> Response {
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    if streaming {
        return Response::from_parts(parts, Body::new(TranslatedBody::new(body, stream)));
    }
    let object = match http_body_util::Limited::new(body, MAX_COMPLETION_BYTES)
        .collect()
        .await
    {
        Ok(collected) => match serde_json::from_slice::<Value>(&collected.to_bytes()) {
            Ok(completion) => whole(&completion),
            Err(e) => return internal(parts, &format!("the completion is not JSON: {e}")),
        },
        Err(e) => return internal(parts, &format!("the completion could not be read: {e}")),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json_text(&object)))
}

/// A 500 for a completion the gateway could not read back, keeping the stream id header.
fn internal(parts: http::response::Parts, detail: &str) -> Response {
    let mut response =
        axum::response::IntoResponse::into_response(ApiError::Internal(detail.to_owned()));
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}
