//! [`Hub`]: the browser streams of this process — the event logs, the streams running here
//! (so they can be cancelled), the chats of the AI SDK route, and the token signer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::StreamMap;
use super::config::LiveConfig;
use super::event::LiveEvent;
use super::log::EventLog;
use super::memory::{MemoryLog, Subscription};
use super::producer::{Producer, Publish};
use super::redis::{Control, RedisLog};
use super::token::Signer;
use crate::telemetry::prometheus as metric;

/// A stream producing in this process.
#[derive(Debug)]
struct Running {
    /// Cancels it.
    cancel: CancellationToken,
    /// The API key that started it (`None` in open mode).
    owner: Option<String>,
    /// Raised when someone follows it: its producer publishes from then on.
    wanted: Arc<AtomicBool>,
}

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    config: LiveConfig,
    memory: MemoryLog,
    shared: Option<RedisLog>,
    signer: Signer,
    /// Streams producing in this process.
    running: Mutex<StreamMap<Running>>,
    /// AI SDK chat id → its latest stream.
    chats: Mutex<HashMap<String, Arc<str>>>,
    /// The gateway's shutdown: every stream's cancel token is a child of it.
    shutdown: CancellationToken,
    /// Streams started by `POST /v1/streams`, which no client connection drives: shutdown
    /// waits for them as it waits for connections.
    detached: TaskTracker,
}

