//! `POST /v1/chat/completions`: validates, opens the record, calls the upstream, and hands
//! the upstream's body with a [`StreamPlan`] to the inflight layer.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;

use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use midstream_store::{NewMessage, NewStream, StreamStatus};
use serde_json::Value;

use crate::auth::Caller;
use crate::auth::limits::StreamSlots;
use crate::error::ApiError;
use crate::extract::RequestBody;
use crate::inflight::{PlanSlot, PromptStop, StreamPlan, StreamRecord, json_text};
use crate::live::Publish;
use crate::protocol::request::{ChatRequest, message_text};
use crate::sse::authored::ChunkMeta;
use crate::state::AppState;
use crate::telemetry::prometheus as metric;

/// The response header naming the stream's record (for `GET /v1/streams/{id}`).
pub const STREAM_ID_HEADER: &str = "x-midstream-stream-id";
/// The response header naming the upstream that answered (a fallback's, when the primary
/// could not), or the last one tried when none did.
pub const UPSTREAM_HEADER: &str = "x-midstream-upstream";
/// The request header that turns event injection off (`off`).
pub const EVENTS_HEADER: &str = "x-midstream-events";

/// Handles a chat completion, streaming or not.
pub async fn completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RequestBody(bytes): RequestBody,
) -> Result<Response, ApiError> {
    let request = StartRequest {
        api: Api::Chat,
        chat: bytes,
        original: None,
        started: Instant::now(),
        publish: Publish::WhenFollowed,
    };
    start(&state, &caller, &headers, request).await
}

/// The API a client spoke; every stream is run as a chat completion, and labelled with it in
/// the logs and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions` (and browser streams of chat requests).
    Chat,
    /// `/v1/responses` (and browser streams of Responses requests).
    Responses,
    /// `/v1/completions`.
    Completions,
}

impl Api {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Responses => "responses",
            Api::Completions => "completions",
        }
    }
}

/// A chat-completions request to run.
#[derive(Debug)]
pub struct StartRequest {
    /// The API the client spoke.
    pub api: Api,
    /// The chat-completions body.
    pub chat: bytes::Bytes,
    /// The body the client sent, when it spoke another API (a Responses request translated
    /// into `chat`): the record keeps what the client sent.
    pub original: Option<bytes::Bytes>,
    /// When the request arrived.
    pub started: Instant,
    /// When a streaming request starts publishing its events.
    pub publish: Publish,
}

