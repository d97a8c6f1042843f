//! The mock upstream, driven by a plain reqwest client over loopback HTTP: every
//! misbehaviour must be observable from the client side, and every observation from the
//! mock side must match what the client did.

use std::time::{Duration, Instant};

use bytes::Bytes;
use midstream_testkit::{
    MockToolCall, MockUpstream, Scenario, Split, SseFrame, SseParser, SseReader, collect_sse,
    fixture_bytes, fixture_names,
};
use serde_json::{Value, json};

/// Generous bound for things that should happen at once; only reached when a test fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn chat(stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello"}]
    })
}

fn chat_with_usage() -> Value {
    let mut body = chat(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

async fn post(mock: &MockUpstream, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("sk-test")
        .json(body)
        .send()
        .await
        .expect("the mock answers")
}

fn parse(bytes: &[u8]) -> Vec<SseFrame> {
    SseParser::new().push(bytes).expect("within bounds")
}

#[tokio::test]
async fn a_text_scenario_streams_openai_shaped_chunks_with_unknown_fields() {
    let mock = MockUpstream::start().await;
    let scenario = Scenario::text(["Hel", "lo", " wörld"]);
    mock.push(scenario.clone());
    let response = post(&mock, &chat_with_usage()).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let collected = collect_sse(response).await;
    assert_eq!(collected.error, None);
    assert!(collected.ends_with_done());
    assert_eq!(collected.content(), "Hello wörld");
    let chunks = collected.json_chunks();
    assert_eq!(chunks.len(), 1 + 3 + 1 + 1, "role, pieces, finish, usage");
    let role = &chunks[0];
    assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(role["choices"][0]["delta"]["content"], "");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert!(chunk["created"].is_u64());
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert!(chunk["system_fingerprint"].is_string());
        assert!(chunk["obfuscation"].is_string(), "unknown top-level field");
    }
    for chunk in &chunks[..5] {
        let choice = &chunk["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["logprobs"], Value::Null);
    }
    for chunk in &chunks[..4] {
        let delta = &chunk["choices"][0]["delta"];
        assert!(
            delta.get("reasoning_content").is_some(),
            "unknown delta field"
        );
    }
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(Some(chunks[5]["usage"].clone()), scenario.usage());
    // Frames are written exactly as OpenAI writes them.
    let raw = String::from_utf8(collected.raw).expect("UTF-8");
    assert!(raw.starts_with("data: {\"id\":\"chatcmpl-"));
    assert!(raw.ends_with("}\n\ndata: [DONE]\n\n"));
    assert_eq!(raw.matches("\n\n").count(), 7);
}

#[tokio::test]
async fn usage_is_only_sent_when_asked_and_plain_drops_unknown_fields() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["a"]).plain());
    let collected = collect_sse(post(&mock, &chat(true)).await).await;
    let chunks = collected.json_chunks();
    assert_eq!(chunks.len(), 3, "role, piece, finish");
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk.get("obfuscation").is_none())
    );
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "a"}));
}

#[tokio::test]
async fn a_non_streaming_request_gets_a_completion_object() {
    let mock = MockUpstream::start().await;
    let scenario = Scenario::text(["It is ", "sunny."]);
    mock.push(scenario.clone());
    let response = post(&mock, &chat(false)).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let completion: Value = response.json().await.expect("JSON");
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "It is sunny."
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(Some(completion["usage"].clone()), scenario.usage());
}

