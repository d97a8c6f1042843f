//! The shared event log on Redis: two gateway processes (two apps here) sharing one Redis and
//! one PostgreSQL database, and what happens when Redis is unreachable.
//!
//! Redis must run (at MIDSTREAM_TEST_REDIS_URL, default redis://127.0.0.1:6379): these tests
//! fail, they do not skip, when it does not.

use std::time::Duration;

use midstream_testkit::{
    MockUpstream, Scenario, SseReader, TestApp, TestAppBuilder, read_events, stream_id, text_of,
};
use serde_json::{Value, json};

fn redis_url() -> String {
    let url = std::env::var("MIDSTREAM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let address = url
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    if std::net::TcpStream::connect_timeout(
        &address.parse().unwrap_or_else(|_| {
            panic!("MIDSTREAM_TEST_REDIS_URL {url:?} needs host:port as an IP address")
        }),
        Duration::from_secs(2),
    )
    .is_err()
    {
        panic!(
            "Redis is unreachable at {url}: start one (docker compose up -d redis, or redis-server) or set MIDSTREAM_TEST_REDIS_URL"
        );
    }
    url
}

/// A process of a deployment: Redis, the shared database, its own instance id.
fn process(mock: &MockUpstream, database_url: &str, instance: &str) -> TestAppBuilder {
    TestApp::builder()
        .upstream(mock.base_url())
        .env("DATABASE_URL", database_url)
        .env("MIDSTREAM_INSTANCE_ID", instance)
        .env("MIDSTREAM_REDIS_URL", redis_url())
}

fn words(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("w{i} ")).collect()
}

