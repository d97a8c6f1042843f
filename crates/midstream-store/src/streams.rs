//! The record of one stream: its row, its messages and its events; written in batches by the
//! [`Recorder`](crate::Recorder) and read back for `GET /v1/streams/{id}`.

use std::collections::HashMap;

use serde::Serialize;

use crate::pool::{Connection, Pool, on_connection, on_pool};
use crate::{IntentRecord, Store, StoreError, ToolCallRecord};

/// Where a stream is in its life. Stored as the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// Tokens are (or may be) flowing; the row exists before the first one is sent.
    Streaming,
    /// The upstream finished and every started tool ended.
    Completed,
    /// The upstream or the gateway failed; `error` says why.
    Failed,
    /// The client went away (or a `stop` rule ended it); the upstream request was dropped.
    Cancelled,
    /// The gateway process ended while the stream was open; set at the next start.
    Interrupted,
}

impl StreamStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Streaming => "streaming",
            StreamStatus::Completed => "completed",
            StreamStatus::Failed => "failed",
            StreamStatus::Cancelled => "cancelled",
            StreamStatus::Interrupted => "interrupted",
        }
    }
}

/// A message of the conversation as stored: the request's messages, then the reply.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// The text content, when the message has one as a plain string.
    pub content: Option<String>,
    /// The whole message as JSON, so nothing the client sent is lost.
    pub body: String,
}

/// A stream's row as it is opened, before the first token.
#[derive(Debug, Clone)]
pub struct NewStream {
    /// The stream id (also sent to the client as `X-Midstream-Stream-Id`).
    pub id: String,
    /// The API key that opened it, if the gateway runs with keys.
    pub api_key_id: Option<String>,
    /// The model the client asked for.
    pub model: String,
    /// The upstream's configured name (`demo` for the built-in demo model).
    pub upstream: String,
    /// The model name sent upstream (after alias resolution).
    pub upstream_model: String,
    /// Whether the client asked for `stream: true`.
    pub streamed: bool,
    /// The request body as JSON.
    pub request: String,
    /// The request's messages, in order.
    pub messages: Vec<NewMessage>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One event of a stream: an intent, a tool call's start, result or error, a usage report.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its position in the stream's event sequence, from 0; `(stream_id, seq)` is unique, so a
    /// retried batch cannot duplicate it.
    pub seq: i64,
    /// `intent`, `tool.started`, `tool.result`, `tool.error`, ...
    pub kind: String,
    /// Milliseconds since the stream started.
    pub at_ms: f64,
    /// The event as JSON.
    pub payload: String,
}

/// Token counts the upstream reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: Option<i64>,
    /// Tokens generated.
    pub completion_tokens: Option<i64>,
    /// Their sum, as reported.
    pub total_tokens: Option<i64>,
}

/// How a stream ended.
#[derive(Debug, Clone)]
pub struct StreamClose {
    /// The stream that ended.
    pub stream_id: String,
    /// Its final status (never `Streaming`).
    pub status: StreamStatus,
    /// The content the model produced, as the client saw it.
    pub response_text: String,
    /// The upstream's (or the gateway's) finish reason.
    pub finish_reason: Option<String>,
    /// Why it failed, for `failed` streams.
    pub error: Option<String>,
    /// Token usage, when the upstream reported it.
    pub usage: Usage,
    /// Milliseconds from the request to the first content token sent to the client.
    pub ttft_ms: Option<f64>,
    /// Milliseconds from the request to the end.
    pub duration_ms: f64,
    /// Unix milliseconds.
    pub finished_at: i64,
    /// The assistant's reply as a message, appended after the request's messages.
    pub reply: Option<NewMessage>,
    /// The reply's position: the number of messages the request had.
    pub reply_position: i32,
    /// The `seq` of its last EventSource event (`done`), when its events were published.
    pub last_event_seq: Option<i64>,
    /// The upstream and model that answered, when not the ones the row was opened with (a
    /// fallback answered for the route's primary); `None` keeps them.
    pub answered_by: Option<(String, String)>,
}