#[tokio::test]
async fn tool_calls_stream_id_and_name_first_then_argument_fragments() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::tool_calls([
        MockToolCall::new("weather", ["{\"ci", "ty\": \"Par", "is\"}"]).with_id("call_w"),
        MockToolCall::new("calendar", ["{\"day\":", "\"monday\"}"]),
    ]));
    let chunks = collect_sse(post(&mock, &chat(true)).await)
        .await
        .json_chunks();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"].get("tool_calls"))
        .map(|calls| &calls[0])
        .collect();
    assert_eq!(calls.len(), 2 + 3 + 2);
    assert_eq!(calls[0]["id"], "call_w");
    assert_eq!(calls[0]["function"]["name"], "weather");
    assert_eq!(calls[0]["function"]["arguments"], "");
    let arguments = |index: u64| -> String {
        calls
            .iter()
            .filter(|call| call["index"] == index)
            .filter_map(|call| call["function"]["arguments"].as_str())
            .collect()
    };
    assert_eq!(arguments(0), "{\"city\": \"Paris\"}");
    assert_eq!(arguments(1), "{\"day\":\"monday\"}");
    assert!(
        calls[4]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("call_"))
    );
    let finish = &chunks.last().expect("chunks")["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn every_fixture_replays_byte_for_byte_whole_and_split() {
    let mock = MockUpstream::start().await;
    for name in fixture_names() {
        let expected = fixture_bytes(name).expect("listed fixtures exist");
        mock.push(Scenario::fixture(name));
        let whole = collect_sse(post(&mock, &chat(true)).await).await;
        assert_eq!(whole.raw, expected, "{name}");
        assert!(whole.ends_with_done(), "{name}");
        mock.push(Scenario::fixture(name).split(Split::Random { seed: 42, max: 13 }));
        let split = collect_sse(post(&mock, &chat(true)).await).await;
        assert_eq!(split.raw, expected, "{name} split");
        assert_eq!(split.frames, whole.frames, "{name} split");
    }
}

#[tokio::test]
async fn fixture_text_is_what_a_client_reads() {
    let mock = MockUpstream::start().await;
    let scenario = Scenario::fixture("text-long");
    mock.push(scenario.clone());
    let collected = collect_sse(post(&mock, &chat(true)).await).await;
    assert_eq!(collected.content(), scenario.text_content());
    assert!(collected.content().len() > 500);
}

/// Reads the body as hyper hands it over, one `chunk()` per body frame.
async fn body_frames(mut response: reqwest::Response) -> Vec<Bytes> {
    let mut frames = Vec::new();
    while let Some(frame) = response.chunk().await.expect("a clean body") {
        frames.push(frame);
    }
    frames
}

fn boundaries(pieces: &[Bytes]) -> Vec<usize> {
    pieces
        .iter()
        .scan(0, |offset, piece| {
            *offset += piece.len();
            Some(*offset)
        })
        .collect()
}

#[tokio::test]
async fn split_pieces_arrive_as_separate_reads() {
    let mock = MockUpstream::start().await;
    let expected = fixture_bytes("text").expect("a fixture");
    mock.push(Scenario::fixture("text").split(Split::Bytes(7)));
    let frames = body_frames(post(&mock, &chat(true)).await).await;
    assert_eq!(frames.concat(), expected);
    let seen = boundaries(&frames);
    let cut_every_seven: Vec<usize> = (1..=expected.len().div_ceil(7))
        .map(|piece| (piece * 7).min(expected.len()))
        .collect();
    for cut in &cut_every_seven {
        assert!(
            seen.contains(cut),
            "the client saw a read end at byte {cut}"
        );
    }
    assert!(frames.len() >= cut_every_seven.len());
}

#[tokio::test]
async fn one_byte_pieces_cut_multibyte_characters_and_still_join_up() {
    let mock = MockUpstream::start().await;
    let scenario = Scenario::text(["caf", "é ", "🦀"]);
    mock.push(scenario.clone().split(Split::Bytes(1)));
    let frames = body_frames(post(&mock, &chat(true)).await).await;
    assert!(frames.iter().all(|frame| frame.len() == 1));
    let frames = parse(&frames.concat());
    let content: String = frames
        .iter()
        .filter_map(|frame| frame.data.as_deref())
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| {
            let chunk: Value = serde_json::from_str(data).ok()?;
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "café 🦀");
}

