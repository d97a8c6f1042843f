//! `POST /v1/responses`: the OpenAI Responses API, translated to and from chat completions
//! (see [`crate::protocol::responses`]).
//!
//! The handler translates the request and runs it exactly like `/v1/chat/completions`
//! ([`chat::start`]), under the same inflight layer, so analysis, tools, redact and stop, the
//! record and the event log all apply; [`translate`], outside that layer, turns the chat answer
//! into Responses events (or the `response` object).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, header};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use midstream_sse::{FrameKind, FrameSplitter, frame_data};
use serde_json::Value;

use super::chat::{self, STREAM_ID_HEADER};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::protocol::responses::object::{ResponseShell, from_completion};
use crate::protocol::responses::request::to_chat;
use crate::protocol::responses::stream::ChunksToEvents;
use crate::state::AppState;

/// Largest translated completion read back (the inflight layer bounds it first).
const MAX_COMPLETION_BYTES: usize = 64 << 20;

/// What [`translate`] needs, from the handler, in the response's extensions.
#[derive(Debug, Clone)]
struct Translation(ResponseShell);

/// The handler.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let translated = to_chat(&request)?;
    let chat_body = serde_json::to_vec(&translated.chat).map_err(|e| {
        ApiError::Internal(format!("a translated request failed to serialise: {e}"))
    })?;
    let original = serde_json::to_vec(&request).ok().map(Bytes::from);
    let incoming = chat::StartRequest {
        chat: Bytes::from(chat_body),
        original,
        started,
    };
    let mut response = chat::start(&state, &caller, &headers, incoming).await?;
    let stream_id = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if response.status().is_success()
        && let Some(stream_id) = stream_id
    {
        let created_at = midstream_store::clock::now_ms() / 1000;
        let shell = ResponseShell::new(&stream_id, created_at, &request);
        response.extensions_mut().insert(Translation(shell));
    }
    Ok(response)
}

/// Middleware outside the inflight layer: the chat answer → the Responses answer. Errors pass
/// unchanged (both APIs use `{"error": {…}}`).
pub async fn translate(mut response: Response) -> Response {
    let Some(Translation(shell)) = response.extensions_mut().remove::<Translation>() else {
        return response;
    };
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if streaming {
        let events = EventsBody {
            chunks: body,
            splitter: FrameSplitter::new(usize::MAX),
            translation: ChunksToEvents::new(shell),
            out: BytesMut::new(),
            finished: false,
        };
        return Response::from_parts(parts, Body::new(events));
    }
    let object = match http_body_util::Limited::new(body, MAX_COMPLETION_BYTES)
        .collect()
        .await
    {
        Ok(collected) => match serde_json::from_slice::<Value>(&collected.to_bytes()) {
            Ok(completion) => from_completion(&shell, &completion),
            Err(e) => return internal(parts, &format!("the completion is not JSON: {e}")),
        },
        Err(e) => return internal(parts, &format!("the completion could not be read: {e}")),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(crate::inflight::json_text(&object)))
}

fn internal(mut parts: http::response::Parts, detail: &str) -> Response {
    let mut response =
        axum::response::IntoResponse::into_response(ApiError::Internal(detail.to_owned()));
    parts.status = response.status();
    std::mem::swap(response.headers_mut(), &mut parts.headers);
    response.headers_mut().extend(parts.headers);
    response
}

pin_project_lite::pin_project! {
    /// The chat stream's bytes in, Responses events out.
    struct EventsBody {
        #[pin]
        chunks: Body,
        splitter: FrameSplitter,
        translation: ChunksToEvents,
        out: BytesMut,
        finished: bool,
    }
}

impl HttpBody for EventsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut this = self.project();
        loop {
            if !this.out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(this.out.split().freeze()))));
            }
            if *this.finished {
                return Poll::Ready(None);
            }
            match ready!(this.chunks.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let mut frames = Vec::new();
                    // The splitter's bound is the inflight layer's, already enforced upstream.
                    let _ = this.splitter.push(data, |frame| frames.push(frame));
                    for frame in frames {
                        on_frame(&frame, this.translation, this.out);
                    }
                }
                Some(Err(_)) | None => {
                    let (last, _) = this.splitter.finish();
                    if let Some(frame) = last {
                        on_frame(&frame, this.translation, this.out);
                    }
                    this.translation.on_end(this.out);
                    *this.finished = true;
                }
            }
        }
    }
}

/// One chat SSE frame: a chunk, the terminator, or a keep-alive comment (kept as it is).
fn on_frame(frame: &Bytes, translation: &mut ChunksToEvents, out: &mut BytesMut) {
    match frame_data(frame) {
        FrameKind::Data(b"[DONE]") => translation.on_end(out),
        FrameKind::Data(payload) => {
            if let Ok(chunk) = serde_json::from_slice::<Value>(payload) {
                translation.on_chunk(&chunk, out);
            }
        }
        FrameKind::NoData if frame.starts_with(b":") => out.extend_from_slice(frame),
        FrameKind::MultiData(_) | FrameKind::NoData => {}
    }
}
