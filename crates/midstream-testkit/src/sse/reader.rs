//! Reading an SSE response frame by frame, for tests that act mid-stream.

use std::collections::VecDeque;
use std::error::Error;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode};

use super::parser::{SseFrame, SseParser};

/// Most body bytes a reader keeps (64 MiB); a longer body ends with an error.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Reads a `reqwest::Response` body as SSE frames, keeping every raw byte.
///
/// Dropping the reader drops the response, which closes the connection: that is how a test
/// plays a client that goes away mid-stream.
///
/// ```no_run
/// # async fn demo(response: reqwest::Response) {
/// use midstream_testkit::SseReader;
///
/// let mut reader = SseReader::new(response);
/// while let Some(Ok(frame)) = reader.next_frame().await {
///     if frame.data.as_deref().is_some_and(|data| data.contains("Paris")) {
///         break;
///     }
/// }
/// drop(reader); // the client disconnects here
/// # }
/// ```
pub struct SseReader {
    status: StatusCode,
    headers: HeaderMap,
    body: BodyStream,
    parser: SseParser,
    ready: VecDeque<SseFrame>,
    raw: Vec<u8>,
    error: Option<String>,
    state: ReadState,
}

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Reading,
    /// The body failed; `reported` once `next_frame` has returned the error.
    Failed {
        reported: bool,
    },
    /// The body ended cleanly.
    Ended,
}

impl std::fmt::Debug for SseReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SseReader")
            .field("status", &self.status)
            .field("raw_len", &self.raw.len())
            .field("ready", &self.ready.len())
            .field("error", &self.error)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SseReader {
    /// Starts reading `response`'s body (whatever its status and content type).
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            ready: VecDeque::new(),
            raw: Vec::new(),
            error: None,
            state: ReadState::Reading,
        }
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Every body byte received so far.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The error that ended the body, once [`next_frame`](Self::next_frame) returned it.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The next complete frame; `Some(Err(..))` once if the body failed (transport error,
    /// or a bound broken), after the frames completed before the failure, then `None`;
    /// `None` when the body ended cleanly.
    pub async fn next_frame(&mut self) -> Option<Result<SseFrame, String>> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(Ok(frame));
            }
            match self.state {
                ReadState::Reading => {}
                ReadState::Ended | ReadState::Failed { reported: true } => return None,
                ReadState::Failed { reported: false } => {
                    self.state = ReadState::Failed { reported: true };
                    return self.error.clone().map(Err);
                }
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.take(&bytes),
                Some(Err(error)) => self.fail(error_chain(&error)),
                None => self.state = ReadState::Ended,
            }
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.raw.len() + bytes.len() > MAX_BODY_BYTES {
            self.fail(format!("the body exceeded {MAX_BODY_BYTES} bytes"));
            return;
        }
        self.raw.extend_from_slice(bytes);
        match self.parser.push(bytes) {
            Ok(frames) => self.ready.extend(frames),
            Err(error) => self.fail(error.to_string()),
        }
    }

    fn fail(&mut self, error: String) {
        self.error = Some(error);
        self.state = ReadState::Failed { reported: false };
    }

    /// Ends the reader, returning what it gathered: status, headers, raw bytes, error.
    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, Vec<u8>, Option<String>) {
        (self.status, self.headers, self.raw, self.error)
    }
}

/// An error and its sources, joined with `": "` (reqwest's own message is often generic).
fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
