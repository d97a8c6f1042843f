//! The recorder: writes streams, events and outcomes in batches, off the hot path.
//!
//! Token forwarding never waits for the database. The gateway hands records to a
//! [`Recorder`] with a non-blocking `try_send`; one writer task batches them into a
//! transaction. What it promises (DESIGN.md section 6):
//!
//! - a stream's row is written **at once** (not on the next tick), and [`OpenReceipt`] tells the
//!   gateway when it is committed, so the row can exist before the first token is sent;
//! - events and outcomes are written at least every `flush_interval` (250 ms by default);
//! - when the database is slow or down, records wait in a bounded buffer and the batch is
//!   retried with backoff; a batch the database rejects while it is otherwise healthy is
//!   written record by record so one bad record cannot block the rest;
//! - what cannot be kept (queue or buffer full) is counted in
//!   `midstream_recorder_dropped_total`, never silently lost; the backlog is the gauge
//!   `midstream_recorder_queue_depth`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::task::TaskTracker;

use crate::streams::Batch;
use crate::{IntentRecord, NewStream, Store, StreamClose, StreamEvent, ToolCallRecord};

/// Metric names, so the gateway's `/metrics` documentation and the writer agree.
pub mod metric {
    /// Gauge: records queued or buffered and not yet written.
    pub const QUEUE_DEPTH: &str = "midstream_recorder_queue_depth";
    /// Counter: records that could not be kept (label `reason`: `queue_full`, `buffer_full`, `rejected`).
    pub const DROPPED: &str = "midstream_recorder_dropped_total";
    /// Counter: batch writes that failed and will be retried.
    pub const WRITE_ERRORS: &str = "midstream_recorder_write_errors_total";
    /// Histogram: seconds per batch write.
    pub const BATCH_SECONDS: &str = "midstream_recorder_batch_seconds";
}

/// Bounds and timing of the recorder.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Capacity of the channel between the gateway and the writer. A full channel means the
    /// writer is not keeping up at all; further records are dropped and counted.
    pub queue_capacity: usize,
    /// Records the writer holds while the database is unavailable. Beyond it new events are
    /// dropped (counted); stream opens and closes are kept up to twice this bound, because they
    /// are what a record is for.
    pub buffer_limit: usize,
    /// Longest time an event or outcome waits before it is written.
    pub flush_interval: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            queue_capacity: 65_536,
            buffer_limit: 100_000,
            flush_interval: Duration::from_millis(250),
        }
    }
}

/// Most records written in one transaction; larger backlogs are written in several.
const MAX_BATCH: usize = 2_000;
/// Retry delay after a failed write doubles from the flush interval up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts to write what is left once every [`Recorder`] is gone (shutdown).
const FINAL_ATTEMPTS: u32 = 3;

enum Command {
    Open(Box<NewStream>, oneshot::Sender<()>),
    Event(StreamEvent),
    Intent(Box<IntentRecord>),
    ToolCall(Box<ToolCallRecord>),
    Close(Box<StreamClose>),
    Flush(oneshot::Sender<()>),
}

/// Handle for sending records; cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Command>,
}

/// Resolves when a stream's row is committed: `true`, or `false` if the recorder had to drop it.
#[derive(Debug)]
pub struct OpenReceipt(oneshot::Receiver<()>);

impl Future for OpenReceipt {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        Pin::new(&mut self.0).poll(cx).map(|done| done.is_ok())
    }
}

impl Recorder {
    /// Starts the writer task on `tracker` and returns the handle. The task ends after every
    /// handle is dropped and what remains is written (or given up after a few attempts).
    pub fn spawn(store: Store, config: RecorderConfig, tracker: &TaskTracker) -> Recorder {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        tracker.spawn(Writer::new(store, config).run(rx));
        Recorder { tx }
    }

    /// Records a new stream; its row is written at once.
    pub fn open(&self, stream: NewStream) -> OpenReceipt {
        let (done, receipt) = oneshot::channel();
        self.send(Command::Open(Box::new(stream), done));
        OpenReceipt(receipt)
    }

    /// Records an event of an open stream.
    pub fn event(&self, event: StreamEvent) {
        self.send(Command::Event(event));
    }

    /// Records an intent that fired.
    pub fn intent(&self, intent: IntentRecord) {
        self.send(Command::Intent(Box::new(intent)));
    }

    /// Records a tool call's state (started, then ended: the later state replaces the earlier).
    pub fn tool_call(&self, call: ToolCallRecord) {
        self.send(Command::ToolCall(Box::new(call)));
    }

    /// Records how a stream ended.
    pub fn close(&self, close: StreamClose) {
        self.send(Command::Close(Box::new(close)));
    }

    /// Waits until everything sent before this call is written; false if the writer is gone
    /// or could not write it. For shutdown and tests.
    pub async fn flush(&self) -> bool {
        let (done, receipt) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_err() {
            return false;
        }
        receipt.await.is_ok()
    }

    fn send(&self, command: Command) {
        if self.tx.try_send(command).is_err() {
            metrics::counter!(metric::DROPPED, "reason" => "queue_full").increment(1);
            tracing::warn!("recorder queue full or closed: a record was dropped");
        }
    }
}

/// Records waiting to be written, with the acknowledgements owed once they are.
#[derive(Default)]
struct Pending {
    batch: Batch,
    open_acks: Vec<oneshot::Sender<()>>,
    flush_acks: Vec<oneshot::Sender<()>>,
    oldest: Option<Instant>,
}

