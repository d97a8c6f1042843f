//! The record against real databases: SQLite (a file) and PostgreSQL (a fresh database).
//! Every test runs on both backends.

use std::time::Duration;

use midstream_store::testing::fresh_postgres_url;
use midstream_store::{
    HistoryQuery, IntentRecord, KeyOptions, NewCalendarEvent, NewMessage, NewStream, Recorder,
    RecorderConfig, Store, StoreOptions, StreamClose, StreamEvent, StreamStatus, ToolCallRecord,
    Usage,
};
use tempfile::TempDir;
use tokio_util::task::TaskTracker;

/// A store in a fresh directory (in a subdirectory the store must create), removed when the
/// returned `TempDir` is dropped.
async fn sqlite(instance: &str) -> (Store, String, TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}/nested/record.db", dir.path().display());
    (connect(&url, instance).await, url, dir)
}

async fn postgres(instance: &str) -> (Store, String) {
    let url = fresh_postgres_url().await;
    (connect(&url, instance).await, url)
}

async fn connect(url: &str, instance: &str) -> Store {
    Store::connect(
        url,
        StoreOptions {
            max_connections: 4,
            instance_id: instance.to_owned(),
        },
    )
    .await
    .expect("connect and migrate")
}

fn new_stream(id: &str) -> NewStream {
    NewStream {
        id: id.to_owned(),
        api_key_id: None,
        model: "m".into(),
        upstream: "demo".into(),
        upstream_model: "midstream-demo".into(),
        streamed: true,
        request: r#"{"model":"m"}"#.into(),
        messages: vec![NewMessage {
            role: "user".into(),
            content: Some("hi".into()),
            body: r#"{"role":"user","content":"hi"}"#.into(),
        }],
        created_at: 1,
    }
}

fn close(id: &str, status: StreamStatus) -> StreamClose {
    StreamClose {
        stream_id: id.to_owned(),
        status,
        response_text: "Hello".into(),
        finish_reason: Some("stop".into()),
        error: None,
        usage: Usage {
            prompt_tokens: Some(1),
            completion_tokens: Some(2),
            total_tokens: Some(3),
        },
        ttft_ms: Some(12.5),
        duration_ms: 40.0,
        finished_at: 2,
        reply: Some(NewMessage {
            role: "assistant".into(),
            content: Some("Hello".into()),
            body: "{}".into(),
        }),
        reply_position: 1,
        last_event_seq: None,
        answered_by: None,
    }
}

/// An `intent` event of stream `id`, `seq` ms after its start.
fn intent_event(id: &str, seq: i64, payload: &str) -> StreamEvent {
    StreamEvent {
        stream_id: id.to_owned(),
        seq,
        kind: "intent".into(),
        at_ms: seq as f64,
        payload: payload.to_owned(),
    }
}

fn recorder(store: &Store) -> Recorder {
    Recorder::spawn(
        store.clone(),
        RecorderConfig {
            flush_interval: Duration::from_millis(20),
            ..RecorderConfig::default()
        },
        &TaskTracker::new(),
    )
}

