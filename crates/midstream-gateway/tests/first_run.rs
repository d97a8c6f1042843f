//! The first run, as a new user tries it: no upstream, no `[tools.weather]`, the shipped rules.
//! The demo model answers what was asked, the weather comes from built-in demo data (no
//! network), a meeting is booked once, and a model that does not exist is a 404.

use midstream_testkit::{
    Collected, MockUpstream, MockWeather, TestApp, TestAppBuilder, collect_sse,
};
use serde_json::{Value, json};

/// The gateway as `cargo run` starts it: the demo model and the default rules, nothing else.
fn first_run() -> TestAppBuilder {
    TestApp::builder().default_rules()
}

fn demo_request(prompt: &str) -> Value {
    json!({"model": "midstream-demo", "stream": true, "messages": [{"role": "user", "content": prompt}]})
}

/// The events of one tool, in order.
fn tool_events(collected: &Collected, tool: &str) -> Vec<Value> {
    collected
        .midstream_events()
        .into_iter()
        .filter(|e| e["tool"] == tool)
        .collect()
}

fn only_result(collected: &Collected, tool: &str) -> Value {
    let events = tool_events(collected, tool);
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool.result")
        .collect();
    assert_eq!(results.len(), 1, "one {tool} result: {events:#?}");
    assert!(
        events.iter().all(|e| e["type"] != "tool.error"),
        "{events:#?}"
    );
    results[0]["result"].clone()
}

#[tokio::test]
async fn the_weather_comes_from_demo_data_marked_as_such() {
    let app = first_run().start().await;
    let collected = collect_sse(
        app.chat(&demo_request("What's the weather in Lisbon?"))
            .await,
    )
    .await;
    assert!(collected.ends_with_done());
    assert!(
        collected.content().contains("the weather in Lisbon"),
        "the answer is about what was asked: {}",
        collected.content()
    );
    let weather = only_result(&collected, "weather");
    assert_eq!(weather["source"], "demo");
    assert_eq!(weather["city"], "Lisbon");
    assert_eq!(weather["country"], "Portugal");
    assert_eq!(weather["temperature_unit"], "celsius");
    assert!(weather["temperature"].is_f64(), "{weather}");
    assert!(weather["humidity"].is_f64(), "{weather}");
    assert!(weather["wind_speed_kmh"].is_f64(), "{weather}");
    assert!(
        weather["conditions"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{weather}"
    );
    assert!(
        tool_events(&collected, "calendar").is_empty(),
        "nothing was booked"
    );

    // Any name gets demo weather, the same each time: the public API is never asked (it would
    // not know this town, and the answer would differ from hour to hour).
    let mut body = demo_request("how is the weather in smallville");
    body["stream"] = json!(false);
    let first: Value = app.chat(&body).await.json().await.expect("json");
    let second: Value = app.chat(&body).await.json().await.expect("json");
    let result = |completion: &Value| {
        completion["midstream"]["events"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["type"] == "tool.result")
            .map(|e| e["result"].clone())
            .unwrap_or_else(|| panic!("a weather result: {completion:#}"))
    };
    assert_eq!(result(&first)["source"], "demo");
    assert_eq!(result(&first)["city"], "Smallville");
    assert_eq!(result(&first), result(&second));
}

#[tokio::test]
async fn a_configured_weather_url_is_always_the_real_api() {
    let weather = MockWeather::start().await;
    let app = first_run().weather_api(&weather).start().await;
    let collected = collect_sse(
        app.chat(&demo_request("What's the weather in Paris?"))
            .await,
    )
    .await;
    let result = only_result(&collected, "weather");
    assert_eq!(result.get("source"), None, "{result}");
    assert_eq!(weather.geocoding_calls(), 1);
    assert_eq!(weather.forecast_calls(), 1);
}

#[tokio::test]
async fn a_joke_triggers_no_tool() {
    let app = first_run().start().await;
    let response = app.chat(&demo_request("Tell me a joke")).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-midstream-stream-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let collected = collect_sse(response).await;
    assert!(collected.ends_with_done());
    let content = collected.content();
    assert!(content.starts_with("Here is one."), "{content}");
    assert_eq!(collected.midstream_events(), Vec::<Value>::new());
    let record = app.record(&id).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["intents"], json!([]));
    assert_eq!(record["tool_calls"], json!([]));
}

