//! The official OpenAI SDKs (Python and Node, pinned in `tests/sdk/`) against the real
//! gateway. `scripts/test` installs them into `.venv` and `tests/sdk/node/node_modules`.
//!
//! The drivers print what the SDK saw as JSON; the assertions are here.

use std::path::PathBuf;

use midstream_testkit::{MockToolCall, MockUpstream, MockWeather, Scenario, TestApp, run_driver};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    Python,
    Node,
}

/// Runs one driver case against `base_url` and returns its JSON summary.
async fn drive(sdk: Sdk, case: &str, base_url: &str) -> Value {
    let root = root();
    let (program, script) = match sdk {
        Sdk::Python => (
            root.join(".venv/bin/python"),
            root.join("tests/sdk/python/drive.py"),
        ),
        Sdk::Node => (PathBuf::from("node"), root.join("tests/sdk/node/drive.mjs")),
    };
    let installed = match sdk {
        Sdk::Python => program.exists(),
        Sdk::Node => root.join("tests/sdk/node/node_modules/openai").exists(),
    };
    assert!(
        installed,
        "the {sdk:?} SDK is not installed: run ./scripts/test, which installs the pinned SDKs"
    );
    let args = [script.as_os_str(), case.as_ref(), base_url.as_ref()];
    run_driver(&format!("{sdk:?} {case}"), &program, args).await
}

fn event_types(summary: &Value) -> Vec<String> {
    summary["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// With the default rules on, the weather rule fires on the model's text: the SDKs must read
/// the same text as without events, and expose the events as an extra field.
async fn streams_and_completions_work(sdk: Sdk) {
    let mock = MockUpstream::start().await;
    let weather = MockWeather::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .default_rules()
        .weather_api(&weather)
        .start()
        .await;
    let base_url = app.url("/v1");
    let pieces = [
        "The ",
        "weather in Paris ",
        "is ",
        "fine ",
        "\u{2014} caf\u{e9}.",
    ];
    let expected: String = pieces.concat();

    mock.set_default(Scenario::text(pieces));
    // Prompt rules fire too (the drivers ask about Paris and a meeting with John).
    let expected_events = ["intent", "tool.started", "tool.result"];
    let has_all = |summary: &Value| {
        let types = event_types(summary);
        expected_events.iter().all(|t| types.iter().any(|x| x == t))
    };
    let naive = drive(sdk, "naive", &base_url).await;
    assert_eq!(naive["text"], expected.as_str(), "{sdk:?} naive loop");
    assert!(has_all(&naive), "{sdk:?} naive: {naive}");
    let weather = naive["events"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| e["type"] == "tool.result" && e["tool"] == "weather")
        })
        .map(|r| r["result"]["city"].clone());
    assert_eq!(weather, Some(Value::from("Paris")), "{sdk:?}: {naive}");

    let helper = drive(sdk, "helper", &base_url).await;
    assert_eq!(
        helper["text"],
        expected.as_str(),
        "{sdk:?} stream helper deltas"
    );
    assert_eq!(
        helper["final_text"],
        expected.as_str(),
        "{sdk:?} stream helper final completion"
    );
    assert!(has_all(&helper), "{sdk:?} helper: {helper}");

    let create = drive(sdk, "create", &base_url).await;
    assert_eq!(create["text"], expected.as_str(), "{sdk:?} non-streaming");
    assert!(has_all(&create), "{sdk:?} create: {create}");

    mock.push(Scenario::text(["partial ", "answer ", "then"]).drop_after(2));
    let error = drive(sdk, "error", &base_url).await;
    assert!(
        error["error"].is_string(),
        "{sdk:?}: an in-band error raises in the SDK: {error}"
    );
}

#[tokio::test]
async fn python_sdk() {
    streams_and_completions_work(Sdk::Python).await;
}

#[tokio::test]
async fn node_sdk() {
    streams_and_completions_work(Sdk::Node).await;
}

