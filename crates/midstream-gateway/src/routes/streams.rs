//! Browser streams and the record: `POST /v1/streams` starts a stream and answers the URLs
//! to follow and cancel it; `GET /v1/streams` lists the caller's recorded streams;
//! `POST /v1/streams/{id}/cancel` stops one; `GET /v1/streams/{id}` is a stream's record —
//! request, messages, events, timings. (Its events, live: `routes/events.rs`.)

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use midstream_store::HistoryQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::browser::{Started, authorize, start_detached};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::state::AppState;

/// Streams listed per page unless `limit` says otherwise, and the most one page may hold.
const PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// `POST /v1/streams`: a chat-completions body; `201 {id, events_url, cancel_url, expires_at}`.
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let id = match start_detached(&state, &caller, request).await? {
        Started::Running(id) => id,
        Started::Refused(response) => return Ok(response),
    };
    let ttl = state.hub.config().token_ttl.as_secs();
    let expires_at = u64::try_from(midstream_store::clock::now_ms() / 1000).unwrap_or(0) + ttl;
    let token = state.hub.signer().sign(&id, &caller, expires_at);
    let body = json!({
        "id": id,
        "object": "midstream.stream",
        "events_url": format!("/v1/streams/{id}/events?token={token}"),
        "cancel_url": format!("/v1/streams/{id}/cancel?token={token}"),
        "expires_at": expires_at,
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = http::HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(super::chat::STREAM_ID_HEADER, value);
    }
    Ok(response)
}

/// The query of the list and of the token-authenticated routes.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Page size (default 20, at most 100).
    limit: Option<u32>,
    /// The last id of the previous page: list older streams.
    after: Option<String>,
}

/// `GET /v1/streams`: the caller's streams, newest first, `{data, has_more, next_after}`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let mut page = state
        .store
        .stream_history(&HistoryQuery {
            api_key_id: caller.key_id.as_deref(),
            before_id: query.after.as_deref(),
            limit: limit + 1,
        })
        .await?;
    let has_more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_after = has_more
        .then(|| page.last().map(|s| s.id.clone()))
        .flatten();
    Ok(Json(json!({
        "object": "list",
        "data": page,
        "has_more": has_more,
        "next_after": next_after,
    })))
}

/// The token of `events_url` / `cancel_url`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    /// The signed token, when the caller has no `Authorization` header.
    pub token: Option<String>,
}

/// `POST /v1/streams/{id}/cancel`: stops the upstream and the stream's tools at once; its
/// subscribers get `done` with status `cancelled`. 202 when it was running here, or on another
/// process that shares this one's Redis (which hears it); 200 with its status when it had
/// already ended; 409 when it runs on another process and there is no Redis to reach it.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &id, query.token.as_deref(), &headers).await?;
    if state.hub.cancel(&id) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "cancelling"})),
        )
            .into_response());
    }
    let row = state
        .store
        .stream(&id)
        .await?
        .ok_or_else(|| crate::live::feed::not_found(&id))?;
    if row.status == "streaming" {
        // Running on another process: with a shared Redis, that process hears it.
        let Some(shared) = state.hub.shared() else {
            return Err(ApiError::Conflict {
                message: "the stream runs on another gateway process; cancel it there".to_owned(),
                code: "stream_elsewhere",
            });
        };
        shared
            .publish_cancel(&id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "cancelling"})),
        )
            .into_response());
    }
    Ok(Json(json!({"id": id, "status": row.status})).into_response())
}

/// The record of one stream. A key sees only its own streams (others are 404, not 403, so
/// ids cannot be probed).
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound {
        message: format!("no stream {id:?}"),
        code: "stream_not_found",
    };
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(not_found());
    }
    let row = state.store.stream(&id).await?.ok_or_else(not_found)?;
    if !caller.may_see(row.api_key_id.as_deref()) {
        return Err(not_found());
    }
    let messages = state.store.stream_messages(&id).await?;
    let events = state.store.stream_events(&id).await?;
    let intents = state.store.stream_intents(&id).await?;
    let tool_calls = state.store.stream_tool_calls(&id).await?;
    Ok(Json(json!({
        "id": row.id,
        "object": "midstream.stream",
        "status": row.status,
        "model": row.model,
        "upstream": row.upstream,
        "upstream_model": row.upstream_model,
        "streamed": row.streamed,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "ttft_ms": row.ttft_ms,
        "duration_ms": row.duration_ms,
        "finish_reason": row.finish_reason,
        "error": row.error,
        "usage": {
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "total_tokens": row.total_tokens,
        },
        "request": parse_json(&row.request),
        "response": {"text": row.response_text},
        "messages": messages.iter().map(|m| json!({
            "position": m.position, "role": m.role, "content": m.content, "message": parse_json(&m.body),
        })).collect::<Vec<_>>(),
        "events": events.iter().map(|e| json!({
            "seq": e.seq, "type": e.kind, "at_ms": e.at_ms, "event": parse_json(&e.payload),
        })).collect::<Vec<_>>(),
        "intents": intents.iter().map(|i| json!({
            "id": i.intent_id, "rule": i.rule, "scope": i.scope, "action": i.action,
            "matched": i.matched, "captures": parse_json(&i.captures), "at_ms": i.at_ms,
            "chars_seen": i.chars_seen,
        })).collect::<Vec<_>>(),
        "tool_calls": tool_calls.iter().map(|c| json!({
            "id": c.call_id, "tool": c.tool, "source": c.source, "intent_id": c.intent_id,
            "model_call_id": c.model_call_id, "arguments": parse_json(&c.arguments),
            "status": c.status, "result": c.result.as_deref().map(parse_json),
            "error": c.error_code.as_ref().map(|code| json!({"code": code, "message": c.error_message})),
            "cached": c.cached, "started_ms": c.started_ms, "duration_ms": c.duration_ms,
        })).collect::<Vec<_>>(),
    })))
}

/// Stored JSON documents are ours; if one is somehow not JSON, show it as a string rather than fail.
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
