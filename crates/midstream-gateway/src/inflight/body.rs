//! The response body of a streaming completion: upstream frames in, the same bytes out, with
//! the gateway's events merged in between frames.
//!
//! # The hot path
//!
//! For a plain-HTTP upstream, polling this body drives the upstream's connection itself
//! ([`crate::upstream`]'s driven connections), and the client connection's task polls this body
//! (hyper's server), so a frame wakes one task: the one that reads the upstream's socket is the
//! one that writes to the client's.
//!
//! Per upstream read: [`FrameSplitter::push`] finds frame ends with `memchr` and hands out
//! zero-copy slices; per frame, [`ChunkReader::read`] reads choice 0's content, finish reason
//! and usage in one strict pass over the payload, borrowing what it keeps (no allocation unless
//! a string has escapes; serde reads the rare payload that pass declines), and starts that pass
//! after the bytes the stream's chunks repeat (`id` to `system_fingerprint`); the content goes
//! to the record's text buffer (amortised growth) and to the analysis; the frame's original
//! `Bytes` is queued unchanged. No chunk is re-serialised, no lock is taken, nothing awaits
//! a tool or the database: tool results arrive through [`StreamAnalysis::poll_events`] and
//! records go to the recorder with a non-blocking send.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use super::timers::Timers;
use super::watch::ShutdownWatch;
use axum::body::Body;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use midstream_sse::{FrameKind, FrameSplitter, frame_data};
use midstream_store::{OpenReceipt, StreamStatus};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use super::analysis::{Forward, StreamAnalysis};
use super::layer::InflightConfig;
use super::plan::StreamPlan;
use super::prompt_stop::PromptStop;
use super::record::StreamRecord;
use crate::error::ApiError;
use crate::protocol::chunk::ChunkReader;
use crate::sse::authored::{self, ChunkMeta};
use crate::sse::multi_data;
use crate::telemetry::prometheus as metric;
use crate::upstream::{UpstreamError, UpstreamResponse};

enum Phase {
    /// The stream's row is being committed; nothing is sent before it is (bounded wait).
    AwaitingRow {
        receipt: OpenReceipt,
        deadline: Pin<Box<Sleep>>,
    },
    /// Forwarding upstream frames.
    Streaming,
    /// The upstream finished; waiting for the stream's tool calls to end.
    Draining,
    /// Every owned tool the model called has a result: the follow-up request is on its way
    /// and its stream will continue this one.
    Continuing(BoxFuture<'static, Result<UpstreamResponse, UpstreamError>>),
    /// Nothing more to send after `out` drains.
    Done,
}

/// The body of a streaming completion. See the module docs.
pub struct InflightBody {
    upstream: Body,
    splitter: FrameSplitter,
    /// Reads the chunks, remembering how the last one started.
    chunks: ChunkReader,
    /// Frames completed by the last read (reused: no allocation per read).
    frames: Vec<Bytes>,
    /// Bytes ready to send, in order.
    out: VecDeque<Bytes>,
    phase: Phase,
    record: StreamRecord,
    analysis: StreamAnalysis,
    /// A prompt `stop` rule matched: the gateway writes the whole stream.
    prompt_stop: Option<PromptStop>,
    inject_events: bool,
    /// The upstream's id/created/model once its first chunk arrived.
    meta: Option<ChunkMeta>,
    fallback_meta: ChunkMeta,
    /// Events (JSON) raised before the upstream's first chunk, sent right after it so they carry
    /// its id (or with the fallback id if it never sends one).
    early_events: Vec<String>,
    saw_done: bool,
    saw_finish: bool,
    stop_sent: bool,
    upstream_error: Option<String>,
    timers: Timers,
    /// The stream's cancel token: the gateway's shutdown or the cancel endpoint.
    shutdown: ShutdownWatch,
    /// The gateway's own shutdown token, to tell the two apart.
    gateway_shutdown: CancellationToken,
    _permit: crate::auth::limits::StreamSlots,
}

impl InflightBody {
    /// Wraps an upstream body according to a stream plan.
    pub fn new(upstream: Body, plan: StreamPlan, config: &InflightConfig) -> InflightBody {
        let now = Instant::now();
        let StreamPlan {
            record,
            row,
            analysis,
            prompt_stop,
            inject_events,
            fallback_meta,
            permit,
            cancel,
            ..
        } = plan;
        InflightBody {
            upstream,
            splitter: FrameSplitter::new(config.max_frame_bytes),
            chunks: ChunkReader::default(),
            frames: Vec::new(),
            out: VecDeque::new(),
            phase: Phase::AwaitingRow {
                receipt: row,
                deadline: Box::pin(tokio::time::sleep(config.record_open_wait)),
            },
            record,
            analysis,
            prompt_stop,
            inject_events,
            meta: None,
            fallback_meta,
            early_events: Vec::new(),
            saw_done: false,
            saw_finish: false,
            stop_sent: false,
            upstream_error: None,
            timers: Timers::new(now, config),
            shutdown: ShutdownWatch::new(&cancel),
            gateway_shutdown: config.shutdown.clone(),
            _permit: permit,
        }
    }

