//! The prompt and the stream's content through the scanner: what it releases is recorded and
//! sent, what it detects becomes intents.

use std::sync::Arc;

use bytes::Bytes;
use midstream_analysis::{Detector, Scanner, Scope};

use super::redaction::rewrite_content;
use super::{Forward, StreamAnalysis};
use crate::inflight::model_calls::ModelCalls;
use crate::inflight::record::StreamRecord;
use crate::protocol::chunk::ChunkView;
use crate::protocol::request::ChatRequest;

impl StreamAnalysis {
    /// Scans the last user message before the request goes upstream: tools start in parallel
    /// with generation, prompt `redact` rules scrub the text sent upstream, a prompt `stop` rule
    /// means the upstream is not called at all.
    pub fn scan_prompt(&mut self, request: &mut ChatRequest, record: &mut StreamRecord) {
        let detector = self.analyzer.detector.clone();
        if !detector.has_rules(Scope::Prompt) {
            return;
        }
        let mut detections = Vec::new();
        request.rewrite_last_user_text(|text| {
            let scanned = detector.scan_complete(Scope::Prompt, text);
            detections.extend(scanned.detections);
            (detector.guards_output(Scope::Prompt) && scanned.released != text)
                .then_some(scanned.released)
        });
        for detection in &detections {
            self.on_detection(detection, Scope::Prompt, record);
        }
    }

    /// Reads one chunk: content goes to the scanner and the record, owned tool calls start.
    pub fn on_content(
        &mut self,
        frame: &Bytes,
        payload_start: usize,
        chunk: &ChunkView<'_>,
        content: Option<&str>,
        record: &mut StreamRecord,
    ) -> Forward {
        let mut forward = Forward::Unchanged;
        if let Some(text) = content {
            match output_scanner(&mut self.scanner, &self.analyzer.detector) {
                None => record.content(text),
                Some(scanner) => {
                    self.scan.clear();
                    scanner.feed(text.as_bytes(), &mut self.scan);
                    if scanner.guards_output() {
                        record.content(&self.scan.released);
                        if self.scan.released != text {
                            forward =
                                rewrite_content(frame, payload_start, chunk, &self.scan.released)
                                    .map_or(Forward::Unchanged, Forward::Replace);
                        }
                    } else {
                        record.content(text);
                    }
                    self.take_detections(record);
                }
            }
        }
        if let (Some(model), Some(raw)) = (
            self.model.as_mut(),
            chunk.message().and_then(|m| m.tool_calls),
        ) {
            let absorbed = model.absorb(raw.get());
            // Withheld only while the gateway can still continue the conversation itself; once
            // the step budget is spent, the client gets the calls (and their finish reason).
            if absorbed.all_owned && content.is_none() && self.can_continue() {
                forward = Forward::Drop;
            }
            for ready in absorbed.ready {
                self.start_model_call(ready, record);
            }
        }
        forward
    }

    /// The response's content ended (finish reason or end of stream): settles pending
    /// matches; returns text held back for a redaction that is now safe to send.
    pub fn on_finish(&mut self, record: &mut StreamRecord) -> Option<String> {
        let broken = self
            .model
            .as_mut()
            .map(ModelCalls::finish)
            .unwrap_or_default();
        for ready in broken {
            self.start_model_call(ready, record);
        }
        let scanner = self.scanner.as_mut()?;
        self.scan.clear();
        scanner.finish(&mut self.scan);
        let guards = scanner.guards_output();
        let tail = std::mem::take(&mut self.scan.released);
        self.take_detections(record);
        (guards && !tail.is_empty()).then(|| {
            record.content(&tail);
            tail
        })
    }

    /// A non-streaming completion's whole content at once; returns the rewritten body when a
    /// redaction or stop changed the content.
    pub fn on_complete_content(
        &mut self,
        body: &Bytes,
        chunk: &ChunkView<'_>,
        content: Option<&str>,
        record: &mut StreamRecord,
    ) -> Option<Bytes> {
        let text = content.unwrap_or_default();
        let Some(scanner) = output_scanner(&mut self.scanner, &self.analyzer.detector) else {
            record.content(text);
            return None;
        };
        self.scan.clear();
        scanner.feed(text.as_bytes(), &mut self.scan);
        scanner.finish(&mut self.scan);
        let guards = scanner.guards_output();
        let released = std::mem::take(&mut self.scan.released);
        self.take_detections(record);
        if !guards {
            record.content(text);
            return None;
        }
        record.content(&released);
        (released != text)
            .then(|| rewrite_content(body, 0, chunk, &released))
            .flatten()
    }

    fn take_detections(&mut self, record: &mut StreamRecord) {
        if self.scan.detections.is_empty() && !self.scan.stopped {
            return;
        }
        let detections = std::mem::take(&mut self.scan.detections);
        for detection in &detections {
            self.on_detection(detection, Scope::Output, record);
        }
        self.scan.detections = detections;
        self.scan.detections.clear();
        self.stopped |= self.scan.stopped;
    }
}

/// The stream's output scanner, made on first use (a free function so the caller can keep
/// borrowing its other fields).
fn output_scanner<'a>(
    slot: &'a mut Option<Scanner>,
    detector: &Arc<Detector>,
) -> Option<&'a mut Scanner> {
    if slot.is_none() && detector.has_rules(Scope::Output) {
        *slot = Some(Scanner::new(Arc::clone(detector), Scope::Output));
    }
    slot.as_mut()
}
