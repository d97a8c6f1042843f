//! A whole SSE response, read to its end, with helpers for OpenAI-shaped chunks.

use http::{HeaderMap, StatusCode};

use super::parser::SseFrame;
use super::reader::SseReader;

/// Everything a client received from one response.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The response status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// Every body byte received, for byte-level assertions.
    pub raw: Vec<u8>,
    /// The complete frames, in order.
    pub frames: Vec<SseFrame>,
    /// Why the body ended early (a transport error such as a dropped connection), if it did.
    pub error: Option<String>,
}

/// Reads `response`'s body to its end (at most [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES)).
///
/// A body error is kept in [`Collected::error`], never panicked on.
pub async fn collect_sse(response: reqwest::Response) -> Collected {
    let mut reader = SseReader::new(response);
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().await {
        if let Ok(frame) = frame {
            frames.push(frame);
        }
    }
    let (status, headers, raw, error) = reader.into_parts();
    Collected {
        status,
        headers,
        raw,
        frames,
        error,
    }
}

impl Collected {
    /// Every `data` frame parsed as JSON, `[DONE]` skipped.
    ///
    /// # Panics
    ///
    /// If a data frame other than `[DONE]` is not JSON: use [`frames`](Self::frames) to
    /// inspect a stream that is meant to be malformed.
    pub fn json_chunks(&self) -> Vec<serde_json::Value> {
        self.frames
            .iter()
            .enumerate()
            .filter_map(|(index, frame)| Some((index, frame.data.as_deref()?)))
            .filter(|(_, data)| *data != "[DONE]")
            .map(|(index, data)| match serde_json::from_str(data) {
                Ok(chunk) => chunk,
                Err(error) => panic!("frame {index} is not JSON ({error}): {data:?}"),
            })
            .collect()
    }

    /// The concatenated `choices[0].delta.content` of every chunk.
    pub fn content(&self) -> String {
        self.json_chunks()
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect()
    }

    /// The top-level `"midstream"` object of every chunk that has one (injected events).
    pub fn midstream_events(&self) -> Vec<serde_json::Value> {
        self.json_chunks()
            .into_iter()
            .filter_map(|mut chunk| chunk.get_mut("midstream").map(serde_json::Value::take))
            .collect()
    }

    /// Whether the last data frame is exactly `[DONE]`.
    pub fn ends_with_done(&self) -> bool {
        self.frames
            .iter()
            .rev()
            .find_map(|frame| frame.data.as_deref())
            == Some("[DONE]")
    }
}
