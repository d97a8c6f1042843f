//! Browser streams over loopback: `POST /v1/streams`, its resumable events, cancel, the
//! history, and the bounds of the memory log. (Redis and two processes: `tests/shared_log.rs`.)

use std::time::Duration;

use midstream_gateway::auth::Caller;
use midstream_gateway::live::Signer;
use midstream_testkit::{
    MockUpstream, MockWeather, Scenario, SseReader, StreamEvent, TestApp, TestAppBuilder,
    collect_sse, read_events, stream_id, text_of,
};
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

fn chat(prompt: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": prompt}]})
}

/// The default rules, the weather tool on a mock, a known signing secret.
fn builder(weather: &MockWeather, mock: &MockUpstream) -> TestAppBuilder {
    TestApp::builder()
        .default_rules()
        .weather_api(weather)
        .upstream(mock.base_url())
        .env("MIDSTREAM_STREAM_SECRET", SECRET)
}

/// `lead` then `count` filler words.
fn words(lead: &[&str], count: usize) -> Vec<String> {
    lead.iter()
        .map(|s| (*s).to_owned())
        .chain((0..count).map(|i| format!(" w{i}")))
        .collect()
}

struct Started {
    id: String,
    events_url: String,
    cancel_url: String,
}

async fn start(app: &TestApp, body: &Value, key: Option<&str>) -> Started {
    let mut request = app.client.post(app.url("/v1/streams")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("answer");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "midstream.stream");
    assert!(body["expires_at"].as_u64().is_some());
    let field = |name: &str| {
        let path = body[name].as_str().expect("a URL").to_owned();
        assert!(path.starts_with('/'), "relative: {path}");
        app.url(&path)
    };
    Started {
        id: body["id"].as_str().expect("id").to_owned(),
        events_url: field("events_url"),
        cancel_url: field("cancel_url"),
    }
}

fn names(events: &[StreamEvent]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

async fn all_events(app: &TestApp, url: &str, after: Option<u64>) -> Vec<StreamEvent> {
    let answer = read_events(&app.client, url, after, None, None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.error);
    answer.events
}

#[tokio::test]
async fn a_stream_runs_on_the_server_and_its_events_are_numbered_named_and_recorded() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(
        Scenario::text(words(&["Sure. ", "The weather in Paris", " looks"], 10))
            .delay(Duration::from_millis(5)),
    );
    let started = start(&app, &chat("hello"), None).await;
    let answer = read_events(&app.client, &started.events_url, None, None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.retry, Some(2000), "retry: once, first");
    let events = answer.events;
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.id, Some(n as u64), "ids are 0, 1, 2, … with no gap");
        assert_eq!(event.data["seq"], n, "data carries the same seq");
    }
    let kinds = names(&events);
    for kind in ["token", "intent", "tool.started", "tool.result", "usage"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds.last(), Some(&"done"));
    assert_eq!(events.last().expect("done").data["status"], "completed");
    assert_eq!(events.last().expect("done").data["finish_reason"], "stop");
    let record = app.record(&started.id).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(text_of(&events), record["response"]["text"]);
    let result = events
        .iter()
        .find(|e| e.name == "tool.result")
        .expect("result");
    assert_eq!(result.data["type"], "tool.result");
    assert!(result.data["result"].is_object());
    // After `done`, a reconnect is told there is nothing more.
    let done_id = events.last().and_then(|e| e.id);
    let again = read_events(&app.client, &started.events_url, done_id, None, None).await;
    assert_eq!(again.status, 204);
}

#[tokio::test]
async fn a_reconnect_after_any_event_gets_exactly_the_rest() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(words(&["The weather in Lisbon", " is"], 12)));
    let started = start(&app, &chat("hi"), None).await;
    let all = all_events(&app, &started.events_url, None).await;
    let record = app.record(&started.id).await;
    let last = all.len() - 1;
    for k in 0..last {
        let rest = all_events(&app, &started.events_url, Some(k as u64)).await;
        assert_eq!(rest, all[k + 1..], "after event {k}");
        let seen: String = text_of(&all[..=k]) + &text_of(&rest);
        assert_eq!(seen, record["response"]["text"], "after event {k}");
    }
    // The query parameter works like the header (for clients that cannot set it).
    let url = format!("{}&last_event_id=2", started.events_url);
    assert_eq!(all_events(&app, &url, None).await, all[3..]);
    let bad = read_events(
        &app.client,
        &format!("{}&last_event_id=x", started.events_url),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.error.expect("body")["error"]["code"],
        "invalid_last_event_id"
    );
}

