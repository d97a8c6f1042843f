//! The recorder: writes streams, events and outcomes in batches, off the hot path.
//!
//! Token forwarding never waits for the database. The gateway hands records to a
//! [`Recorder`] with a non-blocking `try_send`; one writer task batches them into multi-row
//! statements. What it promises (docs/architecture.md, "Storage promises"):
//!
//! - a stream's row is written **at once** and on its own (one small statement, not the next
//!   batch), and [`OpenReceipt`] tells the gateway when it is committed, so the row can exist
//!   before the first token is sent at little cost to the first token; a batch is written a
//!   statement at a time and new rows go between its statements, so a row waits for one
//!   statement at most, never for a whole batch;
//! - events and outcomes are written at least every `flush_interval` (250 ms by default);
//! - when the database is slow or down, records wait in a bounded buffer and the batch is
//!   retried with backoff; a batch the database rejects while it is otherwise healthy is
//!   written record by record so one bad record cannot block the rest;
//! - the writer writes on the store's writer connection ([`Store`]'s `on_writer`), taken out of
//!   the pool: successive statements on one SQLite connection find the pages they touch still
//!   in its cache (pooled connections, taken in turn, re-read them after each other's commits),
//!   no statement waits for a pooled connection or wakes the pool to give one back, and a busy
//!   pool never delays a record (BENCHMARKS.md: 84 % fewer page reads, 42 % fewer futex calls,
//!   ≈ 4 % less gateway CPU). On SQLite, tools write on the same connection, so a stream's row
//!   never waits in SQLite's busy handler behind a tool's insert, only for the one statement
//!   in progress;
//! - what cannot be kept (queue or buffer full) is counted in
//!   `midstream_recorder_dropped_total`, never silently lost; the backlog is the gauge
//!   `midstream_recorder_queue_depth`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::streams::{Batch, BatchPart};
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

/// A batch is written before the flush interval is up once it holds this many records.
const MAX_BATCH: usize = 2_000;
/// Retry delay after a failed write doubles from the flush interval up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts to write what is left once every [`Recorder`] is gone (shutdown).
const FINAL_ATTEMPTS: u32 = 3;
/// How often SQLite's write-ahead log is folded into the database (off the writer's path).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Records written since the writer started, for the shutdown's last log line.
    written: Arc<AtomicU64>,
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
        let writer_done = CancellationToken::new();
        if store.backend() == crate::Backend::Sqlite {
            tracker.spawn(checkpoints(store.clone(), writer_done.clone()));
        }
        let written = Arc::new(AtomicU64::new(0));
        let writer = Writer::new(store, config, Arc::clone(&written));
        tracker.spawn(async move {
            let _stop_checkpoints = writer_done.drop_guard();
            writer.run(rx).await;
        });
        Recorder { tx, written }
    }

    /// How many records (stream opens, events, intents, tool calls, closes) the writer has
    /// committed since it started.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
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
    /// New streams whose row is not written yet: written first, alone, at once.
    rows: Vec<NewStream>,
    row_acks: Vec<oneshot::Sender<()>>,
    /// Everything else, written every flush interval (streams whose row is already written
    /// sit here for their messages).
    batch: Batch,
    flush_acks: Vec<oneshot::Sender<()>>,
    oldest: Option<Instant>,
}

impl Pending {
    fn len(&self) -> usize {
        self.rows.len() + self.batch.len()
    }

