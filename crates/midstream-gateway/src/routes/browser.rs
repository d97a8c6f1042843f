//! What the browser-stream routes share: starting a stream that no client connection drives,
//! and deciding who may follow or cancel one.

use std::sync::Arc;
use std::time::Instant;

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::inflight::{InflightBody, PlanSlot};
use crate::live::Publish;
use crate::live::feed::not_found;
use crate::routes::chat::{self, EVENTS_HEADER, STREAM_ID_HEADER};
use crate::state::AppState;

/// How a browser stream was started.
pub enum Started {
    /// It runs: its id.
    Running(Arc<str>),
    /// It failed before streaming (e.g. the upstream refused): the error response, as the chat
    /// route answers it.
    Refused(Response),
}

/// Starts `request` (a chat-completions body) as a stream that runs on the server to its end
/// whether or not anyone follows it: the same validation, limits, analysis, tools and record
/// as `POST /v1/chat/completions`, with `stream: true` and usage on.
pub async fn start_detached(
    state: &AppState,
    caller: &Caller,
    request: Map<String, Value>,
) -> Result<Started, ApiError> {
    let (mut request, Origin { api, original }) = as_chat(request)?;
    request.insert("stream".to_owned(), Value::Bool(true));
    let options = request
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(options) = options {
        options.insert("include_usage".to_owned(), Value::Bool(true));
    }
    let bytes =
        Bytes::from(serde_json::to_vec(&request).map_err(|e| {
            ApiError::Internal(format!("a parsed request failed to serialise: {e}"))
        })?);
    // Nobody reads the chat bytes of a detached stream: its subscribers read the events.
    let mut headers = HeaderMap::new();
    headers.insert(EVENTS_HEADER, HeaderValue::from_static("off"));
    let incoming = chat::StartRequest {
        api,
        chat: bytes,
        original,
        started: Instant::now(),
        publish: Publish::FromStart,
    };
    let response = chat::start(state, caller, &headers, incoming).await?;
    let plan = response
        .extensions()
        .get::<PlanSlot>()
        .and_then(PlanSlot::take);
    let id = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(Arc::<str>::from);
    let (Some(plan), Some(id)) = (plan, id) else {
        return Ok(Started::Refused(response));
    };
    let body = InflightBody::new(response.into_body(), *plan, &state.inflight);
    state.hub.spawn_detached(async move {
        let mut body = std::pin::pin!(body);
        while body.frame().await.is_some() {}
    });
    Ok(Started::Running(id))
}

/// The API a browser stream's request was written in, and its body when it was not chat.
struct Origin {
    api: chat::Api,
    original: Option<Bytes>,
}

/// The request as a chat-completions body: as it is, or translated from a Responses request
/// when its `api` field says `"responses"` (then the original is what the record keeps).
fn as_chat(mut request: Map<String, Value>) -> Result<(Map<String, Value>, Origin), ApiError> {
    let chat = Origin {
        api: chat::Api::Chat,
        original: None,
    };
    match request.remove("api") {
        None | Some(Value::Null) => Ok((request, chat)),
        Some(Value::String(api)) if api == "chat" => Ok((request, chat)),
        Some(Value::String(api)) if api == "responses" => {
            let original = serde_json::to_vec(&request).ok().map(Bytes::from);
            let translated = crate::protocol::responses::request::to_chat(&request)?;
            let origin = Origin {
                api: chat::Api::Responses,
                original,
            };
            Ok((translated.chat, origin))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_api",
            "`api` must be \"chat\" (a chat-completions body, the default) or \"responses\" \
             (a Responses API body)",
            Some("api"),
        )),
    }
}

/// The caller that may follow or cancel `stream`: the holder of a valid token for it (signed
/// for a key that is still active), or an API key that owns it (or any caller in open mode).
/// Another key's stream is 404, as if it did not exist.
pub async fn authorize(
    state: &AppState,
    stream: &str,
    token: Option<&str>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    if uuid::Uuid::parse_str(stream).is_err() {
        return Err(not_found(stream));
    }
    if let Some(token) = token {
        let now = u64::try_from(midstream_store::clock::now_ms() / 1000).unwrap_or(0);
        let caller = state
            .hub
            .signer()
            .verify(stream, token, now)
            .ok_or(ApiError::InvalidStreamToken)?;
        return state.auth.admit_signed(caller).await;
    }
    let caller = state.auth.authenticate(headers).await?;
    let owner = match state.hub.owner_here(stream) {
        Some(owner) => owner,
        None => {
            state
                .store
                .stream(stream)
                .await?
                .ok_or_else(|| not_found(stream))?
                .api_key_id
        }
    };
    if !caller.may_see(owner.as_deref()) {
        return Err(not_found(stream));
    }
    Ok(caller)
}