    /// Splits a read into frames and handles each.
    fn on_upstream_bytes(&mut self, data: Bytes) {
        self.timers.last_upstream = Instant::now();
        let mut frames = std::mem::take(&mut self.frames);
        let pushed = self.splitter.push(data, |frame| frames.push(frame));
        for frame in frames.drain(..) {
            // A stop rule or a failure ends forwarding; the rest of the read is dropped.
            if matches!(self.phase, Phase::Streaming) {
                self.on_frame(frame);
            }
        }
        self.frames = frames;
        if let Err(too_large) = pushed {
            self.fail(ApiError::from(too_large));
        }
        self.record.flush_published();
    }

    fn on_frame(&mut self, frame: Bytes) {
        match frame_data(&frame) {
            FrameKind::Data(b"[DONE]") => self.saw_done = true,
            FrameKind::Data(payload) => match crate::protocol::chunk::span_in(&frame, payload) {
                Some(range) => self.on_chunk(&frame, range, &frame),
                None => self.out.push_back(frame.clone()),
            },
            // A chunk in several `data:` lines is read on one line; if redaction rewrites it, it
            // goes out on that one line (docs/architecture.md, "Inflight analysis guarantees").
            FrameKind::MultiData(joined) => match multi_data::one_line(&frame, joined) {
                Some((one_line, range)) => self.on_chunk(&one_line, range, &frame),
                None => self.out.push_back(frame),
            },
            FrameKind::NoData => self.out.push_back(frame),
        }
    }

    /// One `data:` frame, read from `frame` (`received` itself, or the same chunk on one line).
    /// `received` is forwarded unless the analysis must rewrite its content.
    fn on_chunk(&mut self, frame: &Bytes, payload: std::ops::Range<usize>, received: &Bytes) {
        let Some(chunk) = self.chunks.read(&frame[payload.clone()]) else {
            self.out.push_back(received.clone());
            return;
        };
        if let Some(error) = chunk.error {
            self.upstream_error = Some(error.get().to_owned());
        }
        let first_chunk = self.meta.is_none();
        if let (true, Some(id), Some(created), Some(model)) =
            (first_chunk, chunk.id, chunk.created, chunk.model)
        {
            self.meta = Some(ChunkMeta::from_raw(id.get(), created.get(), model.get()));
        }
        if let Some(usage) = chunk.usage {
            self.record.usage(usage);
        }
        let finish = chunk.finish_reason().map(str::to_owned);
        if self.record.publishes()
            && let Some(text) = super::reasoning::reasoning_text(&frame[payload.clone()])
        {
            self.record.reasoning(&text);
        }
        let content = chunk.message().and_then(|m| m.content_text());
        let mut forward = self.analysis.on_content(
            frame,
            payload.start,
            &chunk,
            content.as_deref(),
            &mut self.record,
        );
        let mut tail = None;
        if let Some(reason) = &finish {
            tail = self.analysis.on_finish(&mut self.record);
            if reason == "tool_calls" && self.analysis.continues_after_tools() {
                // The gateway runs these calls and continues the conversation itself: the client
                // sees the follow-up's answer, not a request to run tools.
                forward = Forward::Drop;
            } else {
                self.saw_finish = true;
                self.record.finish_reason(reason);
            }
        }
        if let Some(tail) = tail {
            // Text held back for a redaction, released before the frame that ends the content.
            let meta = self
                .meta
                .clone()
                .unwrap_or_else(|| self.fallback_meta.clone());
            self.out.push_back(meta.content(&tail));
        }
        match forward {
            Forward::Unchanged => self.out.push_back(received.clone()),
            Forward::Replace(bytes) => self.out.push_back(bytes),
            Forward::Drop => {}
        }
        if first_chunk && self.meta.is_some() {
            self.flush_early_events();
        }
        self.queue_events();
    }

