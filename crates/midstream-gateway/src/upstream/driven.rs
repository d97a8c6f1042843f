//! Plain-HTTP upstreams (`http://…`: vLLM, TGI, Ollama, llama.cpp, a sidecar) over HTTP/1.1
//! connections that the stream using them drives itself.
//!
//! Why not the shared client: reqwest (hyper-util's pool) runs every connection as a task of
//! its own. Each frame the upstream sends wakes that task, which passes the bytes through a
//! channel to the task forwarding the stream and wakes that one too: two wake-ups per frame,
//! often on two threads, and per connection hyper's buffers and channels (≈ 20 KB). Here a
//! connection is its socket and a small read buffer, owned by the response body: the task that
//! forwards the stream reads the socket itself ([`crate::h1`] does the framing), so a frame
//! costs one wake-up and no channel hop, and dropping the body (the client went away) closes the
//! connection at once.
//!
//! A connection whose response ended cleanly goes back to a LIFO pool and is reused while it is
//! younger than [`IDLE_TIMEOUT`]. Pooled connections are not polled: one the upstream closed
//! meanwhile is found out by a non-blocking read before the request is written. An upstream can
//! still close an idle connection just as the request goes out (its idle timeout racing ours);
//! when a reused connection ends before a single byte of response, the request is sent again on
//! a new connection, as browsers do. A new connection is never retried. TLS upstreams keep the
//! shared client: there one HTTP/2 connection, negotiated by ALPN, carries every stream.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::h1::client::{self, ResponseHead};
use crate::h1::framing::{BodyDecoder, Decoded};

/// Idle connections older than this are closed instead of reused (the shared client's value).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Most idle connections kept per upstream; beyond it the oldest is closed.
const MAX_IDLE: usize = 256;

/// The read buffer grows by this much when less than [`MIN_SPARE`] is free. A streamed frame
/// is a few hundred bytes; a held stream keeps at most this buffer.
const READ_SIZE: usize = 2048;
const MIN_SPARE: usize = 256;

struct IdleConnection {
    stream: TcpStream,
    since: Instant,
}

/// The connections to one plain-HTTP upstream.
pub(super) struct DrivenClient {
    host: String,
    port: u16,
    /// Origin-form target of chat requests.
    path: String,
    /// The `Host` header (HTTP/1.1 requires it).
    authority: String,
    connect_timeout: Duration,
    idle: Mutex<VecDeque<IdleConnection>>,
    /// [`IDLE_TIMEOUT`] and [`MAX_IDLE`] (fields so that tests can shrink them).
    idle_timeout: Duration,
    max_idle: usize,
}

impl std::fmt::Debug for DrivenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrivenClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// How an exchange failed, and whether a byte of the response had arrived by then.
struct Failed {
    error: io::Error,
    answered: bool,
}

impl DrivenClient {
    /// A client posting to `url` if it is an `http://` URL; `None` for any other.
    pub(super) fn for_url(url: &http::Uri, connect_timeout: Duration) -> Option<DrivenClient> {
        if url.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        let host = url.host()?.trim_start_matches('[').trim_end_matches(']');
        Some(DrivenClient {
            host: host.to_owned(),
            port: url.port_u16().unwrap_or(80),
            path: url.path_and_query()?.as_str().to_owned(),
            authority: url.authority()?.as_str().to_owned(),
            connect_timeout,
            idle: Mutex::new(VecDeque::new()),
            idle_timeout: IDLE_TIMEOUT,
            max_idle: MAX_IDLE,
        })
    }

    /// The bytes of a POST of `body`, with `headers`, to the URL this client was made for.
    pub(super) fn post(&self, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
        client::post(&self.path, &self.authority, headers, body)
    }

    /// Sends `request` (made by [`DrivenClient::post`]) on an idle connection or a new one;
    /// resolves when the response head arrived.
    pub(super) async fn send(
        self: &Arc<Self>,
        request: &[u8],
    ) -> io::Result<(ResponseHead, DrivenBody)> {
        loop {
            let (mut stream, reused) = match self.take_idle() {
                Some(stream) => (stream, true),
                None => (self.connect().await?, false),
            };
            let mut buf = BytesMut::new();
            match exchange(&mut stream, request, &mut buf).await {
                Ok(head) => {
                    let body = DrivenBody {
                        decoder: BodyDecoder::new(head.framing),
                        reusable: head.reusable,
                        stream: Some(stream),
                        buf,
                        client: Arc::clone(self),
                    };
                    return Ok((head, body));
                }
                Err(failed) if reused && !failed.answered => {
                    tracing::debug!(error = %failed.error, "pooled upstream connection closed; sending on a new one");
                }
                Err(failed) => return Err(failed.error),
            }
        }
    }

