//! The streaming load: N clients, each on its own keep-alive connection, sending requests
//! back to back until M have been sent, timing every stream.
//!
//! The driver ([`drive`]) and a stream's trace ([`StreamTrace`]) serve every mode that runs
//! streams back to back: a mode says how one client runs one stream ([`Client`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::task::JoinSet;

use crate::client::{ClientError, Connection, RequestTemplate, Target};
use crate::sse::{EventKind, FrameKind, SseScanner};
use crate::stats::Samples;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Where and how to send.
    pub template: RequestTemplate,
    /// The body of every request.
    pub body: Bytes,
    /// Clients sending at once.
    pub concurrency: usize,
    /// Requests in total.
    pub requests: usize,
    /// Longest time one stream may take, headers to end.
    pub timeout: Duration,
}

/// Counts of MidStream events seen, over all streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventCounts {
    /// `intent` events.
    pub intent: u64,
    /// `tool.started` events.
    pub tool_started: u64,
    /// `tool.result` events.
    pub tool_result: u64,
    /// `tool.result` events with `"cached": true`.
    pub tool_result_cached: u64,
    /// `tool.error` events.
    pub tool_error: u64,
    /// MidStream events of another type.
    pub other: u64,
}

impl EventCounts {
    /// Events of every type (the cached results are among the `tool.result` ones).
    pub fn total(&self) -> u64 {
        self.intent + self.tool_started + self.tool_result + self.tool_error + self.other
    }

    fn add(&mut self, other: &EventCounts) {
        self.intent += other.intent;
        self.tool_started += other.tool_started;
        self.tool_result += other.tool_result;
        self.tool_result_cached += other.tool_result_cached;
        self.tool_error += other.tool_error;
        self.other += other.other;
    }

    fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::Intent => self.intent += 1,
            EventKind::ToolStarted => self.tool_started += 1,
            EventKind::ToolResult { cached } => {
                self.tool_result += 1;
                if cached {
                    self.tool_result_cached += 1;
                }
            }
            EventKind::ToolError => self.tool_error += 1,
            EventKind::Other => self.other += 1,
        }
    }
}

/// Everything measured over a run (successful streams only, except the error counts).
#[derive(Debug, Default)]
pub struct LoadResults {
    /// Wall time of the run.
    pub wall: Duration,
    /// Streams that ended with `[DONE]` and no error.
    pub completed: u64,
    /// Failed streams by kind (`connect`, `http`, `status_502`, `in_band_error`, `no_done`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Request sent → response head.
    pub ttfb: Samples,
    /// Request sent → first chunk with non-empty content.
    pub ttft: Samples,
    /// Between consecutive data frames of a stream.
    pub gaps: Samples,
    /// Request sent → end of body.
    pub total: Samples,
    /// `intent` event → the first cached `tool.result` after it, per stream.
    pub tool_latency: Samples,
    /// Streams with an `intent` but no cached `tool.result` after it.
    pub intent_without_cached_result: u64,
    /// Data frames (chunks and events, not `[DONE]`) of completed streams.
    pub chunks: u64,
    /// `:` comment lines (keep-alives).
    pub comments: u64,
    /// MidStream events.
    pub events: EventCounts,
}

impl LoadResults {
    /// Failed streams.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn absorb(&mut self, mut other: LoadResults) {
        self.completed += other.completed;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.ttfb.append(&mut other.ttfb);
        self.ttft.append(&mut other.ttft);
        self.gaps.append(&mut other.gaps);
        self.total.append(&mut other.total);
        self.tool_latency.append(&mut other.tool_latency);
        self.intent_without_cached_result += other.intent_without_cached_result;
        self.chunks += other.chunks;
        self.comments += other.comments;
        self.events.add(&other.events);
    }
}

/// One client of a run: it runs streams one after another, on connections it keeps.
pub trait Client: Send + 'static {
    /// Runs one stream and, when it succeeded, adds what it measured to `results`.
    fn stream(
        &mut self,
        results: &mut LoadResults,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Forgets its connections after a failed stream (they may be mid-response).
    fn reset(&mut self);
}

