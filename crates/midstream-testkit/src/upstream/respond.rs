//! Turning a scenario and the request it answers into an HTTP response.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;

use super::body::{Finale, Frames, PacedBody};
use super::data_lines::LineBreaker;
use super::load_profile::MockParams;
use super::render::{ChatAnswer, DONE_FRAME};
use super::scenario::{Content, Ending, Scenario};
use super::split::Splitter;
use crate::disconnects::CompletionGuard;

/// Reported as `model` when the request names none.
const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// `content-type` of streamed responses, as OpenAI sends it.
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// The parts of a chat-completions request the mock looks at; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChatRequest {
    pub(crate) model: Option<String>,
    pub(crate) stream: Option<bool>,
    pub(crate) stream_options: Option<StreamOptions>,
    /// Per-request steering for benchmarks (see [`LoadProfile`](super::LoadProfile)).
    pub(crate) mock: Option<MockParams>,
}

/// `stream_options` of a chat-completions request.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    include_usage: Option<bool>,
}

impl ChatRequest {
    fn streams(&self) -> bool {
        self.stream == Some(true)
    }

    fn includes_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            == Some(true)
    }
}

/// The response for `scenario`; its body holds `guard` until it ends.
pub(crate) fn respond(
    scenario: &Scenario,
    request: &ChatRequest,
    guard: CompletionGuard,
) -> Response {
    let limit = match scenario.ending {
        Ending::Done => None,
        Ending::Drop { after } | Ending::Stall { after } => after,
    };
    let (status, content_type, frames) = match &scenario.content {
        Content::Chat { pieces, tool_calls } => {
            let answer = ChatAnswer::new(
                request.model.as_deref().unwrap_or(DEFAULT_MODEL),
                pieces.clone(),
                tool_calls.clone(),
                scenario.unknown_fields,
            );
            if request.streams() {
                let mut plan =
                    answer.chunk_plan(request.includes_usage(), scenario.ending == Ending::Done);
                if let Some(limit) = limit {
                    plan.truncate(limit);
                }
                let frames = Frames::Chat {
                    answer: Box::new(answer),
                    plan: plan.into_iter(),
                    lines: scenario.data_lines.map(LineBreaker::new),
                };
                (StatusCode::OK, EVENT_STREAM, frames)
            } else {
                let frames = prebuilt(vec![answer.completion_json()], limit);
                (StatusCode::OK, "application/json", frames)
            }
        }
        Content::Bytes(bytes) => {
            let mut frames = split_into_frames(bytes);
            if scenario.ending != Ending::Done
                && frames
                    .last()
                    .is_some_and(|frame| frame.trim_ascii() == DONE_FRAME.trim_ascii())
            {
                frames.pop();
            }
            (StatusCode::OK, EVENT_STREAM, prebuilt(frames, limit))
        }
        Content::Status { status, body } => {
            let frames = prebuilt(vec![Bytes::from(body.to_string())], limit);
            (*status, "application/json", frames)
        }
    };
    let finale = match scenario.ending {
        Ending::Done => Finale::End,
        Ending::Drop { .. } => Finale::Abort,
        Ending::Stall { .. } => Finale::Stall,
    };
    let body = PacedBody::new(
        frames,
        scenario.delay,
        scenario.split.map(Splitter::new),
        finale,
        guard,
    );
    let mut response = Response::new(Body::from_stream(body.into_stream()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in &scenario.headers {
        if name == CONTENT_TYPE {
            headers.insert(name, value.clone());
        } else {
            headers.append(name, value.clone());
        }
    }
    response
}

fn prebuilt(mut frames: Vec<Bytes>, limit: Option<usize>) -> Frames {
    if let Some(limit) = limit {
        frames.truncate(limit);
    }
    Frames::Prebuilt(frames.into_iter())
}

/// Cuts SSE bytes after every blank line (`\n\n`, `\r\n\r\n` or `\r\r`), without copying.
///
/// The frames joined are exactly `bytes`; a tail without a blank line is the last frame.
fn split_into_frames(bytes: &Bytes) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        let rest = &bytes[index..];
        let terminator = [b"\r\n\r\n".as_slice(), b"\n\n", b"\r\r"]
            .into_iter()
            .find(|terminator| rest.starts_with(terminator));
        match terminator {
            Some(terminator) => {
                index += terminator.len();
                frames.push(bytes.slice(start..index));
                start = index;
            }
            None => index += 1,
        }
    }
    if start < bytes.len() {
        frames.push(bytes.slice(start..));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_after_blank_lines_of_any_style() {
        let bytes = Bytes::from_static(b"data: a\n\ndata: b\r\n\r\n: c\r\rtail");
        let frames = split_into_frames(&bytes);
        assert_eq!(
            frames,
            [&b"data: a\n\n"[..], b"data: b\r\n\r\n", b": c\r\r", b"tail"]
        );
        assert_eq!(frames.concat(), bytes);
    }

    #[test]
    fn fixtures_split_into_one_frame_per_event() {
        let bytes = Bytes::from_static(super::super::fixture_bytes("text").expect("a fixture"));
        assert_eq!(split_into_frames(&bytes).len(), 34);
    }
}