/// A stream's row as read back.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct StreamRow {
    /// The stream id.
    pub id: String,
    /// The API key that opened it.
    pub api_key_id: Option<String>,
    /// The gateway process that served it.
    pub instance_id: String,
    /// The model the client asked for.
    pub model: String,
    /// The upstream's configured name.
    pub upstream: String,
    /// The model sent upstream.
    pub upstream_model: String,
    /// Whether it was a streaming request.
    pub streamed: bool,
    /// `streaming`, `completed`, `failed`, `cancelled` or `interrupted`.
    pub status: String,
    /// The request body as JSON text.
    pub request: String,
    /// The model's content.
    pub response_text: Option<String>,
    /// The finish reason.
    pub finish_reason: Option<String>,
    /// The error, for failed streams.
    pub error: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens.
    pub completion_tokens: Option<i64>,
    /// Total tokens.
    pub total_tokens: Option<i64>,
    /// Time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Duration, ms.
    pub duration_ms: Option<f64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
    /// The `seq` of its last EventSource event, once closed.
    pub last_event_seq: Option<i64>,
}

/// A stored message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    /// Order in the conversation, from 0.
    pub position: i32,
    /// The role.
    pub role: String,
    /// The text content, if plain.
    pub content: Option<String>,
    /// The whole message as JSON text.
    pub body: String,
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Sequence number within the stream.
    pub seq: i64,
    /// Event kind.
    pub kind: String,
    /// Milliseconds since the stream started.
    pub at_ms: f64,
    /// The event as JSON text.
    pub payload: String,
}

/// What one recorder flush writes. It is written in parts ([`BatchPart`]), tables in the order
/// of [`Table`]: rows first, so events and closes of a stream opened in the same batch find it.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// New streams whose row is still to be written (with their messages).
    pub opens: Vec<NewStream>,
    /// New streams whose row the recorder's fast path already wrote: only their messages are
    /// left. Kept apart so a batch does not insert those rows again: a no-op `ON CONFLICT`
    /// insert still binds (and copies) every column and looks each row up in the index.
    pub opened: Vec<NewStream>,
    pub events: Vec<StreamEvent>,
    pub intents: Vec<IntentRecord>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub closes: Vec<StreamClose>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.opens.len()
            + self.opened.len()
            + self.events.len()
            + self.intents.len()
            + self.tool_calls.len()
            + self.closes.len()
    }

    /// A call's later state replaces its earlier one: one row per call per batch, so the
    /// multi-row upsert never touches a row twice (PostgreSQL refuses that). Done once, when
    /// the recorder hands a batch to the writer.
    pub fn keep_latest_tool_calls(&mut self) {
        let last: HashMap<(&str, &str), usize> = self
            .tool_calls
            .iter()
            .enumerate()
            .map(|(at, call)| ((call.stream_id.as_str(), call.call_id.as_str()), at))
            .collect();
        let keep: Vec<bool> = self
            .tool_calls
            .iter()
            .enumerate()
            .map(|(at, call)| {
                last.get(&(call.stream_id.as_str(), call.call_id.as_str())) == Some(&at)
            })
            .collect();
        drop(last);
        let mut keep = keep.into_iter();
        self.tool_calls.retain(|_| keep.next().unwrap_or(true));
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `later`'s records after this batch's.
    pub fn append(&mut self, later: &mut Batch) {
        self.opens.append(&mut later.opens);
        self.opened.append(&mut later.opened);
        self.events.append(&mut later.events);
        self.intents.append(&mut later.intents);
        self.tool_calls.append(&mut later.tool_calls);
        self.closes.append(&mut later.closes);
    }

    /// The request messages of the new streams: (stream id, position, message).
    fn messages(&self) -> impl Iterator<Item = (&str, i32, &NewMessage)> {
        self.opened.iter().chain(&self.opens).flat_map(|s| {
            s.messages
                .iter()
                .zip(0..)
                .map(|(m, position)| (s.id.as_str(), position, m))
        })
    }

    /// The model's replies, stored as their streams' last messages: (stream id, position, reply).
    fn replies(&self) -> impl Iterator<Item = (&str, i32, &NewMessage)> {
        self.closes
            .iter()
            .filter_map(|c| Some((c.stream_id.as_str(), c.reply_position, c.reply.as_ref()?)))
    }
}

/// The tables a batch writes, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Streams,
    Messages,
    Events,
    Intents,
    ToolCalls,
    Closes,
    Replies,
}

