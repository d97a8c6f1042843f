//! The in-memory event log, the default: one process, bounded by events per stream, total
//! bytes and age.
//!
//! - **Events per stream**: past the bound, a running stream's oldest events are folded into
//!   its [`Snapshot`] (text appended, other events kept as JSON), so a late subscriber still
//!   gets every token's text, as one `snapshot` event.
//! - **Total bytes** of held events: past the bound, finished streams are dropped, oldest
//!   first (a reconnect to one is then answered from the database record).
//! - **Age**: a finished stream is dropped this long after its `done`.
//!
//! Subscribers wait on a `watch` of the stream's next seq, so an append wakes each of them
//! once, however many events it carries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use super::StreamMap;
use super::event::{EventKind, LiveEvent};
use super::log::{EventLog, Gap, LogError, LogRead, Snapshot};

/// The memory log's bounds (`MIDSTREAM_EVENT_LOG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBounds {
    /// Events held per stream before the oldest are folded into its snapshot.
    pub max_events_per_stream: usize,
    /// Bytes of events held in total before finished streams are dropped.
    pub max_bytes: usize,
    /// How long a finished stream stays after its `done`.
    pub max_age: Duration,
}

impl Default for MemoryBounds {
    fn default() -> Self {
        MemoryBounds {
            max_events_per_stream: 10_000,
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(600),
        }
    }
}

/// How full the log is, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Streams held.
    pub streams: usize,
    /// Bytes of events held.
    pub bytes: usize,
}

/// The in-memory log. See the module docs.
#[derive(Debug, Default)]
pub struct MemoryLog {
    bounds: MemoryBounds,
    streams: RwLock<StreamMap<Arc<StreamLog>>>,
    /// Finished streams, oldest `done` first.
    finished: Mutex<VecDeque<(Instant, Arc<str>)>>,
    bytes: AtomicUsize,
}

#[derive(Debug)]
struct StreamLog {
    state: Mutex<LogState>,
    /// The next seq to be appended: subscribers wait for it to change.
    next: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct LogState {
    events: VecDeque<LiveEvent>,
    next_seq: u64,
    bytes: usize,
    folded: Snapshot,
    done: bool,
}

impl LogState {
    /// The events after `after`, or the fold and everything held when the first is gone.
    fn after(&self, after: Option<u64>) -> (Gap, Vec<LiveEvent>) {
        let wanted = after.map_or(0, |seq| seq + 1);
        let first_held = self.next_seq - self.events.len() as u64;
        if wanted < first_held {
            return (
                Gap::Folded(self.folded.clone()),
                self.events.iter().cloned().collect(),
            );
        }
        let skip = usize::try_from(wanted - first_held).unwrap_or(usize::MAX);
        (Gap::None, self.events.iter().skip(skip).cloned().collect())
    }

    /// Folds the oldest event into the snapshot; returns the bytes it held.
    fn fold_oldest(&mut self) -> usize {
        let Some(event) = self.events.pop_front() else {
            return 0;
        };
        let folded = &mut self.folded;
        folded.upto = Some(event.seq);
        match event.kind {
            EventKind::Token => folded.text.push_str(&event.body),
            EventKind::Reasoning => folded.reasoning.push_str(&event.body),
            _ => folded
                .events
                .push(serde_json::from_str(&event.data()).unwrap_or(serde_json::Value::Null)),
        }
        event.size()
    }
}

impl MemoryLog {
    /// An empty log with these bounds.
    pub fn new(bounds: MemoryBounds) -> MemoryLog {
        MemoryLog {
            bounds,
            ..MemoryLog::default()
        }
    }

    /// The bounds.
    pub fn bounds(&self) -> MemoryBounds {
        self.bounds
    }

    /// Starts holding a stream that begins producing here, before its first event: a
    /// subscriber that comes right after `POST /v1/streams` answers waits for its events
    /// instead of finding nothing.
    pub fn open(&self, stream: &str) {
        self.stream_or_insert(stream);
    }

    /// Whether this log holds the stream (its producer is in this process, or was recently).
    pub fn holds(&self, stream: &str) -> bool {
        self.stream(stream).is_some()
    }