    /// Moves the analysis's ready events into the output (or holds them until the upstream's
    /// first chunk, so they carry its id), and ends the stream if a stop rule matched.
    fn queue_events(&mut self) {
        for event in self.analysis.take_events() {
            self.record.event(event.kind(), event.json().to_owned());
            if !self.inject_events {
                continue;
            }
            match &self.meta {
                Some(meta) => self.out.push_back(meta.event_json(event.json())),
                None => self.early_events.push(event.json().to_owned()),
            }
        }
        if self.analysis.stopped() && !self.stop_sent {
            self.stop();
        }
    }

    /// Sends the events held for the upstream's first chunk, with its id when known.
    fn flush_early_events(&mut self) {
        let meta = self.meta.as_ref().unwrap_or(&self.fallback_meta);
        for event in self.early_events.drain(..) {
            self.out.push_back(meta.event_json(&event));
        }
    }

    /// A `stop` rule matched: finish with `content_filter` and drop the upstream. The stream's
    /// tool calls still end (bounded by their timeouts) before `[DONE]`. A prompt's stop opens
    /// the stream with the role chunk no upstream sent.
    fn stop(&mut self) {
        const REASON: &str = "content_filter";
        self.stop_sent = true;
        let meta = self
            .meta
            .clone()
            .unwrap_or_else(|| self.fallback_meta.clone());
        if let Some(prompt_stop) = &self.prompt_stop {
            self.out.push_back(meta.role());
            self.record.usage(prompt_stop.usage());
        }
        self.flush_early_events();
        self.out.push_back(meta.finish_reason(REASON));
        self.record.finish_reason(REASON);
        self.saw_finish = true;
        self.upstream = Body::empty();
        self.phase = Phase::Draining;
    }

    /// The upstream ended (cleanly or not).
    fn on_upstream_end(&mut self) {
        let (last, unfinished) = self.splitter.finish();
        if let Some(frame) = last {
            self.on_frame(frame);
        }
        if unfinished > 0 {
            tracing::debug!(stream_id = %self.record.stream_id(), bytes = unfinished, "upstream ended inside a frame");
        }
        let continuing = self.analysis.continues_after_tools();
        if !self.saw_done && !self.saw_finish && !continuing && self.upstream_error.is_none() {
            metrics::counter!(metric::UPSTREAM_ERRORS, "kind" => "truncated").increment(1);
            self.fail(ApiError::UpstreamDisconnected(
                "the upstream closed the stream before it finished".to_owned(),
            ));
            return;
        }
        if !self.saw_finish {
            if let Some(tail) = self.analysis.on_finish(&mut self.record) {
                let meta = self
                    .meta
                    .clone()
                    .unwrap_or_else(|| self.fallback_meta.clone());
                self.out.push_back(meta.content(&tail));
            }
            self.queue_events();
        }
        self.phase = Phase::Draining;
    }

    /// Ends the stream with an in-band error: `data: {"error": ...}`, then the body ends without
    /// `[DONE]` (docs/architecture.md, "Events inside the OpenAI-compatible stream").
    fn fail(&mut self, error: ApiError) {
        // The one line for a stream that fails once streaming: every cause here is the
        // upstream's (it broke off, went silent or broke the framing), so WARN.
        tracing::warn!(stream_id = %self.record.stream_id(), %error, "stream failed");
        self.flush_early_events();
        self.out.push_back(authored::error_frame(&error));
        self.record.publish_error(&error);
        self.record
            .close(StreamStatus::Failed, Some(error.to_string()));
        self.upstream = Body::empty();
        self.analysis.cancel();
        self.phase = Phase::Done;
    }

    /// All tool calls ended: the terminator (after the usage chunk of a prompt's stop, when the
    /// client asked for usage: it is the last chunk, as an upstream's is).
    fn complete(&mut self) {
        self.flush_early_events();
        if let Some(stop) = self.prompt_stop.filter(PromptStop::include_usage) {
            self.out
                .push_back(self.fallback_meta.usage(&stop.usage_json()));
        }
        self.out.push_back(Bytes::from_static(authored::DONE));
        match self.upstream_error.take() {
            Some(error) => self.record.close(StreamStatus::Failed, Some(error)),
            None => self.record.close(StreamStatus::Completed, None),
        }
        self.phase = Phase::Done;
    }