    async fn connect(&self) -> io::Result<TcpStream> {
        let address = (self.host.as_str(), self.port);
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no connection to {}:{} within {} ms",
                        self.host,
                        self.port,
                        self.connect_timeout.as_millis()
                    ),
                )
            })??;
        // Every frame of the request must leave at once (see the server's accept loop).
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The most recently used idle connection still open, closing those idle for too long.
    fn take_idle(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop_back() {
            if entry.since.elapsed() < self.idle_timeout && is_open(&entry.stream) {
                return Some(entry.stream);
            }
        }
        None
    }

    /// Keeps `stream` for reuse.
    fn put_idle(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while idle.front().is_some_and(|entry| {
            idle.len() >= self.max_idle || entry.since.elapsed() >= self.idle_timeout
        }) {
            idle.pop_front();
        }
        idle.push_back(IdleConnection {
            stream,
            since: Instant::now(),
        });
    }
}

/// Writes the request and reads up to the end of the response head (into `buf`; what follows
/// it is the start of the body).
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut BytesMut,
) -> Result<ResponseHead, Failed> {
    let unanswered = |error| Failed {
        error,
        answered: false,
    };
    stream.write_all(request).await.map_err(unanswered)?;
    let mut received = 0;
    loop {
        let parsed = client::parse_head(buf).map_err(|error| Failed {
            error,
            answered: true,
        })?;
        if let Some(head) = parsed {
            return Ok(head);
        }
        reserve(buf);
        let read = match stream.read_buf(buf).await {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before its response head ended",
            )),
            read => read,
        };
        match read {
            Ok(read) => received += read,
            Err(error) => {
                return Err(Failed {
                    error,
                    answered: received > 0,
                });
            }
        }
    }
}

/// Whether a pooled connection is still open: the upstream sent nothing since its last
/// response, not even the end of the connection.
fn is_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
}

fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < MIN_SPARE {
        buf.reserve(READ_SIZE);
    }
}

/// Reads what the socket has into `buf`; `Ok(0)` at the end of the connection. Through
/// `AsyncRead`, not `try_read`: a read that leaves room in the buffer tells tokio the socket is
/// drained, which spares the next poll a read that would only return `EWOULDBLOCK` (one
/// syscall per frame).
fn poll_fill(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    reserve(buf);
    tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf)
}

/// A response body that reads its connection while it is read.
pub(super) struct DrivenBody {
    /// `None` once the body ended (the connection went back to the pool or was closed).
    stream: Option<TcpStream>,
    buf: BytesMut,
    decoder: BodyDecoder,
    reusable: bool,
    client: Arc<DrivenClient>,
}