#[tokio::test]
async fn raw_and_garbage_bodies_are_sent_exactly() {
    let mock = MockUpstream::start().await;
    let raw = Bytes::from_static(b"data: {\"not\": \"closed\"\n\ndata: [DONE]\n\n");
    mock.push(Scenario::raw(raw.clone()));
    assert_eq!(collect_sse(post(&mock, &chat(true)).await).await.raw, raw);

    let garbage = Scenario::garbage();
    mock.push(garbage.clone());
    let collected = collect_sse(post(&mock, &chat(true)).await).await;
    assert_eq!(
        Some(&Bytes::from(collected.raw.clone())),
        garbage.raw_body()
    );
    let raw = &collected.raw;
    assert!(std::str::from_utf8(raw).is_err(), "invalid UTF-8 is sent");
    assert!(
        raw.windows(4).any(|window| window == b"\r\n\r\n"),
        "a CRLF frame"
    );
    assert!(
        collected
            .frames
            .iter()
            .any(|frame| frame.event.as_deref() == Some("surprise"))
    );
    assert!(
        collected
            .frames
            .iter()
            .any(|frame| frame.data.as_deref() == Some("this is not json"))
    );
    assert!(collected.ends_with_done());
}

#[tokio::test]
async fn an_error_status_comes_with_its_headers_and_body() {
    let mock = MockUpstream::start().await;
    let body = json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
    mock.push(Scenario::status(429, body.clone()).header("retry-after", "7"));
    let response = post(&mock, &chat(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.expect("JSON"), body);
}

#[tokio::test]
async fn then_drop_aborts_after_the_frames_without_done() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["Hel", "lo"]).then_drop());
    let collected = collect_sse(post(&mock, &chat(true)).await).await;
    assert_eq!(collected.content(), "Hello");
    assert!(!collected.ends_with_done());
    let error = collected.error.expect("the client sees a body error");
    eprintln!("client-side error for a dropped connection: {error}");
    assert_eq!(
        mock.early_disconnects(),
        0,
        "a scripted abort is not the client's doing"
    );
}

#[tokio::test]
async fn drop_after_sends_that_many_frames_then_aborts() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::fixture("text").drop_after(3));
    let collected = collect_sse(post(&mock, &chat(true)).await).await;
    assert_eq!(
        collected.frames,
        parse(fixture_bytes("text").expect("a fixture"))[..3]
    );
    assert!(collected.error.is_some());

    mock.push(Scenario::text(["x"]).drop_after(0));
    let collected = collect_sse(post(&mock, &chat(true)).await).await;
    assert!(collected.raw.is_empty());
    assert!(collected.error.is_some());
}

#[tokio::test]
async fn then_stall_sends_the_frames_then_nothing_and_notices_the_client_leaving() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["a", "b"]).then_stall().tag("stalled"));
    let mut reader = SseReader::new(post(&mock, &chat(true)).await);
    for _ in 0..4 {
        let frame = reader
            .next_frame()
            .await
            .expect("a frame")
            .expect("no error");
        assert_ne!(frame.data.as_deref(), Some("[DONE]"));
    }
    // Nothing more arrives (a bound on silence, which a slow machine cannot break).
    let silence = tokio::time::timeout(Duration::from_millis(200), reader.next_frame()).await;
    assert!(silence.is_err(), "no frame after the stall");
    assert_eq!(mock.open_responses(), 1);
    let dropped_at = Instant::now();
    drop(reader);
    assert!(mock.wait_for_early_disconnect(PATIENCE).await);
    let record = &mock.early_disconnect_log()[0];
    assert_eq!(record.tag.as_deref(), Some("stalled"));
    eprintln!(
        "stalled body: early disconnect seen {:?} after the client dropped",
        record.at.saturating_duration_since(dropped_at)
    );
    assert_eq!(mock.open_responses(), 0);
}

#[tokio::test]
async fn a_client_dropping_a_paced_stream_is_recorded_as_an_early_disconnect() {
    let mock = MockUpstream::start().await;
    let pieces: Vec<String> = (0..1000).map(|index| format!("t{index} ")).collect();
    mock.push(Scenario::text(pieces).delay(Duration::from_millis(5)));
    let mut reader = SseReader::new(post(&mock, &chat(true)).await);
    for _ in 0..3 {
        reader
            .next_frame()
            .await
            .expect("a frame")
            .expect("no error");
    }
    assert_eq!(mock.early_disconnects(), 0);
    let dropped_at = Instant::now();
    drop(reader);
    assert!(mock.wait_for_early_disconnect(PATIENCE).await);
    let seen_at = mock.early_disconnect_log()[0].at;
    eprintln!(
        "paced body (5 ms between frames): early disconnect seen {:?} after the client dropped",
        seen_at.saturating_duration_since(dropped_at)
    );
    assert_eq!(mock.early_disconnects(), 1);
}

