//! Structured rows for the inflight analysis: intents that fired and tool calls that ran.
//! (The `events` table keeps the exact JSON sent to the client; these keep the facts in
//! columns, for queries such as "which tools failed most this week".)

use serde::Serialize;

use crate::pool::on_pool;
use crate::{Store, StoreError};

/// An intent that fired in a stream.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct IntentRecord {
    /// The stream.
    pub stream_id: String,
    /// Its id within the stream (`int_1`, ...), referenced by tool calls.
    pub intent_id: String,
    /// The rule's name.
    pub rule: String,
    /// `prompt` or `output`.
    pub scope: String,
    /// `tool`, `emit`, `redact` or `stop`.
    pub action: String,
    /// The matched text; `None` for redact rules (hidden text is not kept).
    pub matched: Option<String>,
    /// Named captures as a JSON object.
    pub captures: String,
    /// Milliseconds since the stream started.
    pub at_ms: f64,
    /// Characters of the scope's text seen when it fired.
    pub chars_seen: i64,
}

/// A tool call's state: written when it starts (`running`) and again when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ToolCallRecord {
    /// The stream.
    pub stream_id: String,
    /// The call's id within the stream.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// `intent` (a rule fired) or `model` (the model called a tool the gateway owns).
    pub source: String,
    /// The intent that started it.
    pub intent_id: Option<String>,
    /// The upstream's `tool_calls[].id`, for model-issued calls.
    pub model_call_id: Option<String>,
    /// Arguments as JSON.
    pub arguments: String,
    /// `running`, `succeeded`, `failed`, `cancelled` (the gateway cancelled it: the stream
    /// ended first) or `interrupted` (the process stopped while it ran).
    pub status: String,
    /// The result as JSON, when it succeeded.
    pub result: Option<String>,
    /// The error code, when it failed.
    pub error_code: Option<String>,
    /// The error message, when it failed.
    pub error_message: Option<String>,
    /// Whether the result came from the cache (or a shared execution).
    pub cached: Option<bool>,
    /// Milliseconds since the stream started, when the call started.
    pub started_ms: f64,
    /// How long it took.
    pub duration_ms: Option<f64>,
}

impl Store {
    /// The stream's intents in the order they fired.
    pub async fn stream_intents(&self, id: &str) -> Result<Vec<IntentRecord>, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM intents WHERE stream_id = $1 ORDER BY at_ms, intent_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The stream's tool calls in the order they started.
    pub async fn stream_tool_calls(&self, id: &str) -> Result<Vec<ToolCallRecord>, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM tool_calls WHERE stream_id = $1 ORDER BY started_ms, call_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?)
        })
    }
}
