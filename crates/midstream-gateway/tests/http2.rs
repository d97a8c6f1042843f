//! HTTP/2 over cleartext with prior knowledge, on the same port as HTTP/1.1: streaming
//! completions multiplexed on one connection, and one of them cancelled by its client
//! (`RST_STREAM`) while the others go on.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use midstream_testkit::{MockUpstream, Scenario, TestApp};
use serde_json::{Value, json};
use tokio::net::TcpStream;

const STREAMS: usize = 3;

/// One HTTP/2 connection to the gateway, driven in the background.
async fn h2_connection(app: &TestApp) -> http2::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(app.addr).await.expect("connects");
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .expect("an HTTP/2 handshake with prior knowledge");
    tokio::spawn(connection);
    sender
}

fn chat_request(app: &TestApp) -> Request<Full<Bytes>> {
    let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Count"}]});
    Request::post(app.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request")
}

/// The record's status, once it is no longer `streaming` (bounded wait).
async fn final_status(app: &TestApp, id: &str) -> Value {
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app.record(id).await["status"].clone();
        if status != "streaming" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status
}

#[tokio::test]
async fn streams_multiplexed_on_one_h2c_connection_and_one_cancelled_by_its_client() {
    let mock = MockUpstream::start().await;
    let app = TestApp::builder().upstream(mock.base_url()).start().await;
    for _ in 0..STREAMS {
        let pieces: Vec<String> = (0..400).map(|i| format!("t{i} ")).collect();
        mock.push(Scenario::text(pieces).delay(Duration::from_millis(4)));
    }
    let sender = h2_connection(&app).await;
    let mut responses = Vec::new();
    for _ in 0..STREAMS {
        let mut sender = sender.clone();
        let request = chat_request(&app);
        responses.push(tokio::spawn(async move {
            sender.send_request(request).await.expect("a response")
        }));
    }
    let mut open = Vec::new();
    for response in responses {
        let response = response.await.expect("joined");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), Version::HTTP_2);
        let id = response.headers()["x-midstream-stream-id"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        open.push((id, response.into_body()));
    }

    // The first stream's client reads a little, then cancels it (dropping the body resets the
    // HTTP/2 stream); the connection and the other streams go on.
    let (cancelled_id, mut cancelled) = open.remove(0);
    let first = cancelled.frame().await.expect("a frame").expect("data");
    assert!(first.is_data());
    drop(cancelled);
    assert!(
        mock.wait_for_early_disconnect(Duration::from_secs(10))
            .await,
        "the cancelled stream's upstream request is dropped"
    );

    for (id, body) in open {
        let bytes = body.collect().await.expect("the whole stream").to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("t399 "), "{id}: every token arrived");
        assert!(text.trim_end().ends_with("data: [DONE]"), "{id}: {text}");
        assert_eq!(final_status(&app, &id).await, "completed", "{id}");
    }
    assert_eq!(final_status(&app, &cancelled_id).await, "cancelled");
    assert_eq!(
        mock.early_disconnects(),
        1,
        "only the cancelled stream's upstream"
    );

    // The same port still speaks HTTP/1.1.
    let response = app.get("/healthz").await;
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), 200);
}

/// A client that sends the HTTP/2 preface in pieces is still served HTTP/2 (the server looks at
/// the first bytes without reading them until the preface is whole or cannot be one).
#[tokio::test]
async fn a_preface_sent_in_pieces_still_starts_http2() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::start().await;
    let mut tcp = TcpStream::connect(app.addr).await.expect("connects");
    tcp.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(30)).await;
    tcp.write_all(b"\r\nSM\r\n\r\n").await.expect("write");
    let mut frame_head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut frame_head))
        .await
        .expect("the server answers")
        .expect("a frame");
    assert_eq!(frame_head[3], 0x4, "the server's first frame is SETTINGS");
}
