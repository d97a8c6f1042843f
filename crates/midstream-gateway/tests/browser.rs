//! The web app in a real browser: Debian's Chromium driven by playwright-core (pinned in
//! `tests/browser/`) against the real gateway. `scripts/test` installs Chromium and the
//! driver.
//!
//! The driver (`tests/browser/webapp.mjs`) asks about the weather, cuts the browser's
//! connection mid-stream, and prints what it saw as JSON; the assertions are here. The mock
//! upstream streams slowly enough (a token every 50 ms, about 8 s in all) for the cut, the
//! EventSource's 3 s retry and the resumed stream all to happen before the answer ends.

use std::path::PathBuf;
use std::time::Duration;

use midstream_testkit::{MockUpstream, MockWeather, Scenario, TestApp, TestAppBuilder, run_driver};
use serde_json::Value;

const API_KEY: &str = "msk_browser_test";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reply: the weather rule fires in its first sentence; then enough text, with accents,
/// dashes and characters outside the BMP, to outlast a reconnect.
fn pieces() -> Vec<String> {
    let mut pieces: Vec<String> = "Let me look. The weather in Paris looks mild today. "
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let filler = "A café terrace — or a walk along the Seine 🌤️ — sounds right; \
                  naïve forecasts aside, bring a light coat 🧥 for the evening. ";
    while pieces.len() < 160 {
        pieces.extend(filler.split_inclusive(' ').map(str::to_owned));
    }
    pieces.push("Enjoy!".to_owned());
    pieces
}

/// Runs the driver against `base_url` and returns its JSON summary.
async fn drive(base_url: &str, api_key: Option<&str>) -> Value {
    let root = root();
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists()
            && PathBuf::from("/usr/bin/chromium").exists(),
        "Chromium or playwright-core is missing: run ./scripts/test, which installs them"
    );
    let mut args = vec![
        root.join("tests/browser/webapp.mjs").into_os_string(),
        base_url.into(),
    ];
    if let Some(key) = api_key {
        args.extend(["--api-key".into(), key.into()]);
    }
    run_driver("the browser test", "node", args).await
}

/// Starts the gateway (`configure`d further) in front of a slow mock upstream and the mock
/// weather API, drives the browser through it, and checks what every run must show: the
/// weather card filled in before the answer ended, "reconnecting" after the cut, a resume
/// with Last-Event-ID, and at the end exactly the recorded text, in the chat and in the
/// replay. Returns the summary for the case's own checks.
async fn run(
    configure: impl FnOnce(TestAppBuilder) -> TestAppBuilder,
    api_key: Option<&str>,
) -> Value {
    let mock = MockUpstream::start().await;
    let weather = MockWeather::start().await;
    let app = configure(
        TestApp::builder()
            .upstream(mock.base_url())
            .default_rules()
            .weather_api(&weather),
    )
    .start()
    .await;
    let pieces = pieces();
    let expected: String = pieces.concat();
    mock.set_default(Scenario::text(pieces).delay(Duration::from_millis(50)));

    let summary = drive(&app.base_url(), api_key).await;
    eprintln!("browser summary: {summary:#}");

    assert_eq!(summary["ok"], true, "{summary:#}");
    let card = &summary["weather_card"];
    assert_eq!(card["state"], "done", "{card}");
    assert_eq!(
        card["reply_state"], "running",
        "the card filled in before the answer ended"
    );
    assert!(
        card["city"].as_str().is_some_and(|c| c.contains("Paris")),
        "{card}"
    );

    let cut = &summary["cut"];
    assert_eq!(cut["status_shown"], "reconnecting\u{2026}", "{cut}");
    let resumed = cut["reconnect_requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        resumed
            .iter()
            .any(|r| r["last_event_id"].is_string() && r["status"] == 200),
        "the EventSource came back with Last-Event-ID and got the rest: {cut}"
    );

    let ending = &summary["final"];
    assert_eq!(ending["state"], "completed", "{ending}");
    assert_eq!(ending["duplicates"], 0, "{ending}");
    assert_eq!(ending["recovered_from_record"], false, "{ending}");
    assert!(
        ending["chars_after_cut"].as_u64().is_some_and(|n| n > 0),
        "{ending}"
    );
    assert_eq!(summary["text_matches_record"], true, "{summary:#}");
    app.flush().await;
    let stream_id = summary["stream_id"].as_str().expect("a stream id");
    let mut request = app.client.get(app.url(&format!("/v1/streams/{stream_id}")));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let record: Value = request
        .send()
        .await
        .expect("the gateway answers")
        .json()
        .await
        .expect("the record is JSON");
    assert_eq!(
        record["response"]["text"],
        expected.as_str(),
        "the record holds the upstream's text"
    );
    assert_eq!(
        mock.chat_completion_count(),
        1,
        "a reconnect resumes the stream; it never asks the upstream again"
    );

    assert_eq!(summary["history"]["first_is_ours"], true, "{summary:#}");
    assert_eq!(
        summary["replay"]["text_matches_record"], true,
        "{summary:#}"
    );
    for (name, path) in summary["screenshots"].as_object().expect("screenshots") {
        let path = path.as_str().expect("a path");
        assert!(
            std::fs::metadata(path).is_ok_and(|m| m.len() > 0),
            "screenshot {name} at {path}"
        );
    }
    summary
}

/// With keys required: the app asks for one, and the events are read with the signed token.
/// The log holds the whole stream, so the reconnect gets exactly the missed events.
#[tokio::test]
async fn web_app_streams_resumes_after_a_cut_and_replays() {
    let summary = run(|app| app.env("MIDSTREAM_API_KEYS", API_KEY), Some(API_KEY)).await;
    assert_eq!(summary["key_field"], "shown", "the gateway requires a key");
    assert_eq!(summary["final"]["snapshots"], 0, "{summary:#}");
}

/// Without keys, and with an event log of ten events: by the time the browser reconnects the
/// log has forgotten what it missed, so a snapshot replaces the text and cards, and the
/// text still ends exactly as recorded.
#[tokio::test]
async fn web_app_rebuilds_from_a_snapshot_when_the_log_forgot() {
    let summary = run(|app| app.env("MIDSTREAM_EVENT_LOG_MAX_EVENTS", "10"), None).await;
    assert_eq!(summary["key_field"], "hidden", "no key is needed");
    assert!(
        summary["final"]["snapshots"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "the reconnect began with a snapshot: {summary:#}"
    );
}
