//! The `mock-upstream` binary: flags, the per-request `"mock"` object, and `/mock/stats`.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use midstream_testkit::{SseReader, collect_sse};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PATIENCE: Duration = Duration::from_secs(30);

/// Starts the binary and returns it with its base URL, read from its first stdout line.
async fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut first_line = String::new();
    tokio::time::timeout(PATIENCE, reader.read_line(&mut first_line))
        .await
        .expect("the binary prints its address")
        .expect("readable stdout");
    // The binary prints more (its weather API's address): keep reading, or it would write to a
    // closed pipe and die.
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
    });
    let base = first_line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_owned();
    (child, base)
}

async fn chat(base: &str, mock: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "stream": true, "messages": [], "mock": mock}))
        .send()
        .await
        .expect("the mock answers")
}

async fn stats(base: &str) -> Value {
    reqwest::get(format!("{base}/mock/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn flags_set_the_default_answer_and_the_mock_object_overrides_it() {
    let (_child, base) =
        start(&["--addr", "127.0.0.1:0", "--tokens", "5", "--delay-ms", "0"]).await;
    assert!(base.starts_with("http://127.0.0.1:"));

    let by_flags = collect_sse(chat(&base, json!({})).await).await;
    assert!(by_flags.ends_with_done());
    assert_eq!(by_flags.json_chunks().len(), 1 + 5 + 1);
    assert_eq!(by_flags.content(), "The quick brown fox jumps");

    let by_request = collect_sse(chat(&base, json!({"tokens": 2, "delay_ms": 1})).await).await;
    assert_eq!(by_request.content(), "The quick");

    let stats = stats(&base).await;
    assert_eq!(stats["requests"], 2);
    assert_eq!(stats["streams_open"], 0);
    assert_eq!(stats["early_disconnects"], 0);
}

#[tokio::test]
async fn a_held_stream_stays_open_and_its_drop_time_is_reported_by_tag() {
    let (_child, base) = start(&["--tokens", "3", "--delay-ms", "0"]).await;
    let mut reader = SseReader::new(chat(&base, json!({"hold": true, "tag": "idle-1"})).await);
    let role = reader
        .next_frame()
        .await
        .expect("a frame")
        .expect("no error");
    assert!(
        role.data
            .is_some_and(|data| data.contains("\"role\":\"assistant\""))
    );
    let silence = tokio::time::timeout(Duration::from_millis(200), reader.next_frame()).await;
    assert!(
        silence.is_err(),
        "a held stream sends nothing after the role chunk"
    );
    assert_eq!(stats(&base).await["streams_open"], 1);

    let before_drop = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros();
    drop(reader);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let reported = loop {
        let stats = stats(&base).await;
        if stats["early_disconnects"] == 1 {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no early disconnect reported"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(reported["streams_open"], 0);
    let dropped_at = reported["dropped_at_unix_us"]["idle-1"]
        .as_u64()
        .expect("the tag's drop time");
    assert!(u128::from(dropped_at) >= before_drop);
    eprintln!(
        "binary: early disconnect recorded {} µs after the client dropped",
        u128::from(dropped_at) - before_drop
    );
}

#[tokio::test]
async fn a_busy_address_is_reported_with_a_failure_exit() {
    let (_first, base) = start(&[]).await;
    let addr = base.trim_start_matches("http://");
    let output = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--addr", addr])
        .output()
        .await
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
}
