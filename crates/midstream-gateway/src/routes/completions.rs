//! `POST /v1/completions`: legacy text completions, translated to and from chat completions
//! (see [`crate::protocol::completions`] for why, and what that means), under the same inflight
//! layer as the chat route.

use std::time::Instant;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use bytes::{BufMut, BytesMut};
use http::HeaderMap;
use serde_json::Value;

use super::chat::Api;
use super::translated::{start_translated, translate_answer};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::protocol::completions::{chunk, completion, to_chat};
use crate::sse::translated::ChunkTranslation;
use crate::state::AppState;

/// Marks a response [`translate`] rewrites.
#[derive(Debug, Clone, Copy)]
struct Translation;

/// The handler.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (chat_body, _) = to_chat(&request)?;
    let mut response = start_translated(
        &state,
        &caller,
        &headers,
        Api::Completions,
        &chat_body,
        &request,
        started,
    )
    .await?;
    if response.status().is_success() {
        response.extensions_mut().insert(Translation);
    }
    Ok(response)
}

/// Middleware outside the inflight layer: chat chunks → `text_completion` chunks, a chat
/// completion → a `text_completion`. Errors pass unchanged.
pub async fn translate(mut response: Response) -> Response {
    if response.extensions_mut().remove::<Translation>().is_none() {
        return response;
    }
    translate_answer(response, TextChunks { ended: false }, completion).await
}

/// Chat chunks → `text_completion` chunks, then `[DONE]`.
struct TextChunks {
    ended: bool,
}

impl ChunkTranslation for TextChunks {
    fn on_chunk(&mut self, chat: &Value, out: &mut BytesMut) {
        if let Some(text_chunk) = chunk(chat) {
            out.put_slice(b"data: ");
            out.put_slice(crate::inflight::json_text(&text_chunk).as_bytes());
            out.put_slice(b"\n\n");
        }
        // After an in-band error the stream ends without `[DONE]`, as on the chat endpoint.
        self.ended |= chat.get("error").is_some();
    }

    fn on_end(&mut self, out: &mut BytesMut) {
        if !std::mem::replace(&mut self.ended, true) {
            out.put_slice(crate::sse::authored::DONE);
        }
    }
}
