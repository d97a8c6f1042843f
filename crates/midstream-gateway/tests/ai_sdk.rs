//! The Vercel AI SDK (the `ai` npm package, pinned in `tests/sdk/node/package.json`) against
//! the real gateway's UI message stream: `POST /v1/ui/chat` read with the SDK's own parser and
//! `readUIMessageStream` and through its `Chat`, and the resume `GET
//! /v1/ui/chat/{chatId}/stream` after the first response was cut. `scripts/test` installs the
//! package (`npm ci` in `tests/sdk/node`).
//!
//! The driver (`tests/sdk/node/drive.mjs`) prints what the SDK built as JSON and fails when the
//! SDK's schema rejects a chunk; the assertions are here. The raw protocol is checked without
//! Node at the end.

use std::path::PathBuf;
use std::time::Duration;

use midstream_testkit::{MockUpstream, MockWeather, Scenario, TestApp, run_driver};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs one `ai` case of the Node driver against `base_url` (ending in `/v1`) and returns its
/// JSON summary. (`tests/sdk.rs` has the same runner for the openai SDKs.)
async fn drive(case: &str, base_url: &str) -> Value {
    let root = root();
    assert!(
        root.join("tests/sdk/node/node_modules/ai").exists(),
        "the ai npm package is not installed: run ./scripts/test, which installs the pinned SDKs"
    );
    let script = root.join("tests/sdk/node/drive.mjs");
    let args = [script.as_os_str(), case.as_ref(), base_url.as_ref()];
    run_driver(&format!("ai {case}"), "node", args).await
}

/// The default rules, the weather tool on a mock, and a model whose text names a city slowly
/// enough that a reader can be cut off and resume mid-stream.
async fn gateway() -> (MockWeather, MockUpstream, TestApp) {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .default_rules()
        .weather_api(&weather)
        .upstream(mock.base_url())
        .start()
        .await;
    let pieces: Vec<String> = ["Sure. ", "The weather in Paris", " looks", " caf\u{e9}"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..40).map(|i| format!(" w{i}")))
        .collect();
    mock.set_default(Scenario::text(pieces).delay(Duration::from_millis(25)));
    (weather, mock, app)
}

/// The stream behind a UI message: the `start` chunk's `messageId` is `msg-{streamId}`.
fn stream_id(message: &Value) -> String {
    message["id"]
        .as_str()
        .and_then(|id| id.strip_prefix("msg-"))
        .unwrap_or_else(|| panic!("a message id msg-{{streamId}}: {message}"))
        .to_owned()
}

fn part_types(message: &Value) -> Vec<&str> {
    message["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("parts: {message}"))
        .iter()
        .filter_map(|p| p["type"].as_str())
        .collect()
}

/// `value` as JavaScript reads it: every number a double (`81.0` and `81` are one number).
fn as_js(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, Value::from),
        Value::Array(items) => items.iter().map(as_js).collect(),
        Value::Object(fields) => fields.iter().map(|(k, v)| (k.clone(), as_js(v))).collect(),
        other => other.clone(),
    }
}

fn no_errors(report: &Value, what: &str) {
    assert_eq!(
        report["invalid"],
        json!([]),
        "{what}: chunks the SDK rejected"
    );
    assert_eq!(report["errors"], json!([]), "{what}: errors the SDK raised");
}

/// Checks one final UI message against its stream's record: the same text, the weather tool
/// as a provider-executed tool part with the recorded input and result, and the intent as a
/// data part. Returns the stream id.
async fn matches_its_record(app: &TestApp, message: &Value, what: &str) -> String {
    let id = stream_id(message);
    let record = app.record(&id).await;
    assert_eq!(record["status"], "completed", "{what}: {record}");
    let text: String = message["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(text, record["response"]["text"], "{what}: the text");
    assert!(text.contains("The weather in Paris"), "{what}: {text}");

    let call = record["tool_calls"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["tool"] == "weather"))
        .unwrap_or_else(|| panic!("{what}: a recorded weather call: {record}"));
    assert_eq!(call["status"], "succeeded", "{what}: {call}");
    let parts = message["parts"].as_array().expect("parts");
    let tool = parts
        .iter()
        .find(|p| p["type"] == "tool-weather")
        .unwrap_or_else(|| panic!("{what}: a tool-weather part: {message}"));
    assert_eq!(tool["state"], "output-available", "{what}: {tool}");
    assert_eq!(tool["providerExecuted"], true, "{what}: {tool}");
    assert_eq!(tool["toolCallId"], call["id"], "{what}: {tool}");
    assert_eq!(tool["input"], call["arguments"], "{what}: {tool}");
    assert_eq!(
        as_js(&tool["output"]),
        as_js(&call["result"]),
        "{what}: {tool}"
    );
    assert_eq!(tool["output"]["city"], "Paris", "{what}: {tool}");

    let intent = parts
        .iter()
        .find(|p| p["type"] == "data-midstream-intent")
        .unwrap_or_else(|| panic!("{what}: a data-midstream-intent part: {message}"));
    assert_eq!(intent["data"]["rule"], "weather", "{what}: {intent}");
    id
}

