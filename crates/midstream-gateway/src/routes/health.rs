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
    let (status, mut body) = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            json!({"status": "ready", "database": database}),
        ),
        Ok(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": database, "error": error.to_string()}),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": database, "error": "the database did not answer in time"}),
        ),
    };
    if let Some(shared) = state.hub.shared() {
        let reachable = matches!(
            tokio::time::timeout(READY_TIMEOUT, shared.ping()).await,
            Ok(Ok(()))
        );
        body["redis"] = json!(if reachable {
            "reachable"
        } else {
            "unreachable"
        });
    }
    (status, Json(body))
}
