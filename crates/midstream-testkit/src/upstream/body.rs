//! The response body of one scenario: frames produced on demand, paced, split, and ended
//! the scripted way, under a guard that records an early disconnect if hyper drops it.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use super::data_lines::LineBreaker;
use super::render::{ChatAnswer, ChunkKind};
use super::split::Splitter;
use crate::disconnects::CompletionGuard;

/// Where a body's frames come from.
#[derive(Debug)]
pub(crate) enum Frames {
    /// Chat chunks rendered one at a time, when due.
    Chat {
        answer: Box<ChatAnswer>,
        plan: std::vec::IntoIter<ChunkKind>,
        /// Writes each chunk in several `data:` lines ([`Scenario::data_lines`](super::Scenario::data_lines)).
        lines: Option<LineBreaker>,
    },
    /// Frames that already exist (fixtures, raw bytes, JSON bodies).
    Prebuilt(std::vec::IntoIter<Bytes>),
}

impl Iterator for Frames {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match self {
            Self::Chat {
                answer,
                plan,
                lines,
            } => {
                let frame = answer.render(plan.next()?);
                Some(match lines {
                    Some(lines) => lines.break_lines(frame),
                    None => frame,
                })
            }
            Self::Prebuilt(frames) => frames.next(),
        }
    }
}

/// What happens after the last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finale {
    /// The body ends cleanly (the chunked terminator is sent).
    End,
    /// The body fails, so hyper aborts the connection without a terminator.
    Abort,
    /// The body never produces anything again; the connection stays open.
    Stall,
}

/// A body being sent.
#[derive(Debug)]
pub(crate) struct PacedBody {
    pub(crate) frames: Frames,
    pub(crate) delay: Duration,
    pub(crate) splitter: Option<Splitter>,
    pub(crate) finale: Finale,
    pub(crate) guard: CompletionGuard,
    frames_taken: usize,
    pieces_sent: usize,
}

enum Step {
    Piece(Bytes),
    End,
    Abort,
}

impl PacedBody {
    pub(crate) fn new(
        frames: Frames,
        delay: Duration,
        splitter: Option<Splitter>,
        finale: Finale,
        guard: CompletionGuard,
    ) -> Self {
        Self {
            frames,
            delay,
            splitter,
            finale,
            guard,
            frames_taken: 0,
            pieces_sent: 0,
        }
    }

    /// The body as a stream for `axum::body::Body::from_stream`.
    pub(crate) fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |body| async move {
            let mut body = body?;
            match body.step().await {
                Step::Piece(bytes) => Some((Ok(bytes), Some(body))),
                Step::Abort => Some((
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the mock upstream dropped the connection as scripted",
                    )),
                    None,
                )),
                Step::End => None,
            }
        })
    }

    async fn step(&mut self) -> Step {
        loop {
            if let Some(piece) = self.splitter.as_mut().and_then(Splitter::next_piece) {
                return self.send_split_piece(piece).await;
            }
            match self.next_frame().await {
                Some(frame) => match &mut self.splitter {
                    Some(splitter) => splitter.push(&frame),
                    None => return Step::Piece(frame),
                },
                None => {
                    if let Some(rest) = self.splitter.as_mut().and_then(Splitter::flush) {
                        return self.send_split_piece(rest).await;
                    }
                    return self.finish().await;
                }
            }
        }
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.frames_taken > 0 && !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let frame = self.frames.next()?;
        self.frames_taken += 1;
        Some(frame)
    }

    /// Yields to the runtime before every piece but the first: hyper flushes its write
    /// buffer whenever the body is pending, so each piece goes out as its own write.
    async fn send_split_piece(&mut self, piece: Bytes) -> Step {
        if self.pieces_sent > 0 {
            tokio::task::yield_now().await;
        }
        self.pieces_sent += 1;
        Step::Piece(piece)
    }

    async fn finish(&mut self) -> Step {
        match self.finale {
            Finale::End => {
                self.guard.finish();
                Step::End
            }
            Finale::Abort => {
                // Let hyper flush the frames already handed over before it sees the error.
                tokio::task::yield_now().await;
                self.guard.finish();
                Step::Abort
            }
            Finale::Stall => std::future::pending().await,
        }
    }
}
