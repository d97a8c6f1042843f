//! The shared event log on Redis Streams (`MIDSTREAM_REDIS_URL`): a stream started on one
//! gateway process can be followed, and resumed exactly, through any other process using the
//! same Redis and database.
//!
//! - One Redis stream per MidStream stream, `midstream:events:{id}`; entry id `{seq}-1`, so
//!   "the events after seq N" is `XRANGE key (N-1 +` and `XREAD … N-1`, and an append can
//!   never reorder (Redis refuses an id lower than the last).
//! - Appends go through a queue to one writer task, which sends everything queued as one
//!   pipeline (`XADD … MAXLEN ~ bound`, and an `EXPIRE` when a stream starts, ends, or has run
//!   a quarter of the TTL since the last): one round trip per batch of upstream reads across
//!   all streams, never one per token; the stream's own task never waits for it.
//! - When Redis is unreachable, batches are dropped (counted), the log says so once, and
//!   `/readyz` reports it; subscribers in the producing process still read its memory log,
//!   and a subscriber elsewhere that finds a gap gets a snapshot from the database record.
//! - Blocking reads (`XREAD BLOCK`) hold a connection each, taken from a small pool, so they
//!   never stall the writer or each other.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use tokio::sync::{OnceCell, mpsc};

use super::StreamMap;
use super::event::{EventKind, LiveEvent};
use super::log::{EventLog, Gap, LogError, LogRead};
use crate::telemetry::prometheus as metric;

/// Batches queued for the writer before new ones are dropped (Redis is too slow or down).
const QUEUE: usize = 4096;
/// Events fetched per read.
const READ_COUNT: usize = 1000;
/// Connecting, and a short command, may take this long before Redis counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// The Redis log's bounds (`MIDSTREAM_REDIS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisBounds {
    /// Entries kept per stream (`MAXLEN ~`).
    pub max_len: usize,
    /// A stream's key expires this long after its last append.
    pub ttl: Duration,
}

