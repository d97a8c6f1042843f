//! The streaming proxy over real loopback HTTP: the gateway against the demo model and against
//! a mock upstream that misbehaves on demand.

use std::time::Duration;

use midstream_testkit::{
    MockUpstream, Scenario, Split, TestApp, collect_sse, fixture_bytes, fixture_names, stream_id,
};
use serde_json::{Value, json};

fn stream_request() -> Value {
    json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Say hello"}]})
}

async fn app_with(mock: &MockUpstream) -> TestApp {
    TestApp::builder().upstream(mock.base_url()).start().await
}

/// Frames the gateway may write on this endpoint never use `id:`, `event:` or `retry:`.
fn assert_sdk_safe(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    for line in text.lines() {
        assert!(
            !line.starts_with("id:") && !line.starts_with("event:") && !line.starts_with("retry:"),
            "forbidden SSE line {line:?}"
        );
    }
}

#[tokio::test]
async fn recorded_openai_streams_pass_through_byte_for_byte() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    for name in fixture_names() {
        mock.push(Scenario::fixture(name));
        let response = app.chat(&stream_request()).await;
        assert_eq!(response.status(), 200, "{name}");
        let collected = collect_sse(response).await;
        assert_eq!(
            collected.raw,
            fixture_bytes(name).expect("fixture").to_vec(),
            "{name}: bytes differ"
        );
        assert!(collected.ends_with_done(), "{name}");
    }
}

#[tokio::test]
async fn unknown_fields_and_frames_split_at_every_byte_survive() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    for split in [
        Split::Bytes(1),
        Split::Bytes(7),
        Split::Random { seed: 42, max: 13 },
    ] {
        let scenario = Scenario::text(["Caf\u{e9} ", "na\u{ef}ve ", "\u{1f600} done"]).split(split);
        let expected = scenario.text_content();
        mock.push(scenario);
        let collected = collect_sse(app.chat(&stream_request()).await).await;
        assert_eq!(collected.content(), expected);
        let chunks = collected.json_chunks();
        assert!(
            chunks.iter().all(|c| c.get("obfuscation").is_some()),
            "top-level unknown field kept"
        );
        assert!(
            chunks
                .iter()
                .any(|c| c.pointer("/choices/0/delta/reasoning_content").is_some()),
            "unknown delta field kept"
        );
        assert!(collected.ends_with_done());
        assert_sdk_safe(&collected.raw);
    }
}

#[tokio::test]
async fn usage_is_streamed_and_recorded() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    let mut request = stream_request();
    request["stream_options"] = json!({"include_usage": true});
    let response = app.chat(&request).await;
    let id = stream_id(&response);
    let collected = collect_sse(response).await;
    let usage = collected
        .json_chunks()
        .last()
        .and_then(|c| c.get("usage").cloned())
        .expect("a usage chunk");
    assert!(usage["total_tokens"].as_i64().is_some());
    let record = app.record(&id).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["usage"]["total_tokens"], usage["total_tokens"]);
    assert_eq!(record["response"]["text"], collected.content());
    assert!(record["ttft_ms"].as_f64().is_some() && record["duration_ms"].as_f64().is_some());
    assert_eq!(record["messages"][0]["content"], "Say hello");
    assert_eq!(
        mock.requests()
            .last()
            .and_then(|r| r.body.pointer("/stream_options/include_usage").cloned()),
        Some(json!(true)),
        "stream_options reach the upstream"
    );
}

#[tokio::test]
async fn non_streaming_completions_pass_through_with_a_midstream_member() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    mock.push(Scenario::text(["Hello", " there"]));
    let response = app
        .chat(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let id = stream_id(&response);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["midstream"]["events"], json!([]));
    let record = app.record(&id).await;
    assert_eq!(
        (record["status"].as_str(), record["streamed"].as_bool()),
        (Some("completed"), Some(false))
    );
    assert_eq!(record["response"]["text"], "Hello there");
}