/// The Responses API through the SDKs, translated from a chat-completions upstream: the naive
/// event loop, the stream helper's final response, a non-streaming call, the gateway's events
/// (as `keepalive` events and in the final object), and the switch that turns them off; and
/// legacy completions, streamed and not.
async fn responses_work(sdk: Sdk) {
    let mock = MockUpstream::start().await;
    let weather = MockWeather::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .default_rules()
        .weather_api(&weather)
        .start()
        .await;
    let base_url = app.url("/v1");
    let pieces = [
        "The ",
        "weather in Paris ",
        "is ",
        "fine ",
        "\u{2014} caf\u{e9}.",
    ];
    let expected: String = pieces.concat();
    mock.set_default(Scenario::text(pieces));
    let has_events = |summary: &Value| {
        let types = event_types(summary);
        ["intent", "tool.started", "tool.result"]
            .iter()
            .all(|t| types.iter().any(|x| x == t))
    };
    let naive = drive(sdk, "responses_naive", &base_url).await;
    assert_eq!(naive["text"], expected.as_str(), "{sdk:?}: {naive}");
    assert_eq!(naive["final_text"], expected.as_str(), "{sdk:?}: {naive}");
    assert!(has_events(&naive), "{sdk:?} events as keepalive: {naive}");
    let types = naive["types"].as_array().expect("types");
    assert_eq!(types.first(), Some(&Value::from("response.created")));
    assert_eq!(types.last(), Some(&Value::from("response.completed")));

    let helper = drive(sdk, "responses_helper", &base_url).await;
    assert_eq!(helper["text"], expected.as_str(), "{sdk:?}: {helper}");
    assert_eq!(
        helper["final_text"],
        expected.as_str(),
        "{sdk:?} final response"
    );
    assert_eq!(helper["status"], "completed");
    assert!(has_events(&helper), "{sdk:?} helper: {helper}");

    let create = drive(sdk, "responses_create", &base_url).await;
    assert_eq!(create["text"], expected.as_str(), "{sdk:?} non-streaming");
    assert!(has_events(&create), "{sdk:?} create: {create}");

    // Legacy completions, translated the same way.
    for case in ["completions_naive", "completions_create"] {
        let legacy = drive(sdk, case, &base_url).await;
        assert_eq!(
            legacy["text"],
            expected.as_str(),
            "{sdk:?} {case}: {legacy}"
        );
        assert!(has_events(&legacy), "{sdk:?} {case}: {legacy}");
    }

    let off = drive(sdk, "responses_events_off", &base_url).await;
    assert_eq!(off["text"], expected.as_str());
    assert_eq!(off["events"], json!([]), "{sdk:?}: X-Midstream-Events: off");
    assert!(
        !off["types"]
            .as_array()
            .expect("types")
            .contains(&Value::from("keepalive"))
    );
}

#[tokio::test]
async fn python_sdk_responses() {
    responses_work(Sdk::Python).await;
}

#[tokio::test]
async fn node_sdk_responses() {
    responses_work(Sdk::Node).await;
}

/// The AI SDK's default OpenAI provider speaks the Responses API: `streamText` and
/// `generateText` against a chat-completions upstream, tool calls included.
#[tokio::test]
async fn ai_sdk_default_provider_responses() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder().upstream(mock.base_url()).start().await;
    let base_url = app.url("/v1");
    let pieces = ["Hello ", "from ", "the ", "model."];
    mock.push(Scenario::text(pieces));
    let streamed = drive(Sdk::Node, "ai-stream-text", &base_url).await;
    assert_eq!(streamed["text"], pieces.concat().as_str(), "{streamed}");
    assert_eq!(streamed["finish_reason"], "stop");
    assert_eq!(streamed["errors"], json!([]));
    assert!(
        streamed["usage"]["totalTokens"]
            .as_u64()
            .is_some_and(|t| t > 0),
        "{streamed}"
    );
    mock.push(Scenario::text(pieces));
    let generated = drive(Sdk::Node, "ai-generate-text", &base_url).await;
    assert_eq!(generated["text"], pieces.concat().as_str(), "{generated}");

    let call =
        || Scenario::tool_calls([MockToolCall::new("weather", ["{\"city\":", "\"Paris\"}"])]);
    mock.push(call());
    mock.push(call());
    let tools = drive(Sdk::Node, "ai-tool-calls", &base_url).await;
    let expected = json!([{"name": "weather", "input": {"city": "Paris"}}]);
    assert_eq!(tools["calls"], expected, "{tools}");
    assert_eq!(tools["streamed_calls"], expected, "{tools}");
    assert_eq!(tools["finish_reason"], "tool-calls");
}
