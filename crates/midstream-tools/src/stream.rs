//! One stream's tool calls: started at once, reported as they finish, cancelled with the stream.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::Value;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::call::{self, Call, CallRecord, Finished};
use crate::canonical::canonical_json;
use crate::dispatcher::Shared;
use crate::{CallContext, ToolError, metric};

/// What [`StreamTools::start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A new call: emit `tool.started` now; its outcome will come from
    /// [`StreamTools::poll_outcome`].
    Started {
        /// The new call's id.
        call_id: String,
    },
    /// The same tool with the same (canonical) arguments was already started in this stream;
    /// nothing new runs and no second outcome will come.
    Duplicate {
        /// The id of the earlier call.
        call_id: String,
    },
}

/// How one call ended: the `tool.result` or `tool.error` event.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    /// The id returned by [`StreamTools::start`].
    pub call_id: String,
    /// The tool's name as it was asked for.
    pub tool: String,
    /// The arguments as they were given.
    pub args: Value,
    /// The result, or why there is none.
    pub result: Result<Arc<Value>, ToolError>,
    /// `true` when this call did not run the tool itself: the result came from the cache, or
    /// the call joined an identical execution that another call (of any stream) was running.
    pub cached: bool,
    /// From start to outcome.
    pub elapsed: Duration,
}

/// Bookkeeping of a call whose task is running, kept outside the task so the call can still be
/// reported if the task is aborted or panics.
struct RunningCall {
    call_id: String,
    tool: String,
    args: Value,
    started_at: Instant,
}

/// One stream's tool calls. Owned by that stream's response body; `Send`, not shared.
///
/// - Every started call ends in exactly one [`ToolOutcome`] (result or error), including calls
///   refused at once (unknown tool, invalid arguments, over a bound) and cancelled calls.
/// - At most [`DispatcherConfig::max_per_stream`](crate::DispatcherConfig::max_per_stream) calls
///   are in flight; a call keeps its slot until its outcome has been taken.
/// - Dropping the handle (or [`cancel_all`](Self::cancel_all), or cancelling the token it was
///   made with) cancels every call at once: the tasks are aborted, so a tool's in-flight request
///   is dropped, and nothing outlives the stream.
///
/// Calls run as tasks on the current Tokio runtime: [`start`](Self::start) must be called
/// inside one.
pub struct StreamTools {
    shared: Arc<Shared>,
    context: CallContext,
    cancel: CancellationToken,
    calls: JoinSet<Finished>,
    running: HashMap<tokio::task::Id, RunningCall>,
    /// (tool, canonical arguments) → call id, for every call started in this stream.
    started: HashMap<(String, String), String>,
    /// Outcomes decided without a task, waiting to be polled.
    ready: VecDeque<ToolOutcome>,
    /// Woken when a call is started, so a body that saw "nothing in flight" polls again.
    waker: Option<Waker>,
}

impl StreamTools {
    pub(crate) fn new(
        shared: Arc<Shared>,
        stream_id: Option<String>,
        cancel: CancellationToken,
    ) -> Self {
        StreamTools {
            shared,
            context: CallContext { stream_id },
            cancel,
            calls: JoinSet::new(),
            running: HashMap::new(),
            started: HashMap::new(),
            ready: VecDeque::new(),
            waker: None,
        }
    }

    /// Starts a call at once (a tracked task) and returns what `tool.started` needs. The same
    /// tool with the same canonical arguments started twice in a stream runs once
    /// ([`Start::Duplicate`]). An unknown tool, arguments that fail the schema, a full stream
    /// (`Overloaded`) or a cancelled stream give a call whose outcome is that error, reported
    /// through [`poll_outcome`](Self::poll_outcome) like any other. Calls refused as `Overloaded`
    /// are not remembered, so the same call may be started again later.
    pub fn start(&mut self, tool: &str, args: Value) -> Start {
        let key = (tool.to_owned(), canonical_json(&args));
        if let Some(call_id) = self.started.get(&key) {
            return Start::Duplicate {
                call_id: call_id.clone(),
            };
        }
        let call_id = format!("call_{}", uuid::Uuid::now_v7().simple());
        let started_at = Instant::now();
        let config = &self.shared.config;
        if self.started.len() >= config.max_calls_per_stream
            || self.calls.len() >= config.max_per_stream
        {
            self.finish_at_once(
                call_id.clone(),
                tool,
                args,
                started_at,
                ToolError::Overloaded,
            );
            return Start::Started { call_id };
        }
        self.started.insert(key, call_id.clone());

        let call = match self.prepare(tool, &args) {
            Ok(call) => call,
            Err(error) => {
                self.finish_at_once(call_id.clone(), tool, args, started_at, error);
                return Start::Started { call_id };
            }
        };
        if let Some(value) = call
            .settings
            .cache_ttl
            .and_then(|_| self.shared.cache.get_now(tool, &call.args))
        {
            // A cache hit needs no task: the outcome is ready in this very call, so the stream
            // can send it right after the intent, in the same write.
            CallRecord::new(tool, started_at).finish(None);
            self.ready.push_back(ToolOutcome {
                call_id: call_id.clone(),
                tool: tool.to_owned(),
                args,
                result: Ok(value),
                cached: true,
                elapsed: started_at.elapsed(),
            });
            self.wake();
            return Start::Started { call_id };
        }
        let span = tracing::info_span!(
            "tool_call",
            tool,
            call_id = %call_id,
            stream_id = self.context.stream_id.as_deref().unwrap_or_default(),
        );
        let task = call::run(
            Arc::clone(&self.shared),
            call,
            self.cancel.clone(),
            started_at,
        );
        let handle = self.calls.spawn(task.instrument(span));
        self.running.insert(
            handle.id(),
            RunningCall {
                call_id: call_id.clone(),
                tool: tool.to_owned(),
                args,
                started_at,
            },
        );
        self.wake();
        Start::Started { call_id }
    }