    /// Takes a command; `held` is every record the writer holds (this and a batch being written).
    fn push(&mut self, command: Command, buffer_limit: usize, held: usize) {
        let keep = match &command {
            Command::Event(_) | Command::Intent(_) | Command::ToolCall(_) => held < buffer_limit,
            Command::Open(..) | Command::Close(_) => held < buffer_limit.saturating_mul(2),
            Command::Flush(_) => true,
        };
        if !keep {
            metrics::counter!(metric::DROPPED, "reason" => "buffer_full").increment(1);
            return;
        }
        match command {
            Command::Open(stream, ack) => {
                self.rows.push(*stream);
                self.row_acks.push(ack);
                return;
            }
            Command::Event(event) => self.batch.events.push(event),
            Command::Intent(intent) => self.batch.intents.push(*intent),
            Command::ToolCall(call) => self.batch.tool_calls.push(*call),
            Command::Close(close) => self.batch.closes.push(*close),
            Command::Flush(ack) => self.flush_acks.push(ack),
        }
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// The rows were written (`written`), or refused and left to the batch, which writes them
    /// record by record: acknowledge them; their messages (and rows not written) join the batch.
    fn rows_written(&mut self, written: bool) {
        acknowledge(std::mem::take(&mut self.row_acks));
        if !self.rows.is_empty() {
            self.oldest.get_or_insert_with(Instant::now);
        }
        let into = if written {
            &mut self.batch.opened
        } else {
            &mut self.batch.opens
        };
        into.append(&mut self.rows);
    }

    /// Hands the batch, and the flushes it answers, to a [`Writing`]; what arrives from now on
    /// waits for the next batch.
    fn take_batch(&mut self) -> Writing {
        let mut batch = std::mem::take(&mut self.batch);
        batch.keep_latest_tool_calls();
        Writing {
            batch,
            next: BatchPart::FIRST,
            flush_acks: std::mem::take(&mut self.flush_acks),
            oldest: self.oldest.take(),
            started: Instant::now(),
        }
    }

    /// A batch whose writing failed goes back in front of what arrived since.
    fn put_back(&mut self, mut writing: Writing) {
        writing.batch.append(&mut self.batch);
        self.batch = writing.batch;
        writing.flush_acks.append(&mut self.flush_acks);
        self.flush_acks = writing.flush_acks;
        self.oldest = writing.oldest.or(self.oldest);
    }
}

/// A batch being written, a part at a time (see [`BatchPart`]).
struct Writing {
    batch: Batch,
    next: BatchPart,
    flush_acks: Vec<oneshot::Sender<()>>,
    oldest: Option<Instant>,
    started: Instant,
}

struct Writer {
    store: Store,
    config: RecorderConfig,
    pending: Pending,
    writing: Option<Writing>,
    retry_at: Option<Instant>,
    backoff: Duration,
    written: Arc<AtomicU64>,
}

impl Writer {
    fn new(store: Store, config: RecorderConfig, written: Arc<AtomicU64>) -> Writer {
        let backoff = config.flush_interval;
        Writer {
            store,
            config,
            pending: Pending::default(),
            writing: None,
            retry_at: None,
            backoff,
            written,
        }
    }

