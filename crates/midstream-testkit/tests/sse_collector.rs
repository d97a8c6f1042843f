//! The SSE collector and reader against real HTTP responses from the mock upstream.

use midstream_testkit::{
    MockUpstream, Scenario, Split, SseParser, SseReader, collect_sse, fixture_bytes,
};
use serde_json::json;

async fn stream(mock: &MockUpstream) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&json!({"model": "gpt-4o-mini", "stream": true, "messages": []}))
        .send()
        .await
        .expect("the mock answers")
}

/// A stream as the gateway will send it: chunks, a keep-alive, an injected event.
const GATEWAY_LIKE: &[u8] = b"\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Weather in Paris\"},\"finish_reason\":null}]}\n\n\
: keep-alive\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null}],\"midstream\":{\"type\":\"tool.result\",\"tool\":\"weather\"}}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" is mild.\"},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

#[tokio::test]
async fn chunks_content_events_and_comments_are_read_from_a_stream() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::raw(GATEWAY_LIKE));
    let collected = collect_sse(stream(&mock).await).await;
    assert_eq!(collected.status, 200);
    assert_eq!(collected.raw, GATEWAY_LIKE);
    assert_eq!(collected.error, None);
    assert_eq!(collected.frames.len(), 5);
    assert_eq!(collected.frames[1].comments, ["keep-alive"]);
    assert_eq!(collected.json_chunks().len(), 3);
    assert_eq!(collected.content(), "Weather in Paris is mild.");
    assert_eq!(
        collected.midstream_events(),
        [json!({"type": "tool.result", "tool": "weather"})]
    );
    assert!(collected.ends_with_done());
}

#[tokio::test]
async fn a_stream_split_at_every_byte_collects_like_the_whole() {
    let mock = MockUpstream::start().await;
    let bytes = fixture_bytes("text-long").expect("a fixture");
    mock.push(Scenario::fixture("text-long").split(Split::Bytes(1)));
    let collected = collect_sse(stream(&mock).await).await;
    assert_eq!(collected.raw, bytes);
    assert_eq!(
        collected.frames,
        SseParser::new().push(bytes).expect("within bounds")
    );
}

#[tokio::test]
async fn the_reader_reports_a_transport_error_once_after_the_frames() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::text(["a"]).then_drop());
    let mut reader = SseReader::new(stream(&mock).await);
    let mut frames = 0;
    let error = loop {
        match reader.next_frame().await.expect("frames, then an error") {
            Ok(_) => frames += 1,
            Err(error) => break error,
        }
    };
    assert_eq!(frames, 3, "role, piece, finish");
    assert!(error.contains("error decoding response body"), "{error}");
    assert_eq!(reader.error(), Some(error.as_str()));
    assert!(reader.next_frame().await.is_none());
    assert!(reader.raw().ends_with(b"\n\n"));
}

#[tokio::test]
#[should_panic(expected = "is not JSON")]
async fn json_chunks_refuse_a_data_frame_that_is_not_json() {
    let mock = MockUpstream::start().await;
    mock.push(Scenario::raw(&b"data: nope\n\ndata: [DONE]\n\n"[..]));
    collect_sse(stream(&mock).await).await.json_chunks();
}
