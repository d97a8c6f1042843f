//! Liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// Readiness fails if the database does not answer within this.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database is reachable (503 otherwise, so a load balancer stops routing
/// here). With a shared event log it also says whether Redis answers; an unreachable Redis
/// does not make the gateway unready (streams go on, resumes on other processes are answered
/// from the database), it is reported as `"redis": "unreachable"`.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = state.store.backend().name();
    let redis = match state.hub.shared() {
        None => Value::Null,
        Some(shared) => match tokio::time::timeout(READY_TIMEOUT, shared.ping()).await {
            Ok(Ok(())) => json!("reachable"),
            _ => json!("unreachable"),
        },
    };
    let unavailable = |error: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unavailable", "database": database, "redis": redis, "error": error}),
            ),
        )
    };
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": database, "redis": redis})),
        ),
        Ok(Err(error)) => unavailable(error.to_string()),
        Err(_) => unavailable("the database did not answer in time".to_owned()),
    }
}