/// Runs `plan` and returns what was measured.
pub async fn run(plan: &LoadPlan) -> LoadResults {
    let shared = Arc::new(plan.clone());
    drive(plan.concurrency, plan.requests, plan.timeout, || {
        ChatClient {
            plan: shared.clone(),
            connection: None,
            trace: StreamTrace::default(),
        }
    })
    .await
}

/// Runs `requests` streams on `concurrency` clients made by `client`, each taking the next
/// stream until they run out; a stream longer than `timeout` fails.
pub async fn drive<C: Client>(
    concurrency: usize,
    requests: usize,
    timeout: Duration,
    client: impl Fn() -> C,
) -> LoadResults {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..concurrency.min(requests) {
        clients.spawn(streams(client(), requests, timeout, next.clone()));
    }
    let mut results = LoadResults::default();
    while let Some(joined) = clients.join_next().await {
        match joined {
            Ok(partial) => results.absorb(partial),
            Err(_) => {
                *results
                    .errors
                    .entry("client_panicked".to_owned())
                    .or_default() += 1
            }
        }
    }
    results.wall = started.elapsed();
    results
}

/// One client: takes stream numbers until they run out.
async fn streams(
    mut client: impl Client,
    requests: usize,
    timeout: Duration,
    next: Arc<AtomicUsize>,
) -> LoadResults {
    let mut results = LoadResults::default();
    while next.fetch_add(1, Ordering::Relaxed) < requests {
        let outcome = tokio::time::timeout(timeout, client.stream(&mut results))
            .await
            .unwrap_or(Err(Failure::Timeout));
        match outcome {
            Ok(()) => results.completed += 1,
            Err(failure) => {
                client.reset();
                *results.errors.entry(failure.kind()).or_default() += 1;
            }
        }
    }
    results
}

/// A request sent and its response head received.
pub struct Sent {
    /// The response, its status as expected.
    pub response: Response<Incoming>,
    /// When the request was sent (after any connect).
    pub at: Instant,
    /// From then to the response head.
    pub head: Duration,
}

/// Sends `request` on `slot`'s connection when it can take another, else on a new one put in
/// its place; a status other than `expected` fails.
pub async fn send(
    slot: &mut Option<Connection>,
    target: &Target,
    request: Request<Full<Bytes>>,
    expected: StatusCode,
) -> Result<Sent, Failure> {
    let live = match slot.take() {
        Some(open) if open.is_reusable() => open,
        _ => Connection::open(target).await?,
    };
    let connection = slot.insert(live);
    let at = Instant::now();
    let response = connection.send(request).await?;
    let head = at.elapsed();
    if response.status() != expected {
        return Err(Failure::Status(response.status().as_u16()));
    }
    Ok(Sent { response, at, head })
}

/// Reads an SSE body to its end, handing each frame to `on_frame` with the time its bytes
/// arrived.
pub async fn read_sse(
    mut body: Incoming,
    mut scanner: SseScanner,
    mut on_frame: impl FnMut(FrameKind, Instant),
) -> Result<(), Failure> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ClientError::from)?;
        let now = Instant::now();
        if let Some(data) = frame.data_ref() {
            scanner
                .feed(data, |kind| on_frame(kind, now))
                .map_err(|_| Failure::Framing)?;
        }
    }
    Ok(())
}

/// A stream read up to the frame a caller waited for, still open.
pub struct OpenedStream {
    /// The connection carrying it.
    pub connection: Connection,
    /// The rest of its body.
    pub body: hyper::body::Incoming,
    /// The framing state after that frame.
    pub scanner: SseScanner,
    /// From sending the request to that frame.
    pub elapsed: Duration,
}