async fn start_stream(app: &TestApp) -> (String, String) {
    let response = app
        .client
        .post(app.url("/v1/streams"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["events_url"].as_str().expect("url").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_started_on_one_process_resumes_exactly_on_another() {
    let mock = MockUpstream::start().await;
    mock.set_default(Scenario::text(words(40)).delay(Duration::from_millis(10)));
    let database_url = midstream_store::testing::fresh_postgres_url().await;
    // No MIDSTREAM_STREAM_SECRET: the first process generates it and keeps it in the
    // database, so B accepts the URL A signed.
    let a = process(&mock, &database_url, "a").start().await;
    let b = process(&mock, &database_url, "b").start().await;
    let (id, events_url) = start_stream(&a).await;

    let first = read_events(&a.client, &a.url(&events_url), None, None, Some(5)).await;
    assert_eq!(first.status, 200);
    let last_seen = first.events.last().and_then(|e| e.id);
    let rest = read_events(&b.client, &b.url(&events_url), last_seen, None, None).await;
    assert_eq!(rest.status, 200, "{:?}", rest.error);
    let seen: Vec<_> = first.events.iter().chain(&rest.events).cloned().collect();
    let ids: Vec<u64> = seen.iter().filter_map(|e| e.id).collect();
    assert_eq!(
        ids,
        (0..seen.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_eq!(seen.last().map(|e| e.name.as_str()), Some("done"));
    let record = a.record(&id).await;
    assert_eq!(text_of(&seen), record["response"]["text"]);

    // From the start on B: the same events A's own subscribers get.
    let on_a = read_events(&a.client, &a.url(&events_url), None, None, None).await;
    let on_b = read_events(&b.client, &b.url(&events_url), None, None, None).await;
    assert_eq!(on_b.events, on_a.events);
    let after_done = read_events(
        &b.client,
        &b.url(&events_url),
        on_b.events.last().and_then(|e| e.id),
        None,
        None,
    )
    .await;
    assert_eq!(after_done.status, 204);
    let ready: Value = b.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["redis"], "reachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_sent_to_another_process_stops_the_stream() {
    let mock = MockUpstream::start().await;
    mock.set_default(Scenario::text(words(500)).delay(Duration::from_millis(10)));
    let database_url = midstream_store::testing::fresh_postgres_url().await;
    let a = process(&mock, &database_url, "a").start().await;
    let b = process(&mock, &database_url, "b").start().await;
    let (id, events_url) = start_stream(&a).await;
    let first = read_events(&b.client, &b.url(&events_url), None, None, Some(3)).await;
    assert_eq!(first.events.len(), 3);
    a.flush().await;
    let cancel_url = events_url.replace("/events?", "/cancel?");
    let cancel = b
        .client
        .post(b.url(&cancel_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(cancel.status(), 202);
    let rest = read_events(
        &b.client,
        &b.url(&events_url),
        first.events[2].id,
        None,
        None,
    )
    .await;
    let done = rest.events.last().expect("done");
    assert_eq!(done.name, "done");
    assert_eq!(done.data["status"], "cancelled");
    assert_eq!(a.record(&id).await["status"], "cancelled");
}

#[tokio::test]
async fn with_redis_unreachable_streams_go_on_and_readyz_says_so() {
    let mock = MockUpstream::start().await;
    mock.set_default(Scenario::text(words(10)));
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_REDIS_URL", "redis://127.0.0.1:9")
        .start()
        .await;
    let (id, events_url) = start_stream(&app).await;
    let events = read_events(&app.client, &app.url(&events_url), None, None, None).await;
    assert_eq!(events.status, 200);
    assert_eq!(events.events.last().map(|e| e.name.as_str()), Some("done"));
    assert_eq!(
        text_of(&events.events),
        app.record(&id).await["response"]["text"]
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "the gateway still serves");
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["redis"], "unreachable");
}

/// Between two events a follower on another process waits in a blocking read longer than a
/// command may take: it must not mistake the quiet for an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_is_followed_across_processes() {
    let mock = MockUpstream::start().await;
    mock.set_default(Scenario::text(words(3)).delay(Duration::from_millis(700)));
    let database_url = midstream_store::testing::fresh_postgres_url().await;
    let a = process(&mock, &database_url, "a").start().await;
    let b = process(&mock, &database_url, "b").start().await;
    let (id, events_url) = start_stream(&a).await;
    let on_b = read_events(&b.client, &b.url(&events_url), None, None, None).await;
    assert_eq!(on_b.status, 200);
    assert_eq!(on_b.events.last().map(|e| e.name.as_str()), Some("done"));
    assert_eq!(
        text_of(&on_b.events),
        a.record(&id).await["response"]["text"]
    );
    assert!(
        on_b.events.iter().all(|e| e.name != "snapshot"),
        "followed live, not rebuilt"
    );
}

/// A chat completion on A publishes nothing until followed; a follower on B asks A, through
/// Redis, to publish it, and reads it live from the shared log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_completion_is_followed_from_another_process() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(words(40)).delay(Duration::from_millis(15)));
    let database_url = midstream_store::testing::fresh_postgres_url().await;
    let a = process(&mock, &database_url, "a").start().await;
    let b = process(&mock, &database_url, "b").start().await;
    let response = a
        .chat(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let id = stream_id(&response);
    let mut chat = SseReader::new(response);
    let mut chat_text = String::new();
    while !chat_text.contains("w3 ") {
        let frame = chat.next_frame().await.expect("a frame").expect("SSE");
        chat_text.push_str(&frame.chat_content());
    }
    let url = b.url(&format!("/v1/streams/{id}/events"));
    let follower = tokio::spawn({
        let client = b.client.clone();
        async move { read_events(&client, &url, None, Some("any"), None).await }
    });
    while let Some(Ok(frame)) = chat.next_frame().await {
        chat_text.push_str(&frame.chat_content());
    }
    let on_b = follower.await.expect("follower");
    assert_eq!(on_b.status, 200);
    assert!(
        on_b.events.iter().all(|e| e.name != "snapshot"),
        "followed live, not rebuilt: {:?}",
        on_b.events
    );
    assert_eq!(on_b.events[0].id, Some(0));
    assert!(
        on_b.events[0].data["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("w0 w1 w2 w3 ")),
        "the text so far first: {:?}",
        on_b.events[0]
    );
    assert_eq!(text_of(&on_b.events), chat_text);
    assert_eq!(on_b.events.last().map(|e| e.name.as_str()), Some("done"));
}
