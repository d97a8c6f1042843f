//! One client connection: requests read one at a time, handed to the router, and their
//! responses written back, for as long as the client keeps the connection alive.
//!
//! While a request is handled and its response streamed, the socket is still watched: a client
//! that goes away is noticed at once and its response (the stream) is dropped, which is what
//! ends the upstream request and records the stream as cancelled. Bytes a client sends ahead
//! (pipelining) are kept for its next request.
//!
//! Memory per held stream is the point of this module (see [`super`]): between requests the
//! connection holds no buffer (it allocates one only for bytes that arrived), a request body
//! is copied out of the read buffer into one of its exact size, and response frames that are
//! ready together go out in one write from a buffer that lives only while the response does.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::task::noop_waker_ref;
use http::{Method, Request, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::framing::{BodyDecoder, Decoded, Framing};
use super::request::{Rejection, RequestHead, parse_request_head};
use super::response::{BodyFraming, LAST_CHUNK, encode_head, push_chunk};
use crate::app::BodyTooLarge;
use crate::error::ApiError;

/// Limits of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionOptions {
    /// Largest request body read (`MIDSTREAM_MAX_BODY_BYTES`); beyond it, 413.
    pub(crate) max_body: usize,
    /// A request head must arrive whole within this of its first byte, and each read of a
    /// request body within this of the previous one.
    pub(crate) read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub(crate) idle_timeout: Duration,
    /// Longest a write of the response may wait for the client to read: a client that stops
    /// reading would otherwise hold its stream, and the upstream request, forever.
    pub(crate) send_timeout: Duration,
}

/// Most bytes taken from the socket in one read of a request.
const READ_SIZE: usize = 4096;

/// Most bytes taken in one read while a response is written (pipelined requests are rare).
const WATCH_READ_SIZE: usize = 256;

/// Pipelined bytes kept while a response is written; beyond this the socket is left unread
/// (and a departure unnoticed) until the response is done.
const MAX_PIPELINED: usize = 64 * 1024;

/// How long, and how much, a connection closed before its request was read keeps reading.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Response bytes gathered for one write when several frames are ready at once.
const MAX_BATCH: usize = 64 * 1024;

/// Serves `stream` until the client closes it, a request asks to close, or `draining` is
/// cancelled (then the response in progress is finished first).
pub(crate) async fn serve_connection(
    stream: TcpStream,
    router: Router,
    options: &ConnectionOptions,
    draining: CancellationToken,
) {
    let mut connection = Connection {
        stream,
        buf: BytesMut::new(),
        send_timeout: options.send_timeout,
    };
    if let Err(error) = connection.run(&router, options, &draining).await {
        tracing::debug!(%error, "client connection ended with an error");
    }
}

struct Connection {
    stream: TcpStream,
    /// Bytes read but not yet parsed; empty (and unallocated) between requests.
    buf: BytesMut,
    /// [`ConnectionOptions::send_timeout`].
    send_timeout: Duration,
}

/// Why a request body could not be read.
enum BodyFailure {
    Rejected(Rejection),
    TooLarge,
    /// The client closed the connection or it failed: nobody to answer.
    Gone,
}

impl Connection {
    async fn run(
        &mut self,
        router: &Router,
        options: &ConnectionOptions,
        draining: &CancellationToken,
    ) -> io::Result<()> {
        loop {
            let head = match self.read_head(options, draining).await? {
                Some(Ok(head)) => head,
                Some(Err(rejection)) => return self.reject(&rejection).await,
                None => return Ok(()),
            };
            let mut parts = head.parts;
            // A body too large is not read: the app answers the request (413, with the same
            // headers as any answer) and the connection closes after it.
            let (body, refused) = match self
                .read_body(head.framing, head.expects_continue, options)
                .await
            {
                Ok(body) => (body, false),
                Err(BodyFailure::Rejected(rejection)) => return self.reject(&rejection).await,
                Err(BodyFailure::TooLarge) => {
                    let limit = options.max_body;
                    parts.extensions.insert(BodyTooLarge { limit });
                    (Bytes::new(), true)
                }
                Err(BodyFailure::Gone) => return Ok(()),
            };
            if self.buf.is_empty() {
                self.buf = BytesMut::new();
            }
            let head_request = parts.method == Method::HEAD;
            let http11 = parts.version == Version::HTTP_11;
            let request = Request::from_parts(parts, Body::from(body));
            let Some(response) = self
                .until_client_leaves(router.clone().oneshot(request))
                .await
            else {
                return Ok(());
            };
            let response = response.unwrap_or_else(|never: Infallible| match never {});
            let close = refused || !head.keep_alive || draining.is_cancelled();
            let reusable = self.respond(response, head_request, http11, close).await?;
            if refused {
                return self.linger().await;
            }
            if !reusable {
                return Ok(());
            }
        }
    }