#[tokio::test]
async fn a_request_stalled_before_headers_hangs_and_its_abandonment_is_recorded() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["never"]).stall_before_headers());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("a client");
    let result = client
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&chat(true))
        .send()
        .await;
    assert!(result.expect_err("no headers ever come").is_timeout());
    assert!(mock.wait_for_early_disconnect(PATIENCE).await);
}

#[tokio::test]
async fn delays_hold_back_headers_and_frames() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["a"]).first_byte_delay(Duration::from_secs(3600)));
    let pending = tokio::time::timeout(Duration::from_millis(200), post(&mock, &chat(true))).await;
    assert!(pending.is_err(), "no headers during the first-byte delay");

    mock.push(
        Scenario::text(["a", "b", "c"])
            .first_byte_delay(Duration::from_millis(30))
            .delay(Duration::from_millis(20)),
    );
    let started = Instant::now();
    let response = post(&mock, &chat(true)).await;
    let headers_after = started.elapsed();
    let collected = collect_sse(response).await;
    assert_eq!(collected.content(), "abc");
    assert!(headers_after >= Duration::from_millis(30));
    // Six frames (role, 3 pieces, finish, [DONE]): five delays between them.
    assert!(started.elapsed() >= Duration::from_millis(30 + 5 * 20));
}

#[tokio::test]
async fn scenarios_are_served_in_order_then_the_default() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["first"]));
    mock.push(Scenario::text(["second"]));
    let mut contents = Vec::new();
    for _ in 0..3 {
        contents.push(collect_sse(post(&mock, &chat(true)).await).await.content());
    }
    assert_eq!(contents[..2], ["first", "second"]);
    assert_eq!(contents[2], Scenario::default().text_content());
    mock.set_default(Scenario::text(["new default"]));
    assert_eq!(
        collect_sse(post(&mock, &chat(true)).await).await.content(),
        "new default"
    );
    assert_eq!(mock.chat_completion_count(), 4);
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let mock = MockUpstream::start().await;
    let body =
        json!({"model": "gpt-4o", "stream": true, "messages": [], "extra_field": {"kept": true}});
    collect_sse(post(&mock, &body).await).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(requests[0].body, body);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn invalid_json_gets_an_openai_error_and_keeps_the_queued_scenario() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["kept"]));
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .body("{not json")
        .send()
        .await
        .expect("the mock answers");
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("JSON");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(mock.requests()[0].body, Value::Null);
    assert_eq!(
        collect_sse(post(&mock, &chat(true)).await).await.content(),
        "kept"
    );
}

#[tokio::test]
async fn models_are_listed_and_unknown_routes_are_openai_404s() {
    let mock = MockUpstream::start().await;
    let client = reqwest::Client::new();
    let models: Value = client
        .get(format!("{}/models", mock.base_url()))
        .send()
        .await
        .expect("the mock answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");
    let missing = client
        .get(format!("{}/nope", mock.base_url()))
        .send()
        .await
        .expect("the mock answers");
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.expect("JSON");
    assert!(error["error"]["message"].is_string());
}

#[tokio::test]
async fn stats_report_tagged_early_disconnects_in_unix_microseconds() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["idle"]).stall_after(1).tag("abc"));
    let mut reader = SseReader::new(post(&mock, &chat(true)).await);
    reader
        .next_frame()
        .await
        .expect("the role chunk")
        .expect("no error");
    let stats_url = format!("http://{}/mock/stats", mock.addr());
    let stats: Value = reqwest::get(&stats_url)
        .await
        .expect("stats")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["streams_open"], 1);
    let before_drop = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros();
    drop(reader);
    assert!(mock.wait_for_early_disconnect(PATIENCE).await);
    let stats: Value = reqwest::get(&stats_url)
        .await
        .expect("stats")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["streams_open"], 0);
    assert_eq!(stats["early_disconnects"], 1);
    let dropped_at = stats["dropped_at_unix_us"]["abc"]
        .as_u64()
        .expect("a timestamp");
    assert!(u128::from(dropped_at) >= before_drop);
}
