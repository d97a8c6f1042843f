//! Records that close, on SQLite and PostgreSQL: whatever a fault does to a stream, its row
//! ends in a final status and none of its tool calls stays `running`, before and after a clean
//! shutdown; the timings carry whole microseconds.

use std::time::Duration;

use midstream_testkit::{
    MockUpstream, MockWeather, Scenario, TestApp, TestAppBuilder, WeatherMode, collect_sse,
    stream_id,
};
use serde_json::{Value, json};

/// A prompt that starts the weather tool before the upstream is called.
fn weather_prompt() -> Value {
    json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "What's the weather in Berlin?"}]})
}

/// The record's tool calls as (status, error code).
fn calls(record: &Value) -> Vec<(String, Option<String>)> {
    record["tool_calls"]
        .as_array()
        .expect("tool calls")
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["error"]["code"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Microseconds at most: three decimals of a millisecond.
fn assert_whole_microseconds(value: &Value) {
    if let Some(ms) = value.as_f64() {
        let text = ms.to_string();
        let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "{text} carries more than microseconds");
    }
}

async fn refusals_after_a_prompt_tool_cancel_the_call(builder: TestAppBuilder) {
    let weather = MockWeather::start().await;
    // The call is still running when the upstream answers.
    weather.set_mode(WeatherMode::Slow(Duration::from_secs(30)));
    let mock = MockUpstream::start().await;
    let mut app = builder
        .default_rules()
        .weather_api(&weather)
        .upstream(mock.base_url())
        // The refusal itself, not the retries (tests/resilience.rs).
        .env("MIDSTREAM_UPSTREAM_RETRIES", "0")
        .start()
        .await;
    let mut ids = Vec::new();
    for (scenario, status) in [
        (
            Scenario::status(500, json!({"error": {"message": "boom"}})),
            502,
        ),
        (
            Scenario::status(429, json!({"error": {"message": "slow down"}})),
            429,
        ),
    ] {
        mock.push(scenario);
        let response = app.chat(&weather_prompt()).await;
        assert_eq!(response.status(), status);
        ids.push(stream_id(&response));
    }
    // Refused after streaming started: an in-band error.
    mock.push(Scenario::text(["It ", "is"]).then_drop());
    let response = app.chat(&weather_prompt()).await;
    ids.push(stream_id(&response));
    let collected = collect_sse(response).await;
    assert!(collected.error.is_some() || collected.content().len() < 10);

    for id in &ids {
        let record = app.record(id).await;
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(
            calls(&record),
            [("cancelled".to_owned(), Some("cancelled".to_owned()))],
            "{id}"
        );
        assert_whole_microseconds(&record["duration_ms"]);
        for call in record["tool_calls"].as_array().into_iter().flatten() {
            assert_whole_microseconds(&call["started_ms"]);
        }
    }
    app.assert_records_closed().await;
    app.stop().await.expect("a clean shutdown");
    let (streams, calls) = app.store.unclosed_records().await.expect("sweep");
    assert_eq!((streams, calls), (0, 0), "and still after the shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_refusal_after_a_prompt_tool_leaves_no_call_running() {
    refusals_after_a_prompt_tool_cancel_the_call(TestApp::builder()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_refusal_after_a_prompt_tool_leaves_no_call_running() {
    refusals_after_a_prompt_tool_cancel_the_call(TestApp::builder().postgres()).await;
}
