//! What a stream body watches whenever its upstream has nothing to read: the gateway's shutdown
//! and the keep-alive / idle timer.
//!
//! That is once per upstream frame, and a poll of either future costs far more than its answer
//! needs: the cancellation future locks its token's node and its `Notify` on every poll, the
//! sleep checks the task's budget and swaps its waker in (`BENCHMARKS.md` has the counts).
//! Both already hold a waker of the task after one poll and wake it when they fire. So each is
//! polled again only when it may have fired (a cheap flag says so) or when the task polling it
//! holds another waker, which the future must learn.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The waker a future was last polled with (pending), so a poll with the same one can be skipped.
#[derive(Default)]
struct LastWaker(Option<Waker>);

impl LastWaker {
    /// Whether a poll with `cx` may be skipped: the future holds its waker already.
    fn may_skip_poll(&self, cx: &Context<'_>) -> bool {
        self.0
            .as_ref()
            .is_some_and(|held| held.will_wake(cx.waker()))
    }

    /// Remembers the waker of `cx` as the one the future now holds.
    fn set(&mut self, cx: &Context<'_>) {
        if !self.may_skip_poll(cx) {
            self.0 = Some(cx.waker().clone());
        }
    }
}

/// The gateway's shutdown, as one stream watches it.
pub(super) struct ShutdownWatch {
    /// A child token of the stream's own: on the shared token every stream's polls would
    /// contend for the same locks.
    token: CancellationToken,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    registered: LastWaker,
}

impl ShutdownWatch {
    pub(super) fn new(gateway: &CancellationToken) -> ShutdownWatch {
        let token = gateway.child_token();
        ShutdownWatch {
            cancelled: Box::pin(token.clone().cancelled_owned()),
            token,
            registered: LastWaker::default(),
        }
    }

    /// Whether the gateway is shutting down; if not, the task of `cx` is woken when it starts.
    pub(super) fn shutting_down(&mut self, cx: &mut Context<'_>) -> bool {
        if self.registered.may_skip_poll(cx) {
            return self.token.is_cancelled();
        }
        let ready = self.cancelled.as_mut().poll(cx).is_ready();
        self.registered.set(cx);
        ready
    }
}

/// A re-armable timer.
pub(super) struct Tick {
    sleep: Pin<Box<Sleep>>,
    /// Set by a pending poll, cleared by a reset (which must be polled to register).
    registered: LastWaker,
}

impl Tick {
    pub(super) fn new(deadline: Instant) -> Tick {
        Tick {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            registered: LastWaker::default(),
        }
    }

    /// Ready once the deadline has passed; until then the task of `cx` is woken when it does.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.registered.may_skip_poll(cx) && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        let poll = self.sleep.as_mut().poll(cx);
        if poll.is_pending() {
            self.registered.set(cx);
        }
        poll
    }

    pub(super) fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline.into());
        self.registered = LastWaker::default();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (wakes.clone(), Waker::from(wakes))
    }

    #[tokio::test]
    async fn the_last_task_to_watch_is_woken_by_a_shutdown_and_sees_it() {
        let gateway = CancellationToken::new();
        let mut watch = ShutdownWatch::new(&gateway);
        let (first_wakes, first) = waker();
        let (second_wakes, second) = waker();
        assert!(!watch.shutting_down(&mut Context::from_waker(&first)));
        assert!(!watch.shutting_down(&mut Context::from_waker(&first)));
        // Another task watches now: the future must hold its waker, not the first one's.
        assert!(!watch.shutting_down(&mut Context::from_waker(&second)));
        gateway.cancel();
        assert_eq!(second_wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(first_wakes.0.load(Ordering::SeqCst), 0);
        assert!(watch.shutting_down(&mut Context::from_waker(&second)));
        assert!(watch.shutting_down(&mut Context::from_waker(&first)));
    }

    /// The test sleeps past each deadline on the same timer driver, which fires timers in
    /// deadline order: the tick has fired by the time the sleep ends.
    #[tokio::test]
    async fn a_tick_wakes_its_task_when_due_and_again_after_a_reset() {
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let mut tick = Tick::new(Instant::now() + Duration::from_millis(20));
        assert!(tick.poll(&mut cx).is_pending());
        assert!(tick.poll(&mut cx).is_pending());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(tick.poll(&mut cx).is_ready());
        tick.reset(Instant::now() + Duration::from_millis(20));
        assert!(tick.poll(&mut cx).is_pending());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        assert!(tick.poll(&mut cx).is_ready());
    }
}
