//! The real binary killed with SIGKILL in the middle of streams whose tools are running: the
//! database it leaves is consistent (every stream's row exists, nothing half-written), and the
//! next start marks those streams and their running tool calls `interrupted`. What the
//! recorder had not written yet when the process died (it writes behind the stream, in
//! batches a few milliseconds apart) is lost: no process can keep what SIGKILL takes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use midstream_testkit::app::repository_root;
use midstream_testkit::{MockUpstream, MockWeather, Scenario, SseReader, WeatherMode, stream_id};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A gateway process on `dir`'s SQLite database, with the default rules and tools; returns it
/// with its base URL once it listens.
async fn gateway(dir: &Path, mock: &MockUpstream, weather: &MockWeather) -> (Child, String) {
    let config = dir.join("midstream.toml");
    std::fs::write(
        &config,
        format!(
            "[tools.weather]\ngeocoding_base_url = \"{0}\"\nforecast_base_url = \"{0}\"\n",
            weather.base_url()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_midstream"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MIDSTREAM_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("kill.db").display()),
        )
        .env("MIDSTREAM_INSTANCE_ID", "killed")
        .env("UPSTREAM_BASE_URL", mock.base_url())
        .env("MIDSTREAM_CONFIG", &config)
        .env(
            "MIDSTREAM_INTENTS",
            repository_root().join("config/intents.toml"),
        )
        .env("MIDSTREAM_LOG_FORMAT", "pretty")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("log line") {
            if let Some(at) = line.find("listening on http://") {
                return line[at + "listening on ".len()..].trim().to_owned();
            }
        }
        panic!("the gateway exited before it listened");
    })
    .await
    .expect("the gateway listens within 30 s");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

/// `GET /v1/streams/{id}` (open mode).
async fn record(client: &reqwest::Client, url: &str, id: &str) -> Value {
    client
        .get(format!("{url}/v1/streams/{id}"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("the record is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_stream_leaves_records_the_next_start_marks_interrupted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weather = MockWeather::start().await;
    weather.set_mode(WeatherMode::Slow(Duration::from_secs(120)));
    let mock = MockUpstream::start().await;
    mock.set_default(Scenario::text(["Let me check", " the weather", " for you"]).stall_after(2));
    let client = reqwest::Client::new();

    let (mut first, url) = gateway(dir.path(), &mock, &weather).await;
    let mut open = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = client
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "m", "stream": true, "messages": [
                {"role": "user", "content": "What's the weather in Berlin?"}]}))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200);
        ids.push(stream_id(&response));
        let mut reader = SseReader::new(response);
        // Its first content: the row is committed and the prompt's weather call is running.
        while reader
            .next_frame()
            .await
            .expect("a frame before the stall")
            .expect("SSE")
            .chat_content()
            .is_empty()
        {}
        open.push(reader);
    }
    // The recorder writes behind the stream (batched, every few milliseconds): a kill loses
    // what it had not written yet. Killed once each call is on disk as `running`.
    for id in &ids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let record = record(&client, &url, id).await;
            let running = record["tool_calls"]
                .as_array()
                .is_some_and(|calls| calls.iter().any(|c| c["status"] == "running"));
            if running && record["status"] == "streaming" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the call was never recorded running: {record}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("the killed gateway is reaped");
    drop(open);

    let (mut second, url) = gateway(dir.path(), &mock, &weather).await;
    for id in &ids {
        let record = record(&client, &url, id).await;
        assert_eq!(record["status"], "interrupted", "{record}");
        let calls = record["tool_calls"].as_array().expect("tool calls");
        assert!(
            !calls.is_empty(),
            "the prompt's weather call was recorded: {record}"
        );
        assert!(
            calls.iter().all(|c| c["status"] == "interrupted"),
            "{record}"
        );
    }
    second.start_kill().expect("stop");
    second.wait().await.expect("reaped");
}