impl Stream for DrivenBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(stream) = &mut this.stream else {
                return Poll::Ready(None);
            };
            let decoded = match this.decoder.decode(&mut this.buf) {
                Ok(Decoded::Incomplete) => match ready!(poll_fill(stream, &mut this.buf, cx)) {
                    Ok(0) => this.decoder.closed(),
                    Ok(_) => continue,
                    Err(error) => Err(error),
                },
                decoded => decoded,
            };
            match decoded {
                Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Decoded::Incomplete) => {}
                Ok(Decoded::End) => {
                    // Bytes after the end of the body would belong to no request.
                    if let Some(stream) = this.stream.take()
                        && this.reusable
                        && this.buf.is_empty()
                    {
                        this.client.put_idle(stream);
                    }
                    return Poll::Ready(None);
                }
                Err(error) => {
                    this.stream = None;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    use tokio::net::TcpListener;

    use super::*;

    const HELLO: &str = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

    /// A server that accepts connections and holds them open without answering.
    async fn silent_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        addr
    }

    /// What a scripted upstream does with one request.
    #[derive(Clone, Copy)]
    enum Reply {
        /// Writes these bytes and waits for the next request.
        Answer(&'static str),
        /// Closes the connection without a word.
        Close,
    }

    /// Counts of a scripted upstream: connections accepted, requests read.
    #[derive(Default)]
    struct Counts {
        connections: AtomicUsize,
        requests: AtomicUsize,
    }

    /// A server whose n-th connection plays `scripts[n]`, one reply per request, and closes
    /// the connection when its script ends.
    async fn scripted_server(scripts: Vec<Vec<Reply>>) -> (SocketAddr, Arc<Counts>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let counts = Arc::new(Counts::default());
        let counting = Arc::clone(&counts);
        tokio::spawn(async move {
            for script in scripts {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                counting.connections.fetch_add(1, Ordering::SeqCst);
                let counting = Arc::clone(&counting);
                tokio::spawn(async move {
                    for reply in script {
                        if !read_request(&mut socket).await {
                            return;
                        }
                        counting.requests.fetch_add(1, Ordering::SeqCst);
                        match reply {
                            Reply::Answer(bytes) => {
                                socket.write_all(bytes.as_bytes()).await.expect("write");
                            }
                            Reply::Close => return,
                        }
                    }
                });
            }
        });
        (addr, counts)
    }

    /// Reads one request (head and `content-length` body); false at the end of the connection.
    async fn read_request(socket: &mut TcpStream) -> bool {
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                return false;
            }
            request.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&request).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        socket.read_exact(&mut body).await.is_ok()
    }

    fn client_for(addr: SocketAddr) -> Arc<DrivenClient> {
        let url: http::Uri = format!("http://{addr}/v1/chat/completions")
            .parse()
            .expect("valid URL");
        Arc::new(DrivenClient::for_url(&url, Duration::from_secs(5)).expect("http URL"))
    }

    /// Sends one request and reads its body to the end.
    async fn fetch(client: &Arc<DrivenClient>) -> io::Result<Vec<u8>> {
        let request = client.post(&HeaderMap::new(), b"{}");
        let (head, mut body) = client.send(&request).await?;
        assert_eq!(head.status, http::StatusCode::OK);
        let mut data = Vec::new();
        while let Some(piece) = body.next().await {
            data.extend_from_slice(&piece?);
        }
        Ok(data)
    }

    fn idle_count(client: &DrivenClient) -> usize {
        client.idle.lock().expect("not poisoned").len()
    }

    #[tokio::test]
    async fn the_pool_keeps_the_newest_connections_and_drops_expired_ones() {
        let addr = silent_server().await;
        let url: http::Uri = format!("http://{addr}/v1/chat/completions")
            .parse()
            .expect("valid URL");
        let mut client = DrivenClient::for_url(&url, Duration::from_secs(5)).expect("http URL");
        assert!(client.post(&HeaderMap::new(), b"{}").starts_with(
            format!("POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\n").as_bytes()
        ));
        client.max_idle = 2;
        for _ in 0..3 {
            let connection = client.connect().await.expect("connects");
            client.put_idle(connection);
        }
        assert_eq!(idle_count(&client), 2, "the oldest was closed");
        assert!(client.take_idle().is_some());
        assert_eq!(idle_count(&client), 1);

        client.idle_timeout = Duration::ZERO;
        assert!(
            client.take_idle().is_none(),
            "an expired connection is not reused"
        );
        assert_eq!(idle_count(&client), 0);
    }

    #[tokio::test]
    async fn a_connection_is_reused_until_the_upstream_closes_it() {
        let (addr, counts) = scripted_server(vec![
            vec![Reply::Answer(HELLO), Reply::Answer(HELLO)],
            vec![Reply::Answer(HELLO)],
        ])
        .await;
        let client = client_for(addr);
        for _ in 0..3 {
            assert_eq!(fetch(&client).await.expect("answered"), b"hello");
        }
        assert_eq!(counts.connections.load(Ordering::SeqCst), 2);
        assert_eq!(
            counts.requests.load(Ordering::SeqCst),
            3,
            "no request sent twice"
        );
    }

    #[tokio::test]
    async fn a_reused_connection_closed_unanswered_is_retried_on_a_new_one_but_a_new_one_is_not() {
        let (addr, counts) = scripted_server(vec![
            vec![Reply::Answer(HELLO), Reply::Close],
            vec![Reply::Answer(HELLO), Reply::Close],
            vec![Reply::Close],
        ])
        .await;
        let client = client_for(addr);
        assert_eq!(fetch(&client).await.expect("answered"), b"hello");
        assert_eq!(fetch(&client).await.expect("retried"), b"hello");
        assert_eq!(counts.connections.load(Ordering::SeqCst), 2);
        assert_eq!(counts.requests.load(Ordering::SeqCst), 3);

        // The pooled connection closes unanswered, and so does the new one: no third try.
        let error = fetch(&client)
            .await
            .expect_err("a new connection is not retried");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(counts.connections.load(Ordering::SeqCst), 3);
        assert_eq!(counts.requests.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn connections_that_cannot_be_reused_are_not_pooled() {
        let closing = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello";
        let until_close = "HTTP/1.1 200 OK\r\n\r\nhello";
        let (addr, counts) = scripted_server(vec![
            vec![Reply::Answer(closing)],
            vec![Reply::Answer(until_close)],
            vec![Reply::Answer(HELLO)],
        ])
        .await;
        let client = client_for(addr);
        assert_eq!(fetch(&client).await.expect("answered"), b"hello");
        assert_eq!(idle_count(&client), 0, "connection: close");
        let request = client.post(&HeaderMap::new(), b"{}");
        let (_, mut body) = client.send(&request).await.expect("answered");
        assert_eq!(body.next().await.expect("data").expect("ok"), &b"hello"[..]);
        drop(body);
        assert_eq!(idle_count(&client), 0, "a body cut off by its reader");
        assert_eq!(fetch(&client).await.expect("answered"), b"hello");
        assert_eq!(idle_count(&client), 1);
        assert_eq!(counts.connections.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn only_plain_http_urls_are_driven() {
        let https: http::Uri = "https://api.openai.com/v1/chat/completions"
            .parse()
            .expect("valid");
        assert!(DrivenClient::for_url(&https, Duration::from_secs(1)).is_none());
        let ipv6: http::Uri = "http://[::1]:8000/v1/chat/completions"
            .parse()
            .expect("valid");
        let client = DrivenClient::for_url(&ipv6, Duration::from_secs(1)).expect("http URL");
        assert_eq!((client.host.as_str(), client.port), ("::1", 8000));
        let no_port: http::Uri = "http://vllm/v1/chat/completions".parse().expect("valid");
        let client = DrivenClient::for_url(&no_port, Duration::from_secs(1)).expect("http URL");
        assert_eq!(client.port, 80);
    }
}