#[tokio::test]
async fn the_demo_model_streams_through_the_gateway() {
    let app = TestApp::start().await;
    let mut request = stream_request();
    request["model"] = json!("midstream-demo");
    let response = app.chat(&request).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let collected = collect_sse(response).await;
    // "Say hello" asks for no tool: the demo introduces itself.
    assert!(collected.content().contains("MidStream demo model"));
    assert!(collected.ends_with_done());
    let models: Value = app.get("/v1/models").await.json().await.expect("json");
    assert_eq!(models["data"][0]["id"], "midstream-demo");
    assert!(
        models["data"][0]["owned_by"]
            .as_str()
            .expect("text")
            .contains("demo")
    );
}

#[tokio::test]
async fn upstream_4xx_pass_through_with_status_body_and_retry_after() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    for status in [401u16, 429] {
        let body = json!({"error": {"message": format!("upstream says {status}"), "type": "x", "code": null, "param": null}});
        mock.push(Scenario::status(status, body.clone()).header("retry-after", "7"));
        let response = app.chat(&stream_request()).await;
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["retry-after"], "7");
        let id = stream_id(&response);
        assert_eq!(response.json::<Value>().await.expect("json"), body);
        assert_eq!(app.record(&id).await["status"], "failed");
    }
}

#[tokio::test]
async fn upstream_5xx_refusal_and_silence_before_streaming_are_502() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_UPSTREAM_HEADERS_TIMEOUT_MS", "300")
        // The refusal itself, not the retries (tests/resilience.rs).
        .env("MIDSTREAM_UPSTREAM_RETRIES", "0")
        .start()
        .await;
    mock.push(Scenario::status(
        500,
        json!({"error": {"message": "model overloaded"}}),
    ));
    let response = app.chat(&stream_request()).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("model overloaded")
    );

    mock.push(Scenario::text(["x"]).stall_before_headers());
    let response = app.chat(&stream_request()).await;
    assert_eq!(response.status(), 502);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("sent no response")
    );

    let closed = TcpPort::closed().await;
    let refused = TestApp::builder()
        .upstream(format!("http://127.0.0.1:{}/v1", closed.0))
        .start()
        .await;
    let response = refused.chat(&stream_request()).await;
    assert_eq!(response.status(), 502);
    let id = stream_id(&response);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["type"], "upstream_error");
    assert_eq!(refused.record(&id).await["status"], "failed");
}

/// A port nothing listens on.
struct TcpPort(u16);

impl TcpPort {
    async fn closed() -> TcpPort {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        TcpPort(port)
    }
}

#[tokio::test]
async fn an_upstream_that_drops_mid_stream_ends_with_an_error_event() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    mock.push(Scenario::text(["one ", "two ", "three"]).drop_after(3));
    let response = app.chat(&stream_request()).await;
    assert_eq!(response.status(), 200);
    let id = stream_id(&response);
    let collected = collect_sse(response).await;
    assert!(
        collected.error.is_none(),
        "the gateway ends its own body cleanly: {:?}",
        collected.error
    );
    let last = collected.json_chunks().last().cloned().expect("frames");
    assert!(
        last["error"]["message"].as_str().is_some(),
        "an in-band error ends the stream: {last}"
    );
    assert!(!collected.ends_with_done(), "no [DONE] after an error");
    assert_sdk_safe(&collected.raw);
    let record = app.record(&id).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(
        record["response"]["text"],
        collected.content(),
        "what was sent is kept"
    );
}