    /// The next finished call, if any; registers the waker otherwise. `Ready(None)` when no call
    /// is in flight (a later [`start`](Self::start) wakes the last waker).
    pub fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Option<ToolOutcome>> {
        if let Some(outcome) = self.ready.pop_front() {
            return Poll::Ready(Some(outcome));
        }
        loop {
            let joined = match self.calls.poll_join_next_with_id(cx) {
                Poll::Ready(Some(joined)) => joined,
                Poll::Ready(None) => {
                    self.remember(cx.waker());
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    self.remember(cx.waker());
                    return Poll::Pending;
                }
            };
            let (id, finished) = match joined {
                Ok((id, finished)) => (id, Ok(finished)),
                Err(error) => (error.id(), Err(error)),
            };
            let Some(call) = self.running.remove(&id) else {
                tracing::error!(task = %id, "a tool task ended that this stream did not start");
                continue;
            };
            return Poll::Ready(Some(outcome_of(call, finished)));
        }
    }

    /// The next finished call, or `None` when no call is in flight.
    pub async fn next_outcome(&mut self) -> Option<ToolOutcome> {
        std::future::poll_fn(|cx| self.poll_outcome(cx)).await
    }

    /// Calls started whose outcome has not been taken yet.
    pub fn in_flight(&self) -> usize {
        self.calls.len() + self.ready.len()
    }

    /// Cancels every call of this stream at once; each still yields its outcome (`Cancelled`,
    /// unless it had finished already). Final: calls started afterwards end `Cancelled` at once.
    /// Also done on drop.
    pub fn cancel_all(&mut self) {
        self.cancel.cancel();
        self.calls.abort_all();
    }

    /// Resolves the tool and checks the arguments; refuses when the stream is cancelled.
    fn prepare(&self, tool: &str, args: &Value) -> Result<Call, ToolError> {
        if self.cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let registered = self
            .shared
            .registry
            .get(tool)
            .ok_or_else(|| ToolError::UnknownTool(tool.to_owned()))?;
        registered.validate(args)?;
        Ok(Call {
            tool: Arc::clone(registered.tool()),
            name: tool.to_owned(),
            settings: registered.settings(),
            args: args.clone(),
            context: self.context.clone(),
        })
    }

    /// Reports a call that ends without running.
    fn finish_at_once(
        &mut self,
        call_id: String,
        tool: &str,
        args: Value,
        started_at: Instant,
        error: ToolError,
    ) {
        let label = if self.shared.registry.get(tool).is_some() {
            tool
        } else {
            metric::UNKNOWN_TOOL
        };
        CallRecord::new(label, started_at).finish(Some(&error));
        tracing::info!(
            tool,
            call_id = %call_id,
            stream_id = self.context.stream_id.as_deref().unwrap_or_default(),
            code = error.code(),
            "tool call ended before it ran"
        );
        tracing::debug!(call_id = %call_id, %error, "tool call refusal");
        self.ready.push_back(ToolOutcome {
            call_id,
            tool: tool.to_owned(),
            args,
            result: Err(error),
            cached: false,
            elapsed: started_at.elapsed(),
        });
        self.wake();
    }

    fn remember(&mut self, waker: &Waker) {
        if !self
            .waker
            .as_ref()
            .is_some_and(|known| known.will_wake(waker))
        {
            self.waker = Some(waker.clone());
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// The outcome of a call whose task ended, normally or not.
fn outcome_of(call: RunningCall, finished: Result<Finished, JoinError>) -> ToolOutcome {
    let (result, cached, elapsed) = match finished {
        Ok(finished) => (finished.result, finished.cached, finished.elapsed),
        Err(error) => {
            let error = if error.is_panic() {
                ToolError::Internal("the tool panicked".into())
            } else {
                ToolError::Cancelled
            };
            (Err(error), false, call.started_at.elapsed())
        }
    };
    ToolOutcome {
        call_id: call.call_id,
        tool: call.tool,
        args: call.args,
        result,
        cached,
        elapsed,
    }
}

impl Drop for StreamTools {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

impl fmt::Debug for StreamTools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTools")
            .field("stream_id", &self.context.stream_id)
            .field("in_flight", &self.in_flight())
            .field("started", &self.started.len())
            .finish_non_exhaustive()
    }
}
