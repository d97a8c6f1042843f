//! Non-streaming completions (`stream: false`): analysed the same way as streams, with the
//! events added as a top-level `"midstream": {"events": [...]}` once the stream's tools ended.
//!
//! The upstream's JSON is not re-serialised: the `midstream` member is spliced in before the
//! object's closing brace, so every other byte is the upstream's.

use std::sync::Arc;

use axum::body::Body;
use axum::response::IntoResponse;
use bytes::{BufMut, Bytes, BytesMut};
use http::response::Parts;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;
use midstream_store::StreamStatus;

use super::layer::InflightConfig;
use super::plan::StreamPlan;
use crate::error::ApiError;
use crate::protocol::chunk::ChunkView;

/// Reads the whole upstream body, analyses it, waits for tools, answers.
pub(super) async fn complete(
    mut parts: Parts,
    body: Body,
    plan: Box<StreamPlan>,
    config: Arc<InflightConfig>,
) -> Response<Body> {
    let StreamPlan {
        mut record,
        row,
        mut analysis,
        prompt_stop,
        inject_events,
        fallback_meta,
        permit,
        ..
    } = *plan;
    let upstream = if let Some(stop) = prompt_stop {
        // The upstream was not called: the answer, usage and all, is the gateway's (its usage
        // and finish reason are recorded below, as an upstream's would be).
        fallback_meta.stopped_completion(&stop.usage_json())
    } else {
        match read_bounded(body, config.max_completion_bytes).await {
            Ok(bytes) => bytes,
            Err(message) => {
                record.close(StreamStatus::Failed, Some(message.clone()));
                return ApiError::UpstreamFailed {
                    message,
                    retryable: true,
                }
                .into_response();
            }
        }
    };
    let Some(chunk) = ChunkView::parse(&upstream) else {
        let message = "the upstream's completion is not valid JSON".to_owned();
        record.close(StreamStatus::Failed, Some(message.clone()));
        return ApiError::UpstreamFailed {
            message,
            retryable: false,
        }
        .into_response();
    };
    if let Some(usage) = chunk.usage {
        record.usage(usage);
    }
    if let Some(reason) = chunk.finish_reason() {
        record.finish_reason(reason);
    }
    let content = chunk.message().and_then(|m| m.content_text());
    let rewritten =
        analysis.on_complete_content(&upstream, &chunk, content.as_deref(), &mut record);
    drop(content);
    drop(chunk);
    analysis.wait_all(&mut record).await;
    let mut events = Vec::new();
    for event in analysis.take_events() {
        record.event(event.kind(), event.json().to_owned());
        events.push(event.json().to_owned());
    }
    // The row must exist before the answer leaves, as for streams (bounded the same way).
    let _committed = tokio::time::timeout(config.record_open_wait, row).await;
    record.close(StreamStatus::Completed, None);
    drop(permit);
    let answer = rewritten.unwrap_or(upstream);
    let body = if inject_events {
        splice_events(&answer, &events)
    } else {
        answer
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

async fn read_bounded(body: Body, limit: usize) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(format!("reading the upstream's completion failed: {error}")),
    }
}

/// Inserts `"midstream":{"events":[...]}` before the object's last `}`.
fn splice_events(object: &Bytes, events: &[String]) -> Bytes {
    let Some(close) = object.iter().rposition(|b| *b == b'}') else {
        return object.clone();
    };
    let empty_object = object[..close]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'{');
    let mut out =
        BytesMut::with_capacity(object.len() + 32 + events.iter().map(String::len).sum::<usize>());
    out.put_slice(&object[..close]);
    if !empty_object {
        out.put_u8(b',');
    }
    out.put_slice(br#""midstream":{"events":["#);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(event.as_bytes());
    }
    out.put_slice(b"]}");
    out.put_slice(&object[close..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_spliced_without_touching_the_rest() {
        let upstream = Bytes::from_static(b"{\"id\":\"x\",\"weird\":  [1, 2]}\n");
        let out = splice_events(&upstream, &[r#"{"type":"intent"}"#.to_owned()]);
        assert_eq!(&out[..], &b"{\"id\":\"x\",\"weird\":  [1, 2],\"midstream\":{\"events\":[{\"type\":\"intent\"}]}}\n"[..]);
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(value["midstream"]["events"][0]["type"], "intent");
        assert_eq!(
            &splice_events(&Bytes::from_static(b"{ }"), &[])[..],
            b"{ \"midstream\":{\"events\":[]}}"
        );
    }
}