#[tokio::test]
async fn a_connection_cut_mid_stream_resumes_with_no_gap_and_no_duplicate() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(
        Scenario::text(words(&["The weather in Paris", " looks"], 40))
            .delay(Duration::from_millis(10)),
    );
    let started = start(&app, &chat("hi"), None).await;
    let mut seen = Vec::new();
    let mut last_id = None;
    // Cut after 3 events, then after 5 more, then read to the end: each reconnect carries
    // the last id it saw, as EventSource does.
    for limit in [Some(3), Some(5), Some(7), None] {
        let part = read_events(&app.client, &started.events_url, last_id, None, limit).await;
        assert_eq!(part.status, 200);
        last_id = part.events.last().and_then(|e| e.id).or(last_id);
        seen.extend(part.events);
    }
    let ids: Vec<u64> = seen.iter().filter_map(|e| e.id).collect();
    assert_eq!(ids, (0..seen.len() as u64).collect::<Vec<_>>());
    assert_eq!(names(&seen).last(), Some(&"done"));
    let record = app.record(&started.id).await;
    assert_eq!(text_of(&seen), record["response"]["text"]);
    assert_eq!(
        record["status"], "completed",
        "dropped subscribers never cancel"
    );
}

#[tokio::test]
async fn several_subscribers_follow_one_stream() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(words(&["Hi"], 20)).delay(Duration::from_millis(5)));
    let started = start(&app, &chat("hi"), None).await;
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (app.client.clone(), started.events_url.clone());
            tokio::spawn(async move { read_events(&client, &url, None, None, None).await.events })
        })
        .collect();
    let mut seen = Vec::new();
    for reader in readers {
        seen.push(reader.await.expect("reader"));
    }
    assert!(seen.iter().all(|events| *events == seen[0]));
    assert_eq!(
        text_of(&seen[0]),
        app.record(&started.id).await["response"]["text"]
    );
}

#[tokio::test]
async fn cancel_stops_the_upstream_and_subscribers_get_done_cancelled() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(words(&["Hi"], 500)).delay(Duration::from_millis(10)));
    let started = start(&app, &chat("hi"), None).await;
    let first = read_events(&app.client, &started.events_url, None, None, Some(2)).await;
    assert_eq!(first.events.len(), 2);
    let cancel = app
        .client
        .post(&started.cancel_url)
        .send()
        .await
        .expect("answer");
    assert_eq!(cancel.status(), 202);
    assert_eq!(
        cancel.json::<Value>().await.expect("json")["status"],
        "cancelling"
    );
    let rest = all_events(&app, &started.events_url, first.events[1].id).await;
    let done = rest.last().expect("done");
    assert_eq!(done.name, "done");
    assert_eq!(done.data["status"], "cancelled");
    assert_eq!(done.data["reason"], "cancelled through the cancel endpoint");
    assert!(
        mock.wait_for_early_disconnect(Duration::from_secs(5)).await,
        "the upstream request was dropped"
    );
    let record = app.record(&started.id).await;
    assert_eq!(record["status"], "cancelled");
    assert!(record["response"]["text"].as_str().expect("text").len() < 500 * 3);
    // Cancelling again answers the final status.
    let again = app
        .client
        .post(&started.cancel_url)
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.expect("json")["status"],
        "cancelled"
    );
}

