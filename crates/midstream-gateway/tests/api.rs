//! The HTTP surface: error shapes and statuses, authentication, limits, health and metrics.

use proptest::prelude::*;
use serde_json::{Value, json};

use midstream_testkit::app::repository_root;
use midstream_testkit::{TestApp, collect_sse, stream_id};

async fn post_raw(app: &TestApp, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let body = response.json().await.expect("every error is JSON");
    (status, body)
}

fn assert_openai_error(body: &Value) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.get("code").is_some() && error.get("param").is_some(),
        "{body}"
    );
}

#[tokio::test]
async fn bad_requests_are_400_in_openai_shape() {
    let app = TestApp::start().await;
    for (body, param) in [
        ("{not json", Value::Null),
        (r#"{"model": "m"}"#, json!("messages")),
        (r#"{"model": "m", "messages": "hello"}"#, json!("messages")),
        (
            r#"{"model": 1, "messages": [{"role": "user", "content": "x"}]}"#,
            json!("model"),
        ),
        (
            r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}"#,
            json!("stream"),
        ),
    ] {
        let (status, error) = post_raw(&app, body).await;
        assert_eq!(status, 400, "{body}");
        assert_openai_error(&error);
        assert_eq!(error["error"]["param"], param, "{body}");
    }
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_huge_bodies_have_json_errors() {
    let app = TestApp::builder()
        .env("MIDSTREAM_MAX_BODY_BYTES", "1024")
        .start()
        .await;
    let response = app.get("/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert_openai_error(&response.json().await.expect("json"));

    let response = app.get("/v1/chat/completions").await;
    assert_eq!(response.status(), 405);
    assert_openai_error(&response.json().await.expect("json"));

    let huge = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(4096)}]})
        .to_string();
    let (status, error) = post_raw(&app, huge).await;
    assert_eq!(status, 413);
    assert_openai_error(&error);

    let response = app.get("/v1/streams/not-a-stream").await;
    assert_eq!(response.status(), 404);
    let response = app
        .get("/v1/streams/01900000-0000-7000-8000-000000000000")
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn too_many_concurrent_streams_is_503_with_retry_after() {
    let app = TestApp::builder()
        .env("MIDSTREAM_MAX_STREAMS", "1")
        .env("MIDSTREAM_DEMO_TOKEN_DELAY_MS", "50")
        .start()
        .await;
    let request = json!({"model": "midstream-demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let first = app.chat(&request).await;
    assert_eq!(first.status(), 200);
    let second = app.chat(&request).await;
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_openai_error(&second.json().await.expect("json"));
    drop(first);
}

#[tokio::test]
async fn past_the_process_wide_requests_per_minute_is_503_with_retry_after() {
    let app = TestApp::builder()
        .env("MIDSTREAM_MAX_RPM", "2")
        .start()
        .await;
    for _ in 0..2 {
        assert_eq!(app.get("/v1/models").await.status(), 200);
    }
    let refused = app.get("/v1/models").await;
    assert_eq!(refused.status(), 503);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!((1..=31).contains(&wait), "{wait}");
    let body: Value = refused.json().await.expect("json");
    assert_openai_error(&body);
    assert_eq!(body["error"]["code"], "overloaded");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "only /v1 counts against it"
    );
}

#[tokio::test]
async fn keys_are_required_once_one_exists_and_streams_are_private_to_their_key() {
    let app = TestApp::builder()
        .env("MIDSTREAM_API_KEYS", "msk_alpha, msk_beta")
        .start()
        .await;
    let request = json!({"model": "midstream-demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let response = app.chat(&request).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"]["type"],
        "authentication_error"
    );

    let send = |key: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&request)
            .send()
    };
    assert_eq!(send("msk_wrong").await.expect("answer").status(), 401);
    let response = send("msk_alpha").await.expect("answer");
    assert_eq!(response.status(), 200);
    let id = stream_id(&response);
    collect_sse(response).await;
    app.flush().await;
    let get = |key: &'static str| {
        app.client
            .get(app.url(&format!("/v1/streams/{id}")))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(get("msk_alpha").await.expect("answer").status(), 200);
    assert_eq!(
        get("msk_beta").await.expect("answer").status(),
        404,
        "another key cannot see it"
    );
    // Health stays open for probes.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn the_gateway_refuses_to_run_open_on_a_public_address() {
    let error = TestApp::builder()
        .env("MIDSTREAM_ADDR", "0.0.0.0:0")
        .try_start()
        .await
        .expect_err("refused");
    assert!(
        error.contains("refusing to run without API keys"),
        "{error}"
    );
    let app = TestApp::builder()
        .env("MIDSTREAM_ADDR", "0.0.0.0:0")
        .env("MIDSTREAM_API_KEYS", "msk_x")
        .try_start()
        .await
        .expect("with a key it starts");
    drop(app);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::start().await;
    let health: Value = app.get("/healthz").await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready, json!({"status": "ready", "database": "sqlite"}));

    let request = json!({"model": "midstream-demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    collect_sse(app.chat(&request).await).await;
    let metrics = app.get("/metrics").await.text().await.expect("text");
    for name in [
        "midstream_http_requests_total{",
        "midstream_active_streams",
        "midstream_ttft_seconds_bucket",
        "midstream_recorder_queue_depth",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(
        metrics.contains(r#"route="/v1/chat/completions""#),
        "requests are counted by route"
    );

    app.store.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503, "the database is gone");
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root() {
    let app = TestApp::start().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert!(
        content_type
            .as_deref()
            .is_some_and(|value| value.starts_with("text/html")),
        "{content_type:?}"
    );
    let served = response.bytes().await.expect("the body");
    let on_disk = std::fs::read(repository_root().join("web/index.html")).expect("web/index.html");
    assert!(
        served == on_disk,
        "/ serves web/index.html as it is on disk"
    );
}

/// One gateway for all property cases (a runtime of its own outlives each case).
fn shared_app() -> &'static (tokio::runtime::Runtime, TestApp) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, TestApp)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let app = runtime.block_on(TestApp::start());
        (runtime, app)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the client sends, the answer is never a 5xx.
    #[test]
    fn no_request_body_causes_a_server_error(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "[ -~]{0,200}".prop_map(String::into_bytes),
        (any::<Option<bool>>(), prop::collection::vec("(system|user|assistant|tool|x)", 0..4), "[ -~]{0,20}")
            .prop_map(|(stream, roles, text)| {
                let messages: Vec<Value> = roles.iter().map(|r| json!({"role": r, "content": text})).collect();
                json!({"model": text, "stream": stream, "messages": messages}).to_string().into_bytes()
            }),
    ]) {
        let (runtime, app) = shared_app();
        runtime.block_on(async {
            let response = app
                .client
                .post(app.url("/v1/chat/completions"))
                .body(body)
                .send()
                .await
                .expect("answer");
            let status = response.status();
            let _ = response.bytes().await;
            prop_assert!(!status.is_server_error(), "status {status}");
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn the_example_configuration_starts_a_gateway() {
    let example = std::fs::read_to_string(repository_root().join("config/midstream.example.toml"))
        .expect("the example file");
    let app = TestApp::builder()
        .default_rules()
        .config_file(&example)
        .env("OPENAI_API_KEY", "sk-example")
        .try_start()
        .await
        .expect("the example configuration is valid");
    let models: Value = app.get("/v1/models").await.json().await.expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"fast") && ids.contains(&"demo"), "{ids:?}");
}

#[tokio::test]
async fn a_rule_calling_an_unknown_tool_stops_the_start_with_one_line() {
    let error = TestApp::builder()
        .config_file(
            "[[intent]]\nname = \"x\"\nliteral = \"go\"\naction = { tool = \"teleport\" }\n",
        )
        .try_start()
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        "tools: intent \"x\" names tool \"teleport\", which is not registered"
    );
    let error = TestApp::builder()
        .config_file("[[intent]]\nname = \"x\"\nregex = \"(unclosed\"\naction = \"emit\"\n")
        .try_start()
        .await
        .expect_err("refused");
    assert!(
        error.starts_with("intent rules: ") && !error.contains('\n'),
        "{error}"
    );
}
