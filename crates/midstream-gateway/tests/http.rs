//! The gateway's own HTTP/1.1 server (`h1`), spoken to byte by byte over loopback: keep-alive
//! and pipelining, request bodies framed every way a client may frame them, HTTP/1.0, HEAD,
//! `Expect: 100-continue`, and every request it must refuse, with the status that says why.

use std::time::Duration;

use midstream_testkit::TestApp;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CHAT: &str = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connects")
}

/// Reads until the server closes the connection (bounded, so a server that keeps it open
/// fails the test instead of hanging it).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads one response whose body has a content-length.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.expect("read"),
            1,
            "head cut short"
        );
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).expect("ASCII head");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |value| value.trim().parse().expect("length"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("body");
    (head, String::from_utf8(body).expect("UTF-8 body"))
}

/// The body of a whole response read off the wire.
fn body_of(answer: &str) -> &str {
    &answer[answer.find("\r\n\r\n").expect("head end") + 4..]
}

fn error_code(body: &str) -> String {
    let value: Value = serde_json::from_str(body).expect("an OpenAI error body");
    value["error"]["code"].as_str().expect("code").to_owned()
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let app = TestApp::start().await;
    let mut stream = connect(&app).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nPOST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{CHAT}GET /nope HTTP/1.1\r\nhost: x\r\n\r\n",
        CHAT.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let completion: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(completion["object"], "chat.completion");
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert_eq!(error_code(&body), "route_not_found");

    // Still open: one more request, this one asking to close.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let rest = read_to_close(&mut stream).await;
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.contains("connection: close\r\n"));
}

#[tokio::test]
async fn chunked_request_bodies_and_100_continue_are_served() {
    let app = TestApp::start().await;
    let mut stream = connect(&app).await;
    let (first, second) = CHAT.split_at(20);
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    stream.write_all(chunked.as_bytes()).await.expect("write");
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}: {body}");

    let expecting = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        CHAT.len()
    );
    stream.write_all(expecting.as_bytes()).await.expect("write");
    let mut interim = [0u8; 25];
    stream
        .read_exact(&mut interim)
        .await
        .expect("interim response");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(CHAT.as_bytes()).await.expect("write body");
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_sent() {
    let app = TestApp::builder()
        .env("MIDSTREAM_MAX_BODY_BYTES", "1024")
        .start()
        .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5000\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("\r\nx-request-id: "),
        "answered by the app, with its headers: {answer}"
    );
    assert!(
        !answer.contains("100 Continue"),
        "no go-ahead for a body that is refused"
    );
    assert_eq!(error_code(body_of(&answer)), "request_too_large");
}

#[tokio::test]
async fn http_1_0_streams_end_with_the_connection_and_head_has_no_body() {
    let app = TestApp::start().await;
    let mut stream = connect(&app).await;
    let body = r#"{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        !answer.contains("transfer-encoding"),
        "no chunks for HTTP/1.0"
    );
    assert!(
        answer.trim_end().ends_with("data: [DONE]"),
        "the raw SSE body: {answer}"
    );

    let mut stream = connect(&app).await;
    stream
        .write_all(b"HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut stream).await;
    let heads: Vec<&str> = answer
        .split("HTTP/1.1 ")
        .filter(|part| !part.is_empty())
        .collect();
    assert_eq!(
        heads.len(),
        2,
        "HEAD carries no body, so the next response follows: {answer}"
    );
    assert!(heads[0].ends_with("\r\n\r\n"), "{answer}");
}

#[tokio::test]
async fn requests_that_cannot_be_served_get_an_openai_error_and_a_close() {
    let app = TestApp::start().await;
    let oversized_head = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70_000));
    let cases: Vec<(String, &str, &str)> = vec![
        ("GARBAGE\r\n\r\n".into(), "400 Bad Request", "invalid_http_request"),
        (
            "POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            "400 Bad Request",
            "invalid_http_request",
        ),
        (
            "POST /v1/chat/completions HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".into(),
            "400 Bad Request",
            "invalid_http_request",
        ),
        (
            "POST /v1/chat/completions HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n".into(),
            "501 Not Implemented",
            "unsupported_transfer_coding",
        ),
        (
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(),
            "505 HTTP Version Not Supported",
            "http_version_not_supported",
        ),
        (oversized_head, "431 Request Header Fields Too Large", "request_header_too_large"),
    ];
    for (request, status, code) in cases {
        let mut stream = connect(&app).await;
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = read_to_close(&mut stream).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{status}: {answer}"
        );
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        assert_eq!(error_code(body_of(&answer)), code);
    }
    // The server is unharmed.
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_trickling_head_times_out_and_an_idle_connection_is_closed() {
    let app = TestApp::builder()
        .env("MIDSTREAM_CLIENT_READ_TIMEOUT_MS", "300")
        .env("MIDSTREAM_CLIENT_IDLE_TIMEOUT_MS", "300")
        .start()
        .await;
    // Every byte arrives well within the read timeout, but the head as a whole does not.
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(b"x-slow: 1\r\n").await.is_err() {
            break;
        }
    }
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert_eq!(error_code(body_of(&answer)), "request_timeout");

    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(
        read_to_close(&mut stream).await,
        "",
        "closed once idle, nothing more sent"
    );
}
