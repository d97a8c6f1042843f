//! The `calendar` tool against real databases: a SQLite file, and a fresh PostgreSQL database
//! on the test server (`MIDSTREAM_TEST_POSTGRES_URL`, default `127.0.0.1:5432`; the test fails,
//! never skips, when it is unreachable).

// The scenario shared by both backends is a plain function, outside clippy's idea of a test.
#![expect(
    clippy::unwrap_used,
    reason = "a failed step fails the test by panicking"
)]

use std::sync::Arc;

use midstream_store::{Store, StoreOptions};
use midstream_tools::builtin::{CalendarConfig, CalendarTool};
use midstream_tools::{
    CallContext, Dispatcher, DispatcherConfig, Tool, ToolError, ToolRegistry, ToolSettings,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// Wednesday 4 June 2025, 12:00 UTC.
const NOW_MS: i64 = 1_749_038_400_000;

/// A SQLite database in a fresh directory, removed on drop.
struct SqliteFile {
    store: Store,
    _dir: TempDir,
}

impl SqliteFile {
    async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("calendar.db").display());
        let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
        SqliteFile { store, _dir: dir }
    }
}

fn calendar(store: Store, timezone: &str) -> Result<CalendarTool, ToolError> {
    CalendarTool::new(
        store,
        CalendarConfig {
            timezone: timezone.to_owned(),
            clock: Arc::new(|| NOW_MS),
        },
    )
}

async fn call(tool: &CalendarTool, args: Value) -> Result<Value, ToolError> {
    let ctx = CallContext {
        stream_id: Some("stream-1".into()),
    };
    tool.call(args, &ctx).await
}

