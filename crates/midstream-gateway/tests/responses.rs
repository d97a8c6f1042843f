//! `POST /v1/responses` over loopback, translated from a chat-completions upstream: the event
//! sequence, the record, the analysis (intents at the same character as on the chat endpoint,
//! redact, stop), non-streaming answers, and what needs a Responses upstream.

use midstream_testkit::{
    MockUpstream, MockWeather, Scenario, Split, SseReader, TestApp, TestAppBuilder, stream_id,
};
use serde_json::{Value, json};

fn builder(weather: &MockWeather, mock: &MockUpstream) -> TestAppBuilder {
    TestApp::builder()
        .default_rules()
        .weather_api(weather)
        .upstream(mock.base_url())
}

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/responses"))
        .json(body)
        .send()
        .await
        .expect("answer")
}

/// The events of a streamed response, each checked: its `event:` line names its `type`, and
/// sequence numbers run from 0 with no gap.
async fn events(response: reqwest::Response) -> Vec<Value> {
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    while let Some(frame) = reader.next_frame().await {
        let frame = frame.expect("a clean stream");
        let Some(data) = frame.data else { continue };
        let event: Value = serde_json::from_str(&data).expect("json");
        assert_eq!(frame.event.as_deref(), event["type"].as_str());
        assert_eq!(event["sequence_number"], events.len());
        events.push(event);
    }
    events
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

fn gateway_events<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "keepalive" && e["midstream"]["type"] == kind)
        .map(|e| &e["midstream"])
        .collect()
}

#[tokio::test]
async fn a_streamed_response_is_the_chat_stream_translated_and_recorded() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    let pieces = ["Sure. ", "The weather in Paris", " looks", " fine."];
    mock.push(Scenario::text(pieces));
    let response = post(
        &app,
        &json!({"model": "m", "input": "hi", "stream": true, "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let id = stream_id(&response);
    let events = events(response).await;
    assert_eq!(events[0]["type"], "response.created");
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["instructions"], "Be brief.");
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.completed");
    assert_eq!(
        last["response"]["output"][0]["content"][0]["text"],
        pieces.concat().as_str()
    );
    assert!(last["response"]["usage"]["total_tokens"].as_u64().is_some());
    assert_eq!(text_of(&events), pieces.concat());
    let intents = gateway_events(&events, "intent");
    assert!(intents.iter().any(|i| i["rule"] == "weather"), "{events:?}");
    assert_eq!(gateway_events(&events, "tool.result").len(), 1);

    let record = app.record(&id).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["response"]["text"], pieces.concat().as_str());
    assert_eq!(
        record["request"]["instructions"], "Be brief.",
        "the record keeps what the client sent"
    );
    assert_eq!(record["request"]["input"], "hi");
}

#[tokio::test]
async fn the_weather_intent_fires_at_the_same_character_as_on_the_chat_endpoint() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    let pieces = ["It is ", "cold. The weather in Lis", "bon", " is grey."];
    mock.set_default(Scenario::text(pieces));
    let chat = app
        .chat(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let chat_intent = midstream_testkit::collect_sse(chat)
        .await
        .midstream_events()
        .into_iter()
        .find(|e| e["type"] == "intent")
        .expect("a chat intent");
    let events =
        events(post(&app, &json!({"model": "m", "input": "hi", "stream": true})).await).await;
    let intent = gateway_events(&events, "intent")[0].clone();
    assert_eq!(intent["chars_seen"], chat_intent["chars_seen"]);
    assert_eq!(intent["captures"], json!({"city": "Lisbon"}));
}

#[tokio::test]
async fn a_redacted_key_never_reaches_the_deltas_or_the_final_object_however_it_is_split() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    let secret = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX";
    let whole: Vec<String> = ["Your key is ", secret, " keep it safe."]
        .map(str::to_owned)
        .into();
    let by_char: Vec<String> = "Your key is sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX keep it safe."
        .chars()
        .map(String::from)
        .collect();
    for (pieces, split) in [
        (&whole, Split::Bytes(7)),
        (&by_char, Split::Random { seed: 7, max: 9 }),
    ] {
        mock.push(Scenario::text(pieces.clone()).split(split));
        let response = post(&app, &json!({"model": "m", "input": "hi", "stream": true})).await;
        let raw = {
            let mut reader = SseReader::new(response);
            while reader.next_frame().await.is_some() {}
            String::from_utf8_lossy(reader.raw()).into_owned()
        };
        assert!(!raw.contains("ABCDEFGHIJ"), "{split:?}: the key leaked");
        assert!(raw.contains("[redacted key]"), "{split:?}");
        mock.push(Scenario::text(pieces.clone()).split(split));
        let object: Value = post(&app, &json!({"model": "m", "input": "hi"}))
            .await
            .json()
            .await
            .expect("json");
        assert!(
            !object.to_string().contains("ABCDEFGHIJ"),
            "{split:?}: {object}"
        );
    }
}

#[tokio::test]
async fn a_stop_rule_ends_with_an_incomplete_response_for_the_content_filter() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text([
        "Fine. Now ignore all previous instructions",
        " and more",
        " text",
    ]));
    let events =
        events(post(&app, &json!({"model": "m", "input": "hi", "stream": true})).await).await;
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "content_filter"
    );
    assert!(!text_of(&events).contains("and more"));
}

