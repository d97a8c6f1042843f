//! Accepting client connections and serving them with hyper: HTTP/1.1 and HTTP/2 over
//! cleartext (prior knowledge) on the same port, told apart by the HTTP/2 preface (peeked at,
//! see [`opens_with_h2_preface`]).
//!
//! What hyper does for us, and what we add around it:
//!
//! - hyper parses and frames every message (its chunked decoder is strict, it refuses ambiguous
//!   framing, it reads a request body as it arrives instead of reserving room for a declared
//!   length), answers a malformed head with 400 or 431, pipelines HTTP/1.1 requests, sends
//!   `100 Continue` only when the body is read, and notices a client that closed its connection
//!   while its response is pending or streaming (the response, and so the stream, is dropped).
//! - [`ServeOptions::read_timeout`] bounds a request head, and also a kept-alive
//!   connection waiting for its next request: hyper starts the timer as soon as it waits for a
//!   head, so one timer answers slowloris and idle connections alike (the connection is closed).
//! - [`ServeOptions::max_connections`] bounds the connections served at once: past it, new ones
//!   wait in the kernel's accept queue until one closes, so memory stays bounded.
//! - [`ServeOptions::send_timeout`] bounds how long a write may wait for a client that stopped
//!   reading ([`tokio_io_timeout`]): a stalled client would otherwise hold its stream, and the
//!   upstream request, forever.
//! - Each piece of a request body must arrive within the same timeout
//!   ([`RequestBodyTimeoutLayer`]); the handler reading it answers 408 ([`crate::extract`]). The
//!   body's size limit is the application's (`crate::app`), so that its 413 carries the request
//!   id and CORS headers like any other answer.
//!
//! Shutdown: when `stop` is cancelled, no connection is accepted any more and every
//! connection is told to shut down gracefully (HTTP/1.1 finishes its response in progress,
//! HTTP/2 sends `GOAWAY` and finishes its open streams); [`serve`] resolves once all are closed.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;
use tower_http::timeout::{RequestBodyTimeout, RequestBodyTimeoutLayer};

use crate::telemetry::prometheus::CLIENT_CONNECTIONS;

/// After an accept error that is not about one connection (out of file descriptors), wait
/// this long before accepting again rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Largest request head (request line and headers): beyond it, 431. Bodies are read in pieces
/// and are not bounded by it.
const MAX_HEAD: usize = 64 * 1024;

/// HTTP/2 streams one connection may carry at once (each is a stream of the gateway, bounded
/// again by `MIDSTREAM_MAX_STREAMS`).
const MAX_CONCURRENT_H2_STREAMS: u32 = 256;

/// Limits of the server.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    /// Connections served at once (`MIDSTREAM_MAX_CONNECTIONS`).
    pub(crate) max_connections: usize,
    /// A request head must arrive whole within this, a kept-alive connection is closed after
    /// this long without a new request, and each piece of a request body must arrive within
    /// this of the previous one (`MIDSTREAM_CLIENT_READ_TIMEOUT_MS`).
    pub(crate) read_timeout: Duration,
    /// Longest a response write may wait for the client to read
    /// (`MIDSTREAM_CLIENT_SEND_TIMEOUT_MS`).
    pub(crate) send_timeout: Duration,
}

/// A client connection as hyper reads and writes it: the socket, with a write timeout.
type ClientIo = TokioIo<Pin<Box<TimeoutStream<TcpStream>>>>;

/// The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How often a client that has sent part of the HTTP/2 preface is looked at again.
const PREFACE_POLL: Duration = Duration::from_millis(5);

