//! The mock upstream's routes: parse, pick the scenario, respond.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde::Serialize;
use serde_json::json;

use super::UpstreamState;
use super::respond::{ChatRequest, respond};
use crate::recorded::RecordedRequest;

pub(super) fn router(state: Arc<UpstreamState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/mock/stats", get(stats))
        .fallback(not_found)
        .with_state(state)
}

fn record(state: &UpstreamState, method: Method, uri: Uri, headers: HeaderMap, body: &Bytes) {
    let parsed = if state.requests.is_enabled() {
        serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
    } else {
        serde_json::Value::Null
    };
    state.requests.record(RecordedRequest {
        method,
        path: uri.path().to_owned(),
        uri,
        headers,
        body: parsed,
        raw_body: body.clone(),
    });
}

async fn chat_completions(
    State(state): State<Arc<UpstreamState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, method, uri, headers, &body);
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("We could not parse the JSON body of your request: {error}"),
            );
        }
    };
    state.chat_requests.fetch_add(1, Ordering::Relaxed);
    let scenario = state.next_scenario(&request);
    // Held across the waits below: if hyper drops this future (the peer left before the
    // headers), the guard records an early disconnect.
    let guard = state.disconnects.guard(scenario.tag.clone());
    if !scenario.first_byte_delay.is_zero() {
        tokio::time::sleep(scenario.first_byte_delay).await;
    }
    if scenario.stall_before_headers {
        std::future::pending::<()>().await;
    }
    respond(&scenario, &request, guard)
}

async fn models(
    State(state): State<Arc<UpstreamState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    record(&state, method, uri, headers, &Bytes::new());
    Json(json!({
        "object": "list",
        "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"},
            {"id": "gpt-4o", "object": "model", "created": 1_715_367_049, "owned_by": "system"},
            {"id": "gpt-4.1-nano", "object": "model", "created": 1_744_321_707, "owned_by": "system"}
        ]
    }))
}

/// The body of `GET /mock/stats`.
#[derive(Debug, Serialize)]
struct Stats {
    /// Chat-completion requests answered with a scenario.
    requests: usize,
    /// Responses in flight (handler started, body not finished or dropped).
    streams_open: usize,
    early_disconnects: usize,
    /// Tag -> wall-clock time of its early disconnect, in microseconds since the Unix epoch.
    dropped_at_unix_us: BTreeMap<String, u128>,
}

async fn stats(State(state): State<Arc<UpstreamState>>) -> Json<Stats> {
    let dropped_at_unix_us = state
        .disconnects
        .records()
        .into_iter()
        .filter_map(|record| {
            let micros = record.at_wall.duration_since(UNIX_EPOCH).ok()?.as_micros();
            Some((record.tag?, micros))
        })
        .collect();
    Json(Stats {
        requests: state.chat_requests.load(Ordering::Relaxed),
        streams_open: state.disconnects.in_flight(),
        early_disconnects: state.disconnects.count(),
        dropped_at_unix_us,
    })
}

async fn not_found(uri: Uri) -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        &format!("Invalid URL ({})", uri.path()),
    )
}

/// An error in OpenAI's shape.
fn openai_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, Json(body)).into_response()
}
