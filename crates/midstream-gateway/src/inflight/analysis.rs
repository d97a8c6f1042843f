//! The analysis side of one stream: what the scanner and the tools make of its content.

use std::task::{Context, Poll};

use bytes::Bytes;

use super::record::StreamRecord;
use crate::protocol::chunk::ChunkView;

/// An event the gateway raises about a stream, serialised once: the same JSON is recorded
/// and injected.
#[derive(Debug, Clone)]
pub struct MidstreamEvent {
    kind: &'static str,
    json: String,
}

impl MidstreamEvent {
    /// `intent`, `tool.started`, `tool.result`, `tool.error`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The event object as JSON.
    pub fn to_json(&self) -> String {
        self.json.clone()
    }
}

/// Per-stream analysis state.
#[derive(Debug, Default)]
pub struct StreamAnalysis {
    events: Vec<MidstreamEvent>,
}

impl StreamAnalysis {
    /// Reads one chunk's content; returns replacement bytes for the frame when it must be
    /// rewritten, `None` to forward it unchanged. Records the content the client sees.
    pub fn on_content(
        &mut self,
        _frame: &Bytes,
        _payload_start: usize,
        _chunk: &ChunkView<'_>,
        content: Option<&str>,
        record: &mut StreamRecord,
    ) -> Option<Bytes> {
        if let Some(text) = content {
            record.content(text);
        }
        None
    }

    /// The content ended: settles pending matches; returns text still held back.
    pub fn on_finish(&mut self, _record: &mut StreamRecord) -> Option<String> {
        None
    }

    /// Events ready to send.
    pub fn take_events(&mut self) -> Vec<MidstreamEvent> {
        std::mem::take(&mut self.events)
    }

    /// A stop rule's finish reason, once.
    pub fn take_stop(&mut self) -> Option<&'static str> {
        None
    }

    /// Ready when new events are available.
    pub fn poll_events(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }

    /// Tool calls still running.
    pub fn in_flight(&self) -> usize {
        0
    }

    /// Waits until every tool call of the stream ended (each is bounded by its timeout).
    pub async fn wait_all(&mut self) {}

    /// Cancels every tool call of the stream.
    pub fn cancel(&mut self) {}
}
