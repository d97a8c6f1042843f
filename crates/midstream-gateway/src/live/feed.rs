//! What one subscriber reads: the events after the last one it saw, from this process's memory
//! log or the shared log, with a [`Snapshot`] in place of events no log holds any more, and the
//! database record when no log holds the stream at all.

use std::sync::Arc;

use midstream_store::{Store, StreamRow};
use serde_json::Value;

use super::event::{EventKind, LiveEvent};
use super::hub::Hub;
use super::log::{EventLog, Gap, LogRead, Snapshot};
use super::memory::Subscription;
use crate::error::ApiError;
use crate::inflight::json_text;
use crate::telemetry::prometheus as metric;

/// One thing to send a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// The stream so far, replacing what the subscriber had; `id` is the seq it covers up to
    /// (`None`: a running stream rebuilt from the database, whose position is unknown).
    Snapshot(Snapshot),
    /// The next event.
    Event(LiveEvent),
    /// Nothing happened for a keep-alive interval.
    Ping,
}

/// Where a subscription starts.
#[derive(Debug)]
pub enum Start {
    /// The subscriber already saw `done`: nothing to send (204, so `EventSource` stops).
    Finished,
    /// Follow the stream.
    Follow(Feed),
}

/// A subscriber's position in one stream.
#[derive(Debug)]
pub struct Feed {
    hub: Hub,
    store: Store,
    stream: Arc<str>,
    after: Option<u64>,
    pending: Option<Vec<FeedItem>>,
    ended: bool,
    /// This process's log of the stream, once it holds it.
    memory: Option<Subscription>,
}

impl Feed {
    /// Starts following `stream` after the event `after` (from its start for `None`).
    pub async fn open(
        hub: Hub,
        store: Store,
        stream: Arc<str>,
        after: Option<u64>,
    ) -> Result<Start, ApiError> {
        hub.follow(&stream).await;
        metrics::gauge!(metric::EVENT_LOG_SUBSCRIBERS).increment(1.0);
        let mut feed = Feed {
            hub,
            store,
            stream,
            after,
            pending: None,
            ended: false,
            memory: None,
        };
        let first = feed.read(std::time::Duration::ZERO).await?;
        if feed.ended && first.is_empty() {
            return Ok(Start::Finished);
        }
        feed.pending = Some(first);
        Ok(Start::Follow(feed))
    }

    /// Whether the reads so far reached the stream's `done` (nothing more will come).
    pub fn reached_end(&self) -> bool {
        self.ended
    }

    /// The next things to send; `None` once the stream's `done` was sent (or, for a stream
    /// no log holds, once its record was: the subscriber retries later).
    pub async fn next(&mut self) -> Option<Vec<FeedItem>> {
        if let Some(items) = self.pending.take() {
            return Some(items);
        }
        if self.ended {
            return None;
        }
        let wait = self.hub.config().keepalive;
        match self.read(wait).await {
            Ok(items) if items.is_empty() && self.ended => None,
            Ok(items) if items.is_empty() => Some(vec![FeedItem::Ping]),
            Ok(items) => Some(items),
            Err(error) => {
                tracing::warn!(stream_id = %self.stream, %error, "a subscriber's read failed");
                self.ended = true;
                None
            }
        }
    }

    async fn read(&mut self, wait: std::time::Duration) -> Result<Vec<FeedItem>, ApiError> {
        // Whether a log that could hold the stream later answered: then a stream that is
        // running but has not published there yet is waited for, not rebuilt.
        if self.memory.is_none() {
            self.memory = self.hub.subscribe_here(&self.stream);
        }
        let read = match (&mut self.memory, self.hub.shared()) {
            (Some(memory), _) => Some(memory.read(self.after, wait).await),
            (None, Some(shared)) => Some(shared.read(&self.stream, self.after, wait).await),
            (None, None) => None,
        };
        let log_answered = matches!(read, Some(Ok(_)));
        let read = match read {
            Some(Ok(read)) => read,
            Some(Err(error)) => {
                tracing::warn!(stream_id = %self.stream, %error, "event log unavailable: answering from the record");
                LogRead::Unknown
            }
            None => LogRead::Unknown,
        };
        let (gap, events, finished) = match read {
            LogRead::Unknown => return self.answer_from_record(log_answered).await,
            LogRead::Events {
                gap,
                events,
                finished,
            } => (gap, events, finished),
        };
        let mut items = Vec::with_capacity(events.len() + 1);
        match gap {
            Gap::None => {}
            Gap::Folded(snapshot) => items.push(FeedItem::Snapshot(snapshot)),
            Gap::Lost => {
                let (mut snapshot, _) = self.record_snapshot().await?;
                // The record may be behind the log: only its text is trusted up to the events
                // that follow, which carry on from there.
                snapshot.upto = events.first().and_then(|e| e.seq.checked_sub(1));
                items.push(FeedItem::Snapshot(snapshot));
            }
        }
        for event in events {
            self.after = Some(event.seq);
            self.ended |= event.kind == EventKind::Done;
            items.push(FeedItem::Event(event));
        }
        self.ended |= finished;
        Ok(items)
    }

    /// No log holds the stream: its record, as a snapshot, then its `done` if it ended. A
    /// stream still running whose log answered (it has not published yet) is waited for.
    async fn answer_from_record(&mut self, log_answered: bool) -> Result<Vec<FeedItem>, ApiError> {
        let (snapshot, done) = self.record_snapshot().await?;
        if done.is_none() && log_answered {
            return Ok(Vec::new());
        }
        self.ended = true;
        let Some(done) = done else {
            // Running on a process whose log this one cannot read: what the record has so far;
            // the subscriber reconnects after `retry` and gets more.
            return Ok(vec![FeedItem::Snapshot(snapshot)]);
        };
        if self.after.is_some_and(|after| after >= done.seq) {
            return Ok(Vec::new());
        }
        self.after = Some(done.seq);
        Ok(vec![FeedItem::Snapshot(snapshot), FeedItem::Event(done)])
    }

    /// The record's text and events; and its `done` when it has ended.
    async fn record_snapshot(&self) -> Result<(Snapshot, Option<LiveEvent>), ApiError> {
        let row = self
            .store
            .stream(&self.stream)
            .await?
            .ok_or_else(|| not_found(&self.stream))?;
        let events = self.store.stream_events(&self.stream).await?;
        let done = record_done(&row);
        let snapshot = Snapshot {
            upto: done.as_ref().and_then(|d| d.seq.checked_sub(1)),
            text: row.response_text.unwrap_or_default(),
            reasoning: String::new(),
            events: events
                .iter()
                .map(|e| serde_json::from_str(&e.payload).unwrap_or(Value::Null))
                .collect(),
        };
        Ok((snapshot, done))
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        metrics::gauge!(metric::EVENT_LOG_SUBSCRIBERS).decrement(1.0);
    }
}

/// The `done` of a closed record (its seq as recorded, 0 for a stream that published none).
fn record_done(row: &StreamRow) -> Option<LiveEvent> {
    if row.status == "streaming" {
        return None;
    }
    #[derive(serde::Serialize)]
    struct Done<'a> {
        status: &'a str,
        finish_reason: Option<&'a str>,
    }
    Some(LiveEvent {
        seq: row
            .last_event_seq
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
        kind: EventKind::Done,
        body: json_text(&Done {
            status: &row.status,
            finish_reason: row.finish_reason.as_deref(),
        })
        .into(),
    })
}

/// The 404 for a stream that does not exist or is not the caller's.
pub fn not_found(stream: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("no stream {stream:?}"),
        code: "stream_not_found",
    }
}