/// One statement's worth of a batch: up to [`ROWS_PER_STATEMENT`] records of one table,
/// from record `from` on.
///
/// A batch is written a part at a time, each part its own (implicit) transaction, so that the
/// recorder can write new stream rows between parts: a row the first token waits for never
/// queues behind a whole batch (with SQLite, one writer at a time, a 100-stream batch holds
/// the write lock for milliseconds). Every statement is idempotent (`ON CONFLICT`, and the
/// close `UPDATE` sets the same values again), so a batch that failed half-way is simply
/// written again from its first part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPart {
    table: Table,
    from: usize,
}

impl BatchPart {
    pub(crate) const FIRST: BatchPart = BatchPart {
        table: Table::Streams,
        from: 0,
    };

    /// This part's records of a table whose records are derived (`records` yields them all).
    fn take<I: Iterator>(&self, records: I) -> Vec<I::Item> {
        records.skip(self.from).take(ROWS_PER_STATEMENT).collect()
    }

    /// This part's records of a table's `records`.
    fn slice<'a, T>(&self, records: &'a [T]) -> &'a [T] {
        let from = self.from.min(records.len());
        &records[from..(from + ROWS_PER_STATEMENT).min(records.len())]
    }

    /// The part after this one, for a table of `len` records; `None` after the last table.
    fn after(self, len: usize) -> Option<BatchPart> {
        if self.from + ROWS_PER_STATEMENT < len {
            return Some(BatchPart {
                table: self.table,
                from: self.from + ROWS_PER_STATEMENT,
            });
        }
        let table = match self.table {
            Table::Streams => Table::Messages,
            Table::Messages => Table::Events,
            Table::Events => Table::Intents,
            Table::Intents => Table::ToolCalls,
            Table::ToolCalls => Table::Closes,
            Table::Closes => Table::Replies,
            Table::Replies => return None,
        };
        Some(BatchPart { table, from: 0 })
    }
}

/// Records per statement: far below SQLite's and PostgreSQL's bind limits (32,766 and 65,535
/// parameters) at up to 14 columns, and small enough that one statement holds SQLite's write
/// lock for well under a millisecond.
const ROWS_PER_STATEMENT: usize = 100;

/// The multi-row `INSERT` of stream rows (idempotent: a row written earlier is left alone).
/// A macro so the same statement is built for the pool of either backend (the fast path and the
/// first part of a batch).
macro_rules! stream_rows {
    ($opens:expr, $instance_id:expr) => {
        sqlx::QueryBuilder::new(
            "INSERT INTO streams (id, api_key_id, instance_id, model, upstream, \
             upstream_model, streamed, status, request, created_at) ",
        )
        .push_values($opens, |mut row, s| {
            row.push_bind(&s.id)
                .push_bind(&s.api_key_id)
                .push_bind($instance_id)
                .push_bind(&s.model)
                .push_bind(&s.upstream)
                .push_bind(&s.upstream_model)
                .push_bind(s.streamed)
                .push_bind(StreamStatus::Streaming.as_str())
                .push_bind(&s.request)
                .push_bind(s.created_at);
        })
        .push(" ON CONFLICT (id) DO NOTHING")
        .build()
    };
}

