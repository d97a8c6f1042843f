//! One tool call inside its task: execution slot, cache, timeout, cancellation, metrics.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dispatcher::Shared;
use crate::{CallContext, Tool, ToolError, ToolSettings, metric};

/// Stands in for a deadline beyond what the clock can represent.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A validated call, ready to run.
pub(crate) struct Call {
    pub(crate) tool: Arc<dyn Tool>,
    pub(crate) name: String,
    pub(crate) settings: ToolSettings,
    pub(crate) args: Value,
    pub(crate) context: CallContext,
}

/// What a call's task hands back.
pub(crate) struct Finished {
    pub(crate) result: Result<Arc<Value>, ToolError>,
    pub(crate) cached: bool,
    pub(crate) elapsed: Duration,
}

/// Runs `call` until it ends, its timeout (counted from `started_at`) runs out, or `cancel`
/// fires. In the last two cases the call's future, and with it any request the tool had in
/// flight, is dropped before this returns.
pub(crate) async fn run(
    shared: Arc<Shared>,
    call: Call,
    cancel: CancellationToken,
    started_at: Instant,
) -> Finished {
    let record = CallRecord::new(&call.name, started_at);
    // A timeout too large for the clock means "no deadline" (tokio's own far future is 30 years).
    let deadline = started_at
        .checked_add(call.settings.timeout)
        .unwrap_or_else(|| started_at + FAR_FUTURE);
    let result = tokio::select! {
        biased;
        () = cancel.cancelled() => Err(ToolError::Cancelled),
        timed = tokio::time::timeout_at(deadline, attempt(&shared, &call, deadline)) => {
            timed.unwrap_or(Err(ToolError::Timeout(call.settings.timeout)))
        }
    };
    record.finish(result.as_ref().err());
    let elapsed = started_at.elapsed();
    match &result {
        Ok((_, cached)) => tracing::debug!(
            cached,
            elapsed_ms = elapsed.as_millis(),
            "tool call succeeded"
        ),
        Err(error) => {
            // Messages can quote arguments (user text), so only the code is logged at info.
            tracing::info!(
                code = error.code(),
                elapsed_ms = elapsed.as_millis(),
                "tool call failed"
            );
            tracing::debug!(%error, "tool call failure");
        }
    }
    let (result, cached) = match result {
        Ok((value, cached)) => (Ok(value), cached),
        Err(error) => (Err(error), false),
    };
    Finished {
        result,
        cached,
        elapsed,
    }
}

/// The call through the cache when the tool is cacheable, straight to the tool otherwise.
async fn attempt(
    shared: &Shared,
    call: &Call,
    deadline: Instant,
) -> Result<(Arc<Value>, bool), ToolError> {
    let execute = execute(&shared.executions, call, deadline);
    match call.settings.cache_ttl {
        Some(ttl) => {
            let outcome = shared
                .cache
                .get_or_run(&call.name, &call.args, ttl, execute)
                .await?;
            Ok((outcome.value, outcome.cached))
        }
        None => Ok((Arc::new(execute.await?), false)),
    }
}

/// Runs the tool once it holds one of the process-wide execution slots. Only executions take a
/// slot; cache hits and calls waiting on a shared execution do not. A call that gets no slot
/// before its deadline ends `Overloaded` rather than `Timeout`, which says where the time went.
async fn execute(
    executions: &Semaphore,
    call: &Call,
    deadline: Instant,
) -> Result<Value, ToolError> {
    let _slot = tokio::time::timeout_at(deadline, executions.acquire())
        .await
        .map_err(|_| ToolError::Overloaded)?
        .map_err(|_| ToolError::Internal("the execution slots were closed".into()))?;
    call.tool.call(call.args.clone(), &call.context).await
}

/// Records a call's outcome in the metrics exactly once, however the call ends: finished,
/// or its task aborted (`cancelled`) or panicking (`internal`), which is why it works on drop.
pub(crate) struct CallRecord {
    tool: String,
    started_at: Instant,
    outcome: Option<&'static str>,
}

impl CallRecord {
    /// Starts the record of a call to `tool` (a registered name or [`metric::UNKNOWN_TOOL`]).
    pub(crate) fn new(tool: &str, started_at: Instant) -> Self {
        CallRecord {
            tool: tool.to_owned(),
            started_at,
            outcome: None,
        }
    }

    /// Ends the record with the call's error, or `ok` when there is none.
    pub(crate) fn finish(mut self, error: Option<&ToolError>) {
        self.outcome = Some(error.map_or("ok", ToolError::code));
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or(if std::thread::panicking() {
            "internal"
        } else {
            "cancelled"
        });
        metrics::counter!(metric::CALLS, "tool" => self.tool.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(metric::CALL_SECONDS, "tool" => self.tool.clone())
            .record(self.started_at.elapsed().as_secs_f64());
    }
}
