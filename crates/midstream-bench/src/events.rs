//! Browser streams: `POST {base}/streams`, then `subscribers` readers of its `events_url` at
//! once, as `EventSource`s would (one connection each, no headers of their own).
//!
//! Per stream, from sending the POST: its answer (`ttfb`), the first `token` event on the first
//! subscriber (`ttft`, "time to first event"), and the end of the last subscriber's body after
//! its `done` (`total`). Gaps, counts and the intent → cached result time are the first
//! subscriber's. A stream fails when a subscriber misses `done` or gets an `error` event
//! (`no_done`, `in_band_error`), or when its subscribers saw different numbers of events
//! (`subscriber_mismatch`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use crate::client::{ClientError, Connection, RequestTemplate};
use crate::counters::Counters;
use crate::load::{self, Client, Failure, LoadResults, StreamTrace, read_sse, send};
use crate::report::StreamReport;
use crate::sse::{FrameKind, SseScanner};
use crate::stats::Samples;

/// What to run.
#[derive(Debug, Clone)]
pub struct EventsPlan {
    /// `POST {base}/streams` and its headers.
    pub template: RequestTemplate,
    /// The chat-completions body of every stream.
    pub body: Bytes,
    /// Streams at once.
    pub concurrency: usize,
    /// Streams in total.
    pub requests: usize,
    /// Readers of each stream's events (at least one).
    pub subscribers: usize,
    /// Longest time one stream may take, POST to the last `done`.
    pub timeout: Duration,
}

/// Runs `plan` and returns what was measured.
pub async fn run(plan: &EventsPlan) -> LoadResults {
    let shared = Arc::new(plan.clone());
    load::drive(plan.concurrency, plan.requests, plan.timeout, || {
        EventsClient {
            plan: shared.clone(),
            post: None,
            subscribers: (0..shared.subscribers.max(1))
                .map(|_| Subscriber::default())
                .collect(),
        }
    })
    .await
}

/// One client: a connection for its POSTs and one per subscriber, all kept alive.
struct EventsClient {
    plan: Arc<EventsPlan>,
    post: Option<Connection>,
    subscribers: Vec<Subscriber>,
}

/// One reader of a stream's events.
#[derive(Debug, Default)]
struct Subscriber {
    connection: Option<Connection>,
    trace: StreamTrace,
    gaps: Samples,
    /// Events seen, `done` included.
    events: u64,
    /// When its body ended.
    ended: Option<Instant>,
}

impl Client for EventsClient {
    async fn stream(&mut self, results: &mut LoadResults) -> Result<(), Failure> {
        let plan = &*self.plan;
        let posted = send(
            &mut self.post,
            plan.template.target(),
            plan.template.request(plan.body.clone()),
            StatusCode::CREATED,
        )
        .await?;
        let answer = posted
            .response
            .into_body()
            .collect()
            .await
            .map_err(ClientError::from)?
            .to_bytes();
        let events_url = events_url(&answer).ok_or(Failure::Answer)?;
        let reads = self
            .subscribers
            .iter_mut()
            .map(|subscriber| subscriber.follow(&plan.template, &events_url));
        for read in futures_util::future::join_all(reads).await {
            read?;
        }
        let [first, others @ ..] = self.subscribers.as_mut_slice() else {
            return Err(Failure::Answer);
        };
        if others.iter().any(|other| other.events != first.events) {
            return Err(Failure::Mismatch);
        }
        let ended = others
            .iter()
            .chain([&*first])
            .filter_map(|subscriber| subscriber.ended)
            .max()
            .unwrap_or_else(Instant::now);
        results.ttfb.push(posted.head);
        results.total.push(ended - posted.at);
        first.trace.record(posted.at, &mut first.gaps, results);
        Ok(())
    }

    fn reset(&mut self) {
        self.post = None;
        for subscriber in &mut self.subscribers {
            subscriber.connection = None;
        }
    }
}

impl Subscriber {
    /// Reads the events at `events_url` to their end.
    async fn follow(
        &mut self,
        template: &RequestTemplate,
        events_url: &str,
    ) -> Result<(), Failure> {
        self.trace.reset();
        self.gaps = Samples::default();
        self.events = 0;
        self.ended = None;
        let request = template.get_events(events_url)?;
        let sent = send(
            &mut self.connection,
            template.target(),
            request,
            StatusCode::OK,
        )
        .await?;
        read_sse(
            sent.response.into_body(),
            SseScanner::named(),
            |kind, now| {
                self.observe(kind, now);
            },
        )
        .await?;
        self.ended = Some(Instant::now());
        self.trace.ending()
    }

    /// Notes one frame that arrived at `now`.
    fn observe(&mut self, kind: FrameKind, now: Instant) {
        if kind != FrameKind::Comment {
            self.events += 1;
        }
        self.trace.observe(kind, now, &mut self.gaps);
    }
}

/// The `events_url` of a `201` answer: a path from the server's root.
fn events_url(answer: &[u8]) -> Option<String> {
    let answer: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let url = answer.get("events_url")?.as_str()?;
    url.starts_with('/').then(|| url.to_owned())
}