#[tokio::test]
async fn tokens_are_checked_and_keys_see_only_their_own_streams() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock)
        .env("MIDSTREAM_API_KEYS", "msk_alpha, msk_beta")
        .start()
        .await;
    mock.set_default(Scenario::text(["Hello", " there"]));
    let no_key = app
        .client
        .post(app.url("/v1/streams"))
        .json(&chat("hi"))
        .send()
        .await
        .expect("answer");
    assert_eq!(no_key.status(), 401);
    let started = start(&app, &chat("hi"), Some("msk_alpha")).await;
    let events = all_events(&app, &started.events_url, None).await;
    assert_eq!(names(&events).last(), Some(&"done"));

    let base = started
        .events_url
        .split('?')
        .next()
        .expect("path")
        .to_owned();
    let unauthorized = |answer: midstream_testkit::EventsResponse, code: &str| {
        assert_eq!(answer.status, 401);
        let error = answer.error.expect("an OpenAI error");
        assert_eq!(error["error"]["type"], "authentication_error");
        assert_eq!(error["error"]["code"], code);
    };
    let forged = format!("{base}?token=1.2.3");
    unauthorized(
        read_events(&app.client, &forged, None, None, None).await,
        "invalid_stream_token",
    );
    let signer = Signer::new(SECRET.as_bytes());
    let caller = Caller {
        key_id: Some("key".to_owned()),
    };
    let expired = format!("{base}?token={}", signer.sign(&started.id, &caller, 1));
    unauthorized(
        read_events(&app.client, &expired, None, None, None).await,
        "invalid_stream_token",
    );
    let other = start(&app, &chat("hi"), Some("msk_alpha")).await;
    let moved = format!(
        "{base}?token={}",
        other.events_url.split("token=").nth(1).expect("token")
    );
    unauthorized(
        read_events(&app.client, &moved, None, None, None).await,
        "invalid_stream_token",
    );
    unauthorized(
        read_events(&app.client, &base, None, None, None).await,
        "invalid_api_key",
    );

    let own = read_events(&app.client, &base, None, Some("msk_alpha"), None).await;
    assert_eq!(own.status, 200, "a key follows its own stream with Bearer");
    assert_eq!(own.events, events);
    let foreign = read_events(&app.client, &base, None, Some("msk_beta"), None).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(
        foreign.error.expect("body")["error"]["code"],
        "stream_not_found"
    );
    let cancel = app
        .client
        .post(app.url(&format!("/v1/streams/{}/cancel", started.id)))
        .bearer_auth("msk_beta")
        .send()
        .await
        .expect("answer");
    assert_eq!(cancel.status(), 404);
    // The history: the caller's streams only, newest first.
    app.flush().await;
    let list = |key: &'static str| {
        app.client
            .get(app.url("/v1/streams?limit=1"))
            .bearer_auth(key)
            .send()
    };
    let page: Value = list("msk_alpha")
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(page["data"][0]["id"], other.id);
    assert_eq!(page["has_more"], true);
    let next = app
        .client
        .get(app.url(&format!("/v1/streams?limit=5&after={}", other.id)))
        .bearer_auth("msk_alpha")
        .send()
        .await
        .expect("answer")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(next["data"][0]["id"], started.id);
    assert_eq!(next["data"][0]["prompt"], "hi");
    let beta: Value = list("msk_beta")
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(beta["data"], json!([]));
}

/// A chat completion publishes nothing until it is followed: a follower that comes mid-stream
/// reads the text so far as its first event, then the rest live, with the ordinary seqs.
#[tokio::test]
async fn a_chat_completions_client_follows_its_own_stream_by_its_id() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(
        Scenario::text(words(&["The weather in Paris", " is"], 30))
            .delay(Duration::from_millis(10)),
    );
    let response = app
        .chat(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let id = stream_id(&response);
    let mut chat = SseReader::new(response);
    let mut chat_text = String::new();
    while !chat_text.ends_with(" is") {
        let frame = chat.next_frame().await.expect("a frame").expect("SSE");
        chat_text.push_str(&frame.chat_content());
    }
    let url = app.url(&format!("/v1/streams/{id}/events"));
    let follower = tokio::spawn({
        let client = app.client.clone();
        async move { read_events(&client, &url, None, Some("any"), None).await }
    });
    while let Some(Ok(frame)) = chat.next_frame().await {
        chat_text.push_str(&frame.chat_content());
    }
    let events = follower.await.expect("follower");
    assert_eq!(events.status, 200);
    let seqs: Vec<Option<u64>> = events.events.iter().map(|e| e.id).collect();
    let expected: Vec<Option<u64>> = (0..events.events.len() as u64).map(Some).collect();
    assert_eq!(seqs, expected, "an ordinary log from seq 0");
    let first = &events.events[0];
    assert_eq!(first.name, "token");
    assert!(
        first.data["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("The weather in Paris is")),
        "the text so far comes first: {first:?}"
    );
    assert_eq!(text_of(&events.events), chat_text);
    assert!(names(&events.events).contains(&"tool.result"));
    assert_eq!(names(&events.events).last(), Some(&"done"));
}

/// Nobody followed this chat completion: it published nothing, and a follower after its end
/// is answered from the record.
#[tokio::test]
async fn a_chat_completion_nobody_follows_is_answered_from_its_record() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    mock.push(Scenario::text(words(&["The weather in Paris", " is"], 5)));
    let response = app
        .chat(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let id = stream_id(&response);
    let chat_text = collect_sse(response).await.content();
    app.flush().await;
    let events = read_events(
        &app.client,
        &app.url(&format!("/v1/streams/{id}/events")),
        None,
        Some("any"),
        None,
    )
    .await;
    assert_eq!(events.status, 200);
    assert_eq!(names(&events.events), ["snapshot", "done"]);
    assert_eq!(text_of(&events.events), chat_text);
    let snapshot = &events.events[0].data;
    assert!(
        snapshot["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["type"] == "tool.result")),
        "the recorded events: {snapshot}"
    );
}

#[tokio::test]
async fn past_the_log_bound_a_subscriber_gets_a_snapshot_then_the_rest() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock)
        .env("MIDSTREAM_EVENT_LOG_MAX_EVENTS", "4")
        .start()
        .await;
    mock.push(Scenario::text(words(&["One"], 12)).delay(Duration::from_millis(2)));
    let started = start(&app, &chat("hi"), None).await;
    // Follow live to the end, then ask again from the start: the first events are folded.
    let live = all_events(&app, &started.events_url, None).await;
    let late = all_events(&app, &started.events_url, None).await;
    assert_eq!(late[0].name, "snapshot");
    let snapshot_seq = late[0].data["seq"].as_u64().expect("seq");
    assert_eq!(late[0].id, Some(snapshot_seq));
    assert_eq!(
        late[1..],
        live[snapshot_seq as usize + 1..],
        "then exactly the held events"
    );
    assert_eq!(text_of(&late), text_of(&live));
    assert_eq!(
        text_of(&late),
        app.record(&started.id).await["response"]["text"]
    );
    let metrics = app.get("/metrics").await.text().await.expect("text");
    for name in [
        "midstream_event_log_max_events_per_stream 4",
        "midstream_event_log_max_bytes",
        "midstream_event_log_max_age_seconds",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics");
    }
}

