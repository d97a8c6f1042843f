//! The event log: where a stream's events wait for subscribers, behind one small trait with
//! two implementations, [`MemoryLog`](super::memory::MemoryLog) (one process) and
//! [`RedisLog`](super::redis::RedisLog) (shared by every process using that Redis).

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::event::LiveEvent;

/// What a subscriber is sent instead of events the log no longer holds: the text and the
/// events up to `upto`, rebuilt from what was evicted (or from the database record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The seq of the last event it covers.
    pub upto: Option<u64>,
    /// Every token's text so far, concatenated.
    pub text: String,
    /// Every reasoning text so far.
    pub reasoning: String,
    /// The other events (their JSON objects), in order.
    pub events: Vec<serde_json::Value>,
}

/// The answer to a read.
#[derive(Debug)]
pub enum LogRead {
    /// The log does not hold this stream (never did, or dropped it).
    Unknown,
    /// The events after the one asked for, in order (empty when none arrived in time).
    Events {
        /// Set when the log no longer holds the first events asked for.
        gap: Gap,
        /// The events it holds from there on.
        events: Vec<LiveEvent>,
        /// The log holds the stream's `done`: nothing will follow.
        finished: bool,
    },
}

/// Events a subscriber asked for that the log no longer holds.
#[derive(Debug)]
pub enum Gap {
    /// None: the events follow the one asked for.
    None,
    /// The log folded them into this snapshot.
    Folded(Snapshot),
    /// They are gone: the subscriber's snapshot must come from the database record.
    Lost,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[error("event log: {0}")]
pub struct LogError(pub String);

/// A stream's events, kept for subscribers.
pub trait EventLog: Send + Sync + 'static {
    /// Hands over a batch (consecutive seqs, in order) from the stream's producer: one call per
    /// upstream read, never one per token. It never blocks the stream: the memory log appends in
    /// place, Redis queues the batch for its writer.
    fn append(&self, stream: &str, batch: &[LiveEvent]);

    /// The events after `after` (all of them for `None`), waiting up to `wait` when there are
    /// none yet.
    fn read<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<LogRead, LogError>>;
}