    /// How full the log is.
    pub fn usage(&self) -> MemoryUsage {
        MemoryUsage {
            streams: self.streams.read().map_or(0, |s| s.len()),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Drops finished streams older than the age bound, and more (oldest first) while the
    /// log is over its byte bound. Run by the hub every second, and by an append that crosses
    /// the byte bound.
    pub fn sweep(&self, now: Instant) {
        let Ok(mut finished) = self.finished.lock() else {
            return;
        };
        while let Some((at, id)) = finished.front() {
            let expired = now.saturating_duration_since(*at) >= self.bounds.max_age;
            let over = self.bytes.load(Ordering::Relaxed) > self.bounds.max_bytes;
            if !expired && !over {
                break;
            }
            let removed = self.streams.write().ok().and_then(|mut s| s.remove(id));
            if let Some(log) = removed
                && let Ok(state) = log.state.lock()
            {
                self.bytes.fetch_sub(state.bytes, Ordering::Relaxed);
            }
            finished.pop_front();
        }
    }

    fn stream(&self, id: &str) -> Option<Arc<StreamLog>> {
        self.streams.read().ok()?.get(id).cloned()
    }

    fn stream_or_insert(&self, id: &str) -> Option<Arc<StreamLog>> {
        if let Some(log) = self.stream(id) {
            return Some(log);
        }
        let mut streams = self.streams.write().ok()?;
        Some(
            streams
                .entry(id.into())
                .or_insert_with(|| {
                    Arc::new(StreamLog {
                        state: Mutex::default(),
                        next: watch::Sender::new(0),
                    })
                })
                .clone(),
        )
    }

    async fn read_waiting(
        &self,
        stream: &str,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<LogRead, LogError> {
        match self.subscribe(stream) {
            Some(mut subscription) => subscription.read(after, wait).await,
            None => Ok(LogRead::Unknown),
        }
    }

    /// A subscriber's hold on `stream`'s log, when this log holds it: its reads then skip the
    /// map lookup and the `watch` subscription that a read through [`EventLog::read`] makes
    /// each time (a followed stream is read once per flush).
    pub fn subscribe(&self, stream: &str) -> Option<Subscription> {
        let log = self.stream(stream)?;
        let next = log.next.subscribe();
        Some(Subscription { log, next })
    }
}

/// See [`MemoryLog::subscribe`]. It keeps the stream's log alive while it lives, also past the
/// log's sweep.
#[derive(Debug)]
pub struct Subscription {
    log: Arc<StreamLog>,
    next: watch::Receiver<u64>,
}

impl Subscription {
    /// The events after `after`, waiting up to `wait` for some when there are none yet.
    pub async fn read(&mut self, after: Option<u64>, wait: Duration) -> Result<LogRead, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Marked seen before reading: an append after this wakes the wait below, and one
            // before it is in the read.
            self.next.borrow_and_update();
            let (gap, events, done) = {
                let state = self
                    .log
                    .state
                    .lock()
                    .map_err(|_| LogError("a stream's log is poisoned".to_owned()))?;
                let (gap, events) = state.after(after);
                (gap, events, state.done)
            };
            if !events.is_empty() || !matches!(gap, Gap::None) || done {
                return Ok(LogRead::Events {
                    gap,
                    events,
                    finished: done,
                });
            }
            let changed = tokio::time::timeout_at(deadline, self.next.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return Ok(LogRead::Events {
                    gap: Gap::None,
                    events: Vec::new(),
                    finished: false,
                });
            }
        }
    }
}

impl EventLog for MemoryLog {
    fn append(&self, stream: &str, batch: &[LiveEvent]) {
        let Some(log) = self.stream_or_insert(stream) else {
            return;
        };
        let (next_seq, done, freed, added) = {
            let Ok(mut state) = log.state.lock() else {
                return;
            };
            let mut added = 0;
            for event in batch {
                added += event.size();
                state.done |= event.kind == EventKind::Done;
                state.next_seq = event.seq + 1;
                state.events.push_back(event.clone());
            }
            let mut freed = 0;
            while state.events.len() > self.bounds.max_events_per_stream {
                freed += state.fold_oldest();
            }
            state.bytes = state.bytes + added - freed;
            (state.next_seq, state.done, freed, added)
        };
        let total = self.bytes.fetch_add(added, Ordering::Relaxed) + added;
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        if done && let Ok(mut finished) = self.finished.lock() {
            finished.push_back((Instant::now(), stream.into()));
        }
        log.next.send_replace(next_seq);
        if total - freed > self.bounds.max_bytes {
            self.sweep(Instant::now());
        }
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<LogRead, LogError>> {
        Box::pin(self.read_waiting(stream, after, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(seq: u64, text: &str) -> LiveEvent {
        LiveEvent {
            seq,
            kind: EventKind::Token,
            body: text.into(),
        }
    }

    fn done(seq: u64) -> LiveEvent {
        LiveEvent {
            seq,
            kind: EventKind::Done,
            body: r#"{"status":"completed"}"#.into(),
        }
    }

    async fn read(log: &MemoryLog, after: Option<u64>) -> (Gap, Vec<u64>) {
        match log.read("s", after, Duration::ZERO).await.expect("read") {
            LogRead::Events { gap, events, .. } => (gap, events.iter().map(|e| e.seq).collect()),
            LogRead::Unknown => panic!("unknown stream"),
        }
    }

    #[tokio::test]
    async fn a_read_gets_exactly_the_events_after_the_one_asked_for() {
        let log = MemoryLog::default();
        log.append("s", &[token(0, "a"), token(1, "b")]);
        log.append("s", &[token(2, "c")]);
        for (after, expected) in [
            (None, vec![0, 1, 2]),
            (Some(0), vec![1, 2]),
            (Some(2), vec![]),
        ] {
            let (gap, seqs) = read(&log, after).await;
            assert!(matches!(gap, Gap::None));
            assert_eq!(seqs, expected, "after {after:?}");
        }
        assert!(matches!(
            log.read("other", None, Duration::ZERO).await,
            Ok(LogRead::Unknown)
        ));
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_the_next_append() {
        let log = Arc::new(MemoryLog::default());
        log.append("s", &[token(0, "a")]);
        let reader = {
            let log = log.clone();
            tokio::spawn(async move { read_after(&log, Some(0)).await })
        };
        tokio::task::yield_now().await;
        log.append("s", &[token(1, "b"), token(2, "c")]);
        assert_eq!(reader.await.expect("reader"), vec![1, 2]);
    }

    async fn read_after(log: &MemoryLog, after: Option<u64>) -> Vec<u64> {
        match log.read("s", after, Duration::from_secs(30)).await {
            Ok(LogRead::Events { events, .. }) => events.iter().map(|e| e.seq).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn past_the_per_stream_bound_the_oldest_events_fold_into_a_snapshot() {
        let log = MemoryLog::new(MemoryBounds {
            max_events_per_stream: 2,
            ..MemoryBounds::default()
        });
        log.append("s", &[token(0, "Hel"), token(1, "lo ")]);
        log.append(
            "s",
            &[
                LiveEvent {
                    seq: 2,
                    kind: EventKind::Intent,
                    body: r#"{"type":"intent","id":"int_1"}"#.into(),
                },
                token(3, "you"),
            ],
        );
        let (gap, seqs) = read(&log, Some(0)).await;
        let Gap::Folded(snapshot) = gap else {
            panic!("expected a snapshot, got {gap:?}");
        };
        assert_eq!(snapshot.upto, Some(1));
        assert_eq!(snapshot.text, "Hello ");
        assert_eq!(seqs, vec![2, 3]);
        let (gap, seqs) = read(&log, Some(2)).await;
        assert!(matches!(gap, Gap::None), "held events need no snapshot");
        assert_eq!(seqs, vec![3]);
    }

    #[tokio::test]
    async fn finished_streams_go_by_age_and_by_bytes_running_ones_stay() {
        let log = MemoryLog::new(MemoryBounds {
            max_bytes: 10_000,
            max_age: Duration::from_secs(60),
            ..MemoryBounds::default()
        });
        log.append("running", &[token(0, "a")]);
        log.append("s", &[token(0, "a"), done(1)]);
        log.sweep(Instant::now());
        assert!(log.holds("s"), "young enough");
        log.sweep(Instant::now() + Duration::from_secs(61));
        assert!(!log.holds("s"), "too old");
        assert!(log.holds("running"), "age never drops a running stream");

        log.append("big", &[token(0, &"x".repeat(20_000)), done(1)]);
        assert!(!log.holds("big"), "over the byte bound, finished: dropped");
        assert!(log.holds("running"));
        assert!(log.usage().bytes < 10_000);
    }
}