    /// The next request head. `Ok(None)`: the client closed the connection, it idled out, or
    /// the server is draining and no request has begun.
    async fn read_head(
        &mut self,
        options: &ConnectionOptions,
        draining: &CancellationToken,
    ) -> io::Result<Option<Result<RequestHead, Rejection>>> {
        // The whole head must arrive within `read_timeout` of its first byte, however slowly
        // it trickles in (a client holding connections open one byte at a time).
        let mut deadline = None;
        loop {
            if !self.buf.is_empty() {
                match parse_request_head(&mut self.buf) {
                    Ok(Some(head)) => return Ok(Some(Ok(head))),
                    Ok(None) => {}
                    Err(rejection) => return Ok(Some(Err(rejection))),
                }
            }
            let between_requests = self.buf.is_empty();
            let read = if between_requests {
                tokio::select! {
                    biased;
                    () = draining.cancelled() => return Ok(None),
                    read = tokio::time::timeout(options.idle_timeout, self.fill()) => read,
                }
            } else {
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + options.read_timeout);
                tokio::time::timeout_at(deadline, self.fill()).await
            };
            match read {
                Err(_) if between_requests => return Ok(None),
                Err(_) => return Ok(Some(Err(Rejection::timeout()))),
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error),
            }
        }
    }

    /// Reads the whole request body (bounded by `max_body`) into a buffer of its own.
    async fn read_body(
        &mut self,
        framing: Framing,
        expects_continue: bool,
        options: &ConnectionOptions,
    ) -> Result<Bytes, BodyFailure> {
        if framing == Framing::Length(0) {
            return Ok(Bytes::new());
        }
        let declared = match framing {
            Framing::Length(length) => usize::try_from(length).unwrap_or(usize::MAX),
            _ => 0,
        };
        if declared > options.max_body {
            return Err(BodyFailure::TooLarge);
        }
        if expects_continue {
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| BodyFailure::Gone)?;
        }
        // The declared length is only a claim: the buffer grows with what actually arrives.
        let mut body = BytesMut::with_capacity(declared.min(READ_SIZE * 16));
        let mut decoder = BodyDecoder::new(framing);
        loop {
            let decoded = decoder.decode(&mut self.buf).map_err(|error| {
                BodyFailure::Rejected(Rejection::bad_request(error.to_string()))
            })?;
            match decoded {
                Decoded::Data(data) if body.len() + data.len() > options.max_body => {
                    return Err(BodyFailure::TooLarge);
                }
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End => return Ok(body.freeze()),
                Decoded::Incomplete => {
                    match tokio::time::timeout(options.read_timeout, self.fill()).await {
                        Err(_) => return Err(BodyFailure::Rejected(Rejection::timeout())),
                        Ok(Ok(0) | Err(_)) => return Err(BodyFailure::Gone),
                        Ok(Ok(_)) => {}
                    }
                }
            }
        }
    }

    /// Reads what the client sent into the buffer. `Ok(0)`: the client closed the connection.
    async fn fill(&mut self) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_more::<READ_SIZE>(cx)).await
    }

    /// One read, appended to the buffer. Reading through a stack buffer means the connection's
    /// buffer is only allocated (or grown) for bytes that actually arrived: readiness is often
    /// stale, and a buffer reserved for a read that finds nothing would stay with the stream for
    /// its whole life. Through `AsyncRead`, so that a short read marks the socket drained and
    /// the next poll makes no syscall. The stack buffer is left uninitialised: zeroing 4 KiB
    /// cost more than the rest of a request's read (callgrind).
    fn poll_read_more<const N: usize>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); N];
        let mut read = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut read))?;
        self.buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    }

    /// Runs `future` while watching the socket; `None` if the client left first.
    async fn until_client_leaves<F: Future>(&mut self, future: F) -> Option<F::Output> {
        let mut future = pin!(future);
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            self.poll_client_gone(cx).map(|()| None)
        })
        .await
    }

    /// Ready once the client has closed the connection (or it failed). Bytes that arrive
    /// meanwhile are kept for the next request.
    fn poll_client_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.buf.len() >= MAX_PIPELINED {
                return Poll::Pending;
            }
            // Checked first so that the usual case, nothing sent, costs no read at all.
            if ready!(self.stream.poll_read_ready(cx)).is_err() {
                return Poll::Ready(());
            }
            match ready!(self.poll_read_more::<WATCH_READ_SIZE>(cx)) {
                Ok(0) | Err(_) => return Poll::Ready(()),
                Ok(_) => {}
            }
        }
    }

    /// Writes `response`. Returns whether the connection may carry another request.
    async fn respond(
        &mut self,
        response: Response,
        head_request: bool,
        http11: bool,
        close: bool,
    ) -> io::Result<bool> {
        let (parts, mut body) = response.into_parts();
        let framing =
            BodyFraming::choose(head_request, parts.status, body.size_hint().exact(), http11);
        let mut out = Vec::with_capacity(256);
        encode_head(&parts, framing, close, &mut out);
        drop(parts);
        if framing == BodyFraming::Omitted {
            self.send(&out).await?;
            return Ok(!close);
        }
        let mut left = match framing {
            BodyFraming::Length(len) => len,
            _ => u64::MAX,
        };
        loop {
            // Frames that are ready now join the pending write; the first one is waited for.
            let next = if out.is_empty() {
                match self.until_client_leaves(body.frame()).await {
                    Some(next) => Some(next),
                    None => return Ok(false),
                }
            } else if out.len() < MAX_BATCH {
                frame_now(&mut body)
            } else {
                None
            };
            match next {
                None => {
                    self.send(&out).await?;
                    out.clear();
                }
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        push_data(&mut out, framing, &data, &mut left)?;
                    }
                }
                Some(Some(Err(error))) => {
                    // The client must see an incomplete message, not a complete short one.
                    self.send(&out).await?;
                    return Err(io::Error::other(error));
                }
                Some(None) => {
                    let complete = match framing {
                        BodyFraming::Length(_) => left == 0,
                        BodyFraming::Chunked => {
                            out.extend_from_slice(LAST_CHUNK);
                            true
                        }
                        BodyFraming::Omitted | BodyFraming::UntilClose => true,
                    };
                    self.send(&out).await?;
                    return Ok(complete && !close && !framing.closes());
                }
            }
        }
    }

    /// Writes `bytes`, giving up after the send timeout (the connection then closes and the
    /// stream is dropped, which ends the upstream request and records it as cancelled).
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Most writes fit in the socket's buffer at once. Only a write that has to wait arms the
        // timeout, whose deadline costs a clock read: once per frame otherwise.
        let written = match self.stream.try_write(bytes) {
            Ok(written) => written,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            Err(error) => return Err(error),
        };
        let rest = bytes.get(written..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        tokio::time::timeout(self.send_timeout, self.stream.write_all(rest))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading its response",
                )
            })?
    }

    /// Answers a request that cannot be served, and closes the connection.
    async fn reject(&mut self, rejection: &Rejection) -> io::Result<()> {
        tracing::debug!(status = %rejection.status, message = %rejection.message, "rejected an HTTP request");
        let mut response = ApiError::bad_request(rejection.code(), rejection.message.clone(), None)
            .into_response();
        *response.status_mut() = rejection.status;
        self.respond(response, false, true, true).await?;
        self.linger().await
    }

    /// Closes after an answer given before the request was read to its end: the rest of it is
    /// read and dropped for a moment first, since closing a socket with unread data resets the
    /// connection, and the client may then lose the answer before reading it.
    async fn linger(&mut self) -> io::Result<()> {
        self.stream.shutdown().await?;
        let drain = async {
            let mut drained = 0;
            while drained < LINGER_BYTES {
                self.buf.clear();
                match self.fill().await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => drained += read,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        Ok(())
    }
}

/// The body's next frame, if it is ready now (`None` if not). The probe polls with
/// [`noop_waker_ref`], which a body may recognise: it cannot be woken, and the connection polls
/// with its task's waker before it waits, so a body need not register anything for it (the
/// stream body's watches do not, `inflight::watch`).
fn frame_now(body: &mut Body) -> Option<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
    let mut probe = Context::from_waker(noop_waker_ref());
    match Pin::new(body).poll_frame(&mut probe) {
        Poll::Ready(frame) => Some(frame),
        Poll::Pending => None,
    }
}

/// Appends body bytes to the pending write, framed; a body longer than its declared length is
/// an error (the connection closes rather than send bytes the client would misread).
fn push_data(
    out: &mut Vec<u8>,
    framing: BodyFraming,
    data: &[u8],
    left: &mut u64,
) -> io::Result<()> {
    match framing {
        BodyFraming::Chunked => push_chunk(out, data),
        BodyFraming::Length(_) if data.len() as u64 > *left => {
            return Err(io::Error::other(
                "the response body is longer than its length",
            ));
        }
        BodyFraming::Length(_) | BodyFraming::UntilClose => {
            *left -= data.len() as u64;
            out.extend_from_slice(data);
        }
        BodyFraming::Omitted => {}
    }
    Ok(())
}
