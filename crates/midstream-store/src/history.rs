//! The history of recorded streams (`GET /v1/streams`): newest first, a page at a time.

use serde::Serialize;

use crate::pool::on_pool;
use crate::{Store, StoreError};

/// One stream in the history.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct StreamSummary {
    /// The stream id.
    pub id: String,
    /// `streaming`, `completed`, `failed`, `cancelled` or `interrupted`.
    pub status: String,
    /// The model the client asked for.
    pub model: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Duration, ms.
    pub duration_ms: Option<f64>,
    /// The start of the last user message.
    pub prompt: Option<String>,
    /// The start of the reply.
    pub preview: Option<String>,
}

/// Which streams to list.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery<'a> {
    /// Only this key's streams; `None` lists every stream (a gateway running without keys).
    pub api_key_id: Option<&'a str>,
    /// Only streams older than this one (the previous page's last id).
    pub before_id: Option<&'a str>,
    /// Page size.
    pub limit: u32,
}

impl Store {
    /// Streams newest first. Ids are UUIDv7, so ordering by id is ordering by creation, and
    /// an id is a stable cursor: streams created while a client pages do not shift its pages.
    pub async fn stream_history(
        &self,
        query: &HistoryQuery<'_>,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        // 160 characters of the prompt and of the reply: enough to recognise a conversation.
        const SQL: &str = "SELECT s.id, s.status, s.model, s.created_at, s.ttft_ms, s.duration_ms, \
             (SELECT substr(m.content, 1, 160) FROM messages m \
              WHERE m.stream_id = s.id AND m.role = 'user' ORDER BY m.position DESC LIMIT 1) AS prompt, \
             substr(s.response_text, 1, 160) AS preview \
             FROM streams s \
             WHERE ($1 IS NULL OR s.api_key_id = $1) AND ($2 IS NULL OR s.id < $2) \
             ORDER BY s.id DESC LIMIT $3";
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(SQL)
                .bind(query.api_key_id)
                .bind(query.before_id)
                .bind(i64::from(query.limit))
                .fetch_all(pool)
                .await?)
        })
    }
}
