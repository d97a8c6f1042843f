//! Plain-HTTP upstreams (`http://…`: vLLM, TGI, Ollama, llama.cpp, a sidecar) over HTTP/1.1
//! connections that the stream using them drives itself.
//!
//! Why not the shared client: reqwest (hyper-util's pool) runs every connection as a task of
//! its own. Each frame the upstream sends wakes that task, which passes the bytes through a
//! channel to the task forwarding the stream and wakes that one too: two wake-ups per frame,
//! often on two threads. Here the connection's state machine is polled inside the response
//! body, by the task that forwards the stream, so a frame costs one wake-up, and dropping the
//! body (the client went away) closes the connection at once.
//!
//! A connection whose response ended cleanly goes back to a LIFO pool and is reused while it is
//! younger than [`IDLE_TIMEOUT`]. Pooled connections are not polled: one the upstream closed
//! meanwhile is found out before the request is written (hyper hands the request back) and the
//! request goes out on the next connection. TLS upstreams keep the shared client: there one
//! HTTP/2 connection, negotiated by ALPN, carries every stream.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections older than this are closed instead of reused (the shared client's value).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Most idle connections kept per upstream; beyond it the oldest is closed.
const MAX_IDLE: usize = 256;

type Driver = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One HTTP/1.1 connection: the handle requests go through, and the state machine that does
/// the connection's I/O whenever it is polled.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection ended. Dropping it fails whatever still waits on it, which
    /// is how a request queued on a closed connection comes back unsent.
    driver: Option<Driver>,
}

impl Connection {
    /// Does the connection's pending I/O. Returns whether it is still open.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(driver) = &mut self.driver
            && Pin::new(driver).poll(cx).is_ready()
        {
            self.driver = None;
        }
        self.driver.is_some()
    }

    /// Whether the connection can still carry a request (as far as is known without polling).
    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Waits until the connection takes a request; false if it closed instead.
    async fn ready(&mut self) -> bool {
        poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            self.sender.poll_ready(cx).map(|ready| ready.is_ok())
        })
        .await
    }

    /// Sends `request` and drives the connection until its response headers arrived.
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Full<Bytes>>>> {
        let mut response = std::pin::pin!(self.sender.try_send_request(request));
        poll_fn(|cx| {
            self.drive(cx);
            response.as_mut().poll(cx)
        })
        .await
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
    /// Origin-form target of chat requests and the `Host` header (HTTP/1.1 requires it).
    path: http::uri::PathAndQuery,
    authority: http::uri::Authority,
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
            path: url.path_and_query()?.clone(),
            authority: url.authority()?.clone(),
            connect_timeout,
            idle: Mutex::new(VecDeque::new()),
            idle_timeout: IDLE_TIMEOUT,
            max_idle: MAX_IDLE,
        })
    }

    /// A POST to the URL this client was made for.
    pub(super) fn post(&self) -> http::request::Builder {
        Request::post(self.path.clone()).header(http::header::HOST, self.authority.as_str())
    }

    /// Sends `request` (made from [`DrivenClient::post`]) on an idle connection or a new one;
    /// resolves when the response headers arrived.
    pub(super) async fn send(
        self: &Arc<Self>,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<DrivenBody>, Error> {
        loop {
            let (mut connection, reused) = match self.take_idle() {
                Some(idle) => (idle, true),
                None => (self.connect().await?, false),
            };
            if reused && !connection.ready().await {
                continue;
            }
            match connection.send(request).await {
                Ok(response) => return Ok(self.body_of(connection, response)),
                // Only a pooled connection may have closed before the request was written;
                // a new one that fails is the upstream's answer.
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }

    async fn connect(&self) -> Result<Connection, Error> {
        let address = (self.host.as_str(), self.port);
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
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
        tcp.set_nodelay(true)?;
        let (sender, driver) = http1::handshake(TokioIo::new(tcp)).await?;
        Ok(Connection {
            sender,
            driver: Some(driver),
        })
    }

    fn body_of(
        self: &Arc<Self>,
        connection: Connection,
        response: Response<Incoming>,
    ) -> Response<DrivenBody> {
        response.map(|body| DrivenBody {
            body,
            connection: Some(connection),
            client: Arc::clone(self),
        })
    }

    /// The most recently used idle connection, closing those idle for too long.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop_back() {
            if entry.since.elapsed() < self.idle_timeout {
                return Some(entry.connection);
            }
        }
        None
    }

    /// Keeps `connection` for reuse if it is still open.
    fn put_idle(&self, connection: Connection) {
        if !connection.is_open() {
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
    body: Incoming,
    /// Taken when the body ended and the connection went back to the pool.
    connection: Option<Connection>,
    client: Arc<DrivenClient>,
}

impl Stream for DrivenBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            // The connection reads first: it is what fills the body's channel.
            if let Some(connection) = &mut this.connection {
                connection.drive(cx);
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Some(Err(error)) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    if let Some(connection) = this.connection.take() {
                        this.client.put_idle(connection);
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::net::TcpListener;

    use super::*;

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
        assert_eq!(
            client.post().body(()).expect("request").uri(),
            "/v1/chat/completions"
        );
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