    /// One statement at a time: new stream rows first, then the next part of the batch being
    /// written. While there is something to write (a batch in progress, or one already due,
    /// e.g. a flush that arrived mid-batch) the loop does not wait for commands, it only takes
    /// those already queued, so rows that arrive mid-batch wait for one part at most.
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let nothing_to_write =
                self.writing.is_none() && (self.retry_at.is_some() || !self.batch_is_due());
            if nothing_to_write {
                tokio::select! {
                    biased;
                    command = rx.recv() => match command {
                        Some(command) => self.accept(command),
                        None => break,
                    },
                    _ = tick.tick() => {}
                }
            }
            while let Ok(command) = rx.try_recv() {
                self.accept(command);
            }
            metrics::gauge!(metric::QUEUE_DEPTH).set((self.held() + rx.len()) as f64);
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            if !self.pending.rows.is_empty() && !self.write_rows().await {
                continue;
            }
            if self.writing.is_none() && self.batch_is_due() {
                self.writing = Some(self.pending.take_batch());
            }
            self.write_next_part().await;
        }
        for _ in 0..FINAL_ATTEMPTS {
            if self.write_everything().await {
                break;
            }
            tokio::time::sleep(self.backoff).await;
        }
        if self.pending.len() > 0 {
            metrics::counter!(metric::DROPPED, "reason" => "shutdown")
                .increment(self.pending.len() as u64);
            tracing::error!(
                records = self.pending.len(),
                "recorder stopped with records it could not write"
            );
        }
    }

    /// Records held: pending and in the batch being written.
    fn held(&self) -> usize {
        self.pending.len() + self.writing.as_ref().map_or(0, |w| w.batch.len())
    }

    fn accept(&mut self, command: Command) {
        let held = self.held();
        self.pending.push(command, self.config.buffer_limit, held);
    }

    fn batch_is_due(&self) -> bool {
        let pending = &self.pending;
        !pending.flush_acks.is_empty()
            || pending.batch.len() >= MAX_BATCH
            || pending
                .oldest
                .is_some_and(|t| t.elapsed() >= self.config.flush_interval)
    }

    /// The fast path: new rows in one statement. True when written.
    async fn write_rows(&mut self) -> bool {
        let started = Instant::now();
        let rows = &self.pending.rows;
        let written = self
            .store
            .on_writer(async |c| self.store.write_stream_rows(c, rows).await)
            .await;
        match written {
            Ok(()) => {
                metrics::histogram!(metric::BATCH_SECONDS).record(started.elapsed().as_secs_f64());
                self.written
                    .fetch_add(self.pending.rows.len() as u64, Ordering::Relaxed);
                self.pending.rows_written(true);
                self.recovered();
                true
            }
            // Rejected by a healthy database: the receipts say "not written" (their streams go on
            // without waiting) and the batch path isolates the bad row.
            Err(error) if self.store.ping().await.is_ok() => {
                tracing::warn!(%error, "stream rows rejected by a healthy database; retrying them one by one");
                self.pending.row_acks.clear();
                self.pending.rows_written(false);
                true
            }
            Err(error) => {
                self.failed(&error);
                false
            }
        }
    }

    /// Writes the next part of the batch being written, if there is one. False when the
    /// database failed: the batch went back to the pending records and a retry is scheduled.
    async fn write_next_part(&mut self) -> bool {
        let Some(writing) = &mut self.writing else {
            return true;
        };
        let written = self
            .store
            .on_writer(async |c| self.store.write_part(c, &writing.batch, writing.next).await)
            .await;
        match written {
            Ok(Some(next)) => {
                writing.next = next;
                true
            }
            Ok(None) => {
                self.batch_written();
                self.recovered();
                true
            }
            Err(error) if self.store.ping().await.is_ok() => {
                tracing::warn!(%error, "batch rejected by a healthy database; writing record by record");
                if let Some(writing) = self.writing.take() {
                    self.write_one_by_one(writing.batch).await;
                    acknowledge(writing.flush_acks);
                }
                true
            }
            Err(error) => {
                self.failed(&error);
                false
            }
        }
    }

    /// At shutdown: writes every row and the whole batch. True when nothing is left.
    async fn write_everything(&mut self) -> bool {
        if !self.pending.rows.is_empty() && !self.write_rows().await {
            return false;
        }
        if self.writing.is_none()
            && !(self.pending.batch.is_empty() && self.pending.flush_acks.is_empty())
        {
            self.writing = Some(self.pending.take_batch());
        }
        while self.writing.is_some() {
            if !self.write_next_part().await {
                return false;
            }
        }
        true
    }

    fn batch_written(&mut self) {
        if let Some(writing) = self.writing.take() {
            metrics::histogram!(metric::BATCH_SECONDS)
                .record(writing.started.elapsed().as_secs_f64());
            // Streams in `opened` were counted when their row was written.
            let records = writing.batch.len() - writing.batch.opened.len();
            self.written.fetch_add(records as u64, Ordering::Relaxed);
            acknowledge(writing.flush_acks);
        }
    }

    fn recovered(&mut self) {
        self.retry_at = None;
        self.backoff = self.config.flush_interval;
    }

    fn failed(&mut self, error: &crate::StoreError) {
        if let Some(writing) = self.writing.take() {
            self.pending.put_back(writing);
        }
        metrics::counter!(metric::WRITE_ERRORS).increment(1);
        tracing::warn!(%error, retry_in_ms = self.backoff.as_millis() as u64, "recorder write failed; will retry");
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Isolates the record a healthy database refuses, so the others are still written.
    async fn write_one_by_one(&mut self, batch: Batch) {
        let singles = batch
            .opens
            .into_iter()
            .map(|s| Batch {
                opens: vec![s],
                ..Batch::default()
            })
            .chain(batch.opened.into_iter().map(|s| Batch {
                opened: vec![s],
                ..Batch::default()
            }))
            .chain(batch.events.into_iter().map(|e| Batch {
                events: vec![e],
                ..Batch::default()
            }))
            .chain(batch.intents.into_iter().map(|i| Batch {
                intents: vec![i],
                ..Batch::default()
            }))
            .chain(batch.tool_calls.into_iter().map(|c| Batch {
                tool_calls: vec![c],
                ..Batch::default()
            }))
            .chain(batch.closes.into_iter().map(|c| Batch {
                closes: vec![c],
                ..Batch::default()
            }));
        for single in singles {
            let written = self
                .store
                .on_writer(async |c| self.store.write_batch(c, &single).await)
                .await;
            match written {
                Ok(()) => {
                    self.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    metrics::counter!(metric::DROPPED, "reason" => "rejected").increment(1);
                    tracing::error!(%error, "the database rejected a record; it is dropped");
                }
            }
        }
    }
}

fn acknowledge(acks: Vec<oneshot::Sender<()>>) {
    for ack in acks {
        let _receiver_may_be_gone = ack.send(());
    }
}

/// SQLite only: checkpoints the write-ahead log every `CHECKPOINT_INTERVAL` on a pooled
/// connection of its own, until the writer ends (`done`).
async fn checkpoints(store: Store, done: CancellationToken) {
    let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = every.tick() => {
                if let Err(error) = store.checkpoint().await {
                    tracing::debug!(%error, "WAL checkpoint skipped");
                }
            }
        }
    }
    if let Err(error) = store.checkpoint().await {
        tracing::debug!(%error, "final WAL checkpoint skipped");
    }
}