/// Sends a request with `body` on a new connection and reads its SSE frames until one for
/// which `wanted` is true (the idle and disconnect modes: "stream open", "first token").
pub async fn stream_until(
    template: &RequestTemplate,
    body: Bytes,
    wanted: impl Fn(FrameKind) -> bool,
) -> Result<OpenedStream, Failure> {
    let mut connection = Connection::open(template.target()).await?;
    let started = Instant::now();
    let response = connection.send(template.request(body)).await?;
    if response.status() != StatusCode::OK {
        return Err(Failure::Status(response.status().as_u16()));
    }
    let mut body = response.into_body();
    let mut scanner = SseScanner::default();
    loop {
        let Some(frame) = body.frame().await else {
            return Err(Failure::NoDone);
        };
        let frame = frame.map_err(ClientError::from)?;
        let mut found = false;
        if let Some(data) = frame.data_ref() {
            scanner
                .feed(data, |kind| found |= wanted(kind))
                .map_err(|_| Failure::Framing)?;
        }
        if found {
            return Ok(OpenedStream {
                connection,
                body,
                scanner,
                elapsed: started.elapsed(),
            });
        }
    }
}

/// Why one stream failed.
#[derive(Debug)]
pub enum Failure {
    /// Connecting or exchanging.
    Client(ClientError),
    /// A status other than 200.
    Status(u16),
    /// `data: {"error": ...}` in the stream.
    InBand,
    /// The body ended without `data: [DONE]`.
    NoDone,
    /// The body broke the SSE framing.
    Framing,
    /// The stream took longer than the plan's timeout.
    Timeout,
    /// The server's answer lacked what the mode needs (`POST /v1/streams`: an `events_url`).
    Answer,
    /// The subscribers of one stream saw different numbers of events.
    Mismatch,
}

