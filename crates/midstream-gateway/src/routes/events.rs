//! `GET /v1/streams/{id}/events`: a stream's events for `EventSource`, resumable.
//!
//! Authenticated by the `token` of `events_url` (an `EventSource` cannot send headers) or by
//! `Authorization: Bearer` (any API client following its own stream by the id in
//! `X-Midstream-Stream-Id`). A reconnect sends `Last-Event-ID` (or `?last_event_id=`) and gets
//! exactly the events after it; after `done`, 204, so the browser stops retrying.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::browser::authorize;
use crate::error::ApiError;
use crate::live::feed::{Feed, FeedItem, Start};
use crate::live::{Snapshot, sse_frame};
use crate::state::AppState;

/// The query of `events_url`.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    /// The signed token.
    token: Option<String>,
    /// Resume after this event (for clients that cannot set `Last-Event-ID`).
    last_event_id: Option<String>,
}

/// The handler.
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &id, query.token.as_deref(), &headers).await?;
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let feed =
        match Feed::open(state.hub.clone(), state.store.clone(), Arc::from(id), after).await? {
            Start::Finished => return Ok(StatusCode::NO_CONTENT.into_response()),
            Start::Follow(feed) => feed,
        };
    let retry = format!("retry: {}\n\n", state.hub.config().retry.as_millis());
    let frames = futures_util::stream::unfold(
        (feed, Some(Bytes::from(retry))),
        |(mut feed, first)| async move {
            let items = feed.next().await?;
            let mut out = BytesMut::new();
            if let Some(first) = first {
                out.put_slice(&first);
            }
            for item in &items {
                write_frame(item, &mut out);
            }
            Some((Ok::<_, Infallible>(out.freeze()), (feed, None)))
        },
    );
    let mut response = Response::new(Body::from_stream(frames));
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// `Last-Event-ID`, else `?last_event_id=`: a seq, or 400.
fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let raw = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().map_err(|_| invalid_id())?),
        None => query,
    };
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| invalid_id()),
    }
}

fn invalid_id() -> ApiError {
    ApiError::bad_request(
        "invalid_last_event_id",
        "Last-Event-ID must be the id of an event of this stream (a number)",
        Some("last_event_id"),
    )
}

/// One item as SSE.
fn write_frame(item: &FeedItem, out: &mut BytesMut) {
    match item {
        FeedItem::Event(event) => event.write_frame(out),
        FeedItem::Ping => out.put_slice(b": ping\n\n"),
        FeedItem::Snapshot(snapshot) => out.put_slice(&snapshot_frame(snapshot)),
    }
}

/// `event: snapshot`, `{"seq", "text", "reasoning", "events"}`, with the seq it covers as its
/// id (none when unknown: the browser then keeps the id it had).
pub fn snapshot_frame(snapshot: &Snapshot) -> Bytes {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        seq: Option<u64>,
        text: &'a str,
        reasoning: &'a str,
        events: &'a [serde_json::Value],
    }
    let data = crate::inflight::json_text(&Data {
        seq: snapshot.upto,
        text: &snapshot.text,
        reasoning: &snapshot.reasoning,
        events: &snapshot.events,
    });
    sse_frame(snapshot.upto, "snapshot", &data)
}
