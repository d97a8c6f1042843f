//! `GET /v1/models`: the models the gateway routes.
//!
//! Aliases from `midstream.toml`, plus the default upstream's own list (passed through), or
//! the demo model when no upstream is configured — named so nobody mistakes it for an LLM.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Upstream;
use crate::upstream::demo::DEMO_MODEL;

/// Lists models.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut data: Vec<Value> = state
        .router
        .aliases()
        .map(|(alias, route)| {
            json!({"id": alias, "object": "model", "created": 0,
                   "owned_by": format!("midstream alias of {} on {}", route.model, route.upstream)})
        })
        .collect();
    match state.router.default_upstream() {
        Upstream::Demo(_) => data.push(json!({
            "id": DEMO_MODEL, "object": "model", "created": 0,
            "owned_by": "midstream demo model (scripted, not an LLM; set UPSTREAM_BASE_URL for a real one)",
        })),
        Upstream::Http(http) => match http.models().await {
            Ok(list) => {
                if let Some(models) = list.get("data").and_then(Value::as_array) {
                    data.extend(models.iter().cloned());
                }
            }
            Err(error) if data.is_empty() => return Err(error.into()),
            Err(error) => tracing::warn!(%error, "could not list the upstream's models; listing aliases only"),
        },
    }
    Ok(Json(json!({"object": "list", "data": data})))
}
