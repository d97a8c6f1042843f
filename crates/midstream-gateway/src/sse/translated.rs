//! A chat-completions stream rewritten into another API's stream, chunk by chunk: the
//! Responses API's events, or legacy `text_completion` chunks. The chat stream comes out of
//! the inflight layer, so the translation sees exactly what a chat client would have.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};
use midstream_sse::{FrameKind, FrameSplitter, frame_data};
use serde_json::Value;

/// What turns chat chunks into another API's frames.
pub trait ChunkTranslation: Send + 'static {
    /// One chat chunk (a parsed `data:` object, an in-band `{"error": …}` included).
    fn on_chunk(&mut self, chunk: &Value, out: &mut BytesMut);
    /// The chat stream ended (`[DONE]`, or its body ended): the other API's end.
    fn on_end(&mut self, out: &mut BytesMut);
}

pin_project_lite::pin_project! {
    /// The chat stream's bytes in, the translation's out.
    pub struct TranslatedBody<T> {
        #[pin]
        chunks: Body,
        splitter: FrameSplitter,
        translation: T,
        out: BytesMut,
        finished: bool,
    }
}

impl<T: ChunkTranslation> TranslatedBody<T> {
    /// Translates `chunks`, a chat-completions SSE body.
    pub fn new(chunks: Body, translation: T) -> TranslatedBody<T> {
        TranslatedBody {
            chunks,
            // Frames were bounded by the inflight layer already.
            splitter: FrameSplitter::new(usize::MAX),
            translation,
            out: BytesMut::new(),
            finished: false,
        }
    }
}

impl<T: ChunkTranslation> HttpBody for TranslatedBody<T> {
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
                    let _unbounded = this.splitter.push(data, |frame| frames.push(frame));
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
fn on_frame<T: ChunkTranslation>(frame: &Bytes, translation: &mut T, out: &mut BytesMut) {
    match frame_data(frame) {
        FrameKind::Data(b"[DONE]") => translation.on_end(out),
        FrameKind::Data(payload) => on_payload(payload, translation, out),
        // The lines of one event, joined as a client joins them: JSON all the same.
        FrameKind::MultiData(joined) => on_payload(&joined, translation, out),
        FrameKind::NoData if frame.starts_with(b":") => out.extend_from_slice(frame),
        FrameKind::NoData => {}
    }
}

/// A `data:` value: a chunk when it is JSON (what is not, a chat client would not read either).
fn on_payload<T: ChunkTranslation>(payload: &[u8], translation: &mut T, out: &mut BytesMut) {
    if let Ok(chunk) = serde_json::from_slice::<Value>(payload) {
        translation.on_chunk(&chunk, out);
    }
}