fn invalid_message(result: Result<Value, ToolError>) -> String {
    match result {
        Err(ToolError::InvalidArguments(message)) => message,
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

/// Everything the calendar promises, against whichever database `store` is.
async fn scenario(store: Store) {
    let tool = calendar(store, "UTC").unwrap();

    let booked = call(
        &tool,
        json!({"action": "create", "with": "John", "when": "next Wednesday at 10 AM"}),
    )
    .await
    .unwrap();
    assert_eq!(booked["status"], "booked", "{booked}");
    let event = &booked["event"];
    assert_eq!(event["title"], "Meeting with John");
    assert_eq!(event["attendees"], json!(["John"]));
    assert_eq!(event["start"], "2025-06-11T10:00:00+00:00");
    assert_eq!(event["end"], "2025-06-11T10:30:00+00:00");
    assert_eq!(event["stream_id"], "stream-1");
    let first_id = event["id"].as_str().unwrap().to_owned();

    // The same meeting again (the same phrase, or the same slot said differently, names in
    // another case): already booked, the existing event returned, nothing inserted.
    for again in [
        json!({"action": "create", "with": "John", "when": "next Wednesday at 10 AM"}),
        json!({"action": "create", "with": "john", "title": "meeting with JOHN", "start": "2025-06-11T10:00:00Z", "duration_minutes": 30}),
    ] {
        let answer = call(&tool, again.clone()).await.unwrap();
        assert_eq!(answer["status"], "already_booked", "{again}: {answer}");
        assert_eq!(answer["event"], booked["event"], "{again}");
    }
    // Same title and time, other attendees, or a longer meeting: a different meeting, so a
    // conflict.
    for other in [
        json!({"action": "create", "with": "Ann", "title": "Meeting with John", "when": "next Wednesday at 10 AM"}),
        json!({"action": "create", "with": "John", "when": "next Wednesday at 10 AM", "duration_minutes": 60}),
    ] {
        let answer = call(&tool, other.clone()).await.unwrap();
        assert_eq!(answer["status"], "conflict", "{other}: {answer}");
        assert_eq!(answer["conflicts"][0]["id"], first_id.as_str(), "{other}");
    }

    // Overlapping: reported, not booked.
    let conflict = call(
        &tool,
        json!({"action": "create", "title": "Budget", "with": "Ann Lee and Bob", "start": "2025-06-11T10:15:00Z"}),
    )
    .await
    .unwrap();
    assert_eq!(conflict["status"], "conflict", "{conflict}");
    assert_eq!(conflict["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(conflict["conflicts"][0]["id"], first_id.as_str());
    assert_eq!(conflict["requested"]["title"], "Budget");
    assert_eq!(
        conflict["requested"]["attendees"],
        json!(["Ann Lee", "Bob"])
    );
    assert_eq!(conflict["requested"]["start"], "2025-06-11T10:15:00+00:00");

    // Back to back is not a conflict: events are [start, end).
    let adjacent = call(
        &tool,
        json!({"action": "create", "title": "Review", "start": "2025-06-11T10:30:00Z", "duration_minutes": 60}),
    )
    .await
    .unwrap();
    assert_eq!(adjacent["status"], "booked", "{adjacent}");
    assert_eq!(adjacent["event"]["end"], "2025-06-11T11:30:00+00:00");

    let busy = call(
        &tool,
        json!({"action": "check", "when": "next Wednesday at 10 AM", "duration_minutes": 90}),
    )
    .await
    .unwrap();
    assert_eq!(busy["status"], "conflict");
    assert_eq!(busy["conflicts"].as_array().unwrap().len(), 2);
    let free = call(&tool, json!({"action": "check", "when": "tomorrow at 3pm"}))
        .await
        .unwrap();
    assert_eq!(free["status"], "free", "{free}");
    assert_eq!(free["conflicts"], json!([]));

    let that_day = call(&tool, json!({"action": "list", "when": "next Wednesday"}))
        .await
        .unwrap();
    assert_eq!(that_day["from"], "2025-06-11T00:00:00+00:00");
    assert_eq!(that_day["to"], "2025-06-12T00:00:00+00:00");
    let titles: Vec<&str> = that_day["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Meeting with John", "Review"]);
    let next_week = call(&tool, json!({"action": "list"})).await.unwrap();
    assert_eq!(next_week["events"].as_array().unwrap().len(), 2);
    let before = call(
        &tool,
        json!({"action": "list", "from": "2025-06-01T00:00:00Z", "to": "tomorrow"}),
    )
    .await
    .unwrap();
    assert_eq!(
        before["to"], "2025-06-06T00:00:00+00:00",
        "a day as `to` includes that day"
    );
    assert_eq!(before["events"], json!([]));

    // Bookings through one process cannot both pass the conflict check.
    let racing = (0..5).map(|i| {
        call(
            &tool,
            json!({"action": "create", "title": format!("Race {i}"), "when": "Friday at 9am"}),
        )
    });
    let results = futures_util::future::join_all(racing).await;
    let statuses: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap()["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "booked").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "conflict").count(),
        4,
        "{statuses:?}"
    );

    // The same meeting asked five times at once: booked once, already booked four times.
    let twins = (0..5).map(|_| {
        call(
            &tool,
            json!({"action": "create", "with": "Maria", "when": "tomorrow at 3pm"}),
        )
    });
    let results: Vec<Value> = futures_util::future::join_all(twins)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let booked: Vec<&Value> = results.iter().filter(|r| r["status"] == "booked").collect();
    assert_eq!(booked.len(), 1, "{results:?}");
    for result in &results {
        assert!(
            result["status"] == "booked" || result["status"] == "already_booked",
            "{result}"
        );
        assert_eq!(result["event"]["id"], booked[0]["event"]["id"]);
    }
    let that_day = call(&tool, json!({"action": "list", "when": "tomorrow"}))
        .await
        .unwrap();
    assert_eq!(
        that_day["events"].as_array().unwrap().len(),
        1,
        "{that_day}"
    );
}

#[tokio::test]
async fn books_checks_and_lists_on_sqlite() {
    let db = SqliteFile::open().await;
    scenario(db.store.clone()).await;
}

#[tokio::test]
async fn books_checks_and_lists_on_postgres() {
    let url = midstream_store::testing::fresh_postgres_url().await;
    let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
    scenario(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn phrases_are_read_in_the_configured_time_zone() {
    let db = SqliteFile::open().await;
    let tool = calendar(db.store.clone(), "Europe/Paris").unwrap();
    let booked = call(
        &tool,
        json!({"action": "create", "title": "Standup", "when": "tomorrow at 3pm"}),
    )
    .await
    .unwrap();
    assert_eq!(booked["event"]["start"], "2025-06-05T15:00:00+02:00");
    assert_eq!(
        booked["event"]["starts_at_ms"], 1_749_128_400_000_i64,
        "13:00 UTC"
    );

    let tool = calendar(db.store.clone(), "+05:30").unwrap();
    let listed = call(&tool, json!({"action": "list", "when": "tomorrow"}))
        .await
        .unwrap();
    assert_eq!(listed["from"], "2025-06-05T00:00:00+05:30");
    assert_eq!(listed["events"][0]["start"], "2025-06-05T18:30:00+05:30");
}

#[tokio::test]
async fn an_unknown_time_zone_names_the_key() {
    let db = SqliteFile::open().await;
    let error = calendar(db.store.clone(), "Mars/Olympus").unwrap_err();
    assert_eq!(error.code(), "invalid_config");
    assert!(
        error.to_string().contains("tools.calendar.timezone"),
        "{error}"
    );
}

#[tokio::test]
async fn times_that_cannot_be_read_are_invalid_arguments() {
    let db = SqliteFile::open().await;
    let tool = calendar(db.store.clone(), "UTC").unwrap();

    let message =
        invalid_message(call(&tool, json!({"action": "create", "when": "sometime soon"})).await);
    assert!(message.contains("\"sometime soon\""), "{message}");
    let message =
        invalid_message(call(&tool, json!({"action": "create", "when": "tomorrow"})).await);
    assert!(message.contains("names a day but no time"), "{message}");
    let message = invalid_message(call(&tool, json!({"action": "check"})).await);
    assert!(message.contains("`when`"), "{message}");
    let message =
        invalid_message(call(&tool, json!({"action": "create", "start": "next tuesday"})).await);
    assert!(message.contains("RFC 3339"), "{message}");
    let message = invalid_message(
        call(
            &tool,
            json!({"action": "list", "from": "tomorrow", "to": "today"}),
        )
        .await,
    );
    assert!(message.contains("before it starts"), "{message}");
    let message = invalid_message(
        call(
            &tool,
            json!({"action": "list", "from": "2025-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}),
        )
        .await,
    );
    assert!(message.contains("a year"), "{message}");

    let nothing = call(
        &tool,
        json!({"action": "list", "from": "2000-01-01T00:00:00Z", "to": "2000-02-01T00:00:00Z"}),
    )
    .await
    .unwrap();
    assert_eq!(nothing["events"], json!([]));
}

#[tokio::test]
async fn the_dispatcher_checks_the_schema_and_passes_the_stream_id() {
    let db = SqliteFile::open().await;
    let mut registry = ToolRegistry::new();
    registry
        .register(
            Arc::new(calendar(db.store.clone(), "UTC").unwrap()),
            ToolSettings::default(),
        )
        .unwrap();
    let dispatcher = Dispatcher::new(registry, DispatcherConfig::default());
    let mut tools = dispatcher.stream(Some("stream-42".into()), CancellationToken::new());
    for bad in [
        json!({}),
        json!({"action": "delete"}),
        json!({"action": "create", "when": "tomorrow at 3pm", "duration_minutes": 0}),
        json!({"action": "create", "when": "tomorrow at 3pm", "room": "B"}),
    ] {
        tools.start("calendar", bad);
    }
    tools.start(
        "calendar",
        json!({"action": "create", "with": "Ann", "when": "Monday 9am"}),
    );
    let mut booked = None;
    while let Some(outcome) = tools.next_outcome().await {
        match outcome.result {
            Ok(value) => booked = Some(value),
            Err(error) => assert_eq!(error.code(), "invalid_arguments", "{error}"),
        }
    }
    let booked = booked.expect("the valid call booked");
    assert_eq!(booked["event"]["stream_id"], "stream-42");
    let stored = db
        .store
        .calendar_events_overlapping(0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].stream_id.as_deref(), Some("stream-42"));
}
