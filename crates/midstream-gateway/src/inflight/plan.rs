//! The per-request context a handler gives the [`InflightLayer`](super::InflightLayer).
//!
//! The handler answers with the upstream's body and puts a [`StreamPlan`] into the response
//! extensions; the layer takes it out and wraps the body. Extensions must be `Clone + Sync`,
//! and a plan owns one-shot things (the upstream connection, tool tasks, a concurrency permit),
//! so it travels in a take-once [`PlanSlot`].

use std::sync::{Arc, Mutex};

use midstream_store::OpenReceipt;
use tokio_util::sync::CancellationToken;

use super::analysis::StreamAnalysis;
use super::prompt_stop::PromptStop;
use super::record::StreamRecord;
use crate::auth::limits::StreamSlots;
use crate::sse::authored::ChunkMeta;

/// Everything the layer needs to run one stream.
#[derive(Debug)]
pub struct StreamPlan {
    /// The running record (closes itself if the stream is dropped).
    pub record: StreamRecord,
    /// Resolves when the stream's row is committed; the first byte waits for it (bounded).
    pub row: OpenReceipt,
    /// The stream's analysis, already fed the prompt.
    pub analysis: StreamAnalysis,
    /// Set when a prompt `stop` rule matched: the upstream was not called, and the gateway
    /// answers in full itself.
    pub prompt_stop: Option<PromptStop>,
    /// Whether events are injected (`X-Midstream-Events: off` turns it off).
    pub inject_events: bool,
    /// `stream: true`.
    pub streaming: bool,
    /// Used for authored chunks until the upstream's first chunk shows its own id and model.
    pub fallback_meta: ChunkMeta,
    /// Holds one of the gateway's concurrent-stream slots (and one of its key's, when the key
    /// has a limit) until the stream ends.
    pub permit: StreamSlots,
    /// Ends the stream: cancelled by the gateway's shutdown (it is a child of that token) or
    /// through `POST /v1/streams/{id}/cancel`.
    pub cancel: CancellationToken,
}

/// A take-once slot for a [`StreamPlan`] in response extensions.
#[derive(Debug, Clone)]
pub struct PlanSlot(Arc<Mutex<Option<Box<StreamPlan>>>>);

impl PlanSlot {
    /// Wraps a plan.
    pub fn new(plan: StreamPlan) -> PlanSlot {
        PlanSlot(Arc::new(Mutex::new(Some(Box::new(plan)))))
    }

    /// Takes the plan out (once).
    pub fn take(&self) -> Option<Box<StreamPlan>> {
        self.0.lock().ok()?.take()
    }
}
