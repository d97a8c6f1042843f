//! Secrets never leave the gateway: with a known upstream key, client key and stream secret,
//! a run through the fault cases (a stream with a tool, a retried 500, an unreachable
//! upstream, a drop mid-stream, a refused key, a browser stream and its events) is searched,
//! every log line at `debug`, every response (headers and body) and every record, for any of
//! them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use midstream_testkit::{MockUpstream, MockWeather, Scenario, TestApp, read_events, stream_id};
use serde_json::{Value, json};

const UPSTREAM_KEY: &str = "sk-upstream-SECRET-1a2b3c";
const CLIENT_KEY: &str = "ms-client-SECRET-4d5e6f";
const STREAM_SECRET: &str = "stream-signing-SECRET-7a8b9c-0123456789abcdef";

/// The marker every secret above carries.
const MARKER: &str = "SECRET-";

/// Every log line of this test binary, at `debug` and above.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Captured(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    })
}

struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything a client was sent.
#[derive(Default)]
struct Seen(String);

impl Seen {
    async fn response(&mut self, response: reqwest::Response) -> String {
        for (name, value) in response.headers() {
            self.0.push_str(&format!("{name}: {value:?}\n"));
        }
        let body = response.text().await.unwrap_or_default();
        self.0.push_str(&body);
        self.0.push('\n');
        body
    }
}

fn chat(prompt: &str) -> Value {
    json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": prompt}]})
}

#[tokio::test]
async fn no_secret_reaches_a_response_an_event_a_record_or_a_log_line() {
    let logs = logs();
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let mut app = TestApp::builder()
        .default_rules()
        .weather_api(&weather)
        .upstream(mock.base_url())
        .env("OPENAI_API_KEY", UPSTREAM_KEY)
        .env("MIDSTREAM_API_KEYS", CLIENT_KEY)
        .env("MIDSTREAM_STREAM_SECRET", STREAM_SECRET)
        .env("MIDSTREAM_UPSTREAM_RETRY_BASE_MS", "5")
        .start()
        .await;
    let post = |path: &str, body: &Value, key: &str| {
        app.client
            .post(app.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
    };
    let mut seen = Seen::default();
    let mut ids = Vec::new();

    // A stream whose answer starts the weather tool.
    mock.push(Scenario::text([
        "The weather in Paris",
        " is mild",
        " today.",
    ]));
    // A 500, retried into an answer.
    mock.push(Scenario::status(500, json!({"error": {"message": "boom"}})));
    mock.push(Scenario::text(["retried"]));
    // A drop mid-stream.
    mock.push(Scenario::text(["one", " two", " three"]).drop_after(1));
    for prompt in ["weather", "retry", "drop"] {
        let response = post("/v1/chat/completions", &chat(prompt), CLIENT_KEY)
            .await
            .expect("answer");
        ids.push(stream_id(&response));
        seen.response(response).await;
    }
    // A refused key.
    let refused = post("/v1/chat/completions", &chat("hi"), "wrong-key")
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
    seen.response(refused).await;
    // A browser stream and its events.
    let started = post(
        "/v1/streams",
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        CLIENT_KEY,
    )
    .await
    .expect("answer");
    let started: Value = serde_json::from_str(&seen.response(started).await).expect("json");
    let events_url = app.url(started["events_url"].as_str().expect("url"));
    let events = read_events(&app.client, &events_url, None, None, None).await;
    seen.0.push_str(&format!("{:?}", events.events));
    ids.push(started["id"].as_str().expect("id").to_owned());

    app.flush().await;
    let mut records = String::new();
    for id in &ids {
        let record = app
            .client
            .get(app.url(&format!("/v1/streams/{id}")))
            .bearer_auth(CLIENT_KEY)
            .send()
            .await
            .expect("record");
        assert_eq!(record.status(), 200);
        records.push_str(&record.text().await.expect("body"));
    }
    let list = app
        .client
        .get(app.url("/v1/streams"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .expect("list");
    records.push_str(&list.text().await.expect("body"));
    assert_eq!(
        mock.requests()[0].headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}"),
        "the upstream key was in use"
    );
    // An upstream that cannot be reached, last.
    drop(mock);
    let unreachable = post("/v1/chat/completions", &chat("unreachable"), CLIENT_KEY)
        .await
        .expect("answer");
    assert_eq!(unreachable.status(), 502);
    seen.response(unreachable).await;
    app.stop().await.expect("a clean stop");

    let logged = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    assert!(
        logged.contains("DEBUG"),
        "debug lines were captured: {} bytes",
        logged.len()
    );
    assert!(
        records.contains("The weather in Paris"),
        "the records were read"
    );
    for (what, text) in [
        ("responses and events", &seen.0),
        ("records", &records),
        ("logs", &logged),
    ] {
        if let Some(at) = text.find(MARKER) {
            let around = &text[at.saturating_sub(120)..(at + 80).min(text.len())];
            panic!("a secret reached the {what}: …{around}…");
        }
    }
}
