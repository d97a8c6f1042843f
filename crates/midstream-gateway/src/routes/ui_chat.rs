//! The Vercel AI SDK's chat transport: `POST /v1/ui/chat` takes the body `useChat` sends
//! (`id`, `messages` with `parts`) and answers the UI message stream; `GET
//! /v1/ui/chat/{chatId}/stream` is the resume `useChat({ resume: true })` calls on mount: the
//! chat's active stream from its start, or 204 when none is active.
//!
//! The stream runs on the server like `POST /v1/streams` (a closed tab does not stop it), so a
//! reload resumes it.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::browser::{Started, start_detached};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::RequestBody;
use crate::live::feed::{Feed, Start};
use crate::live::ui_stream::UiEncoder;
use crate::state::AppState;
use crate::upstream::demo::DEMO_MODEL;

/// The body `useChat`'s default transport sends (unknown fields are ignored).
#[derive(Debug, Deserialize)]
struct UiChatRequest {
    /// The chat id.
    id: String,
    /// The conversation, as UI messages.
    messages: Vec<UiMessage>,
    /// The model; optional with the demo model or a single alias.
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UiMessage {
    role: String,
    #[serde(default)]
    parts: Vec<Value>,
    /// Older clients send the text as `content`.
    content: Option<String>,
}

impl UiMessage {
    /// The message's text parts, joined.
    fn text(&self) -> String {
        let parts: String = self
            .parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect();
        if parts.is_empty() {
            self.content.clone().unwrap_or_default()
        } else {
            parts
        }
    }
}

/// `POST /v1/ui/chat`.
pub async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RequestBody(bytes): RequestBody,
) -> Result<Response, ApiError> {
    let request: UiChatRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("expected the body useChat sends ({{\"id\", \"messages\"}}): {e}"),
            None,
        )
    })?;
    if request.id.is_empty() || request.id.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_chat_id",
            "`id` must be a chat id of 1 to 200 characters",
            Some("id"),
        ));
    }
    let model = match request.model.clone().or_else(|| default_model(&state)) {
        Some(model) => model,
        None => {
            return Err(ApiError::bad_request(
                "missing_model",
                "add `model` to the body (useChat: `body: { model }`): this gateway routes several",
                Some("model"),
            ));
        }
    };
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| matches!(m.role.as_str(), "system" | "user" | "assistant"))
        .map(|m| json!({"role": m.role, "content": m.text()}))
        .collect();
    let mut chat = Map::new();
    chat.insert("model".to_owned(), Value::String(model));
    chat.insert("messages".to_owned(), Value::Array(messages));
    let stream = match start_detached(&state, &caller, chat).await? {
        Started::Running(stream) => stream,
        Started::Refused(response) => return Ok(response),
    };
    state.hub.set_chat_stream(&request.id, stream.clone());
    follow(&state, stream, Following::Whole).await
}

/// `GET /v1/ui/chat/{chatId}/stream`.
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(chat): Path<String>,
) -> Result<Response, ApiError> {
    let Some(stream) = state.hub.chat_stream(&chat).await else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let owner = match state.hub.owner_here(&stream) {
        Some(owner) => Some(owner),
        None => state
            .store
            .stream(&stream)
            .await?
            .filter(|row| row.status == "streaming")
            .map(|row| row.api_key_id),
    };
    // Ended, or another key's: nothing active for this caller.
    match owner {
        Some(owner) if caller.may_see(owner.as_deref()) => {
            follow(&state, stream, Following::ActiveOnly).await
        }
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Whether a stream that already ended is sent whole or answered 204.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Following {
    /// The reply to the POST: the whole stream, however far it got.
    Whole,
    /// The resume: only a stream still running (its record may say `streaming` for a moment
    /// after its `done`, until the recorder writes the close: the log decides).
    ActiveOnly,
}

/// The demo model, or the only alias, when the body names none.
fn default_model(state: &AppState) -> Option<String> {
    if state.router.is_demo() {
        return Some(DEMO_MODEL.to_owned());
    }
    let mut aliases = state.router.aliases();
    match (aliases.next(), aliases.next()) {
        (Some((alias, _)), None) => Some(alias.to_owned()),
        _ => None,
    }
}

/// The stream from its start, as UI message chunks.
async fn follow(
    state: &AppState,
    stream: Arc<str>,
    following: Following,
) -> Result<Response, ApiError> {
    let message_id = format!("msg-{stream}");
    let feed = match Feed::open(state.hub.clone(), state.store.clone(), stream, None).await? {
        Start::Follow(feed) if following == Following::ActiveOnly && feed.reached_end() => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Start::Follow(feed) => feed,
        Start::Finished => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let chunks = futures_util::stream::unfold(
        (feed, UiEncoder::new(message_id)),
        |(mut feed, mut encoder)| async move {
            if encoder.finished() {
                return None;
            }
            let items = feed.next().await?;
            let bytes = encoder.encode(&items);
            Some((Ok::<_, Infallible>(bytes), (feed, encoder)))
        },
    );
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(
        "x-vercel-ai-ui-message-stream",
        HeaderValue::from_static("v1"),
    );
    Ok(response)
}