/// The JSON written by `events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsReport {
    /// Subscribers per stream.
    pub subscribers: usize,
    /// Events each subscriber saw per stream, `done` included (the same for every subscriber
    /// of a stream).
    pub events_per_subscriber: f64,
    /// `token` events per stream.
    pub tokens_per_stream: f64,
    /// What the server's counters (`--metric`) and Redis's command counts (`--redis`) grew by
    /// over the measured streams.
    pub counters: Counters,
    /// The measurements, as `stream` reports them: `ttfb_ms` is the POST's answer, `ttft_ms`
    /// the first `token` event on the first subscriber, `total_ms` the last subscriber's end;
    /// gaps, chunks (every event but `done`) and events are the first subscriber's.
    #[serde(flatten)]
    pub stream: StreamReport,
}

impl EventsReport {
    /// Adds what only this mode measures to `stream`.
    pub fn new(stream: StreamReport, subscribers: usize, counters: Counters) -> Self {
        let completed = stream.completed;
        let (events_per_subscriber, tokens_per_stream) = if completed > 0 {
            (
                stream.chunks_per_stream + 1.0,
                stream.chunks_per_stream - stream.events.total() as f64 / completed as f64,
            )
        } else {
            (0.0, 0.0)
        };
        Self {
            subscribers,
            events_per_subscriber,
            tokens_per_stream,
            counters,
            stream,
        }
    }

    /// A count (a server counter or Redis commands) per completed stream.
    pub fn per_stream(&self, count: f64) -> Option<f64> {
        (self.stream.completed > 0).then(|| count / self.stream.completed as f64)
    }

    /// A plain-text table for a terminal.
    pub fn table(&self) -> String {
        let mut out = format!(
            "browser streams: POST /v1/streams, then {} subscriber(s) per stream; \
             TTFB = the POST answered, first content token = the first `token` event on the \
             first subscriber, total = every subscriber's `done`\n",
            self.subscribers
        );
        out.push_str(&self.stream.table());
        let _ = writeln!(
            out,
            "per subscriber: {:.1} events per stream, `done` included ({:.1} tokens)",
            self.events_per_subscriber, self.tokens_per_stream
        );
        for (name, grown) in &self.counters.metrics {
            let _ = writeln!(
                out,
                "server {name}: +{grown:.0} ({:.2}/stream)",
                self.per_stream(*grown).unwrap_or(0.0)
            );
        }
        if !self.counters.redis_calls.is_empty() {
            out.push_str("redis commands per stream:");
            for (name, calls) in &self.counters.redis_calls {
                let _ = write!(
                    out,
                    " {name} {:.2}",
                    self.per_stream(*calls as f64).unwrap_or(0.0)
                );
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::load::EventCounts;

    #[test]
    fn the_events_url_is_a_path_from_the_root() {
        let answer =
            br#"{"id":"s1","events_url":"/v1/streams/s1/events?token=t","cancel_url":"/c"}"#;
        assert_eq!(
            events_url(answer).as_deref(),
            Some("/v1/streams/s1/events?token=t")
        );
        for bad in [
            &br#"{"events_url":"http://elsewhere/x"}"#[..],
            br#"{"id":"s1"}"#,
            br#"{"events_url":7}"#,
            b"not json",
        ] {
            assert_eq!(events_url(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_subscriber_counts_every_event_but_comments() {
        let mut subscriber = Subscriber::default();
        let now = Instant::now();
        for kind in [
            FrameKind::Chunk { content: true },
            FrameKind::Comment,
            FrameKind::Event(crate::sse::EventKind::Intent),
            FrameKind::Done,
        ] {
            subscriber.observe(kind, now);
        }
        assert_eq!(subscriber.events, 3);
        assert!(subscriber.trace.ending().is_ok());
    }

    #[test]
    fn the_report_counts_events_per_subscriber_and_tokens_per_stream() {
        let results = LoadResults {
            wall: Duration::from_secs(1),
            completed: 4,
            // Per stream: 50 tokens, intent, tool.started, tool.result, usage.
            chunks: 4 * 54,
            events: EventCounts {
                intent: 4,
                tool_started: 4,
                tool_result: 4,
                tool_result_cached: 4,
                other: 4,
                ..EventCounts::default()
            },
            ..LoadResults::default()
        };
        let stream = StreamReport::new("events-memory", "u", 2, 0, results, None);
        let counters = Counters {
            metrics: BTreeMap::from([("midstream_event_log_redis_batches_total".to_owned(), 30.0)]),
            redis_calls: BTreeMap::from([("xadd".to_owned(), 220)]),
        };
        let report = EventsReport::new(stream, 3, counters);
        assert_eq!(report.events_per_subscriber, 55.0);
        assert_eq!(report.tokens_per_stream, 50.0);
        assert_eq!(report.per_stream(30.0), Some(7.5));
        let table = report.table();
        assert!(table.contains("3 subscriber(s) per stream"), "{table}");
        assert!(table.contains("+30 (7.50/stream)"), "{table}");
        assert!(
            table.contains("redis commands per stream: xadd 55.00"),
            "{table}"
        );
        let json = serde_json::to_string(&report).expect("serialisable");
        assert!(json.contains("\"ttft_ms\""), "flattened: {json}");
        let back: EventsReport = serde_json::from_str(&json).expect("readable");
        assert_eq!(back.stream.completed, 4);
        assert_eq!(back.counters.redis_calls["xadd"], 220);
    }
}