async fn a_stream_round_trips(store: Store) {
    let recorder = recorder(&store);
    let id = uuid::Uuid::now_v7().to_string();
    assert!(
        recorder.open(new_stream(&id)).await,
        "the row is committed and acknowledged"
    );
    let row = store
        .stream(&id)
        .await
        .expect("read")
        .expect("row exists before any token");
    assert_eq!(row.status, "streaming");
    for seq in 0..3 {
        recorder.event(intent_event(&id, seq, &format!(r#"{{"n":{seq}}}"#)));
    }
    // A retried event (same seq) must not be duplicated.
    recorder.event(intent_event(&id, 1, "{}"));
    recorder.close(close(&id, StreamStatus::Completed));
    assert!(recorder.flush().await);
    let row = store.stream(&id).await.expect("read").expect("row");
    assert_eq!(
        (
            row.status.as_str(),
            row.response_text.as_deref(),
            row.total_tokens,
            row.ttft_ms
        ),
        ("completed", Some("Hello"), Some(3), Some(12.5))
    );
    let events = store.stream_events(&id).await.expect("events");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let messages = store.stream_messages(&id).await.expect("messages");
    assert_eq!(
        messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
        vec!["user", "assistant"]
    );
    assert_eq!(
        (row.upstream.as_str(), row.upstream_model.as_str()),
        ("demo", "midstream-demo"),
        "a close without a fallback keeps the upstream"
    );
    let fallback = uuid::Uuid::now_v7().to_string();
    assert!(recorder.open(new_stream(&fallback)).await);
    recorder.close(StreamClose {
        answered_by: Some(("backup".into(), "b-model".into())),
        ..close(&fallback, StreamStatus::Completed)
    });
    assert!(recorder.flush().await);
    let row = store.stream(&fallback).await.expect("read").expect("row");
    assert_eq!(
        (row.upstream.as_str(), row.upstream_model.as_str()),
        ("backup", "b-model"),
        "the record names the fallback that answered"
    );
}

async fn streams_left_open_are_marked_interrupted_only_for_this_instance(
    url: String,
    store: Store,
) {
    let recorder = recorder(&store);
    let mine = uuid::Uuid::now_v7().to_string();
    assert!(recorder.open(new_stream(&mine)).await);
    let other_instance = connect(&url, "other").await;
    let theirs = uuid::Uuid::now_v7().to_string();
    assert!(
        self::recorder(&other_instance)
            .open(new_stream(&theirs))
            .await
    );
    recorder.tool_call(tool_call(&mine, "running"));
    assert!(recorder.flush().await);
    // The process "restarts" with the same instance id.
    let restarted = connect(&url, "a").await;
    assert_eq!(restarted.mark_interrupted().await.expect("update"), 1);
    assert_eq!(
        restarted.stream_tool_calls(&mine).await.expect("calls")[0].status,
        "interrupted",
        "a call running when the process stopped is interrupted with its stream"
    );
    assert_eq!(restarted.unclosed_records().await.expect("sweep"), (1, 0));
    assert_eq!(
        restarted
            .stream(&mine)
            .await
            .expect("read")
            .expect("row")
            .status,
        "interrupted"
    );
    assert_eq!(
        restarted
            .stream(&theirs)
            .await
            .expect("read")
            .expect("row")
            .status,
        "streaming"
    );
}

async fn a_bad_record_does_not_block_the_others(store: Store) {
    let recorder = recorder(&store);
    let good = uuid::Uuid::now_v7().to_string();
    // An event for a stream that does not exist violates the foreign key: the database rejects
    // it, and the writer isolates it instead of retrying the whole batch forever.
    recorder.event(StreamEvent {
        stream_id: "no-such-stream".into(),
        seq: 0,
        kind: "x".into(),
        at_ms: 0.0,
        payload: "{}".into(),
    });
    assert!(recorder.open(new_stream(&good)).await);
    recorder.close(close(&good, StreamStatus::Cancelled));
    assert!(recorder.flush().await);
    assert_eq!(
        store
            .stream(&good)
            .await
            .expect("read")
            .expect("row")
            .status,
        "cancelled"
    );
}

async fn api_keys_are_hashed_and_revocable(store: Store) {
    let before = store.api_key_generation().await.expect("generation");
    let created = store
        .create_api_key("ci", [7; 32], KeyOptions::default())
        .await
        .expect("create");
    let after_create = store.api_key_generation().await.expect("generation");
    assert!(after_create > before, "creating a key bumps the generation");
    assert!(created.secret.starts_with("msk_"));
    assert_eq!(store.count_active_api_keys().await.expect("count"), 1);
    let found = store
        .active_api_key(&created.secret)
        .await
        .expect("lookup")
        .expect("active");
    assert_eq!(found.id, created.key.id);
    assert!(
        store
            .active_api_key("msk_wrong")
            .await
            .expect("lookup")
            .is_none()
    );
    let again = store
        .import_api_key("ci", &created.secret)
        .await
        .expect("idempotent");
    assert_eq!(again.id, created.key.id);
    assert!(store.revoke_api_key(&created.key.id).await.expect("revoke"));
    assert!(
        store
            .active_api_key(&created.secret)
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(
        !store
            .revoke_api_key(&created.key.id)
            .await
            .expect("second revoke")
    );
    assert!(
        store.api_key_generation().await.expect("generation") > after_create,
        "revoking bumps the generation"
    );
    assert!(
        store
            .active_api_key_by_id(&created.key.id)
            .await
            .expect("lookup")
            .is_none()
    );
}

async fn api_keys_expire_and_carry_their_limits(store: Store) {
    let now = midstream_store::clock::now_ms();
    let limited = store
        .create_api_key(
            "limited",
            [8; 32],
            KeyOptions {
                expires_at: Some(now + 3_600_000),
                rpm: Some(30),
                max_streams: Some(2),
            },
        )
        .await
        .expect("create");
    let found = store
        .active_api_key(&limited.secret)
        .await
        .expect("lookup")
        .expect("active until it expires");
    assert_eq!(
        (found.expires_at, found.rpm, found.max_streams),
        (Some(now + 3_600_000), Some(30), Some(2))
    );
    let expired = store
        .create_api_key(
            "expired",
            [9; 32],
            KeyOptions {
                expires_at: Some(now - 1),
                ..KeyOptions::default()
            },
        )
        .await
        .expect("create");
    assert!(
        store
            .active_api_key(&expired.secret)
            .await
            .expect("lookup")
            .is_none(),
        "an expired key is refused"
    );
    assert!(!expired.key.is_active_at(now));
    assert_eq!(store.count_active_api_keys().await.expect("count"), 1);
}

async fn calendar_overlap_is_a_conflict_check(store: Store) {
    let event = |title: &str, starts_at, ends_at| NewCalendarEvent {
        title: title.into(),
        attendees: vec!["John".into()],
        starts_at,
        ends_at,
        stream_id: None,
    };
    store
        .insert_calendar_event(&event("standup", 1_000, 2_000))
        .await
        .expect("insert");
    store
        .insert_calendar_event(&event("review", 3_000, 4_000))
        .await
        .expect("insert");
    let titles = |events: Vec<midstream_store::CalendarEvent>| {
        events.into_iter().map(|e| e.title).collect::<Vec<_>>()
    };
    assert_eq!(
        titles(
            store
                .calendar_events_overlapping(1_500, 3_500)
                .await
                .expect("q")
        ),
        vec!["standup", "review"]
    );
    assert!(
        store
            .calendar_events_overlapping(2_000, 3_000)
            .await
            .expect("q")
            .is_empty(),
        "touching is not overlapping"
    );
    assert!(
        store
            .insert_calendar_event(&event("bad", 5, 5))
            .await
            .is_err(),
        "an event must end after it starts"
    );
}

fn tool_call(id: &str, status: &str) -> ToolCallRecord {
    ToolCallRecord {
        stream_id: id.to_owned(),
        call_id: "call_1".into(),
        tool: "weather".into(),
        source: "intent".into(),
        intent_id: Some("int_1".into()),
        model_call_id: None,
        arguments: r#"{"city":"Paris"}"#.into(),
        status: status.into(),
        result: (status == "succeeded").then(|| r#"{"temperature":21}"#.into()),
        error_code: None,
        error_message: None,
        cached: (status != "running").then_some(false),
        started_ms: 5.0,
        duration_ms: (status != "running").then_some(30.0),
    }
}

async fn intents_and_tool_calls_are_queryable(store: Store) {
    let recorder = recorder(&store);
    let id = uuid::Uuid::now_v7().to_string();
    assert!(recorder.open(new_stream(&id)).await);
    recorder.intent(IntentRecord {
        stream_id: id.clone(),
        intent_id: "int_1".into(),
        rule: "weather".into(),
        scope: "output".into(),
        action: "tool".into(),
        matched: Some("weather in Paris".into()),
        captures: r#"{"city":"Paris"}"#.into(),
        at_ms: 4.5,
        chars_seen: 40,
    });
    // Start and end in the same batch: one row, in its final state.
    recorder.tool_call(tool_call(&id, "running"));
    recorder.tool_call(tool_call(&id, "succeeded"));
    assert!(recorder.flush().await);
    let calls = store.stream_tool_calls(&id).await.expect("calls");
    assert_eq!(calls, vec![tool_call(&id, "succeeded")]);
    // Start and end in different batches.
    let second = ToolCallRecord {
        call_id: "call_2".into(),
        ..tool_call(&id, "running")
    };
    recorder.tool_call(second.clone());
    assert!(recorder.flush().await);
    assert_eq!(
        store.stream_tool_calls(&id).await.expect("calls")[1].status,
        "running"
    );
    recorder.tool_call(ToolCallRecord {
        status: "failed".into(),
        error_code: Some("timeout".into()),
        ..second
    });
    assert!(recorder.flush().await);
    let calls = store.stream_tool_calls(&id).await.expect("calls");
    assert_eq!(
        (calls[1].status.as_str(), calls[1].error_code.as_deref()),
        ("failed", Some("timeout"))
    );
    let intents = store.stream_intents(&id).await.expect("intents");
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0].captures, r#"{"city":"Paris"}"#);
}

/// However a stream ends, a call it left `running` ends `cancelled` with it (the gateway
/// aborts a stream's calls when the stream ends and does not wait for their outcomes).
async fn a_closed_stream_leaves_no_call_running(store: Store) {
    let recorder = recorder(&store);
    for status in [
        StreamStatus::Failed,
        StreamStatus::Cancelled,
        StreamStatus::Interrupted,
    ] {
        let id = uuid::Uuid::now_v7().to_string();
        assert!(recorder.open(new_stream(&id)).await);
        recorder.tool_call(tool_call(&id, "running"));
        recorder.close(close(&id, status));
        assert!(recorder.flush().await);
        let calls = store.stream_tool_calls(&id).await.expect("calls");
        assert_eq!(
            (calls[0].status.as_str(), calls[0].error_code.as_deref()),
            ("cancelled", Some("cancelled")),
            "{status:?}"
        );
    }
    assert_eq!(store.unclosed_records().await.expect("sweep"), (0, 0));
}

/// More records per table than one statement takes: the batch is written in several parts
/// per table, and all of it lands.
async fn a_batch_larger_than_a_statement_lands_whole(store: Store) {
    let recorder = recorder(&store);
    let ids: Vec<String> = (0..250).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let receipts: Vec<_> = ids.iter().map(|id| recorder.open(new_stream(id))).collect();
    for receipt in receipts {
        assert!(receipt.await, "every row is acknowledged");
    }
    for id in &ids {
        for seq in 0..3 {
            recorder.event(intent_event(id, seq, "{}"));
        }
        recorder.close(close(id, StreamStatus::Completed));
    }
    assert!(recorder.flush().await);
    for id in &ids {
        let row = store.stream(id).await.expect("read").expect("row");
        assert_eq!(row.status, "completed", "stream {id}");
        assert_eq!(store.stream_events(id).await.expect("events").len(), 3);
        assert_eq!(store.stream_messages(id).await.expect("messages").len(), 2);
    }
}

/// A row that arrives while a long batch is being written is committed between two of the
/// batch's statements, not after the whole batch: its receipt resolves while the flush that
/// waits for the batch is still pending. The batch stays below the size that makes a batch due
/// on its own, so the flush is what starts it and is acknowledged only when all of it is written;
/// at 7.6 MB it takes far longer to write than the 3 ms before the row arrives. (Had the row arrived before the batch started, it
/// would be written first and the assertion holds as well; it fails only if a row waits for a
/// whole batch.)
async fn a_row_does_not_wait_for_a_whole_batch(store: Store) {
    let recorder = Recorder::spawn(
        store.clone(),
        RecorderConfig {
            flush_interval: Duration::from_secs(60),
            ..RecorderConfig::default()
        },
        &TaskTracker::new(),
    );
    let first = uuid::Uuid::now_v7().to_string();
    assert!(recorder.open(new_stream(&first)).await);
    let payload = format!(r#"{{"text":"{}"}}"#, "x".repeat(4_000));
    for seq in 0..1_900 {
        recorder.event(intent_event(&first, seq, &payload));
    }
    let flush = tokio::spawn({
        let recorder = recorder.clone();
        async move { recorder.flush().await }
    });
    tokio::time::sleep(Duration::from_millis(3)).await;
    let late = uuid::Uuid::now_v7().to_string();
    assert!(recorder.open(new_stream(&late)).await);
    assert!(
        !flush.is_finished(),
        "the row waited for the whole batch of 1,900 events"
    );
    assert!(flush.await.expect("flush task"));
    assert_eq!(
        store.stream_events(&first).await.expect("events").len(),
        1_900
    );
    assert!(store.stream(&late).await.expect("read").is_some());
}

/// The history lists a key's streams newest first, a page at a time, with the last user
/// message and the start of the reply; open mode (no key) lists them all.
async fn the_history_pages_a_keys_streams_newest_first(store: Store) {
    let recorder = recorder(&store);
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = uuid::Uuid::now_v7().to_string();
        let mut stream = new_stream(&id);
        stream.api_key_id = Some(if n == 2 { "other" } else { "key" }.to_owned());
        stream.messages[0].content = Some(format!("prompt {n}"));
        assert!(recorder.open(stream).await);
        recorder.close(StreamClose {
            last_event_seq: Some(7),
            ..close(&id, StreamStatus::Completed)
        });
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(recorder.flush().await);
    let page = |before: Option<String>, key: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .stream_history(&HistoryQuery {
                    api_key_id: key,
                    before_id: before.as_deref(),
                    limit: 2,
                })
                .await
                .expect("history")
        }
    };
    let first = page(None, Some("key")).await;
    let second = page(Some(first[1].id.clone()), Some("key")).await;
    let listed: Vec<&str> = first.iter().chain(&second).map(|s| s.id.as_str()).collect();
    assert_eq!(listed, [&ids[4], &ids[3], &ids[1], &ids[0]]);
    assert_eq!(first[0].prompt.as_deref(), Some("prompt 4"));
    assert_eq!(first[0].preview.as_deref(), Some("Hello"));
    assert_eq!(first[0].status, "completed");
    assert!(page(Some(ids[0].clone()), Some("key")).await.is_empty());
    assert_eq!(
        page(None, None).await[0].id,
        ids[4],
        "open mode lists every stream"
    );
    let row = store.stream(&ids[0]).await.expect("read").expect("row");
    assert_eq!(row.last_event_seq, Some(7));
}

/// The first value stored for a setting is the one every later caller reads.
async fn a_setting_keeps_its_first_value(store: Store) {
    let first = store
        .setting_or_insert("secret", "one")
        .await
        .expect("insert");
    let second = store
        .setting_or_insert("secret", "two")
        .await
        .expect("read");
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let (store, _, _dir) = super::sqlite("a").await; super::$name(store).await; })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::postgres("a").await.0).await; })*
        }
    };
}