/// Books a meeting, then asks for the same meeting again.
async fn a_meeting_is_booked_once(app: TestApp) {
    let prompt = "Schedule a meeting with Maria tomorrow at 3pm";
    let first = collect_sse(app.chat(&demo_request(prompt)).await).await;
    assert!(
        first
            .content()
            .contains("schedule a meeting with Maria tomorrow at 3pm"),
        "{}",
        first.content()
    );
    let started = tool_events(&first, "calendar")
        .into_iter()
        .filter(|e| e["type"] == "tool.started")
        .count();
    assert_eq!(
        started, 1,
        "the prompt and the answer name the same meeting: one call"
    );
    let booked = only_result(&first, "calendar");
    assert_eq!(booked["status"], "booked", "{booked}");
    assert_eq!(booked["event"]["title"], "Meeting with Maria");
    assert_eq!(booked["event"]["attendees"], json!(["Maria"]));
    assert!(
        tool_events(&first, "weather").is_empty(),
        "no weather was asked for"
    );

    let second = collect_sse(app.chat(&demo_request(prompt)).await).await;
    let again = only_result(&second, "calendar");
    assert_eq!(again["status"], "already_booked", "{again}");
    assert_eq!(again["event"], booked["event"], "the existing event");

    let starts_at = booked["event"]["starts_at_ms"].as_i64().expect("ms");
    let events = app
        .store
        .calendar_events_overlapping(starts_at - 1, starts_at + 1)
        .await
        .expect("the calendar reads");
    assert_eq!(events.len(), 1, "booked once: {events:?}");
}

#[tokio::test]
async fn a_meeting_is_booked_once_on_sqlite() {
    a_meeting_is_booked_once(first_run().start().await).await;
}

#[tokio::test]
async fn a_meeting_is_booked_once_on_postgres() {
    a_meeting_is_booked_once(first_run().postgres().start().await).await;
}

#[tokio::test]
async fn an_unknown_model_is_404_model_not_found_naming_the_models() {
    let app = first_run()
        .config_file("[models]\nfast = { upstream = \"demo\", model = \"midstream-demo\" }\n")
        .start()
        .await;
    for stream in [true, false] {
        let mut body = demo_request("Tell me a joke");
        body["model"] = json!("gpt-9");
        body["stream"] = json!(stream);
        let response = app.chat(&body).await;
        assert_eq!(response.status(), 404, "stream: {stream}");
        assert!(
            response.headers().get("x-midstream-stream-id").is_none(),
            "nothing was recorded"
        );
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], "model_not_found");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let message = error["error"]["message"].as_str().expect("a message");
        assert!(
            message.starts_with(
                "The model `gpt-9` does not exist or you do not have access to it. \
                 Available models: midstream-demo, fast."
            ),
            "{message}"
        );
    }
    // The names that exist answer.
    for model in ["midstream-demo", "fast"] {
        let mut body = demo_request("Tell me a joke");
        body["model"] = json!(model);
        let collected = collect_sse(app.chat(&body).await).await;
        assert!(collected.ends_with_done(), "{model}");
        assert!(collected.content().starts_with("Here is one."), "{model}");
    }
}

#[tokio::test]
async fn with_a_real_upstream_model_names_are_the_upstreams_to_judge() {
    let mock = MockUpstream::start().await;
    let app = first_run().upstream(mock.base_url()).start().await;
    let mut body = demo_request("hi");
    body["model"] = json!("gpt-9");
    let response = app.chat(&body).await;
    assert_eq!(response.status(), 200);
    collect_sse(response).await;
    assert_eq!(mock.chat_completion_count(), 1);
}
