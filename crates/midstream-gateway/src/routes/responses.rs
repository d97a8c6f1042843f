//! `POST /v1/responses`: the OpenAI Responses API, translated to and from chat completions
//! (see [`crate::protocol::responses`]).
//!
//! The handler translates the request and runs it exactly like `/v1/chat/completions`
//! ([`chat::start`]), under the same inflight layer, so analysis, tools, redact and stop, the
//! record and the event log all apply; [`translate`], outside that layer, turns the chat answer
//! into Responses events (or the `response` object).

use std::time::Instant;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;

use super::chat::{Api, STREAM_ID_HEADER};
use super::translated::{start_translated, translate_answer};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::protocol::responses::object::{ResponseShell, from_completion, from_record};
use crate::protocol::responses::request::to_chat;
use crate::protocol::responses::stream::ChunksToEvents;
use crate::state::AppState;

/// What [`translate`] needs, from the handler, in the response's extensions.
#[derive(Debug, Clone)]
struct Translation(ResponseShell);

/// The handler.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let translated = to_chat(&request)?;
    let mut response = start_translated(
        &state,
        &caller,
        &headers,
        Api::Responses,
        &translated.chat,
        &request,
        started,
    )
    .await?;
    let stream_id = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if response.status().is_success()
        && let Some(stream_id) = stream_id
    {
        let created_at = midstream_store::clock::now_ms() / 1000;
        let shell = ResponseShell::new(&stream_id, created_at, &request);
        response.extensions_mut().insert(Translation(shell));
    }
    Ok(response)
}

/// Middleware outside the inflight layer: the chat answer → the Responses answer. Errors pass
/// unchanged (both APIs use `{"error": {…}}`).
pub async fn translate(mut response: Response) -> Response {
    let Some(Translation(shell)) = response.extensions_mut().remove::<Translation>() else {
        return response;
    };
    let events = ChunksToEvents::new(shell.clone());
    translate_answer(response, events, |completion| {
        from_completion(&shell, completion)
    })
    .await
}

/// `GET /v1/responses/{id}`: a response the gateway served, from its record (responses served
/// by translation are stored by the gateway, not by a chat-completions upstream). Another key's
/// response is 404, as for streams.
pub async fn retrieve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let not_found = || ApiError::NotFound {
        message: format!("no response {id:?}"),
        code: "response_not_found",
    };
    let stream_id = ResponseShell::stream_id_of(&id).ok_or_else(not_found)?;
    let row = state
        .store
        .stream(&stream_id)
        .await?
        .ok_or_else(not_found)?;
    if !caller.may_see(row.api_key_id.as_deref()) {
        return Err(not_found());
    }
    let request: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.request).unwrap_or_default();
    if !request.contains_key("input") {
        // A chat completion, not a response.
        return Err(not_found());
    }
    let shell = ResponseShell::new(&stream_id, row.created_at / 1000, &request);
    Ok(axum::Json(from_record(&shell, &row)))
}