on_both_backends!(
    a_stream_round_trips,
    a_batch_larger_than_a_statement_lands_whole,
    a_row_does_not_wait_for_a_whole_batch,
    intents_and_tool_calls_are_queryable,
    a_bad_record_does_not_block_the_others,
    api_keys_are_hashed_and_revocable,
    api_keys_expire_and_carry_their_limits,
    a_closed_stream_leaves_no_call_running,
    calendar_overlap_is_a_conflict_check,
    the_history_pages_a_keys_streams_newest_first,
    a_setting_keeps_its_first_value
);

#[tokio::test]
async fn sqlite_interrupted_streams() {
    let (store, url, _dir) = sqlite("a").await;
    streams_left_open_are_marked_interrupted_only_for_this_instance(url, store).await;
}

#[tokio::test]
async fn postgres_interrupted_streams() {
    let (store, url) = postgres("a").await;
    streams_left_open_are_marked_interrupted_only_for_this_instance(url, store).await;
}

/// PostgreSQL refuses a NUL character in text, SQLite stores it: a stream row PostgreSQL
/// refuses makes the fast path fail for every row sent with it. Those rows are then written by
/// the batch, record by record: the others land, with their messages, and only the refused one
/// is dropped.
#[tokio::test]
async fn postgres_a_refused_row_does_not_lose_the_rows_sent_with_it() {
    let (store, _) = postgres("a").await;
    let recorder = recorder(&store);
    let refused = uuid::Uuid::now_v7().to_string();
    let kept = uuid::Uuid::now_v7().to_string();
    let refused_receipt = recorder.open(NewStream {
        model: "nul\0model".into(),
        ..new_stream(&refused)
    });
    let kept_receipt = recorder.open(new_stream(&kept));
    assert!(
        !refused_receipt.await,
        "a refused row is reported as not written"
    );
    // Sent together, the kept row shared the refused statement (receipt false) or came after
    // it (true): written either way.
    let _shared_the_statement = !kept_receipt.await;
    recorder.close(close(&kept, StreamStatus::Completed));
    assert!(recorder.flush().await);
    let row = store.stream(&kept).await.expect("read").expect("row");
    assert_eq!(row.status, "completed");
    let roles: Vec<String> = store
        .stream_messages(&kept)
        .await
        .expect("messages")
        .into_iter()
        .map(|m| m.role)
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant"],
        "the request's message and the reply"
    );
    assert!(store.stream(&refused).await.expect("read").is_none());
}

