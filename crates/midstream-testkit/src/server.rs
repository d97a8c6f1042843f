//! Running an axum router on a loopback port for as long as a mock handle lives.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A server accepting connections until this handle is dropped.
///
/// Dropping it stops the accept loop and asks open connections to close gracefully; a
/// response that never ends (a stalled scenario) keeps its connection task alive until the
/// runtime shuts down, which for `#[tokio::test]` is the end of the test.
#[derive(Debug)]
pub(crate) struct RunningServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _stop_on_drop: DropGuard,
}

impl RunningServer {
    /// Binds `addr` (use port 0 for a free port) and serves `router` on it.
    ///
    /// Accepted sockets get `TCP_NODELAY`, as real API servers set it: without it, Nagle's
    /// algorithm holds each small SSE frame until the previous one is acknowledged, and the
    /// peer's delayed ACK turns that into ~40 ms stalls that have nothing to do with the
    /// code under test.
    pub(crate) async fn bind(addr: SocketAddr, router: Router) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let listener = listener.tap_io(move |tcp| {
            counter.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY on a mock connection");
            }
        });
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        // Tracked by the cancellation token held in `_stop_on_drop`: the task ends when the
        // handle is dropped or when the runtime shuts down.
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::warn!(%error, %addr, "mock server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            accepted,
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// The address actually bound.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections were accepted so far.
    pub(crate) fn accepted_connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}