impl Hub {
    /// A hub over these logs. Spawns the memory log's sweeper (every second, until shutdown).
    pub fn new(
        config: LiveConfig,
        signer: Signer,
        shared: Option<RedisLog>,
        shutdown: CancellationToken,
    ) -> Hub {
        let hub = Hub {
            inner: Arc::new(HubInner {
                memory: MemoryLog::new(config.memory),
                config,
                shared,
                signer,
                running: Mutex::default(),
                chats: Mutex::default(),
                shutdown,
                detached: TaskTracker::new(),
            }),
        };
        let bounds = hub.inner.memory.bounds();
        metrics::gauge!(metric::EVENT_LOG_MAX_BYTES).set(bounds.max_bytes as f64);
        metrics::gauge!(metric::EVENT_LOG_MAX_EVENTS_PER_STREAM)
            .set(bounds.max_events_per_stream as f64);
        metrics::gauge!(metric::EVENT_LOG_MAX_AGE_SECONDS).set(bounds.max_age.as_secs_f64());
        if let Some(shared) = hub.inner.shared.clone() {
            let listener = Arc::downgrade(&hub.inner);
            let stop = hub.inner.shutdown.clone();
            tokio::spawn(async move {
                let act = |request: Control, stream: &str| {
                    let Some(inner) = listener.upgrade() else {
                        return;
                    };
                    let hub = Hub { inner };
                    match request {
                        Control::Cancel => {
                            hub.cancel(stream);
                        }
                        Control::Follow => {
                            hub.wake_here(stream);
                        }
                    }
                };
                shared.listen(act, stop).await;
            });
        }
        let sweeper = Arc::downgrade(&hub.inner);
        let stop = hub.inner.shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                }
                let Some(inner) = sweeper.upgrade() else {
                    return;
                };
                inner.memory.sweep(Instant::now());
                if let Ok(mut chats) = inner.chats.lock() {
                    chats.retain(|_, stream| inner.memory.holds(stream));
                }
                let usage = inner.memory.usage();
                metrics::gauge!(metric::EVENT_LOG_STREAMS).set(usage.streams as f64);
                metrics::gauge!(metric::EVENT_LOG_BYTES).set(usage.bytes as f64);
            }
        });
        hub
    }

    /// The configuration.
    pub fn config(&self) -> &LiveConfig {
        &self.inner.config
    }

    /// Signs and checks stream tokens.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// The shared log, when Redis is configured.
    pub fn shared(&self) -> Option<&RedisLog> {
        self.inner.shared.as_ref()
    }

    /// A hold on `stream`'s events in this process's memory log, when it holds them (its
    /// producer runs or ran here); else they are read from the shared log.
    pub fn subscribe_here(&self, stream: &str) -> Option<Subscription> {
        self.inner.memory.subscribe(stream)
    }

    /// Registers a stream that starts producing here: its producer, and the token that
    /// cancels it (a child of the gateway's shutdown).
    pub fn producer(
        &self,
        stream: Arc<str>,
        owner: Option<String>,
        publish: Publish,
    ) -> (Producer, CancellationToken) {
        let cancel = self.inner.shutdown.child_token();
        let wanted = Arc::new(AtomicBool::new(publish == Publish::FromStart));
        if publish == Publish::FromStart {
            self.inner.memory.open(&stream);
        }
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(
                stream.clone(),
                Running {
                    cancel: cancel.clone(),
                    owner,
                    wanted: wanted.clone(),
                },
            );
        }
        (Producer::new(self.clone(), stream, wanted), cancel)
    }

    /// A subscriber wants `stream`: a dormant stream running here starts publishing (from its
    /// next flush; the memory log holds it from now, so the subscriber waits for that), and
    /// one running on another process is asked to, through Redis.
    pub async fn follow(&self, stream: &str) {
        if self.inner.memory.holds(stream) {
            return;
        }
        if !self.wake_here(stream)
            && let Some(shared) = &self.inner.shared
            && let Err(error) = shared.publish_follow(stream).await
        {
            tracing::warn!(stream_id = %stream, %error, "could not ask the other processes to publish a followed stream");
        }
    }

    /// Raises the `wanted` flag of a stream running here and opens its memory log (under the
    /// running streams' lock, so a producer finishing at that moment either sees the flag or
    /// has already left, and a subscriber waits on the log instead of finding nothing); false
    /// when it does not run here.
    fn wake_here(&self, stream: &str) -> bool {
        let Ok(running) = self.inner.running.lock() else {
            return false;
        };
        let Some(running) = running.get(stream) else {
            return false;
        };
        running.wanted.store(true, Ordering::Release);
        self.inner.memory.open(stream);
        true
    }

    /// Cancels a stream running in this process; false when none runs here under that id.
    pub fn cancel(&self, stream: &str) -> bool {
        let token = self
            .inner
            .running
            .lock()
            .ok()
            .and_then(|running| running.get(stream).map(|r| r.cancel.clone()));
        token.inspect(CancellationToken::cancel).is_some()
    }

    /// The owner of a stream producing here (`Some(None)`: open mode); `None` when it does not
    /// run here. Its row may not be committed yet, so this is asked first.
    pub fn owner_here(&self, stream: &str) -> Option<Option<String>> {
        self.inner
            .running
            .lock()
            .ok()?
            .get(stream)
            .map(|r| r.owner.clone())
    }

    pub(super) fn append(&self, stream: &str, batch: &[LiveEvent]) {
        self.inner.memory.append(stream, batch);
        if let Some(shared) = &self.inner.shared {
            shared.append(stream, batch);
        }
    }

    pub(super) fn finished(&self, stream: &str) {
        if let Ok(mut running) = self.inner.running.lock() {
            running.remove(stream);
        }
    }

    /// Remembers `stream` as the latest stream of an AI SDK chat.
    pub fn set_chat_stream(&self, chat: &str, stream: Arc<str>) {
        if let Ok(mut chats) = self.inner.chats.lock() {
            chats.insert(chat.to_owned(), stream.clone());
        }
        if let Some(shared) = &self.inner.shared {
            shared.set_chat_stream(chat, &stream);
        }
    }

    /// The latest stream of an AI SDK chat, from this process or the shared log.
    pub async fn chat_stream(&self, chat: &str) -> Option<Arc<str>> {
        let local = self
            .inner
            .chats
            .lock()
            .ok()
            .and_then(|chats| chats.get(chat).cloned());
        match (local, &self.inner.shared) {
            (Some(stream), _) => Some(stream),
            (None, Some(shared)) => shared.chat_stream(chat).await,
            (None, None) => None,
        }
    }

    /// Runs a stream no client connection drives (`POST /v1/streams`) to its end.
    pub fn spawn_detached(&self, run: impl Future<Output = ()> + Send + 'static) {
        self.inner.detached.spawn(run);
    }

    /// Resolves when every detached stream has ended (at shutdown).
    pub async fn detached_ended(&self) {
        self.inner.detached.close();
        self.inner.detached.wait().await;
    }
}
