//! `GET /v1/streams/{id}`: the recorded stream — request, messages, events, timings.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

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
