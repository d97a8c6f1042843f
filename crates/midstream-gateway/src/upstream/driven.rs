//! Plain-HTTP upstreams (`http://…`: vLLM, TGI, Ollama, llama.cpp, a sidecar) over hyper's
//! HTTP/1.1 client connections (`hyper::client::conn::http1`), each driven by the stream using it.
//!
//! hyper parses and frames the responses. What this module adds is who polls the connection:
//! hyper-util's pool (inside reqwest) runs every connection as a task of its own, so each frame
//! the upstream sends wakes that task, which passes the bytes through a channel to the task
//! forwarding the stream and wakes that one too, often on another thread. Here the connection
//! future is owned by the response body and polled by the task that reads the body, so a frame
//! is read, decoded and forwarded by one task, and dropping the body (the client went away)
//! closes the connection at once. `BENCHMARKS.md` compares the two.
//!
//! A connection whose response ended cleanly goes back to a LIFO pool and is reused while it is
//! younger than [`IDLE_TIMEOUT`]. Pooled connections are not polled while idle: one the
//! upstream closed meanwhile is found out by polling it once before it is used. An upstream can
//! still close an idle connection just as the request goes out (its idle timeout racing ours);
//! when a reused connection ends before its response head, the request is sent again on another
//! connection, as hyper-util's pool does. A new connection is never retried. TLS upstreams use
//! the shared reqwest client: there one HTTP/2 connection, negotiated by ALPN, carries every
//! stream.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::task::noop_waker_ref;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections older than this are closed instead of reused (the shared client's value).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Most idle connections kept per upstream; beyond it the oldest is closed.
const MAX_IDLE: usize = 256;

/// One HTTP/1.1 connection: the handle requests are sent through, and the future that reads
/// and writes the socket (it must be polled for anything to happen).
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
    /// The driver resolved (the connection closed); it must not be polled again.
    closed: bool,
}

impl Connection {
    /// Drives the connection; `Ready` once it has closed (for good).
    fn poll_driver(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.closed {
            return Poll::Ready(());
        }
        match Pin::new(&mut self.driver).poll(cx) {
            Poll::Ready(result) => {
                if let Err(error) = result {
                    tracing::debug!(%error, "upstream connection ended with an error");
                }
                self.closed = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Whether another request can be sent now. Polls the driver once without a waker: it
    /// reads what arrived meanwhile (the upstream closing the connection) and readies itself
    /// for the next request.
    fn can_send(&mut self) -> bool {
        let mut probe = Context::from_waker(noop_waker_ref());
        self.poll_driver(&mut probe).is_pending() && self.sender.is_ready()
    }
}

struct IdleConnection {
    connection: Connection,
    since: Instant,
}

/// The connections to one plain-HTTP upstream.
pub(super) struct DrivenClient {
    host: String,
    port: u16,
    /// Origin-form target of chat requests.
    path: http::Uri,
    /// The `Host` header (HTTP/1.1 requires it).
    authority: HeaderValue,
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
            path: http::Uri::from(url.path_and_query()?.clone()),
            authority: HeaderValue::from_str(url.authority()?.as_str()).ok()?,
            connect_timeout,
            idle: Mutex::new(VecDeque::new()),
            idle_timeout: IDLE_TIMEOUT,
            max_idle: MAX_IDLE,
        })
    }

    /// Posts `body` with `headers` on an idle connection or a new one; resolves when the
    /// response head arrived.
    pub(super) async fn post(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> io::Result<Response<DrivenBody>> {
        loop {
            let (mut connection, reused) = match self.take_idle() {
                Some(connection) => (connection, true),
                None => (self.connect().await?, false),
            };
            let mut response = std::pin::pin!(
                connection
                    .sender
                    .send_request(self.request(headers, body.clone()))
            );
            let answered = poll_fn(|cx| {
                if let Poll::Ready(answered) = response.as_mut().poll(cx) {
                    return Poll::Ready(answered);
                }
                // Once the driver has closed, the response future resolves with its error.
                match connection.poll_driver(cx) {
                    Poll::Ready(()) => response.as_mut().poll(cx),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match answered {
                Ok(response) => {
                    return Ok(response.map(|incoming| DrivenBody {
                        incoming,
                        connection: Some(connection),
                        client: Arc::clone(self),
                    }));
                }
                Err(error) if reused && (error.is_canceled() || error.is_incomplete_message()) => {
                    tracing::debug!(%error, "pooled upstream connection closed; sending on another one");
                }
                Err(error) => return Err(io::Error::other(error)),
            }
        }
    }

    fn request(&self, headers: &HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.path.clone();
        let out = request.headers_mut();
        out.reserve(headers.len() + 1);
        out.insert(header::HOST, self.authority.clone());
        out.extend(
            headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        request
    }

    async fn connect(&self) -> io::Result<Connection> {
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
        let (sender, driver) = http1::Builder::new()
            .writev(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        Ok(Connection {
            sender,
            driver,
            closed: false,
        })
    }

    /// The most recently used idle connection still open, closing those idle for too long.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut entry) = idle.pop_back() {
            if entry.since.elapsed() < self.idle_timeout && entry.connection.can_send() {
                return Some(entry.connection);
            }
        }
        None
    }

    /// Keeps `connection` for reuse if it can carry another request.
    fn put_idle(&self, mut connection: Connection) {
        if !connection.can_send() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while idle.front().is_some_and(|entry| {
            idle.len() >= self.max_idle || entry.since.elapsed() >= self.idle_timeout
        }) {
            idle.pop_front();
        }
        idle.push_back(IdleConnection {
            connection,
            since: Instant::now(),
        });
    }
}

/// A response body that drives its connection while it is read.
pub(super) struct DrivenBody {
    incoming: Incoming,
    /// `None` once the body ended (the connection went back to the pool or was closed).
    connection: Option<Connection>,
    client: Arc<DrivenClient>,
}

impl Stream for DrivenBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(connection) = &mut this.connection else {
                return Poll::Ready(None);
            };
            // The driver reads the socket and hands decoded data to `incoming`; when it closes,
            // `incoming` ends or reports the error.
            let _closed = connection.poll_driver(cx);
            match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    if let Some(connection) = this.connection.take() {
                        this.client.put_idle(connection);
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        let response = client
            .post(&HeaderMap::new(), Bytes::from_static(b"{}"))
            .await?;
        assert_eq!(response.status(), http::StatusCode::OK);
        let mut body = response.into_body();
        let mut data = Vec::new();
        while let Some(piece) = body.next().await {
            data.extend_from_slice(&piece.map_err(io::Error::other)?);
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
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let request = client.request(&headers, Bytes::from_static(b"{}"));
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "/v1/chat/completions");
        assert_eq!(request.headers()[header::HOST], addr.to_string());
        assert_eq!(request.headers()[header::ACCEPT], "text/event-stream");
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
        assert!(
            error
                .to_string()
                .contains("connection closed before message completed"),
            "{error}"
        );
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
            vec![Reply::Answer(HELLO), Reply::Answer(HELLO)],
        ])
        .await;
        let client = client_for(addr);
        assert_eq!(fetch(&client).await.expect("answered"), b"hello");
        assert_eq!(idle_count(&client), 0, "connection: close");
        let response = client
            .post(&HeaderMap::new(), Bytes::from_static(b"{}"))
            .await
            .expect("answered");
        let mut body = response.into_body();
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