/// An upstream below HTTP: each connection reads one request and gets the next of `responses`,
/// byte for byte, then the connection closes.
async fn raw_upstream(responses: Vec<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        for response in responses {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The request head, and its body (the gateway sends a content-length).
            loop {
                let read = socket.read(&mut buf).await.unwrap_or(0);
                request.extend_from_slice(&buf[..read]);
                let text = String::from_utf8_lossy(&request).to_lowercase();
                let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    head.lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .is_some_and(|length| body.len() >= length)
                });
                if read == 0 || complete {
                    break;
                }
            }
            let _ = socket.write_all(&response).await;
        }
    });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn bodies_framed_by_length_or_by_closing_pass_through_and_broken_chunks_end_in_an_error() {
    let name = "text-long";
    let sse = fixture_bytes(name).expect("fixture");
    let head = |framing: &str| {
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{framing}\r\n")
    };
    let mut by_length = head(&format!("content-length: {}\r\n", sse.len())).into_bytes();
    by_length.extend_from_slice(sse);
    let mut by_closing = head("connection: close\r\n").into_bytes();
    by_closing.extend_from_slice(sse);
    let frame = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
    let broken = format!(
        "{}{:x}\r\n{frame}\r\nzz\r\n",
        head("transfer-encoding: chunked\r\n"),
        frame.len()
    );
    let app = TestApp::builder()
        .upstream(raw_upstream(vec![by_length, by_closing, broken.into_bytes()]).await)
        .start()
        .await;

    for framing in ["content-length", "end of connection"] {
        let response = app.chat(&stream_request()).await;
        assert_eq!(response.status(), 200, "{framing}");
        let id = stream_id(&response);
        let collected = collect_sse(response).await;
        assert_eq!(collected.raw, sse.to_vec(), "{framing}: bytes differ");
        assert_eq!(app.record(&id).await["status"], "completed", "{framing}");
    }

    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    let collected = collect_sse(response).await;
    assert_eq!(collected.content(), "Hel");
    let last = collected.json_chunks().last().cloned().expect("frames");
    let message = last["error"]["message"].as_str().expect("an in-band error");
    assert!(message.contains("chunk size"), "{message}");
    assert!(!collected.ends_with_done());
    let record = app.record(&id).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["response"]["text"], "Hel");
}

/// A client that stops reading would otherwise hold its stream, and the upstream request,
/// for as long as it keeps the connection.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_its_stream_cancelled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_CLIENT_SEND_TIMEOUT_MS", "300")
        .start()
        .await;
    // ≈ 10 MB of frames at full speed: more than the buffers between the gateway and this
    // client can hold (so a write must wait), then the upstream holds the stream open. Without
    // the hold, the mock could finish writing into the upstream side's buffers (they can hold
    // ≈ 10 MB) before the gateway gives up, and the upstream's end would look like a normal one.
    let pieces: Vec<String> = (0..10_000).map(|_| "x".repeat(1000)).collect();
    mock.push(Scenario::text(pieces).then_stall());
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stream = socket.connect(app.addr).await.expect("connects");
    let body = stream_request().to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    // The response head, and then not another byte read.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-midstream-stream-id: "))
        .expect("the stream id")
        .trim()
        .to_owned();
    assert!(
        mock.wait_for_early_disconnect(Duration::from_secs(10))
            .await,
        "the upstream request ends once the client stops reading"
    );
    assert_eq!(app.record(&id).await["status"], "cancelled");
    drop(stream);
}

#[tokio::test]
async fn a_silent_upstream_mid_stream_times_out_into_an_error_event() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_UPSTREAM_IDLE_TIMEOUT_MS", "300")
        .start()
        .await;
    mock.push(Scenario::text(["a", "b"]).stall_after(2));
    let collected = collect_sse(app.chat(&stream_request()).await).await;
    let last = collected.json_chunks().last().cloned().expect("frames");
    assert_eq!(last["error"]["code"], "upstream_timeout");
    assert!(
        mock.wait_for_early_disconnect(Duration::from_secs(5)).await,
        "the stalled upstream is dropped"
    );
}

/// A stream that keeps talking past the maximum duration is ended anyway: an error event,
/// the upstream dropped, the record failed with the reason.
#[tokio::test]
async fn a_stream_past_its_maximum_duration_ends_with_an_error_event() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_MAX_STREAM_SECS", "1")
        .start()
        .await;
    let words: Vec<String> = (0..100).map(|i| format!(" w{i}")).collect();
    mock.push(Scenario::text(words).delay(Duration::from_millis(50)));
    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    let collected = collect_sse(response).await;
    let last = collected.json_chunks().last().cloned().expect("frames");
    assert_eq!(last["error"]["code"], "stream_duration_exceeded");
    assert!(
        collected.content().split_whitespace().count() < 100,
        "it was cut before the upstream's end"
    );
    assert!(
        mock.wait_for_early_disconnect(Duration::from_secs(5)).await,
        "the upstream is dropped"
    );
    let record = app.record(&id).await;
    assert_eq!(record["status"], "failed");
    assert!(
        record["error"]
            .as_str()
            .is_some_and(|e| e.contains("maximum duration")),
        "{record}"
    );
}