/// Validates a chat request, opens its record, calls the upstream, and answers with the
/// upstream's body and the [`StreamPlan`] the inflight layer runs it with (or an error
/// response that carries the stream id). A streaming request publishes its events, so that
/// `GET /v1/streams/{id}/events` can follow it.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    incoming: StartRequest,
) -> Result<Response, ApiError> {
    let StartRequest {
        api,
        chat: bytes,
        original,
        started,
        publish,
    } = incoming;
    let mut request = ChatRequest::parse(&bytes, state.config.limits.max_messages)?;
    let key_slot = state.auth.limits().stream_slot(caller.key_id.as_deref())?;
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded {
            limit: state.config.limits.max_streams,
        })?;
    let permit = StreamSlots::new(permit, key_slot);
    let route = state.router.resolve(&request.model)?;
    let stream_id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
    let row = state.recorder.open(NewStream {
        id: stream_id.to_string(),
        api_key_id: caller.key_id.clone(),
        model: request.model.clone(),
        upstream: route.upstream.name().to_owned(),
        upstream_model: route.model.clone(),
        streamed: request.stream,
        request: String::from_utf8_lossy(original.as_ref().unwrap_or(&bytes)).into_owned(),
        messages: request.messages().iter().map(stored_message).collect(),
        created_at: midstream_store::clock::now_ms(),
    });
    let mut record = StreamRecord::new(
        state.recorder.clone(),
        stream_id.clone(),
        started,
        request.messages().len(),
    );
    let cancel = if request.stream {
        let (producer, cancel) =
            state
                .hub
                .producer(stream_id.clone(), caller.key_id.clone(), publish);
        record.publish(producer);
        cancel
    } else {
        state.inflight.shutdown.child_token()
    };
    metrics::counter!(metric::STREAMS, "api" => api.as_str()).increment(1);
    tracing::debug!(stream_id = %stream_id, api = api.as_str(), upstream = route.upstream.name(), "stream opened");

    let mut analysis = state.analyzer.stream(stream_id.clone());
    analysis.scan_prompt(&mut request, &mut record);
    let prompt_stop = analysis.stopped().then(|| {
        // Usage counts the prompt the client sent, which the scan cut at the stop's match:
        // parsed again from its body (this path never reaches an upstream, so costs little).
        ChatRequest::parse(&bytes, state.config.limits.max_messages)
            .map_or_else(|_| PromptStop::new(&request), |sent| PromptStop::new(&sent))
    });
    let answered = if prompt_stop.is_some() {
        tracing::info!(stream_id = %stream_id, "a prompt stop rule matched: the upstream is not called");
        None
    } else {
        let mut attempts = Vec::new();
        let sent = state
            .router
            .send(&route, &request, |attempt| attempts.push(attempt))
            .await;
        // One attempt that answered is what the row already says; anything more (retries,
        // fallbacks, skipped circuits, a refusal) is kept attempt by attempt.
        let eventful = !matches!(attempts.as_slice(), [only] if only.outcome == "ok");
        for attempt in attempts.iter().filter(|_| eventful) {
            record.event(attempt.kind, json_text(attempt));
        }
        let last_upstream = attempts.last().map(|a| a.upstream.clone());
        match sent {
            Ok(answered) => {
                let target = route.answered_by(answered.target);
                if answered.target > 0 {
                    record.answered_by(target.upstream.name(), &target.model);
                }
                if request.stream {
                    analysis.allow_continuation(&target, &request);
                }
                Some((answered, last_upstream))
            }
            Err(error) => {
                metrics::counter!(metric::UPSTREAM_ERRORS, "kind" => error.kind()).increment(1);
                let detail = error.to_string();
                let error = ApiError::from(error);
                // The one line for this failure (the error middleware would log a 5xx again,
                // without the stream id): WARN, as the upstream failed, not the gateway; a 4xx
                // the upstream passed back is usually the client's, so INFO.
                if error.status().is_server_error() {
                    tracing::warn!(stream_id = %stream_id, api = api.as_str(), upstream = last_upstream.as_deref().unwrap_or_default(), error = %detail, "upstream failed before streaming");
                } else {
                    tracing::info!(stream_id = %stream_id, api = api.as_str(), upstream = last_upstream.as_deref().unwrap_or_default(), error = %detail, "upstream refused the request");
                }
                analysis.cancel();
                record.close(StreamStatus::Failed, Some(detail));
                let mut response = axum::response::IntoResponse::into_response(error);
                response
                    .extensions_mut()
                    .remove::<crate::error::ErrorDetail>();
                let out = response.headers_mut();
                out.insert(STREAM_ID_HEADER, header_value(&stream_id));
                if let Some(upstream) = &last_upstream {
                    out.insert(UPSTREAM_HEADER, header_value(upstream));
                }
                return Ok(response);
            }
        }
    };

    let plan = StreamPlan {
        record,
        row,
        analysis,
        prompt_stop,
        inject_events: events_enabled(headers),
        streaming: request.stream,
        fallback_meta: ChunkMeta::fallback(
            &stream_id,
            midstream_store::clock::now_ms() / 1000,
            &request.model,
        ),
        permit,
        cancel,
    };
    let (body, upstream_headers, answered_by) = match answered {
        Some((answered, upstream)) => (
            Body::from_stream(answered.response.body),
            answered.response.headers,
            upstream,
        ),
        None => (Body::empty(), HeaderMap::new(), None),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let out = response.headers_mut();
    for (name, value) in &upstream_headers {
        let name = if name == "x-request-id" {
            HeaderName::from_static("x-upstream-request-id")
        } else {
            name.clone()
        };
        out.insert(name, value.clone());
    }
    out.insert(STREAM_ID_HEADER, header_value(&stream_id));
    if let Some(upstream) = &answered_by {
        out.insert(UPSTREAM_HEADER, header_value(upstream));
    }
    if request.stream {
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        out.insert("x-accel-buffering", HeaderValue::from_static("no"));
    } else {
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response.extensions_mut().insert(PlanSlot::new(plan));
    Ok(response)
}

/// `X-Midstream-Events: off` (or `false`, `0`) disables injection; anything else keeps it on.
fn events_enabled(headers: &HeaderMap) -> bool {
    !headers
        .get(EVENTS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "off" | "false" | "0" | "none"
            )
        })
}

fn stored_message(message: &Value) -> NewMessage {
    NewMessage {
        role: message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        content: message.get("content").and_then(message_text),
        body: json_text(message),
    }
}

/// Stream ids are UUIDs: always a valid header value.
fn header_value(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
