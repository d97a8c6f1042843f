//! No frame escapes the analysis (issue 20): a chunk whose JSON the upstream writes in several
//! `data:` lines of one event (legal SSE, joined with `\n` by every client) is read, analysed,
//! redacted and recorded like a one-line chunk, on the chat endpoint and through the Responses
//! translation, however the lines and the bytes are cut.

use bytes::Bytes;
use midstream_sse::{FrameKind, FrameSplitter, frame_data};
use midstream_testkit::{
    Collected, MockUpstream, Scenario, Split, SseReader, TestApp, collect_sse,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const KEY: &str = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const REDACTED: &str = "Your key is [redacted key] — keep it safe.";

fn request() -> Value {
    json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "show my key"}]})
}

/// The text around [`KEY`], cut into pieces at `cuts` (byte offsets, clamped to characters).
fn pieces(cuts: &[usize]) -> Vec<String> {
    let text = format!("Your key is {KEY} — keep it safe.");
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&cut| cut % text.len())
        .filter(|&cut| text.is_char_boundary(cut))
        .collect();
    points.extend([0, text.len()]);
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|pair| text[pair[0]..pair[1]].to_owned())
        .collect()
}

/// How many frames of the stream carry their data in several lines.
fn multi_line_frames(raw: &[u8]) -> usize {
    let mut frames = Vec::new();
    let mut splitter = FrameSplitter::new(1 << 20);
    splitter
        .push(Bytes::copy_from_slice(raw), |frame| frames.push(frame))
        .expect("within the limit");
    frames
        .iter()
        .filter(|frame| matches!(frame_data(frame), FrameKind::MultiData(_)))
        .count()
}

/// The key never reaches the client, the text is the redacted text, and the record says so.
async fn assert_redacted(app: &TestApp, response: reqwest::Response) -> Collected {
    let id = response.headers()["x-midstream-stream-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let collected = collect_sse(response).await;
    let raw = String::from_utf8_lossy(&collected.raw).into_owned();
    assert!(!raw.contains("ABCDEFGHIJ"), "the key leaked: {raw}");
    assert_eq!(collected.content(), REDACTED, "{raw}");
    assert!(collected.ends_with_done(), "{raw}");
    let record = app.record(&id).await;
    assert_eq!(record["response"]["text"], REDACTED);
    assert!(
        collected
            .midstream_events()
            .iter()
            .any(|event| event["type"] == "intent" && event["action"] == "redact"),
        "{raw}"
    );
    collected
}

#[tokio::test]
async fn chunks_in_several_data_lines_are_redacted_recorded_and_otherwise_passed_as_sent() {
    let mock = MockUpstream::start().await;
    let app = TestApp::with_rules_before(&mock).await;
    for seed in 0..4 {
        mock.push(Scenario::text(pieces(&[5, 14, 29, 40])).data_lines(seed));
        let collected = assert_redacted(&app, app.chat(&request()).await).await;
        // Chunks the redaction leaves alone (the role chunk, the finish chunk) are the
        // upstream's bytes, in their several lines.
        assert!(multi_line_frames(&collected.raw) >= 2, "seed {seed}");
    }
}

#[tokio::test]
async fn the_responses_api_reads_chunks_in_several_data_lines() {
    let mock = MockUpstream::start().await;
    let app = TestApp::with_rules_before(&mock).await;
    mock.push(Scenario::text(pieces(&[3, 20, 33])).data_lines(7));
    let response = app
        .client
        .post(app.url("/v1/responses"))
        .json(&json!({"model": "m", "input": "hi", "stream": true}))
        .send()
        .await
        .expect("answer");
    let mut reader = SseReader::new(response);
    let mut text = String::new();
    while let Some(frame) = reader.next_frame().await {
        let Some(data) = frame.expect("a clean stream").data else {
            continue;
        };
        let event: Value = serde_json::from_str(&data).expect("json");
        if event["type"] == "response.output_text.delta" {
            text.push_str(event["delta"].as_str().expect("a string delta"));
        }
    }
    assert!(!String::from_utf8_lossy(reader.raw()).contains("ABCDEFGHIJ"));
    assert_eq!(text, REDACTED);
}

/// One gateway for all property cases (a runtime of its own outlives each case).
fn shared() -> &'static (tokio::runtime::Runtime, MockUpstream, TestApp) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, MockUpstream, TestApp)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (mock, app) = runtime.block_on(async {
            let mock = MockUpstream::start().await;
            let app = TestApp::with_rules_before(&mock).await;
            (mock, app)
        });
        (runtime, mock, app)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// However the text is cut into chunks, the chunks into lines and the lines into reads,
    /// the key never reaches the client and the record holds the redacted text.
    #[test]
    fn redaction_holds_however_chunks_are_split_across_data_lines(
        cuts in prop::collection::vec(0usize..64, 0..8),
        seed in any::<u64>(),
        max_read in 1usize..64,
    ) {
        let (runtime, mock, app) = shared();
        runtime.block_on(async {
            mock.push(
                Scenario::text(pieces(&cuts))
                    .data_lines(seed)
                    .split(Split::Random { seed, max: max_read }),
            );
            assert_redacted(app, app.chat(&request()).await).await;
        });
    }
}