#[tokio::test]
async fn garbage_frames_are_forwarded_and_never_crash_the_stream() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    mock.push(Scenario::garbage());
    let response = app.chat(&stream_request()).await;
    assert_eq!(response.status(), 200);
    let collected = collect_sse(response).await;
    assert!(collected.error.is_none(), "{:?}", collected.error);
    // Still healthy afterwards.
    mock.push(Scenario::text(["fine"]));
    assert_eq!(
        collect_sse(app.chat(&stream_request()).await)
            .await
            .content(),
        "fine"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_and_the_record_says_cancelled() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    let pieces: Vec<String> = (0..400).map(|i| format!("t{i} ")).collect();
    mock.push(Scenario::text(pieces).delay(Duration::from_millis(5)));
    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    let mut reader = midstream_testkit::SseReader::new(response);
    for _ in 0..5 {
        reader.next_frame().await.expect("frame").expect("ok");
    }
    drop(reader);
    assert!(
        mock.wait_for_early_disconnect(Duration::from_secs(5)).await,
        "the mock upstream saw its connection closed"
    );
    let mut status = Value::Null;
    for _ in 0..50 {
        status = app.record(&id).await["status"].clone();
        if status == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");
}

/// With a proxy configured, chat requests take the shared client (reqwest), which honours it.
/// The proxy named here is the mock itself: whether reqwest reads it or not (it reads the
/// process environment, not the gateway's configuration), the mock answers.
#[tokio::test]
async fn with_a_proxy_configured_streams_and_errors_pass_through_the_shared_client() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("HTTP_PROXY", mock.base_url())
        .start()
        .await;
    let name = "text-long";
    mock.push(Scenario::fixture(name).split(Split::Bytes(7)));
    let response = app.chat(&stream_request()).await;
    assert_eq!(response.status(), 200);
    let collected = collect_sse(response).await;
    assert_eq!(
        collected.raw,
        fixture_bytes(name).expect("fixture").to_vec()
    );

    let body = json!({"error": {"message": "slow down", "type": "x", "code": null, "param": null}});
    mock.push(Scenario::status(429, body.clone()).header("retry-after", "3"));
    let response = app.chat(&stream_request()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(response.json::<Value>().await.expect("json"), body);
}

/// Plain-HTTP upstream connections are pooled by the gateway itself (`upstream::driven`).
#[tokio::test]
async fn upstream_connections_are_reused_replaced_when_closed_and_dropped_with_their_client() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    let stream_through = |scenario: Scenario, expected: &'static str| {
        mock.push(scenario);
        let app = &app;
        async move {
            let response = app.chat(&stream_request()).await;
            assert_eq!(response.status(), 200);
            assert_eq!(collect_sse(response).await.content(), expected);
        }
    };
    for _ in 0..3 {
        stream_through(Scenario::text(["Hello", " again"]), "Hello again").await;
    }
    assert_eq!(mock.accepted_connections(), 1, "one connection, reused");

    // The upstream closes each connection after its response (and says so): the first reuses
    // the pooled connection, and none of the three goes back to the pool.
    for _ in 0..3 {
        stream_through(Scenario::text(["Bye"]).header("connection", "close"), "Bye").await;
    }
    stream_through(Scenario::text(["Back"]), "Back").await;
    assert_eq!(mock.accepted_connections(), 4);

    // A client that leaves mid-stream takes its upstream connection with it.
    let pieces: Vec<String> = (0..400).map(|i| format!("t{i} ")).collect();
    mock.push(Scenario::text(pieces).delay(Duration::from_millis(5)));
    let mut reader = midstream_testkit::SseReader::new(app.chat(&stream_request()).await);
    reader.next_frame().await.expect("frame").expect("ok");
    drop(reader);
    assert!(mock.wait_for_early_disconnect(Duration::from_secs(5)).await);
    stream_through(Scenario::text(["Fresh"]), "Fresh").await;
    assert_eq!(
        mock.accepted_connections(),
        5,
        "the cut stream's connection was not pooled"
    );
}

#[tokio::test]
async fn streams_are_recorded_in_postgres_too() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .postgres()
        .start()
        .await;
    mock.push(Scenario::text(["Hello", " Postgres"]));
    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    assert_eq!(collect_sse(response).await.content(), "Hello Postgres");
    let record = app.record(&id).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["response"]["text"], "Hello Postgres");
    assert_eq!(app.store.backend(), midstream_store::Backend::Postgres);
}

