//! The router and its tower stack, built in one place.
//!
//! Layer order, outermost first (a request passes them top to bottom, the response bottom
//! to top):
//!
//! 1. `SetRequestId` — every request gets an `x-request-id` (kept if the client sent one).
//! 2. `Trace` — one span per request with method, matched route and request id; no bodies.
//! 3. `PropagateRequestId` — the id is echoed on the response.
//! 4. `Cors` — only when `MIDSTREAM_CORS_ORIGINS` lists origins (an explicit allow-list).
//! 5. request counting by route and status, for `/metrics`.
//! 6. error logging — logs the hidden cause of any 5xx once.
//! 7. [`request_checks`]: a valid `Host` on HTTP/1.1, and a declared body length within
//!    `MIDSTREAM_MAX_BODY_BYTES` (413 before the body is read); `DefaultBodyLimit` bounds the
//!    body while it is read.
//! 8. `/v1` only: the process-wide requests-per-minute bound ([`TotalRate`]), authentication
//!    and the key's own limits, then for the completions route the [`InflightLayer`]. A
//!    stream's events and cancel routes check a signed token or a key themselves.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderName;
use tower::ServiceBuilder;
use tower_http::cors::{AllowHeaders, AllowMethods, CorsLayer, ExposeHeaders};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::auth::total_rate::{self, TotalRate};
use crate::error::ErrorDetail;
use crate::inflight::{InflightConfig, InflightLayer};
use crate::routes::{
    chat, completions, events, fallback, health, metrics, models, responses, streams, ui_chat,
};
use crate::state::AppState;
use crate::telemetry::prometheus;
use crate::{auth, request_checks};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the application.
pub fn app(state: AppState, inflight: InflightConfig) -> Router {
    let api = Router::new()
        .route(
            "/v1/chat/completions",
            post(chat::completions).layer(InflightLayer::new(inflight.clone())),
        )
        .route(
            "/v1/responses",
            post(responses::create)
                .layer(InflightLayer::new(inflight.clone()))
                .layer(middleware::map_response(responses::translate)),
        )
        .route("/v1/responses/{id}", get(responses::retrieve))
        .route(
            "/v1/completions",
            post(completions::create)
                .layer(InflightLayer::new(inflight))
                .layer(middleware::map_response(completions::translate)),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/streams", post(streams::start).get(streams::list))
        .route("/v1/streams/{id}", get(streams::get))
        .route("/v1/ui/chat", post(ui_chat::chat))
        .route("/v1/ui/chat/{chat}/stream", get(ui_chat::resume))
        .route_layer(middleware::from_fn_with_state(
            state.auth.clone(),
            auth::require_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            TotalRate::new(state.config.limits.max_rpm).map(Arc::new),
            total_rate::limit_total,
        ));
    let web_dir = state.config.web_dir.clone();
    let web = ServeDir::new(&web_dir).fallback(ServeFile::new(web_dir.join("index.html")));
    let cors = cors(&state);
    let body_limit = state.config.limits.max_body_bytes;
    // A stream's events and its cancel take a signed token instead of a key (`EventSource`
    // cannot send headers): they authenticate themselves.
    let stream_access = Router::new()
        .route("/v1/streams/{id}/events", get(events::events))
        .route("/v1/streams/{id}/cancel", post(streams::cancel));
    Router::new()
        .merge(api)
        .merge(stream_access)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route_service("/", web.clone())
        .nest_service("/web", web)
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                // Failures are logged once, by `log_server_errors` (or by the route that knows
                // more, like the stream id); the trace layer's own ERROR line would repeat them.
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .option_layer(cors)
                .layer(middleware::from_fn(prometheus::count_requests))
                .layer(middleware::from_fn(log_server_errors))
                .layer(middleware::from_fn(request_checks::require_host))
                .layer(middleware::from_fn_with_state(
                    body_limit,
                    request_checks::refuse_declared_oversized_bodies,
                ))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
}

fn request_span(request: &Request) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

/// Logs the cause of every 5xx exactly once (the client only sees a generic message): ERROR
/// for the gateway's own failures (500), WARN for what it passes on (an upstream or the
/// database unavailable, shutting down). A route that logged the failure itself, with more
/// to say, removes the [`ErrorDetail`].
async fn log_server_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(ErrorDetail(detail)) = response.extensions().get::<ErrorDetail>() {
        let status = response.status().as_u16();
        if response.status() == http::StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(status, error = %detail, "request failed");
        } else {
            tracing::warn!(status, error = %detail, "request failed");
        }
    }
    response
}

fn cors(state: &AppState) -> Option<CorsLayer> {
    let origins = &state.config.cors_origins;
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(origins.clone())
            .allow_methods(AllowMethods::list([http::Method::GET, http::Method::POST]))
            .allow_headers(AllowHeaders::list([
                http::header::AUTHORIZATION,
                http::header::CONTENT_TYPE,
                HeaderName::from_static("x-midstream-events"),
                HeaderName::from_static("last-event-id"),
            ]))
            .expose_headers(ExposeHeaders::list([
                HeaderName::from_static(chat::STREAM_ID_HEADER),
                HeaderName::from_static(chat::UPSTREAM_HEADER),
                REQUEST_ID,
            ]))
    })
}
