//! Observing responses that the peer abandoned before they finished.
//!
//! Every response a mock serves holds a [`CompletionGuard`] from the moment its handler
//! starts until its body has been fully produced. If hyper drops the handler or the body
//! first (the client closed the connection), the guard's `Drop` records an
//! [`EarlyDisconnect`]. That is how a test proves "the gateway dropped its upstream
//! connection when its own client went away".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

/// At most this many [`EarlyDisconnect`] records are kept; later ones are only counted.
const MAX_RECORDED_DISCONNECTS: usize = 100_000;

/// One response whose handler or body was dropped before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyDisconnect {
    /// When the drop was observed (monotonic: compare with `Instant`s taken in the test).
    pub at: Instant,
    /// The same moment as wall-clock time, for processes that cannot share an `Instant`.
    pub at_wall: SystemTime,
    /// The tag of the scenario that was being served, if it had one.
    pub tag: Option<String>,
}

/// Shared counter and log of early disconnects, plus the number of responses in flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct DisconnectLog {
    inner: Arc<LogInner>,
}

#[derive(Debug)]
struct LogInner {
    /// The number of early disconnects so far; a watch so waiters wake on every change.
    count: watch::Sender<usize>,
    /// The first [`MAX_RECORDED_DISCONNECTS`] records.
    records: Mutex<Vec<EarlyDisconnect>>,
    in_flight: AtomicUsize,
}

impl Default for LogInner {
    fn default() -> Self {
        Self {
            count: watch::Sender::new(0),
            records: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl DisconnectLog {
    /// Starts observing one response.
    pub(crate) fn guard(&self, tag: Option<String>) -> CompletionGuard {
        self.inner.in_flight.fetch_add(1, Ordering::Relaxed);
        CompletionGuard {
            log: self.clone(),
            tag,
            finished: false,
        }
    }

    /// How many responses were dropped before they finished.
    pub(crate) fn count(&self) -> usize {
        *self.inner.count.borrow()
    }

    /// The recorded early disconnects, oldest first.
    pub(crate) fn records(&self) -> Vec<EarlyDisconnect> {
        self.inner
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Responses whose handler has started and whose body has not finished or been dropped.
    pub(crate) fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` early disconnects have happened (counting earlier ones).
    ///
    /// Returns `false` if `timeout` elapsed first.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut count = self.inner.count.subscribe();
        matches!(
            tokio::time::timeout(timeout, count.wait_for(|seen| *seen >= n)).await,
            Ok(Ok(_))
        )
    }

    fn record(&self, tag: Option<String>) {
        let record = EarlyDisconnect {
            at: Instant::now(),
            at_wall: SystemTime::now(),
            tag,
        };
        {
            let mut records = self
                .inner
                .records
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if records.len() < MAX_RECORDED_DISCONNECTS {
                records.push(record);
            }
        }
        self.inner.count.send_modify(|count| *count += 1);
    }
}

/// Held by one response; records an [`EarlyDisconnect`] if dropped before [`finish`](Self::finish).
#[derive(Debug)]
pub(crate) struct CompletionGuard {
    log: DisconnectLog,
    tag: Option<String>,
    finished: bool,
}

impl CompletionGuard {
    /// The response ended the way the mock meant it to (even a deliberate abort).
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for CompletionGuard {
    fn drop(&mut self) {
        self.log.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.log.record(self.tag.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_guard_records_nothing_and_a_dropped_one_records_its_tag() {
        let log = DisconnectLog::default();
        let mut done = log.guard(Some("done".into()));
        let abandoned = log.guard(Some("abandoned".into()));
        assert_eq!(log.in_flight(), 2);
        done.finish();
        drop(done);
        assert_eq!(log.count(), 0);
        drop(abandoned);
        assert_eq!(log.count(), 1);
        assert_eq!(log.in_flight(), 0);
        assert_eq!(log.records()[0].tag.as_deref(), Some("abandoned"));
        assert!(log.wait_for(1, Duration::ZERO).await);
        assert!(!log.wait_for(2, Duration::from_millis(1)).await);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_a_guard_is_dropped_later() {
        let log = DisconnectLog::default();
        let guard = log.guard(None);
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move { log.wait_for(1, Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        drop(guard);
        assert!(waiter.await.expect("the waiter does not panic"));
    }
}
