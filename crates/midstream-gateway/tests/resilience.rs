//! Upstream resilience over loopback: retries before the first byte, `Retry-After`, fallbacks,
//! the circuit breaker, and what is never retried (a 4xx, a failure after the first byte).
//! Every attempt is in the record.

use std::time::{Duration, Instant};

use midstream_testkit::{MockUpstream, Scenario, TestApp, TestAppBuilder, collect_sse, stream_id};
use serde_json::{Value, json};

/// An address nothing listens on: connecting is refused at once.
const DEAD_UPSTREAM: &str = "http://127.0.0.1:1/v1";

fn chat(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

/// Short backoff so retries take milliseconds; the breaker opens after `failures`.
fn builder(failures: u32) -> TestAppBuilder {
    TestApp::builder()
        .env("MIDSTREAM_UPSTREAM_RETRY_BASE_MS", "5")
        .env("MIDSTREAM_UPSTREAM_BREAKER_FAILURES", failures.to_string())
        .env("MIDSTREAM_UPSTREAM_BREAKER_COOLDOWN_SECS", "3600")
}

/// `fast` goes to `primary` and falls back to `backup`.
fn with_fallback(builder: TestAppBuilder, primary: &str, backup: &str) -> TestAppBuilder {
    builder.config_file(&format!(
        "[upstreams.primary]\nbase_url = \"{primary}\"\n\n\
         [upstreams.backup]\nbase_url = \"{backup}\"\n\n\
         [models]\nfast = {{ upstream = \"primary\", model = \"p-model\", \
         fallbacks = [{{ upstream = \"backup\", model = \"b-model\" }}] }}\n"
    ))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().expect("ASCII")
}

/// The record's `upstream.attempt` events: (upstream, outcome, status).
async fn attempts(app: &TestApp, stream_id: &str) -> Vec<(String, String, Option<u64>)> {
    let record = app.record(stream_id).await;
    record["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "upstream.attempt")
        .map(|e| {
            let event = &e["event"];
            (
                event["upstream"].as_str().unwrap_or_default().to_owned(),
                event["outcome"].as_str().unwrap_or_default().to_owned(),
                event["status"].as_u64(),
            )
        })
        .collect()
}

fn attempt(upstream: &str, outcome: &str, status: Option<u64>) -> (String, String, Option<u64>) {
    (upstream.to_owned(), outcome.to_owned(), status)
}

#[tokio::test]
async fn a_500_then_success_is_retried_and_the_client_sees_one_clean_stream() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::status(500, json!({"error": {"message": "boom"}})));
    mock.push(Scenario::status(503, json!({"error": {"message": "busy"}})));
    mock.push(Scenario::text(["Hello", " there"]));
    let app = builder(5).upstream(mock.base_url()).start().await;
    let response = app.chat(&chat("m")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-midstream-upstream"), "default");
    let id = stream_id(&response);
    let collected = collect_sse(response).await;
    assert_eq!(collected.content(), "Hello there");
    assert!(collected.ends_with_done());
    assert_eq!(mock.request_count(), 3);
    assert_eq!(
        attempts(&app, &id).await,
        [
            attempt("default", "failed", Some(500)),
            attempt("default", "failed", Some(503)),
            attempt("default", "ok", Some(200)),
        ]
    );
    assert_eq!(app.record(&id).await["status"], "completed");
}

#[tokio::test]
async fn retry_after_is_waited_for_and_a_longer_one_is_not() {
    let mock = MockUpstream::start().await;
    mock.push(
        Scenario::status(429, json!({"error": {"message": "slow down"}}))
            .header("retry-after", "0.3"),
    );
    mock.push(Scenario::text(["ok"]));
    let app = builder(5)
        .upstream(mock.base_url())
        .env("MIDSTREAM_UPSTREAM_RETRY_MAX_MS", "1000")
        .start()
        .await;
    let started = Instant::now();
    let response = app.chat(&chat("m")).await;
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the retry waited what Retry-After asked"
    );
    assert_eq!(collect_sse(response).await.content(), "ok");

    // Asked to wait longer than the policy allows: no retry, the 429 goes to the client.
    mock.push(
        Scenario::status(429, json!({"error": {"message": "later"}})).header("retry-after", "30"),
    );
    let response = app.chat(&chat("m")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn the_fallback_answers_when_the_primary_is_down_and_the_record_says_so() {
    let backup = MockUpstream::start().await;
    backup.push(Scenario::text(["from", " backup"]));
    let app = with_fallback(builder(0), DEAD_UPSTREAM, &backup.base_url())
        .start()
        .await;
    let response = app.chat(&chat("fast")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-midstream-upstream"), "backup");
    let id = stream_id(&response);
    assert_eq!(collect_sse(response).await.content(), "from backup");
    assert_eq!(backup.requests()[0].body["model"], "b-model");
    assert_eq!(
        attempts(&app, &id).await,
        [
            attempt("primary", "failed", None),
            attempt("primary", "failed", None),
            attempt("primary", "failed", None),
            attempt("backup", "ok", Some(200)),
        ],
        "the first try and two retries on the primary, then the fallback"
    );
    let record = app.record(&id).await;
    assert_eq!(
        (&record["upstream"], &record["upstream_model"]),
        (&json!("backup"), &json!("b-model"))
    );
}

#[tokio::test]
async fn a_failing_primary_opens_its_circuit_and_is_skipped() {
    let primary = MockUpstream::start().await;
    let backup = MockUpstream::start().await;
    for _ in 0..3 {
        primary.push(Scenario::status(502, json!({"error": {"message": "down"}})));
    }
    let app = with_fallback(
        builder(3).env("MIDSTREAM_UPSTREAM_RETRIES", "0"),
        &primary.base_url(),
        &backup.base_url(),
    )
    .start()
    .await;
    for _ in 0..3 {
        backup.push(Scenario::text(["b"]));
        let response = app.chat(&chat("fast")).await;
        assert_eq!(header(&response, "x-midstream-upstream"), "backup");
        collect_sse(response).await;
    }
    assert_eq!(primary.request_count(), 3);
    backup.push(Scenario::text(["b"]));
    let response = app.chat(&chat("fast")).await;
    let id = stream_id(&response);
    collect_sse(response).await;
    assert_eq!(primary.request_count(), 3, "the open circuit is not tried");
    assert_eq!(
        attempts(&app, &id).await,
        [
            attempt("primary", "skipped", None),
            attempt("backup", "ok", Some(200)),
        ]
    );
}

#[tokio::test]
async fn a_4xx_is_neither_retried_nor_sent_to_the_fallback() {
    let primary = MockUpstream::start().await;
    let backup = MockUpstream::start().await;
    primary.push(Scenario::status(
        400,
        json!({"error": {"message": "bad request"}}),
    ));
    let app = with_fallback(builder(5), &primary.base_url(), &backup.base_url())
        .start()
        .await;
    let response = app.chat(&chat("fast")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "x-midstream-upstream"), "primary");
    assert_eq!((primary.request_count(), backup.request_count()), (1, 0));
}

#[tokio::test]
async fn a_failure_after_the_first_byte_is_never_retried() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["one", " two", " three", " four"]).drop_after(2));
    let app = builder(5).upstream(mock.base_url()).start().await;
    let response = app.chat(&chat("m")).await;
    assert_eq!(response.status(), 200);
    let id = stream_id(&response);
    let collected = collect_sse(response).await;
    assert!(
        !collected.ends_with_done(),
        "it ends with the in-band error"
    );
    assert_eq!(mock.request_count(), 1);
    assert_eq!(app.record(&id).await["status"], "failed");
}