impl Failure {
    /// A stable name for counting.
    pub fn kind(&self) -> String {
        match self {
            Self::Client(error) => error.kind().to_owned(),
            Self::Status(status) => format!("status_{status}"),
            Self::InBand => "in_band_error".to_owned(),
            Self::NoDone => "no_done".to_owned(),
            Self::Framing => "sse_framing".to_owned(),
            Self::Timeout => "timeout".to_owned(),
            Self::Answer => "bad_answer".to_owned(),
            Self::Mismatch => "subscriber_mismatch".to_owned(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self::Client(error)
    }
}

/// What one stream showed, as it happened.
#[derive(Debug, Default)]
pub struct StreamTrace {
    /// Time of the first content chunk.
    pub first_content: Option<Instant>,
    last_frame: Option<Instant>,
    /// Time of the first `intent` event.
    pub intent: Option<Instant>,
    /// Time of the first cached `tool.result` after an intent.
    pub cached_result: Option<Instant>,
    chunks: u64,
    comments: u64,
    done: bool,
    in_band_error: bool,
    events: EventCounts,
}

impl StreamTrace {
    /// Forgets the last stream.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Whether the stream ended as a stream should: its end (`[DONE]`, `done`) seen, no
    /// in-band error.
    pub fn ending(&self) -> Result<(), Failure> {
        if self.in_band_error {
            return Err(Failure::InBand);
        }
        if !self.done {
            return Err(Failure::NoDone);
        }
        Ok(())
    }

    /// Adds a stream that succeeded to `results`: its first content from `started`, its
    /// `gaps`, its counts and its intent → cached result time.
    pub fn record(&self, started: Instant, gaps: &mut Samples, results: &mut LoadResults) {
        if let Some(first) = self.first_content {
            results.ttft.push(first - started);
        }
        results.gaps.append(gaps);
        results.chunks += self.chunks;
        results.comments += self.comments;
        results.events.add(&self.events);
        match (self.intent, self.cached_result) {
            (Some(intent), Some(result)) => results.tool_latency.push(result - intent),
            (Some(_), None) => results.intent_without_cached_result += 1,
            _ => {}
        }
    }

    /// Notes one frame that arrived at `now`; inter-frame gaps go to `gaps`.
    pub fn observe(&mut self, kind: FrameKind, now: Instant, gaps: &mut Samples) {
        let data = match kind {
            FrameKind::Comment => {
                self.comments += 1;
                false
            }
            FrameKind::Done => {
                self.done = true;
                false
            }
            FrameKind::Error => {
                self.in_band_error = true;
                false
            }
            FrameKind::Chunk { content } => {
                if content && self.first_content.is_none() {
                    self.first_content = Some(now);
                }
                true
            }
            FrameKind::Event(event) => {
                self.events.count(event);
                match event {
                    EventKind::Intent if self.intent.is_none() => self.intent = Some(now),
                    EventKind::ToolResult { cached: true }
                        if self.intent.is_some() && self.cached_result.is_none() =>
                    {
                        self.cached_result = Some(now);
                    }
                    _ => {}
                }
                true
            }
        };
        if data {
            self.chunks += 1;
            if let Some(last) = self.last_frame {
                gaps.push(now.saturating_duration_since(last));
            }
            self.last_frame = Some(now);
        }
    }
}

/// The `stream` mode's client: one chat completion at a time on one kept-alive connection.
struct ChatClient {
    plan: Arc<LoadPlan>,
    connection: Option<Connection>,
    trace: StreamTrace,
}

impl Client for ChatClient {
    async fn stream(&mut self, results: &mut LoadResults) -> Result<(), Failure> {
        let plan = &*self.plan;
        let stream = &mut self.trace;
        stream.reset();
        let sent = send(
            &mut self.connection,
            plan.template.target(),
            plan.template.request(plan.body.clone()),
            StatusCode::OK,
        )
        .await?;
        let mut gaps = Samples::default();
        read_sse(
            sent.response.into_body(),
            SseScanner::default(),
            |kind, now| {
                stream.observe(kind, now, &mut gaps);
            },
        )
        .await?;
        let total = sent.at.elapsed();
        stream.ending()?;
        results.ttfb.push(sent.head);
        results.total.push(total);
        stream.record(sent.at, &mut gaps, results);
        Ok(())
    }

    fn reset(&mut self) {
        self.connection = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_times_content_gaps_and_the_cached_result_after_its_intent() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut trace = StreamTrace::default();
        let mut gaps = Samples::default();
        let frames = [
            (FrameKind::Chunk { content: false }, 0),
            (FrameKind::Event(EventKind::ToolResult { cached: true }), 1),
            (FrameKind::Comment, 2),
            (FrameKind::Chunk { content: true }, 3),
            (FrameKind::Event(EventKind::Intent), 5),
            (FrameKind::Event(EventKind::ToolStarted), 5),
            (FrameKind::Event(EventKind::ToolResult { cached: true }), 6),
            (FrameKind::Chunk { content: true }, 9),
            (FrameKind::Done, 10),
        ];
        for (kind, ms) in frames {
            trace.observe(kind, at(ms), &mut gaps);
        }
        assert_eq!(trace.first_content, Some(at(3)));
        assert_eq!(trace.intent, Some(at(5)));
        assert_eq!(
            trace.cached_result,
            Some(at(6)),
            "a cached result before any intent is not the one measured"
        );
        assert!(trace.done);
        assert_eq!(trace.chunks, 7, "data frames, not the comment or [DONE]");
        assert_eq!(trace.comments, 1);
        assert_eq!(trace.events.tool_result_cached, 2);
        let gaps = gaps.distribution().expect("gaps");
        assert_eq!(gaps.count, 6);
        assert_eq!(gaps.max, 3.0);
    }

    #[test]
    fn results_merge_counts_and_samples() {
        let mut total = LoadResults::default();
        let mut part = LoadResults {
            completed: 2,
            chunks: 10,
            ..LoadResults::default()
        };
        part.errors.insert("no_done".to_owned(), 1);
        part.ttfb.push(Duration::from_millis(1));
        total.absorb(part);
        let mut other = LoadResults::default();
        other.errors.insert("no_done".to_owned(), 2);
        total.absorb(other);
        assert_eq!(total.completed, 2);
        assert_eq!(total.error_count(), 3);
        assert_eq!(total.ttfb.len(), 1);
    }
}