#[tokio::test]
async fn read_ui_message_stream_and_chat_build_the_recorded_message() {
    let (_weather, _mock, app) = gateway().await;
    let report = drive("ui-chat", &app.url("/v1")).await;
    assert_eq!(report["sdk_version"], "7.0.185", "{report}");
    assert_eq!(report["response"]["status"], 200, "{report}");
    assert_eq!(report["response"]["ui_message_stream"], "v1", "{report}");
    no_errors(&report, "readUIMessageStream");
    let types: Vec<&str> = report["chunk_types"]
        .as_array()
        .expect("chunk types")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(types.first(), Some(&"start"), "{types:?}");
    assert_eq!(types.last(), Some(&"finish"), "{types:?}");
    let message = &report["message"];
    assert_eq!(message["role"], "assistant", "{message}");
    matches_its_record(&app, message, "readUIMessageStream").await;

    // The same through the SDK's Chat and DefaultChatTransport, as useChat runs it.
    let chat = &report["chat"];
    assert_eq!(chat["status"], "ready", "{chat}");
    assert_eq!(chat["error"], Value::Null, "{chat}");
    assert_eq!(chat["errors"], json!([]), "{chat}");
    assert_eq!(chat["roles"], json!(["user", "assistant"]), "{chat}");
    matches_its_record(&app, &chat["message"], "Chat").await;
    assert_eq!(
        part_types(&chat["message"]),
        part_types(message),
        "the same answer, the same parts"
    );
}

#[tokio::test]
async fn the_resume_get_gives_the_whole_message_after_a_cut_then_204() {
    let (_weather, _mock, app) = gateway().await;
    let full = drive("ui-chat", &app.url("/v1")).await;
    let report = drive("ui-resume", &app.url("/v1")).await;
    assert_eq!(report["response"]["status"], 200, "{report}");
    no_errors(&report, "the cut POST");
    let before = report["before"]["text"]
        .as_str()
        .expect("text before the cut");
    assert!(!before.is_empty(), "{report}");

    let resumed = &report["resumed"];
    assert_eq!(resumed["response"]["status"], 200, "{report}");
    assert_eq!(resumed["response"]["ui_message_stream"], "v1", "{report}");
    no_errors(resumed, "the resumed GET");
    let message = &resumed["message"];
    let id = matches_its_record(&app, message, "resumed").await;
    let text = resumed["text"].as_str().expect("text");
    assert!(
        text.starts_with(before) && text.len() > before.len(),
        "the cut came mid-stream and the resume replays it from the start: {before:?} then {text:?}"
    );
    // The same answer as a reader that was never cut (another stream of the same scenario).
    assert_eq!(part_types(message), part_types(&full["message"]));

    // Chat.resumeStream (useChat's `resume: true`) built the same message from the same GET.
    let chat = &report["chat"];
    assert_eq!(chat["status"], "ready", "{chat}");
    assert_eq!(chat["errors"], json!([]), "{chat}");
    assert_eq!(chat["roles"], json!(["user", "assistant"]), "{chat}");
    assert_eq!(&chat["message"], message, "Chat.resumeStream");

    // Nothing to resume once the stream ended: the first GET after `[DONE]` already says so
    // (the event log holds the `done`, whatever the record says yet).
    assert_eq!(
        report["after"]["status"], 204,
        "nothing to resume once {id} ended: {report}"
    );
    let after = app
        .get(&format!(
            "/v1/ui/chat/{}/stream",
            report["chat_id"].as_str().expect("chat id")
        ))
        .await;
    assert_eq!(after.status(), 204, "nothing to resume once {id} ended");
}

/// The wire format without the SDK: the header, `[DONE]` last, 204 and 400.
#[tokio::test]
async fn the_raw_ui_message_stream_protocol() {
    let (_weather, _mock, app) = gateway().await;
    let body = json!({
        "id": "raw-chat",
        "model": "gpt-4o-mini",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}],
    });
    let response = app
        .client
        .post(app.url("/v1/ui/chat"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("x-vercel-ai-ui-message-stream").as_deref(),
        Some("v1")
    );
    assert!(
        header("content-type").is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        header("content-type")
    );
    let text = response.text().await.expect("body");
    let frames: Vec<&str> = text
        .split("\n\n")
        .filter(|f| !f.is_empty() && !f.starts_with(':'))
        .collect();
    assert!(
        frames
            .iter()
            .all(|f| f.starts_with("data: ") && !f.contains('\n')),
        "one data line per frame: {text}"
    );
    assert_eq!(frames.last(), Some(&"data: [DONE]"), "{text}");
    assert_eq!(text.matches("data: [DONE]").count(), 1, "{text}");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(&f["data: ".len()..]).expect("JSON chunk"))
        .collect();
    assert_eq!(chunks[0]["type"], "start");
    let finish = chunks.last().expect("a finish chunk");
    assert_eq!(finish["type"], "finish");
    assert_eq!(finish["finishReason"], "stop");

    let unknown = app.get("/v1/ui/chat/no-such-chat/stream").await;
    assert_eq!(unknown.status(), 204);
    assert!(unknown.text().await.expect("body").is_empty());

    let missing = app
        .client
        .post(app.url("/v1/ui/chat"))
        .json(&json!({"id": "raw-chat", "model": "gpt-4o-mini"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 400);
    let error: Value = missing.json().await.expect("an error body");
    assert_eq!(error["error"]["code"], "invalid_request", "{error}");
}