#[tokio::test]
async fn a_stream_no_log_holds_is_answered_from_its_record() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let database_url = format!("sqlite://{}/shared.db", dir.path().display());
    let mut app = builder(&weather, &mock)
        .env("DATABASE_URL", &database_url)
        .start()
        .await;
    mock.push(Scenario::text(["Hello", " world"]));
    let started = start(&app, &chat("hi"), None).await;
    let live = all_events(&app, &started.events_url, None).await;
    app.flush().await;
    // A new process on the same database: its memory log is empty.
    app.stop().await.expect("stop");
    let restarted = TestApp::builder()
        .env("MIDSTREAM_STREAM_SECRET", SECRET)
        .env("DATABASE_URL", &database_url)
        .start()
        .await;
    let url = started
        .events_url
        .replace(&app.base_url(), &restarted.base_url());
    let rebuilt = all_events(&restarted, &url, None).await;
    assert_eq!(names(&rebuilt), ["snapshot", "done"]);
    assert_eq!(text_of(&rebuilt), "Hello world");
    assert_eq!(
        rebuilt[1].id,
        live.last().and_then(|e| e.id),
        "done keeps its seq"
    );
    let after_done = read_events(&restarted.client, &url, rebuilt[1].id, None, None).await;
    assert_eq!(after_done.status, 204);
}

#[tokio::test]
async fn cors_follows_the_allow_list_on_the_browser_routes() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock)
        .env("MIDSTREAM_CORS_ORIGINS", "https://app.example.com")
        .start()
        .await;
    mock.set_default(Scenario::text(["Hi"]));
    for path in ["/v1/streams", "/v1/ui/chat"] {
        for (origin, allowed) in [
            ("https://app.example.com", true),
            ("https://evil.example", false),
        ] {
            let preflight = app
                .client
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                )
                .send()
                .await
                .expect("answer");
            let allow = preflight.headers().get("access-control-allow-origin");
            assert_eq!(allow.is_some(), allowed, "{path} from {origin}");
        }
    }
    let started = start(&app, &chat("hi"), None).await;
    let events = app
        .client
        .get(&started.events_url)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        events.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let created = app
        .client
        .post(app.url("/v1/streams"))
        .header("origin", "https://app.example.com")
        .json(&chat("hi"))
        .send()
        .await
        .expect("answer");
    let exposed = created.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    assert!(exposed.contains("x-midstream-stream-id"), "{exposed}");
}

#[tokio::test]
async fn reasoning_the_upstream_streams_is_published_apart_from_the_text() {
    let weather = MockWeather::start().await;
    let mock = MockUpstream::start().await;
    let app = builder(&weather, &mock).start().await;
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let body = [
        chunk(
            json!({"role": "assistant", "reasoning_content": "Let me "}),
            Value::Null,
        ),
        chunk(json!({"reasoning": "think."}), Value::Null),
        chunk(json!({"content": "Hello"}), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    mock.push(Scenario::raw(body));
    let started = start(&app, &chat("hi"), None).await;
    let events = all_events(&app, &started.events_url, None).await;
    let reasoning: String = events
        .iter()
        .filter(|e| e.name == "reasoning")
        .filter_map(|e| e.data["text"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think.");
    assert_eq!(
        text_of(&events),
        "Hello",
        "reasoning is not part of the text"
    );
    assert_eq!(app.record(&started.id).await["response"]["text"], "Hello");
}