impl Default for RedisBounds {
    fn default() -> Self {
        RedisBounds {
            max_len: 100_000,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// The Redis log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisLog {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    bounds: RedisBounds,
    queue: mpsc::Sender<(Arc<str>, Vec<LiveEvent>)>,
    /// For short commands (reads that do not block, the chat index).
    commands: OnceCell<ConnectionManager>,
    /// Connections for blocking reads, returned after each read.
    blocking: Mutex<Vec<MultiplexedConnection>>,
    reachable: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("bounds", &self.bounds)
            .field("reachable", &self.reachable.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn key(stream: &str) -> String {
    format!("midstream:events:{stream}")
}

/// What one process asks the process running a stream to do, over Redis pub/sub (one
/// channel each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Cancel it (`POST /v1/streams/{id}/cancel` landed elsewhere).
    Cancel,
    /// Publish it: a subscriber follows it from another process.
    Follow,
}

impl Control {
    fn channel(self) -> &'static str {
        match self {
            Control::Cancel => "midstream:cancel",
            Control::Follow => "midstream:follow",
        }
    }

    fn from_channel(channel: &str) -> Option<Control> {
        [Control::Cancel, Control::Follow]
            .into_iter()
            .find(|c| c.channel() == channel)
    }
}

fn chat_key(chat: &str) -> String {
    format!("midstream:chat:{chat}")
}

fn log_error(error: redis::RedisError) -> LogError {
    LogError(format!("redis: {error}"))
}

impl RedisLog {
    /// A log on the Redis at `url` (checked for syntax only: the connection is made, and
    /// remade, when needed). Spawns its writer.
    pub fn new(url: &str, bounds: RedisBounds) -> Result<RedisLog, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (queue, batches) = mpsc::channel(QUEUE);
        let log = RedisLog {
            inner: Arc::new(Inner {
                client,
                bounds,
                queue,
                commands: OnceCell::new(),
                blocking: Mutex::default(),
                reachable: AtomicBool::new(true),
            }),
        };
        tokio::spawn(log.clone().write(batches));
        Ok(log)
    }

    /// Whether the last command reached Redis (for `/readyz`).
    pub fn reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::Relaxed)
    }

    /// One round trip, for `/readyz` and start-up.
    pub async fn ping(&self) -> Result<(), LogError> {
        let mut connection = self.commands().await?;
        let pinged = redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await;
        self.outcome(pinged).map(drop)
    }

    fn outcome<T>(&self, result: redis::RedisResult<T>) -> Result<T, LogError> {
        let reachable = result.is_ok();
        if self.inner.reachable.swap(reachable, Ordering::Relaxed) != reachable {
            if reachable {
                tracing::info!("redis is reachable again: the shared event log is back");
            } else if let Err(error) = &result {
                tracing::warn!(%error, "redis is unreachable: live streams go on in this process; resumes elsewhere are answered from the database");
            }
        }
        result.map_err(log_error)
    }

    async fn commands(&self) -> Result<ConnectionManager, LogError> {
        let manager = self
            .inner
            .commands
            .get_or_try_init(|| {
                // One quick attempt: a stream never waits for Redis, and the writer tries again
                // with its next batch.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.inner.client.clone(), config)
            })
            .await;
        self.outcome(manager.cloned())
    }

    /// The writer: sends every queued batch in one pipeline per wake-up.
    async fn write(self, mut batches: mpsc::Receiver<(Arc<str>, Vec<LiveEvent>)>) {
        let mut queued = Vec::new();
        let mut expiries = Expiries::new(self.inner.bounds.ttl);
        while batches.recv_many(&mut queued, QUEUE).await > 0 {
            let mut pipe = redis::pipe();
            let now = Instant::now();
            let mut keys = HashSet::new();
            for (stream, events) in queued.drain(..) {
                let key = key(&stream);
                for event in &events {
                    pipe.cmd("XADD")
                        .arg(&key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(self.inner.bounds.max_len)
                        .arg(format!("{}-1", event.seq))
                        .arg("k")
                        .arg(event.kind.name())
                        .arg("b")
                        .arg(event.body.as_ref())
                        .ignore();
                }
                let done = events.last().is_some_and(|e| e.kind == EventKind::Done);
                if expiries.due(&stream, now, done) {
                    keys.insert(key);
                }
            }
            for key in keys {
                pipe.cmd("EXPIRE")
                    .arg(key)
                    .arg(self.inner.bounds.ttl.as_secs())
                    .ignore();
            }
            let written = match self.commands().await {
                Ok(mut connection) => {
                    metrics::counter!(metric::EVENT_LOG_REDIS_BATCHES).increment(1);
                    self.outcome(pipe.query_async::<()>(&mut connection).await)
                }
                Err(error) => Err(error),
            };
            if written.is_err() {
                metrics::counter!(metric::EVENT_LOG_REDIS_DROPPED).increment(1);
            }
        }
    }

    /// Asks every process to cancel `stream` (the one running it does).
    pub async fn publish_cancel(&self, stream: &str) -> Result<(), LogError> {
        self.publish(Control::Cancel, stream).await
    }

    /// Asks every process to publish `stream` (the one running it does, if it was dormant).
    pub async fn publish_follow(&self, stream: &str) -> Result<(), LogError> {
        self.publish(Control::Follow, stream).await
    }

    async fn publish(&self, request: Control, stream: &str) -> Result<(), LogError> {
        let mut connection = self.commands().await?;
        let published = redis::cmd("PUBLISH")
            .arg(request.channel())
            .arg(stream)
            .query_async::<i64>(&mut connection)
            .await;
        self.outcome(published).map(drop)
    }

    /// Calls `act` with every request another process publishes (and the stream it names),
    /// until `stop`; reconnects (every second) while Redis is unreachable.
    pub async fn listen(
        &self,
        act: impl Fn(Control, &str),
        stop: tokio_util::sync::CancellationToken,
    ) {
        use futures_util::StreamExt;
        while !stop.is_cancelled() {
            let subscribed = async {
                let mut pubsub = self.inner.client.get_async_pubsub().await?;
                for request in [Control::Cancel, Control::Follow] {
                    pubsub.subscribe(request.channel()).await?;
                }
                Ok::<_, redis::RedisError>(pubsub)
            };
            if let Ok(pubsub) = subscribed.await {
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        message = messages.next() => message,
                        () = stop.cancelled() => return,
                    };
                    let Some(message) = message else {
                        break;
                    };
                    let request = Control::from_channel(message.get_channel_name());
                    if let (Some(request), Ok(stream)) = (request, message.get_payload::<String>())
                    {
                        act(request, &stream);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Remembers the latest stream of an AI SDK chat (for its resume), for as long as a
    /// stream's events are kept.
    pub fn set_chat_stream(&self, chat: &str, stream: &str) {
        let log = self.clone();
        let (chat, stream) = (chat_key(chat), stream.to_owned());
        tokio::spawn(async move {
            if let Ok(mut connection) = log.commands().await {
                let set = redis::cmd("SET")
                    .arg(chat)
                    .arg(stream)
                    .arg("EX")
                    .arg(log.inner.bounds.ttl.as_secs())
                    .query_async::<()>(&mut connection)
                    .await;
                let _ = log.outcome(set);
            }
        });
    }

    /// The latest stream of an AI SDK chat.
    pub async fn chat_stream(&self, chat: &str) -> Option<Arc<str>> {
        let mut connection = self.commands().await.ok()?;
        let stream = redis::cmd("GET")
            .arg(chat_key(chat))
            .query_async::<Option<String>>(&mut connection)
            .await;
        self.outcome(stream).ok().flatten().map(Into::into)
    }

    async fn read_now(
        &self,
        stream: &str,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<LogRead, LogError> {
        let key = key(stream);
        let start = after.map_or_else(|| "-".to_owned(), |seq| format!("({seq}-1"));
        let mut connection = self.commands().await?;
        let range = redis::cmd("XRANGE")
            .arg(&key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(READ_COUNT)
            .query_async::<StreamRangeReply>(&mut connection)
            .await;
        let mut entries = self.outcome(range)?.ids;
        if entries.is_empty() {
            let last = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async::<StreamRangeReply>(&mut connection)
                .await;
            let Some(last) = self.outcome(last)?.ids.pop() else {
                // No key: the stream has not published yet (its producer may be on another
                // process, a moment ahead of its first event), or it is long gone. A blocking
                // read wakes when the key is created.
                let entries = self.block(&key, after, wait).await?;
                if entries.is_empty() {
                    return Ok(LogRead::Unknown);
                }
                return Ok(events_read(&entries, after));
            };
            if entry_event(&last).is_some_and(|e| e.kind == EventKind::Done) {
                return Ok(LogRead::Events {
                    gap: Gap::None,
                    events: Vec::new(),
                    finished: true,
                });
            }
            entries = self.block(&key, after, wait).await?;
        }
        Ok(events_read(&entries, after))
    }

    /// `XREAD BLOCK` on a connection of the blocking pool.
    async fn block(
        &self,
        key: &str,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<Vec<StreamId>, LogError> {
        let pooled = self.inner.blocking.lock().ok().and_then(|mut p| p.pop());
        let mut connection = match pooled {
            Some(connection) => connection,
            None => {
                // A blocking read answers after `wait`: no response timeout shorter than that.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(None);
                let connected = self
                    .inner
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await;
                self.outcome(connected)?
            }
        };
        let from = after.map_or_else(|| "0-0".to_owned(), |seq| format!("{seq}-1"));
        let read = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg("STREAMS")
            .arg(key)
            .arg(from)
            .query_async::<Option<StreamReadReply>>(&mut connection)
            .await;
        let read = self.outcome(read)?;
        if let Ok(mut pool) = self.inner.blocking.lock() {
            pool.push(connection);
        }
        Ok(read
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|stream| stream.ids)
            .collect())
    }
}

/// When each stream's key had its expiry last set. A key's `EXPIRE` is renewed when its stream
/// first writes, at most every quarter of the TTL while it runs, and with its `done`: the key
/// always outlives its stream by the TTL, for one `EXPIRE` per stream instead of one per
/// pipeline (which was as many commands as the events themselves).
struct Expiries {
    ttl: Duration,
    set_at: StreamMap<Instant>,
}

impl Expiries {
    fn new(ttl: Duration) -> Expiries {
        Expiries {
            ttl,
            set_at: StreamMap::default(),
        }
    }

    /// Whether `stream`'s key needs its expiry set now (and remembers that it was).
    fn due(&mut self, stream: &Arc<str>, now: Instant, done: bool) -> bool {
        if done {
            self.set_at.remove(stream);
            return true;
        }
        let renew = self.ttl / 4;
        if self.set_at.len() > 100_000 {
            // Streams that never sent `done` (their process ended them without one).
            self.set_at
                .retain(|_, at| now.duration_since(*at) < self.ttl);
        }
        match self.set_at.get(stream) {
            Some(at) if now.duration_since(*at) < renew => false,
            _ => {
                self.set_at.insert(stream.clone(), now);
                true
            }
        }
    }
}

/// Entries read after `after` as a [`LogRead`]: a gap when the first is not the next one.
fn events_read(entries: &[StreamId], after: Option<u64>) -> LogRead {
    let events: Vec<LiveEvent> = entries.iter().filter_map(entry_event).collect();
    let wanted = after.map_or(0, |seq| seq + 1);
    let gap = match events.first() {
        Some(first) if first.seq > wanted => Gap::Lost,
        _ => Gap::None,
    };
    let finished = events.last().is_some_and(|e| e.kind == EventKind::Done);
    LogRead::Events {
        gap,
        events,
        finished,
    }
}

/// The event an entry holds; `None` for an entry MidStream did not write.
fn entry_event(entry: &StreamId) -> Option<LiveEvent> {
    let seq = entry.id.strip_suffix("-1")?.parse().ok()?;
    let kind = EventKind::from_name(&entry.get::<String>("k")?)?;
    let body: String = entry.get("b")?;
    Some(LiveEvent {
        seq,
        kind,
        body: body.into(),
    })
}

impl EventLog for RedisLog {
    fn append(&self, stream: &str, batch: &[LiveEvent]) {
        if self
            .inner
            .queue
            .try_send((stream.into(), batch.to_vec()))
            .is_err()
        {
            metrics::counter!(metric::EVENT_LOG_REDIS_DROPPED).increment(1);
        }
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<LogRead, LogError>> {
        Box::pin(self.read_now(stream, after, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_expiry_is_set_at_the_start_renewed_rarely_and_set_at_the_end() {
        let mut expiries = Expiries::new(Duration::from_secs(400));
        let stream: Arc<str> = "s".into();
        let start = Instant::now();
        assert!(expiries.due(&stream, start, false), "first write");
        assert!(!expiries.due(&stream, start + Duration::from_secs(99), false));
        assert!(
            expiries.due(&stream, start + Duration::from_secs(100), false),
            "a quarter of the TTL later"
        );
        assert!(
            expiries.due(&stream, start + Duration::from_secs(101), true),
            "done"
        );
        assert!(expiries.set_at.is_empty(), "forgotten once done");
    }
}