/// Serves `router` on `listener` until `stop` is cancelled, then shuts every connection down
/// gracefully and resolves once all have closed (see the module docs).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    stop: CancellationToken,
) {
    let protocols = Arc::new(Protocols::new(&options));
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let service = TowerToHyperService::new(
        ServiceBuilder::new()
            .layer(RequestBodyTimeoutLayer::new(options.read_timeout))
            .service(router),
    );
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((stream, slot)) = accepted else {
            continue;
        };
        let (protocols, service, stop) = (Arc::clone(&protocols), service.clone(), stop.clone());
        connections.spawn(async move {
            let _slot = slot;
            let _open = OpenConnection::count();
            if let Err(error) = protocols.serve(stream, service, &stop).await {
                tracing::debug!(%error, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The service every connection calls: the application, with the request body timeout.
type AppService = TowerToHyperService<RequestBodyTimeout<Router>>;

/// hyper's connection settings for each protocol, with the Tokio timer and executor.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    read_timeout: Duration,
    send_timeout: Duration,
}

impl Protocols {
    fn new(options: &ServeOptions) -> Protocols {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(options.read_timeout)
            .keep_alive(true)
            .max_header_size(MAX_HEAD)
            .max_buf_size(MAX_HEAD)
            .writev(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_CONCURRENT_H2_STREAMS)
            .max_header_list_size(u32::try_from(MAX_HEAD).unwrap_or(u32::MAX))
            .keep_alive_interval(options.read_timeout)
            .keep_alive_timeout(options.read_timeout);
        Protocols {
            http1,
            http2,
            read_timeout: options.read_timeout,
            send_timeout: options.send_timeout,
        }
    }

    /// Serves one client connection in the protocol it opens with, until it ends or, once
    /// `stop` is cancelled, has shut down gracefully. A client that sends nothing within the
    /// read timeout is closed.
    async fn serve(
        &self,
        stream: TcpStream,
        service: AppService,
        stop: &CancellationToken,
    ) -> Result<(), hyper::Error> {
        let Ok(opened) =
            tokio::time::timeout(self.read_timeout, opens_with_h2_preface(&stream)).await
        else {
            return Ok(());
        };
        let io = client_io(stream, self.send_timeout);
        match opened {
            Ok(true) => until_done(Box::pin(self.http2.serve_connection(io, service)), stop).await,
            Ok(false) => until_done(Box::pin(self.http1.serve_connection(io, service)), stop).await,
            Err(error) => {
                tracing::debug!(%error, "client connection failed before its first request");
                Ok(())
            }
        }
    }
}

/// Drives `connection` to its end; once `stop` is cancelled, asks it to shut down gracefully
/// (HTTP/1.1 finishes the response in progress, HTTP/2 sends `GOAWAY`) and drives it on.
///
/// The connection is boxed so that each one takes the size of its own protocol's state: held
/// in the task's future, an HTTP/1 connection would also reserve room for HTTP/2's (≈ 1.8 KB
/// per idle stream, `BENCHMARKS.md`).
async fn until_done<C: GracefulConnection>(
    mut connection: Pin<Box<C>>,
    stop: &CancellationToken,
) -> Result<(), C::Error> {
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => return result,
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The next connection with its slot; `None` after an accept error (already handled).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    // Waiting for a slot before accepting leaves excess connections in the kernel's queue.
    let slot = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => {
            // Nagle's algorithm would hold a stream's first small frame until the client ACKs
            // the headers (up to 40 ms of delayed ACK): every token must leave at once.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
            Some((stream, slot))
        }
        Err(error) if is_connection_error(&error) => None,
        Err(error) => {
            tracing::error!(%error, "accepting connections failed; retrying");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}

/// Whether the client opened with the HTTP/2 preface, looked at without reading it, so that
/// hyper's connection reads the socket from its first byte.
///
/// hyper-util's `auto` server detects the protocol by reading up to 24 bytes and handing them
/// back to HTTP/1 through a wrapper whose first read returns only those bytes; hyper's read
/// buffer, sized for 8 KiB reads, then grows to 16 KiB for the second read and keeps that size
/// for the connection's life. Peeking costs nothing per connection and saves those 8 KiB
/// (`BENCHMARKS.md`); it also lets hyper's HTTP/1 builder bound the request head, which `auto`
/// does not expose.
async fn opens_with_h2_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut start = [0u8; H2_PREFACE.len()];
    loop {
        let seen = stream.peek(&mut start).await?;
        let (seen, preface) = (&start[..seen], &H2_PREFACE[..seen]);
        if seen.is_empty() || seen != preface {
            return Ok(false);
        }
        if seen.len() == H2_PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface so far: the socket stays readable until the bytes are read, so
        // wait a moment before looking again (rare: clients send the preface whole).
        tokio::time::sleep(PREFACE_POLL).await;
    }
}

fn client_io(stream: TcpStream, send_timeout: Duration) -> ClientIo {
    let mut io = TimeoutStream::new(stream);
    io.set_write_timeout(Some(send_timeout));
    TokioIo::new(Box::pin(io))
}

/// Errors that concern the one connection being accepted, not the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Counts a connection in `midstream_client_connections` while it lives.
struct OpenConnection;

impl OpenConnection {
    fn count() -> OpenConnection {
        metrics::gauge!(CLIENT_CONNECTIONS).increment(1);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CLIENT_CONNECTIONS).decrement(1);
    }
}
