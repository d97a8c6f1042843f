//! API keys over loopback, on SQLite and PostgreSQL: revocation and a first key reach every
//! process sharing the database within a second, expiry holds, every route answers the same
//! statuses for a missing, wrong, revoked or expired key, and a key sees only its own streams.
//! Timings are never asserted: the tests poll for a few seconds and assert that the change
//! happened.

use std::time::Duration;

use midstream_store::{CreatedApiKey, KeyOptions, Store};
use midstream_testkit::{TestApp, collect_sse, read_events, stream_id};
use serde_json::{Value, json};

/// How long a change may take to show before the test fails: well over the one-second promise,
/// so a loaded machine does not fail it; the promise itself is the 500 ms refresh.
const PATIENCE: Duration = Duration::from_secs(5);

fn chat_body() -> Value {
    json!({"model": "midstream-demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

async fn create(store: &Store, name: &str, options: KeyOptions) -> CreatedApiKey {
    store
        .create_api_key(name, rand::random(), options)
        .await
        .expect("create a key")
}

/// The status of `POST /v1/chat/completions` with `key` (the body is read to the end).
async fn chat_status(app: &TestApp, key: Option<&str>) -> u16 {
    let mut request = app.client.post(app.url("/v1/chat/completions"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.json(&chat_body()).send().await.expect("answer");
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    status
}

/// Polls until `chat_status` is `want`, for at most [`PATIENCE`].
async fn eventually_status(app: &TestApp, key: Option<&str>, want: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = chat_status(app, key).await;
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status} after {PATIENCE:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two gateway processes (two instances) on one database.
async fn two_gateways(url: &str) -> (TestApp, TestApp) {
    let start = |instance: &str| {
        TestApp::builder()
            .env("DATABASE_URL", url)
            .env("MIDSTREAM_INSTANCE_ID", instance)
            .start()
    };
    let first = start("first").await;
    let second = start("second").await;
    (first, second)
}

/// A first key created while both run open closes both, without a restart; a key revoked
/// through one process is refused by the other, which had it cached; an expired key is
/// refused with no change to the database at all.
async fn keys_reach_every_process(url: String) {
    let (first, second) = two_gateways(&url).await;
    assert_eq!(chat_status(&second, None).await, 200, "open at first");

    let key = create(&first.store, "ci", KeyOptions::default()).await;
    eventually_status(&second, None, 401).await;
    eventually_status(&first, None, 401).await;
    assert_eq!(chat_status(&second, Some(&key.secret)).await, 200);

    // The second process has the key cached now; the revocation goes through the first.
    assert!(
        first
            .store
            .revoke_api_key(&key.key.id)
            .await
            .expect("revoke")
    );
    eventually_status(&second, Some(&key.secret), 401).await;
    assert_eq!(chat_status(&first, Some(&key.secret)).await, 401);
    // Revoking the last key does not reopen the gateway.
    assert_eq!(chat_status(&second, None).await, 401);

    let expiring = create(
        &first.store,
        "short",
        KeyOptions {
            expires_at: Some(midstream_store::clock::now_ms() + 1_500),
            ..KeyOptions::default()
        },
    )
    .await;
    let status = chat_status(&second, Some(&expiring.secret)).await;
    // 401 only if this machine took over 1.5 s to get here; the expiry is still shown below.
    assert!(status == 200 || status == 401, "{status}");
    eventually_status(&second, Some(&expiring.secret), 401).await;
    eventually_status(&first, Some(&expiring.secret), 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keys_reach_every_process_sharing_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    keys_reach_every_process(format!("sqlite://{}/shared.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keys_reach_every_process_sharing_the_database() {
    keys_reach_every_process(midstream_store::testing::fresh_postgres_url().await).await;
}

/// A route to try every kind of key on: method, path, body.
struct Route {
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
}

impl Route {
    fn get(path: String) -> Route {
        Route {
            method: reqwest::Method::GET,
            path,
            body: None,
        }
    }

    fn post(path: String, body: Value) -> Route {
        Route {
            method: reqwest::Method::POST,
            path,
            body: Some(body),
        }
    }

    async fn send(&self, app: &TestApp, key: Option<&str>) -> (u16, Value) {
        let mut request = app.client.request(self.method.clone(), app.url(&self.path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        let response = request.send().await.expect("answer");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// Every `/v1` route, with a missing, wrong, revoked or expired key: 401 in OpenAI's shape,
/// and nothing of the data. Another key's stream, record, events, cancel and response: 404;
/// its list does not show them; a signed stream URL dies with its key.
async fn the_auth_matrix(app: TestApp) {
    let store = &app.store;
    let alpha = create(store, "alpha", KeyOptions::default()).await;
    let beta = create(store, "beta", KeyOptions::default()).await;
    let revoked = create(store, "revoked", KeyOptions::default()).await;
    assert!(store.revoke_api_key(&revoked.key.id).await.expect("revoke"));
    let expired = create(
        store,
        "expired",
        KeyOptions {
            expires_at: Some(midstream_store::clock::now_ms() - 1),
            ..KeyOptions::default()
        },
    )
    .await;
    eventually_status(&app, None, 401).await;

    // Alpha's data: a chat stream, a browser stream (with its signed URLs), a response.
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&alpha.secret)
        .json(&chat_body())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let chat_id = stream_id(&response);
    collect_sse(response).await;
    let started = Route::post("/v1/streams".into(), chat_body())
        .send(&app, Some(&alpha.secret))
        .await;
    assert_eq!(started.0, 201, "{}", started.1);
    let browser_id = started.1["id"].as_str().expect("id").to_owned();
    let events_url = started.1["events_url"].as_str().expect("url").to_owned();
    // Followed to its end, so the sweep at the end finds it closed.
    let followed = read_events(&app.client, &app.url(&events_url), None, None, None).await;
    assert_eq!(
        followed.events.last().map(|e| e.name.as_str()),
        Some("done")
    );
    let (status, created) = Route::post(
        "/v1/responses".into(),
        json!({"model": "midstream-demo", "input": "hi"}),
    )
    .send(&app, Some(&alpha.secret))
    .await;
    assert_eq!(status, 200, "{created}");
    let response_id = created["id"].as_str().expect("id").to_owned();
    app.flush().await;

    let routes = [
        Route::post("/v1/chat/completions".into(), chat_body()),
        Route::get("/v1/streams".into()),
        Route::post("/v1/streams".into(), chat_body()),
        Route::get(format!("/v1/streams/{chat_id}")),
        Route::get(format!("/v1/streams/{browser_id}/events")),
        Route::post(format!("/v1/streams/{browser_id}/cancel"), json!({})),
        Route::post(
            "/v1/ui/chat".into(),
            json!({"id": "chat-1", "messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]}),
        ),
        Route::get("/v1/ui/chat/chat-1/stream".into()),
        Route::get(format!("/v1/responses/{response_id}")),
        Route::get("/v1/models".into()),
    ];
    for route in &routes {
        for (who, key) in [
            ("no key", None),
            ("a wrong key", Some("msk_wrong")),
            ("a revoked key", Some(revoked.secret.as_str())),
            ("an expired key", Some(expired.secret.as_str())),
        ] {
            let (status, body) = route.send(&app, key).await;
            assert_eq!(
                status, 401,
                "{} {} with {who}: {body}",
                route.method, route.path
            );
            assert_eq!(body["error"]["type"], "authentication_error", "{body}");
            assert!(!body.to_string().contains(&chat_id), "no data leaks");
        }
    }

    // Beta, on alpha's things.
    for path in [
        format!("/v1/streams/{chat_id}"),
        format!("/v1/streams/{browser_id}"),
        format!("/v1/streams/{browser_id}/events"),
        format!("/v1/responses/{response_id}"),
    ] {
        let (status, body) = Route::get(path.clone())
            .send(&app, Some(&beta.secret))
            .await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let (status, _) = Route::post(format!("/v1/streams/{browser_id}/cancel"), json!({}))
        .send(&app, Some(&beta.secret))
        .await;
    assert_eq!(status, 404, "cancel another key's stream");
    let (_, list) = Route::get("/v1/streams".into())
        .send(&app, Some(&beta.secret))
        .await;
    assert_eq!(list["data"], json!([]), "beta's list is empty: {list}");
    let (_, list) = Route::get("/v1/streams".into())
        .send(&app, Some(&alpha.secret))
        .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(3), "{list}");
    let (status, _) = Route::get(format!("/v1/streams/{chat_id}"))
        .send(&app, Some(&alpha.secret))
        .await;
    assert_eq!(status, 200, "alpha sees its own");

    // A signed URL works without a key, and stops with its key.
    let events = app.get(&events_url).await;
    assert_eq!(events.status(), 200);
    drop(events);
    assert!(store.revoke_api_key(&alpha.key.id).await.expect("revoke"));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = app.get(&events_url).await.status();
        if status == 401 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.assert_records_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_route_refuses_bad_keys_and_hides_other_keys_streams() {
    the_auth_matrix(TestApp::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_route_refuses_bad_keys_and_hides_other_keys_streams() {
    the_auth_matrix(TestApp::builder().postgres().start().await).await;
}

/// A key's own requests per minute and streams at once: 429 with `Retry-After` in OpenAI's
/// shape, answered at once, counted in `/metrics`; other keys are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_own_limits_answer_429_with_retry_after() {
    let app = TestApp::builder()
        .env("MIDSTREAM_DEMO_TOKEN_DELAY_MS", "10")
        .start()
        .await;
    let rated = create(
        &app.store,
        "rated",
        KeyOptions {
            rpm: Some(2),
            ..KeyOptions::default()
        },
    )
    .await;
    let narrow = create(
        &app.store,
        "narrow",
        KeyOptions {
            max_streams: Some(1),
            ..KeyOptions::default()
        },
    )
    .await;
    let free = create(&app.store, "free", KeyOptions::default()).await;
    eventually_status(&app, None, 401).await;

    let models = Route::get("/v1/models".into());
    assert_eq!(models.send(&app, Some(&rated.secret)).await.0, 200);
    assert_eq!(models.send(&app, Some(&rated.secret)).await.0, 200);
    let response = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth(&rated.secret)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(models.send(&app, Some(&free.secret)).await.0, 200);

    // One stream at a time for `narrow`: the second waits for nothing, it is refused.
    let held = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&narrow.secret)
        .json(&chat_body())
        .send()
        .await
        .expect("answer");
    assert_eq!(held.status(), 200);
    let (status, body) = Route::post("/v1/chat/completions".into(), chat_body())
        .send(&app, Some(&narrow.secret))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "concurrent_streams_exceeded");
    assert_eq!(chat_status(&app, Some(&free.secret)).await, 200);
    collect_sse(held).await;
    // The slot is freed as the finished body is dropped, just after its last byte.
    eventually_status(&app, Some(&narrow.secret), 200).await;

    let metrics = app.get("/metrics").await.text().await.expect("text");
    for limit in ["rpm", "streams"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("midstream_key_limited_total")
                    && l.contains(&format!("limit=\"{limit}\""))),
            "{limit} is counted"
        );
    }
    app.assert_records_closed().await;
}

/// Three requests of a key allowed two per minute, the first two on two processes: the
/// third is refused on either, because Redis counts them together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_are_shared_through_redis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/shared.db", dir.path().display());
    let start = |instance: &str| {
        TestApp::builder()
            .env("DATABASE_URL", &url)
            .env("MIDSTREAM_INSTANCE_ID", instance)
            .env("MIDSTREAM_REDIS_URL", "redis://127.0.0.1:6379")
            .start()
    };
    let first = start("first").await;
    let second = start("second").await;
    let limited = |name: &'static str, rpm: u32| {
        create(
            &first.store,
            name,
            KeyOptions {
                rpm: Some(rpm),
                ..KeyOptions::default()
            },
        )
    };
    let models = Route::get("/v1/models".into());
    let warm = limited("warm-up", 1).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while models.send(&second, None).await.0 != 401 {
        assert!(tokio::time::Instant::now() < deadline, "keys required");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both processes connected to Redis: a check that finds Redis slow falls back to the local
    // count for a few seconds, by design, so the test waits until a key of one request per
    // minute used on one process is refused on the other (fresh keys, as each is spent).
    let connected_by = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut warm = warm;
    loop {
        assert_eq!(models.send(&first, Some(&warm.secret)).await.0, 200);
        if models.send(&second, Some(&warm.secret)).await.0 == 429 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < connected_by,
            "the processes never shared a count through Redis"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        warm = limited("warm-up", 1).await;
    }
    let key = limited("shared", 2).await;
    assert_eq!(models.send(&first, Some(&key.secret)).await.0, 200);
    assert_eq!(models.send(&second, Some(&key.secret)).await.0, 200);
    let (status, body) = models.send(&first, Some(&key.secret)).await;
    assert_eq!(
        status, 429,
        "the first process counts the second's request: {body}"
    );
    assert_eq!(models.send(&second, Some(&key.secret)).await.0, 429);
}

/// With Redis unreachable, each process still applies the key's limit on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_requests_per_minute_hold_in_each_process() {
    let app = TestApp::builder()
        .env("MIDSTREAM_REDIS_URL", "redis://127.0.0.1:1")
        .start()
        .await;
    let key = create(
        &app.store,
        "local",
        KeyOptions {
            rpm: Some(2),
            ..KeyOptions::default()
        },
    )
    .await;
    eventually_status(&app, None, 401).await;
    let models = Route::get("/v1/models".into());
    assert_eq!(models.send(&app, Some(&key.secret)).await.0, 200);
    assert_eq!(models.send(&app, Some(&key.secret)).await.0, 200);
    assert_eq!(models.send(&app, Some(&key.secret)).await.0, 429);
}