    /// The follow-up response's stream continues this one.
    fn continue_with(&mut self, response: UpstreamResponse) {
        self.upstream = Body::from_stream(response.body);
        self.splitter = FrameSplitter::new(self.splitter.max_frame());
        self.saw_done = false;
        self.saw_finish = false;
        self.timers.last_upstream = Instant::now();
        self.phase = Phase::Streaming;
    }

    /// Cancellation, keep-alives and the time limits; called only when nothing else is ready.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.shutting_down(cx) {
            let (error, status, reason) = if self.gateway_shutdown.is_cancelled() {
                (
                    ApiError::ShuttingDown,
                    StreamStatus::Interrupted,
                    "the gateway shut down",
                )
            } else {
                (
                    ApiError::Cancelled,
                    StreamStatus::Cancelled,
                    "cancelled through the cancel endpoint",
                )
            };
            self.out.push_back(authored::error_frame(&error));
            if status == StreamStatus::Interrupted {
                self.record.publish_error(&error);
            }
            self.record.close(status, Some(reason.to_owned()));
            self.upstream = Body::empty();
            self.analysis.cancel();
            self.phase = Phase::Done;
            return Poll::Ready(());
        }
        if self.timers.poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        let streaming = matches!(self.phase, Phase::Streaming);
        if let Some(error) = self.timers.expired(now, streaming) {
            let kind = match error {
                ApiError::UpstreamIdle(_) => "idle",
                _ => "duration",
            };
            metrics::counter!(metric::UPSTREAM_ERRORS, "kind" => kind).increment(1);
            self.fail(error);
            return Poll::Ready(());
        }
        if self.timers.ping_due(now) {
            self.out.push_back(Bytes::from_static(authored::PING));
        }
        self.timers.rearm(now, streaming);
        if self.out.is_empty() {
            // Register the re-armed timer's waker before sleeping.
            return match self.timers.poll(cx) {
                Poll::Ready(()) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            };
        }
        Poll::Ready(())
    }
}

impl HttpBody for InflightBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        // When this poll read the upstream, the frame it sends leaves at the time of that read
        // (microseconds apart): one clock read per frame, not two.
        let mut read_at = None;
        loop {
            if let Some(bytes) = this.out.pop_front() {
                this.timers.last_sent = read_at.unwrap_or_else(Instant::now);
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            match &mut this.phase {
                Phase::AwaitingRow { receipt, deadline } => {
                    if Pin::new(receipt).poll(cx).is_pending() {
                        if deadline.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        tracing::warn!(stream_id = %this.record.stream_id(), "stream row not committed in time; streaming anyway");
                    }
                    this.phase = Phase::Streaming;
                    // Events of the prompt's analysis (and a prompt `stop`).
                    this.queue_events();
                    this.record.flush_published();
                }
                Phase::Streaming => {
                    if this.analysis.poll_events(cx, &mut this.record).is_ready() {
                        this.queue_events();
                        this.record.flush_published();
                        continue;
                    }
                    match Pin::new(&mut this.upstream).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            if let Ok(data) = frame.into_data() {
                                this.on_upstream_bytes(data);
                                read_at = Some(this.timers.last_upstream);
                            }
                        }
                        Poll::Ready(Some(Err(error))) => {
                            metrics::counter!(metric::UPSTREAM_ERRORS, "kind" => "body")
                                .increment(1);
                            this.fail(ApiError::UpstreamDisconnected(format!(
                                "the upstream connection failed: {error}"
                            )));
                        }
                        Poll::Ready(None) => this.on_upstream_end(),
                        Poll::Pending => ready!(this.poll_timers(cx)),
                    }
                }
                Phase::Draining => {
                    if this.analysis.poll_events(cx, &mut this.record).is_ready() {
                        this.queue_events();
                        this.record.flush_published();
                        continue;
                    }
                    if this.analysis.in_flight() > 0 {
                        ready!(this.poll_timers(cx));
                        continue;
                    }
                    match this.analysis.next_step() {
                        Some(request) => this.phase = Phase::Continuing(request),
                        None => this.complete(),
                    }
                }
                Phase::Continuing(request) => match request.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) => this.continue_with(response),
                    Poll::Ready(Err(error)) => {
                        metrics::counter!(metric::UPSTREAM_ERRORS, "kind" => error.kind())
                            .increment(1);
                        this.fail(ApiError::from(error));
                    }
                    Poll::Pending => ready!(this.poll_timers(cx)),
                },
                Phase::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.phase, Phase::Done) && self.out.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