/// The database goes away while records keep coming: they wait in the buffer and are all
/// written once it is back.
#[tokio::test]
async fn postgres_outage_loses_nothing() {
    let url = fresh_postgres_url().await;
    let store = connect(&url, "a").await;
    let recorder = recorder(&store);
    let id = uuid::Uuid::now_v7().to_string();
    assert!(recorder.open(new_stream(&id)).await);
    let db = url.rsplit('/').next().expect("db name").to_owned();
    let admin = connect_admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"
    )))
    .execute(&admin)
    .await
    .expect("block");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&db)
        .execute(&admin)
        .await
        .expect("terminate");
    for seq in 0..50 {
        recorder.event(intent_event(&id, seq, "{}"));
    }
    recorder.close(close(&id, StreamStatus::Completed));
    // Let the writer fail at least once while the database is unreachable.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.ping().await.is_err(),
        "the database is really unreachable"
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"
    )))
    .execute(&admin)
    .await
    .expect("unblock");
    assert!(
        tokio::time::timeout(Duration::from_secs(30), recorder.flush())
            .await
            .expect("flushes after recovery")
    );
    assert_eq!(store.stream_events(&id).await.expect("events").len(), 50);
    assert_eq!(
        store.stream(&id).await.expect("read").expect("row").status,
        "completed"
    );
}

async fn connect_admin() -> sqlx::PgPool {
    let admin = std::env::var("MIDSTREAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| midstream_store::testing::DEFAULT_ADMIN_URL.to_owned());
    sqlx::PgPool::connect(&admin)
        .await
        .expect("admin connection")
}

/// Every stream's row is committed on its own, and each index it enters is one more page
/// written: the status and key indexes hold only live and keyed streams, and the queries they
/// exist for still use them.
#[tokio::test]
async fn sqlite_stream_indexes_stay_usable_for_their_queries() {
    use sqlx::Connection;

    let (_store, url, _dir) = sqlite("a").await;
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open");
    for (query, index) in [
        (
            "UPDATE streams SET status = 'interrupted' \
             WHERE status = 'streaming' AND instance_id = 'a'",
            "streams_live",
        ),
        (
            "SELECT id FROM streams WHERE api_key_id = 'key_1' ORDER BY created_at",
            "streams_by_key",
        ),
    ] {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {query}")))
                .fetch_all(&mut connection)
                .await
                .expect("plan");
        assert!(
            plan.iter().any(|(_, _, _, step)| step.contains(index)),
            "{query}: {plan:?}"
        );
    }
}
