//! 500 streams at once through one gateway on loopback, on SQLite and on PostgreSQL: every
//! one answers whole, and every one is recorded, completed, with its text — no error, no lost
//! record. (Bounded: seconds, not a benchmark; the figures are `scripts/bench`'s.)

use std::time::Duration;

use futures_util::future::join_all;
use midstream_testkit::{MockUpstream, Scenario, TestApp, TestAppBuilder, collect_sse, stream_id};
use serde_json::json;

const STREAMS: usize = 500;

async fn five_hundred_streams_at_once(builder: TestAppBuilder) {
    let mock = MockUpstream::start().await;
    // Paced, so that the streams are open at the same time.
    mock.set_default(
        Scenario::text(["one", " two", " three", " four", " five"])
            .delay(Duration::from_millis(20)),
    );
    let app = builder.upstream(mock.base_url()).start().await;
    let request =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "count"}]});
    let answers = join_all((0..STREAMS).map(|_| async {
        let response = app.chat(&request).await;
        assert_eq!(response.status(), 200);
        let id = stream_id(&response);
        let collected = collect_sse(response).await;
        assert!(collected.error.is_none(), "{:?}", collected.error);
        assert!(collected.ends_with_done());
        (id, collected.content())
    }))
    .await;
    app.flush().await;
    let mut completed = 0;
    for (id, text) in &answers {
        assert_eq!(text, "one two three four five");
        let row = app
            .store
            .stream(id)
            .await
            .expect("the database answers")
            .unwrap_or_else(|| panic!("stream {id} was recorded"));
        assert_eq!(row.response_text.as_deref(), Some(text.as_str()));
        completed += usize::from(row.status == "completed");
    }
    assert_eq!(completed, STREAMS, "every stream is recorded completed");
    app.assert_records_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_records_every_one_of_500_streams_at_once() {
    five_hundred_streams_at_once(TestApp::builder()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_records_every_one_of_500_streams_at_once() {
    five_hundred_streams_at_once(TestApp::builder().postgres()).await;
}