impl Pending {
    fn push(&mut self, command: Command, buffer_limit: usize) {
        let len = self.batch.len();
        let keep = match &command {
            Command::Event(_) | Command::Intent(_) | Command::ToolCall(_) => len < buffer_limit,
            Command::Open(..) | Command::Close(_) => len < buffer_limit.saturating_mul(2),
            Command::Flush(_) => true,
        };
        if !keep {
            metrics::counter!(metric::DROPPED, "reason" => "buffer_full").increment(1);
            return;
        }
        self.oldest.get_or_insert_with(Instant::now);
        match command {
            Command::Open(stream, ack) => {
                self.batch.opens.push(*stream);
                self.open_acks.push(ack);
            }
            Command::Event(event) => self.batch.events.push(event),
            Command::Intent(intent) => self.batch.intents.push(*intent),
            Command::ToolCall(call) => self.batch.tool_calls.push(*call),
            Command::Close(close) => self.batch.closes.push(*close),
            Command::Flush(ack) => self.flush_acks.push(ack),
        }
    }

    /// Opens are written at once (a first token may be waiting for its row), so are flushes.
    fn is_urgent(&self) -> bool {
        !self.batch.opens.is_empty() || !self.flush_acks.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.flush_acks.is_empty()
    }

    /// Everything was written: acknowledge and start over.
    fn written(&mut self) {
        for ack in self.open_acks.drain(..).chain(self.flush_acks.drain(..)) {
            let _receiver_may_be_gone = ack.send(());
        }
        self.batch = Batch::default();
        self.oldest = None;
    }
}

struct Writer {
    store: Store,
    config: RecorderConfig,
    pending: Pending,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Writer {
    fn new(store: Store, config: RecorderConfig) -> Writer {
        let backoff = config.flush_interval;
        Writer {
            store,
            config,
            pending: Pending::default(),
            retry_at: None,
            backoff,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = rx.recv() => match command {
                    Some(command) => self.pending.push(command, self.config.buffer_limit),
                    None => break,
                },
                _ = tick.tick() => {}
            }
            while let Ok(command) = rx.try_recv() {
                self.pending.push(command, self.config.buffer_limit);
            }
            metrics::gauge!(metric::QUEUE_DEPTH).set((self.pending.batch.len() + rx.len()) as f64);
            if self.is_due() {
                self.write_pending().await;
            }
        }
        for _ in 0..FINAL_ATTEMPTS {
            if self.pending.is_empty() || self.write_pending().await {
                break;
            }
            tokio::time::sleep(self.backoff).await;
        }
        if !self.pending.batch.is_empty() {
            metrics::counter!(metric::DROPPED, "reason" => "shutdown")
                .increment(self.pending.batch.len() as u64);
            tracing::error!(
                records = self.pending.batch.len(),
                "recorder stopped with records it could not write"
            );
        }
    }

    fn is_due(&self) -> bool {
        if self.pending.is_empty() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        self.pending.is_urgent()
            || self.pending.batch.len() >= MAX_BATCH
            || self
                .pending
                .oldest
                .is_some_and(|t| t.elapsed() >= self.config.flush_interval)
    }

    /// Writes everything pending; true on success. On failure the records stay pending and a
    /// retry is scheduled.
    async fn write_pending(&mut self) -> bool {
        let started = Instant::now();
        let result = self.store.write_batch(&self.pending.batch).await;
        metrics::histogram!(metric::BATCH_SECONDS).record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.pending.written();
                self.retry_at = None;
                self.backoff = self.config.flush_interval;
                true
            }
            Err(error) if self.store.ping().await.is_ok() => {
                tracing::warn!(%error, "batch rejected by a healthy database; writing record by record");
                self.write_one_by_one().await;
                self.pending.written();
                true
            }
            Err(error) => {
                metrics::counter!(metric::WRITE_ERRORS).increment(1);
                tracing::warn!(%error, retry_in_ms = self.backoff.as_millis() as u64, "recorder write failed; will retry");
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                false
            }
        }
    }

    /// Isolates the record a healthy database refuses, so the others are still written. A
    /// refused stream row drops its receipt, which then resolves to `false`.
    async fn write_one_by_one(&mut self) {
        let batch = std::mem::take(&mut self.pending.batch);
        let acks = std::mem::take(&mut self.pending.open_acks);
        for (stream, ack) in batch.opens.into_iter().zip(acks) {
            let single = Batch {
                opens: vec![stream],
                ..Batch::default()
            };
            if self.write_single(&single).await {
                let _receiver_may_be_gone = ack.send(());
            }
        }
        for event in batch.events {
            let single = Batch {
                events: vec![event],
                ..Batch::default()
            };
            self.write_single(&single).await;
        }
        for intent in batch.intents {
            let single = Batch {
                intents: vec![intent],
                ..Batch::default()
            };
            self.write_single(&single).await;
        }
        for call in batch.tool_calls {
            let single = Batch {
                tool_calls: vec![call],
                ..Batch::default()
            };
            self.write_single(&single).await;
        }
        for close in batch.closes {
            let single = Batch {
                closes: vec![close],
                ..Batch::default()
            };
            self.write_single(&single).await;
        }
    }

    async fn write_single(&self, single: &Batch) -> bool {
        match self.store.write_batch(single).await {
            Ok(()) => true,
            Err(error) => {
                metrics::counter!(metric::DROPPED, "reason" => "rejected").increment(1);
                tracing::error!(%error, "the database rejected a record; it is dropped");
                false
            }
        }
    }
}