#[tokio::test]
async fn the_row_exists_before_the_first_token() {
    let mock = MockUpstream::start().await;
    let app = app_with(&mock).await;
    mock.push(
        Scenario::text(["first", " second"])
            .delay(Duration::from_millis(200))
            .then_stall(),
    );
    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    let mut reader = midstream_testkit::SseReader::new(response);
    reader.next_frame().await.expect("first frame").expect("ok");
    // The first frame is out: the row must already be in the database (no flush needed).
    let row = app
        .store
        .stream(&id)
        .await
        .expect("query")
        .expect("the row exists");
    assert_eq!(row.status, "streaming");
}

#[tokio::test]
async fn shutdown_lets_open_streams_finish_within_the_grace_period() {
    let mock = MockUpstream::start().await;
    let mut app = app_with(&mock).await;
    mock.push(Scenario::text(["slow ", "but ", "complete"]).delay(Duration::from_millis(150)));
    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    let store = app.store.clone();
    let reading = tokio::spawn(collect_sse(response));
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.stop().await.expect("clean stop");
    let collected = reading.await.expect("joined");
    assert_eq!(collected.content(), "slow but complete");
    assert!(collected.ends_with_done());
    let row = store.stream(&id).await.expect("query").expect("row");
    assert_eq!(
        row.status, "completed",
        "the recorder was flushed before exit"
    );
}

#[tokio::test]
async fn streams_still_open_after_the_grace_period_are_cut_and_recorded_interrupted() {
    let mock = MockUpstream::start().await;
    let mut app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_SHUTDOWN_GRACE_SECS", "1")
        .start()
        .await;
    mock.push(Scenario::text(["never ", "ends"]).then_stall());
    let response = app.chat(&stream_request()).await;
    let id = stream_id(&response);
    let store = app.store.clone();
    let reading = tokio::spawn(collect_sse(response));
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop().await.expect("stops after the grace period");
    let collected = reading.await.expect("joined");
    let last = collected.json_chunks().last().cloned().expect("frames");
    assert_eq!(last["error"]["code"], "shutting_down");
    assert_eq!(
        store.stream(&id).await.expect("query").expect("row").status,
        "interrupted"
    );
}

#[tokio::test]
async fn quiet_streams_get_comment_keepalives_and_still_complete() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .upstream(mock.base_url())
        .env("MIDSTREAM_KEEPALIVE_SECS", "1")
        .start()
        .await;
    mock.push(Scenario::text(["before ", "after"]).delay(Duration::from_millis(1300)));
    let collected = collect_sse(app.chat(&stream_request()).await).await;
    assert!(
        collected
            .frames
            .iter()
            .any(|f| f.comments.iter().any(|c| c.trim() == "ping")),
        "a `: ping` comment"
    );
    assert_eq!(collected.content(), "before after");
    assert!(collected.ends_with_done());
    assert_sdk_safe(&collected.raw);
}

#[tokio::test]
async fn aliases_route_to_named_upstreams_with_the_model_rewritten() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder()
        .config_file(&format!(
            "[upstreams.local]\nbase_url = \"{}\"\n\n[models]\nfast = {{ upstream = \"local\", model = \"small-model-v2\" }}\n",
            mock.base_url()
        ))
        .start()
        .await;
    let mut request = stream_request();
    request["model"] = json!("fast");
    let response = app.chat(&request).await;
    let id = stream_id(&response);
    collect_sse(response).await;
    assert_eq!(
        mock.requests().last().map(|r| r.body["model"].clone()),
        Some(json!("small-model-v2"))
    );
    let record = app.record(&id).await;
    assert_eq!(
        (
            record["model"].as_str(),
            record["upstream"].as_str(),
            record["upstream_model"].as_str()
        ),
        (Some("fast"), Some("local"), Some("small-model-v2"))
    );
    // With no default upstream, the demo model serves its own name; other unaliased names do
    // not exist.
    let unknown = app.chat(&stream_request()).await;
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.expect("json");
    assert_eq!(error["error"]["code"], "model_not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Available models: midstream-demo, fast.")),
        "{error}"
    );
    request["model"] = json!("midstream-demo");
    let demo = collect_sse(app.chat(&request).await).await;
    assert!(demo.content().contains("demo model"));
}