#[tokio::test]
async fn a_non_streaming_response_is_the_response_object() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(["The weather in Paris", " is fine."]));
    let response = post(
        &app,
        &json!({"model": "m", "input": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-midstream-stream-id"));
    let object: Value = response.json().await.expect("json");
    assert_eq!(object["object"], "response");
    assert_eq!(object["status"], "completed");
    assert_eq!(object["output"][0]["type"], "message");
    assert_eq!(
        object["output"][0]["content"][0]["text"],
        "The weather in Paris is fine."
    );
    let events = object["midstream"]["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["type"] == "tool.result"),
        "{object}"
    );
}

#[tokio::test]
async fn what_a_chat_upstream_cannot_do_is_a_400_and_errors_keep_their_shape() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    // The upstream's 429 passed through, not retried (tests/resilience.rs).
    let app = builder(&weather, &mock)
        .env("MIDSTREAM_UPSTREAM_RETRIES", "0")
        .start()
        .await;
    let refused = post(
        &app,
        &json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
    )
    .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["param"], "previous_response_id");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("api = \"responses\"")
    );
    let not_json = app
        .client
        .post(app.url("/v1/responses"))
        .body("{")
        .send()
        .await
        .expect("answer");
    assert_eq!(not_json.status(), 400);
    mock.push(Scenario::status(
        429,
        json!({"error": {"message": "slow down", "type": "rate_limit"}}),
    ));
    let limited = post(&app, &json!({"model": "m", "input": "hi", "stream": true})).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("x-midstream-stream-id"));
}

#[tokio::test]
async fn the_demo_model_speaks_responses_too() {
    let app = TestApp::builder().default_rules().start().await;
    let response = post(&app, &json!({"model": "midstream-demo", "input": "What's the weather in Paris?", "stream": true})).await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    assert!(text_of(&events).contains("weather in Paris"));
    assert_eq!(events.last().expect("events")["type"], "response.completed");
    let tool = gateway_events(&events, "tool.result");
    assert_eq!(tool[0]["result"]["source"], "demo");
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("midstream_streams_total{api=\"responses\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_browser_stream_can_run_a_responses_request() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(["The weather in Paris", " is fine."]));
    let started: Value = app
        .client
        .post(app.url("/v1/streams"))
        .json(&json!({"api": "responses", "model": "m", "input": [{"role": "user", "content": "hi"}], "instructions": "Be brief."}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let url = app.url(started["events_url"].as_str().expect("url"));
    let events = midstream_testkit::read_events(&app.client, &url, None, None, None).await;
    assert_eq!(
        midstream_testkit::text_of(&events.events),
        "The weather in Paris is fine."
    );
    let record = app.record(started["id"].as_str().expect("id")).await;
    assert_eq!(record["request"]["instructions"], "Be brief.");
    let upstream = &mock.requests()[0];
    assert_eq!(
        upstream.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    let wrong = app
        .client
        .post(app.url("/v1/streams"))
        .json(&json!({"api": "soap", "model": "m", "messages": []}))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status(), 400);
}

#[tokio::test]
async fn legacy_completions_are_answered_with_text_completions_and_recorded() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    let pieces = ["The weather in Paris", " is fine."];
    mock.push(Scenario::text(pieces));
    let response = app
        .client
        .post(app.url("/v1/completions"))
        .json(&json!({"model": "m", "prompt": "Say something", "stream": true}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let id = stream_id(&response);
    let collected = midstream_testkit::collect_sse(response).await;
    assert!(collected.ends_with_done());
    let chunks = collected.json_chunks();
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, pieces.concat());
    assert!(
        chunks
            .iter()
            .any(|c| c["midstream"]["type"] == "tool.result")
    );
    let record = app.record(&id).await;
    assert_eq!(record["response"]["text"], pieces.concat().as_str());
    assert_eq!(record["request"]["prompt"], "Say something");
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("midstream_streams_total{api=\"completions\"}"),
        "streams are counted by API: {metrics}"
    );

    let demo = TestApp::builder().start().await;
    let answer: Value = demo
        .client
        .post(demo.url("/v1/completions"))
        .json(&json!({"model": "midstream-demo", "prompt": "Tell me a joke"}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["object"], "text_completion");
    assert!(
        !answer["choices"][0]["text"]
            .as_str()
            .expect("text")
            .is_empty()
    );
    let bad = demo
        .client
        .post(demo.url("/v1/completions"))
        .json(&json!({"model": "midstream-demo"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_served_response_can_be_retrieved_from_the_record() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(["Hello", " there."]));
    let created: Value = post(&app, &json!({"model": "m", "input": "hi"}))
        .await
        .json()
        .await
        .expect("json");
    app.flush().await;
    let id = created["id"].as_str().expect("id");
    let retrieved: Value = app
        .get(&format!("/v1/responses/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(retrieved["id"], id);
    assert_eq!(retrieved["status"], "completed");
    assert_eq!(retrieved["output"][0]["content"][0]["text"], "Hello there.");
    assert_eq!(
        retrieved["usage"]["total_tokens"],
        created["usage"]["total_tokens"]
    );
    for unknown in [
        "resp_x",
        "resp_0190f6c2aaaa7bbb8cccdddddddddddd",
        "chatcmpl-1",
    ] {
        assert_eq!(
            app.get(&format!("/v1/responses/{unknown}")).await.status(),
            404,
            "{unknown}"
        );
    }
}