impl Store {
    /// Writes new streams' rows alone, in one statement (no explicit transaction): the fast
    /// path a first token may be waiting for. Their messages follow in the next batch.
    pub(crate) async fn write_stream_rows(
        &self,
        connection: &mut Connection,
        opens: &[NewStream],
    ) -> Result<(), StoreError> {
        let instance_id = self.instance_id();
        for opens in opens.chunks(ROWS_PER_STATEMENT) {
            on_connection!(&mut *connection, |c| {
                stream_rows!(opens, instance_id).execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    /// SQLite only: moves the write-ahead log into the database without blocking writers.
    /// The pool runs with automatic checkpoints off, because an automatic checkpoint (and its
    /// fsync) runs inside whichever commit crosses the threshold — possibly the commit a first
    /// token is waiting for. PostgreSQL manages its own WAL.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Pool::Sqlite(pool) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Writes a whole batch, part after part (see [`BatchPart`]).
    pub(crate) async fn write_batch(
        &self,
        connection: &mut Connection,
        batch: &Batch,
    ) -> Result<(), StoreError> {
        let mut part = Some(BatchPart::FIRST);
        while let Some(current) = part {
            part = self.write_part(connection, batch, current).await?;
        }
        Ok(())
    }

    /// Writes one part of a batch, in one statement, and returns the part after it (`None`
    /// once the batch is written). A part with nothing to write costs no statement.
    pub(crate) async fn write_part(
        &self,
        connection: &mut Connection,
        batch: &Batch,
        part: BatchPart,
    ) -> Result<Option<BatchPart>, StoreError> {
        let instance_id = self.instance_id();
        on_connection!(connection, |c| {
            let written = match part.table {
                Table::Streams => {
                    let opens = part.slice(&batch.opens);
                    if !opens.is_empty() {
                        stream_rows!(opens, instance_id).execute(&mut *c).await?;
                    }
                    batch.opens.len()
                }
                Table::Messages | Table::Replies => {
                    let (rows, len) = if part.table == Table::Messages {
                        (part.take(batch.messages()), batch.messages().count())
                    } else {
                        (part.take(batch.replies()), batch.replies().count())
                    };
                    if !rows.is_empty() {
                        sqlx::QueryBuilder::new(
                            "INSERT INTO messages (stream_id, position, role, content, body) ",
                        )
                        .push_values(rows, |mut row, (stream_id, position, m)| {
                            row.push_bind(stream_id)
                                .push_bind(position)
                                .push_bind(&m.role)
                                .push_bind(&m.content)
                                .push_bind(&m.body);
                        })
                        .push(" ON CONFLICT (stream_id, position) DO NOTHING")
                        .build()
                        .execute(&mut *c)
                        .await?;
                    }
                    len
                }
                Table::Events => {
                    let events = part.slice(&batch.events);
                    if !events.is_empty() {
                        sqlx::QueryBuilder::new(
                            "INSERT INTO events (stream_id, seq, kind, at_ms, payload) ",
                        )
                        .push_values(events, |mut row, e| {
                            row.push_bind(&e.stream_id)
                                .push_bind(e.seq)
                                .push_bind(&e.kind)
                                .push_bind(e.at_ms)
                                .push_bind(&e.payload);
                        })
                        .push(" ON CONFLICT (stream_id, seq) DO NOTHING")
                        .build()
                        .execute(&mut *c)
                        .await?;
                    }
                    batch.events.len()
                }
                Table::Intents => {
                    let intents = part.slice(&batch.intents);
                    if !intents.is_empty() {
                        sqlx::QueryBuilder::new(
                            "INSERT INTO intents (stream_id, intent_id, rule, scope, action, \
                             matched, captures, at_ms, chars_seen) ",
                        )
                        .push_values(intents, |mut row, i| {
                            row.push_bind(&i.stream_id)
                                .push_bind(&i.intent_id)
                                .push_bind(&i.rule)
                                .push_bind(&i.scope)
                                .push_bind(&i.action)
                                .push_bind(&i.matched)
                                .push_bind(&i.captures)
                                .push_bind(i.at_ms)
                                .push_bind(i.chars_seen);
                        })
                        .push(" ON CONFLICT (stream_id, intent_id) DO NOTHING")
                        .build()
                        .execute(&mut *c)
                        .await?;
                    }
                    batch.intents.len()
                }
                Table::ToolCalls => {
                    let calls = part.slice(&batch.tool_calls);
                    if !calls.is_empty() {
                        sqlx::QueryBuilder::new(
                            "INSERT INTO tool_calls (stream_id, call_id, tool, source, intent_id, \
                             model_call_id, arguments, status, result, error_code, error_message, \
                             cached, started_ms, duration_ms) ",
                        )
                        .push_values(calls, |mut row, c| {
                            row.push_bind(&c.stream_id)
                                .push_bind(&c.call_id)
                                .push_bind(&c.tool)
                                .push_bind(&c.source)
                                .push_bind(&c.intent_id)
                                .push_bind(&c.model_call_id)
                                .push_bind(&c.arguments)
                                .push_bind(&c.status)
                                .push_bind(&c.result)
                                .push_bind(&c.error_code)
                                .push_bind(&c.error_message)
                                .push_bind(c.cached)
                                .push_bind(c.started_ms)
                                .push_bind(c.duration_ms);
                        })
                        .push(
                            " ON CONFLICT (stream_id, call_id) DO UPDATE SET \
                             status = excluded.status, result = excluded.result, \
                             error_code = excluded.error_code, \
                             error_message = excluded.error_message, cached = excluded.cached, \
                             duration_ms = excluded.duration_ms",
                        )
                        .build()
                        .execute(&mut *c)
                        .await?;
                    }
                    batch.tool_calls.len()
                }
                // Set-based: one UPDATE for many streams instead of one per stream (each
                // statement is a round trip to the database).
                Table::Closes => {
                    let closes = part.slice(&batch.closes);
                    if !closes.is_empty() {
                        sqlx::QueryBuilder::new(
                            "WITH v (id, status, response_text, finish_reason, error, \
                             prompt_tokens, completion_tokens, total_tokens, ttft_ms, duration_ms, \
                             finished_at, last_event_seq, upstream, upstream_model) AS (",
                        )
                        .push_values(closes, |mut row, c| {
                            row.push_bind(&c.stream_id)
                                .push_bind(c.status.as_str())
                                .push_bind(&c.response_text)
                                .push_bind(&c.finish_reason)
                                .push_bind(&c.error)
                                .push_bind(c.usage.prompt_tokens)
                                .push_bind(c.usage.completion_tokens)
                                .push_bind(c.usage.total_tokens)
                                .push_bind(c.ttft_ms)
                                .push_bind(c.duration_ms)
                                .push_bind(c.finished_at)
                                .push_bind(c.last_event_seq)
                                .push_bind(c.answered_by.as_ref().map(|(u, _)| u))
                                .push_bind(c.answered_by.as_ref().map(|(_, m)| m));
                        })
                        .push(
                            ") UPDATE streams SET status = v.status, \
                             response_text = v.response_text, finish_reason = v.finish_reason, \
                             error = v.error, prompt_tokens = v.prompt_tokens, \
                             completion_tokens = v.completion_tokens, \
                             total_tokens = v.total_tokens, ttft_ms = v.ttft_ms, \
                             duration_ms = v.duration_ms, finished_at = v.finished_at, \
                             last_event_seq = v.last_event_seq, \
                             upstream = COALESCE(v.upstream, streams.upstream), \
                             upstream_model = COALESCE(v.upstream_model, streams.upstream_model) \
                             FROM v WHERE streams.id = v.id",
                        )
                        .build()
                        .execute(&mut *c)
                        .await?;
                    }
                    batch.closes.len()
                }
            };
            Ok(part.after(written))
        })
    }

    /// Marks this instance's streams left `streaming` by a previous process as `interrupted`,
    /// and their calls still `running` too (first, so the close trigger of migration 0006
    /// does not call them `cancelled`: the gateway never cancelled them, it stopped). Only rows
    /// of the same `instance_id` are touched, so replicas sharing one PostgreSQL do not close
    /// each other's live streams.
    pub async fn mark_interrupted(&self) -> Result<u64, StoreError> {
        let now = crate::clock::now_ms();
        let instance_id = self.instance_id();
        on_pool!(&self.pool, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE tool_calls SET status = 'interrupted', error_code = 'interrupted', \
                 error_message = 'the gateway stopped while the call was running' \
                 WHERE status = 'running' AND stream_id IN \
                 (SELECT id FROM streams WHERE status = 'streaming' AND instance_id = $1)",
            )
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(
                "UPDATE streams SET status = 'interrupted', finished_at = $1, \
                 error = 'the gateway stopped while the stream was open' \
                 WHERE status = 'streaming' AND instance_id = $2",
            )
            .bind(now)
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        })
    }

    /// The stream's row, if it exists.
    pub async fn stream(&self, id: &str) -> Result<Option<StreamRow>, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as("SELECT * FROM streams WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The stream's messages in conversation order (the reply last).
    pub async fn stream_messages(&self, id: &str) -> Result<Vec<MessageRow>, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT position, role, content, body FROM messages \
                 WHERE stream_id = $1 ORDER BY position",
            )
            .bind(id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The stream's events in sequence order.
    pub async fn stream_events(&self, id: &str) -> Result<Vec<EventRow>, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT seq, kind, at_ms, payload FROM events WHERE stream_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(pool)
            .await?)
        })
    }
}
