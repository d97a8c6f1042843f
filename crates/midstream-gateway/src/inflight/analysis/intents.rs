//! A detection becomes an intent: its `intent` event, its record, and the tool call it starts
//! (or the stop it means).

use midstream_analysis::{Action, Detection, Scope};
use midstream_store::IntentRecord;
use serde_json::json;

use super::StreamAnalysis;
use crate::inflight::events::{self, CallSource, Captures, IntentFacts, json_text};
use crate::inflight::record::StreamRecord;

impl StreamAnalysis {
    pub(super) fn on_detection(
        &mut self,
        detection: &Detection,
        scope: Scope,
        record: &mut StreamRecord,
    ) {
        let detector = self.analyzer.detector.clone();
        let Some(rule) = detector.rule(detection.rule) else {
            return;
        };
        self.intents += 1;
        let intent_id = format!("int_{}", self.intents);
        let at_ms = record.elapsed_ms();
        let (action, hidden) = match &rule.action {
            Action::Tool { .. } => ("tool", false),
            Action::Emit => ("emit", false),
            Action::Redact { .. } => ("redact", true),
            Action::Stop => ("stop", true),
        };
        let mut call = None;
        if let Action::Tool { tool, .. } = &rule.action {
            let arguments = detection.args.clone().unwrap_or_else(|| json!({}));
            call = Some(self.start_call(
                tool,
                arguments,
                CallSource::Intent(intent_id.clone()),
                record,
            ));
        }
        if matches!(rule.action, Action::Stop) {
            self.stopped = true;
        }
        let scope_name = match scope {
            Scope::Prompt => "prompt",
            Scope::Output => "output",
        };
        let intent = events::intent(&IntentFacts {
            id: &intent_id,
            rule: &rule.name,
            scope: scope_name,
            action,
            matched: (!hidden)
                .then_some((detection.matched.as_str(), detection.captures.as_slice())),
            call_id: call.as_ref().map(|(id, _, _)| id.as_str()),
            duplicate: call.as_ref().is_some_and(|(_, duplicate, _)| *duplicate),
            at_ms,
            chars_seen: detection.seen_chars,
        });
        self.events.push(intent);
        if let Some((_, false, Some(started))) = call {
            self.events.push(started);
        }
        record.intent(IntentRecord {
            stream_id: self.stream_id.to_string(),
            intent_id,
            rule: rule.name.clone(),
            scope: scope_name.to_owned(),
            action: action.to_owned(),
            matched: (!hidden).then(|| detection.matched.clone()),
            captures: json_text(&Captures(&detection.captures)),
            at_ms,
            chars_seen: i64::try_from(detection.seen_chars).unwrap_or(i64::MAX),
        });
    }
}
