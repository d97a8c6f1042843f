//! The dispatcher and the cache, driven through the public API with in-process tools.
//!
//! Most tests run on a paused clock: `settle()` sleeps 1 ms of virtual time, which only
//! passes once every task is blocked, so "the tool has started" / "the waiter is parked" are
//! reached deterministically, and timeouts cost no real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_trait::async_trait;
use midstream_tools::{
    CallContext, Dispatcher, DispatcherConfig, Start, StreamTools, Tool, ToolError, ToolOutcome,
    ToolRegistry, ToolSettings,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A tool that counts what happens to it.
struct Probe {
    name: &'static str,
    parameters: Value,
    /// When set, each execution waits for a permit (tests add permits to let calls finish).
    gate: Option<Arc<Semaphore>>,
    delay: Option<Duration>,
    failures_left: AtomicUsize,
    panics: bool,
    /// Executions started.
    runs: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    /// Executions whose future was dropped before it finished.
    dropped: AtomicUsize,
}

impl Probe {
    fn new(name: &'static str) -> Self {
        Probe {
            name,
            parameters: json!({
                "type": "object",
                "properties": {"n": {"type": "integer"}, "city": {"type": "string"}},
                "additionalProperties": false
            }),
            gate: None,
            delay: None,
            failures_left: AtomicUsize::new(0),
            panics: false,
            runs: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    fn gated(name: &'static str) -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        let probe = Probe {
            gate: Some(Arc::clone(&gate)),
            ..Probe::new(name)
        };
        (probe, gate)
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Counts an execution as running until it finishes or is dropped.
struct Running<'a> {
    probe: &'a Probe,
    finished: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.probe.running.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.probe.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Tool for Probe {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "counts its executions"
    }
    fn parameters(&self) -> &Value {
        &self.parameters
    }
    async fn call(&self, args: Value, _ctx: &CallContext) -> Result<Value, ToolError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let mut guard = Running {
            probe: self,
            finished: false,
        };
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("the gate stays open").forget();
        }
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        assert!(!self.panics, "the probe was told to panic");
        guard.finished = true;
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if fail {
            return Err(ToolError::Unavailable(format!("run {run} failed")));
        }
        Ok(json!({"run": run, "args": args}))
    }
}

const LONG: Duration = Duration::from_secs(3600);

fn settings(timeout: Duration, cache_ttl: Option<Duration>) -> ToolSettings {
    ToolSettings { timeout, cache_ttl }
}

fn dispatcher(tools: Vec<(Arc<Probe>, ToolSettings)>, config: DispatcherConfig) -> Dispatcher {
    let mut registry = ToolRegistry::new();
    for (tool, settings) in tools {
        registry
            .register(tool, settings)
            .expect("the probe registers");
    }
    Dispatcher::new(registry, config)
}

fn stream(dispatcher: &Dispatcher, id: &str) -> StreamTools {
    dispatcher.stream(Some(id.to_owned()), CancellationToken::new())
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn started(start: Start) -> String {
    match start {
        Start::Started { call_id } => call_id,
        Start::Duplicate { call_id } => panic!("unexpected duplicate of {call_id}"),
    }
}

async fn all_outcomes(tools: &mut StreamTools) -> Vec<ToolOutcome> {
    let mut outcomes = Vec::new();
    while let Some(outcome) = tools.next_outcome().await {
        outcomes.push(outcome);
    }
    outcomes
}

#[tokio::test(start_paused = true)]
async fn calls_run_concurrently_and_each_ends_in_one_outcome() {
    let (probe, gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    let ids: Vec<String> = (0..3)
        .map(|n| started(tools.start("probe", json!({"n": n}))))
        .collect();
    settle().await;
    assert_eq!(
        probe.running.load(Ordering::SeqCst),
        3,
        "all three run at once"
    );
    assert_eq!(tools.in_flight(), 3);

    gate.add_permits(3);
    let outcomes = all_outcomes(&mut tools).await;
    assert_eq!(outcomes.len(), 3);
    let mut reported: Vec<String> = outcomes.iter().map(|o| o.call_id.clone()).collect();
    reported.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(reported, expected);
    for outcome in &outcomes {
        let value = outcome.result.as_ref().unwrap();
        assert_eq!(value["args"], outcome.args);
        assert_eq!(outcome.tool, "probe");
        assert!(!outcome.cached);
    }
    assert_eq!(tools.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_global_bound_limits_executions_across_streams() {
    let (probe, gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let config = DispatcherConfig {
        max_concurrent: 2,
        ..DispatcherConfig::default()
    };
    let dispatcher = dispatcher(vec![(Arc::clone(&probe), settings(LONG, None))], config);
    let mut streams: Vec<StreamTools> = (0..5)
        .map(|i| stream(&dispatcher, &format!("s{i}")))
        .collect();
    for (n, tools) in streams.iter_mut().enumerate() {
        started(tools.start("probe", json!({"n": n})));
    }
    settle().await;
    assert_eq!(probe.runs(), 2, "only two executions may hold a slot");

    gate.add_permits(5);
    for tools in &mut streams {
        let outcome = tools.next_outcome().await.unwrap();
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
    assert_eq!(probe.runs(), 5);
    assert_eq!(probe.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_gets_no_slot_before_its_deadline_is_overloaded() {
    let (holder, _closed_gate) = Probe::gated("holder");
    let holder = Arc::new(holder);
    let waiter = Arc::new(Probe::new("waiter"));
    let config = DispatcherConfig {
        max_concurrent: 1,
        ..DispatcherConfig::default()
    };
    let timeout = Duration::from_secs(2);
    let dispatcher = dispatcher(
        vec![
            (Arc::clone(&holder), settings(LONG, None)),
            (Arc::clone(&waiter), settings(timeout, None)),
        ],
        config,
    );
    let mut tools = stream(&dispatcher, "s");
    started(tools.start("holder", json!({})));
    settle().await;
    let waiting = started(tools.start("waiter", json!({})));

    let outcome = tools.next_outcome().await.unwrap();
    assert_eq!(outcome.call_id, waiting);
    assert_eq!(outcome.result.unwrap_err(), ToolError::Overloaded);
    assert_eq!(outcome.elapsed, timeout);
    assert_eq!(waiter.runs(), 0);
    assert_eq!(holder.runs(), 1);
}

#[tokio::test(start_paused = true)]
async fn calls_beyond_the_stream_bound_are_refused_at_once() {
    let (probe, gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let config = DispatcherConfig {
        max_per_stream: 2,
        ..DispatcherConfig::default()
    };
    let dispatcher = dispatcher(vec![(Arc::clone(&probe), settings(LONG, None))], config);
    let mut tools = stream(&dispatcher, "s");
    started(tools.start("probe", json!({"n": 1})));
    started(tools.start("probe", json!({"n": 2})));
    let refused = started(tools.start("probe", json!({"n": 3})));

    // The refusal is reported at once, while the other two are still running.
    let outcome = tools.next_outcome().await.unwrap();
    assert_eq!(outcome.call_id, refused);
    assert_eq!(outcome.result.unwrap_err(), ToolError::Overloaded);
    settle().await;
    assert_eq!(probe.runs(), 2);

    gate.add_permits(1);
    let first = tools.next_outcome().await.unwrap();
    assert!(first.result.is_ok());
    // A slot is free again, and the refused call was not remembered as started.
    let retried = tools.start("probe", json!({"n": 3}));
    assert_ne!(started(retried), refused);
    gate.add_permits(2);
    let rest = all_outcomes(&mut tools).await;
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|o| o.result.is_ok()));
    assert_eq!(probe.runs(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_stream_may_start_only_so_many_distinct_calls() {
    let probe = Arc::new(Probe::new("probe"));
    let config = DispatcherConfig {
        max_calls_per_stream: 3,
        ..DispatcherConfig::default()
    };
    let dispatcher = dispatcher(vec![(Arc::clone(&probe), settings(LONG, None))], config);
    let mut tools = stream(&dispatcher, "s");
    for n in 0..4 {
        started(tools.start("probe", json!({"n": n})));
    }
    let outcomes = all_outcomes(&mut tools).await;
    assert_eq!(outcomes.len(), 4);
    let refused: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].args, json!({"n": 3}));
    assert_eq!(
        refused[0].result.as_ref().unwrap_err(),
        &ToolError::Overloaded
    );
    assert_eq!(probe.runs(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_ends_the_call_and_drops_its_future() {
    let probe = Arc::new(Probe {
        delay: Some(Duration::from_secs(60)),
        ..Probe::new("slow")
    });
    let timeout = Duration::from_secs(1);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(timeout, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    started(tools.start("slow", json!({})));
    let outcome = tools.next_outcome().await.unwrap();
    assert_eq!(outcome.result.unwrap_err(), ToolError::Timeout(timeout));
    assert!(
        outcome.elapsed >= timeout && outcome.elapsed < Duration::from_secs(60),
        "{:?}",
        outcome.elapsed
    );
    assert_eq!(probe.dropped(), 1, "the tool's future was dropped");
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_beyond_the_clock_means_no_deadline() {
    let probe = Arc::new(Probe {
        delay: Some(Duration::from_secs(86_400)),
        ..Probe::new("patient")
    });
    let dispatcher = dispatcher(
        vec![(
            Arc::clone(&probe),
            settings(Duration::MAX, Some(Duration::MAX)),
        )],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    started(tools.start("patient", json!({})));
    let outcome = tools.next_outcome().await.unwrap();
    assert_eq!(outcome.result.unwrap()["run"], 1);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_covers_the_wait_for_a_shared_execution() {
    let (probe, _closed_gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let timeout = Duration::from_secs(5);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(timeout, Some(LONG)))],
        DispatcherConfig::default(),
    );
    let mut first = stream(&dispatcher, "a");
    let mut second = stream(&dispatcher, "b");
    started(first.start("probe", json!({"n": 1})));
    tokio::time::sleep(Duration::from_secs(3)).await;
    started(second.start("probe", json!({"n": 1})));
    let outcome = first.next_outcome().await.unwrap();
    assert_eq!(outcome.result.unwrap_err(), ToolError::Timeout(timeout));
    // The second call re-ran the execution when the first gave up, and is bound by its own
    // deadline (5 s after its own start), not by the first call's.
    let outcome = second.next_outcome().await.unwrap();
    assert_eq!(outcome.result.unwrap_err(), ToolError::Timeout(timeout));
    assert_eq!(outcome.elapsed, timeout);
    assert_eq!(probe.runs(), 2);
    assert_eq!(probe.dropped(), 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_cancels_every_call_at_once() {
    let (probe, _closed_gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    for n in 0..3 {
        started(tools.start("probe", json!({"n": n})));
    }
    settle().await;
    assert_eq!(probe.running.load(Ordering::SeqCst), 3);
    drop(tools);
    settle().await;
    assert_eq!(probe.dropped(), 3);
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_all_reports_each_call_as_cancelled_and_is_final() {
    let (probe, _closed_gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    started(tools.start("probe", json!({"n": 1})));
    started(tools.start("probe", json!({"n": 2})));
    settle().await;
    tools.cancel_all();
    let outcomes = all_outcomes(&mut tools).await;
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes
            .iter()
            .all(|o| o.result.as_ref().unwrap_err() == &ToolError::Cancelled)
    );
    assert_eq!(probe.dropped(), 2);

    started(tools.start("probe", json!({"n": 3})));
    let late = tools.next_outcome().await.unwrap();
    assert_eq!(late.result.unwrap_err(), ToolError::Cancelled);
    assert_eq!(probe.runs(), 2, "nothing runs after cancel_all");
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_stream_token_cancels_its_calls_only() {
    let (probe, gate) = Probe::gated("probe");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let shutdown = CancellationToken::new();
    let stream_token = shutdown.child_token();
    let mut cancelled = dispatcher.stream(Some("a".into()), stream_token.clone());
    let mut other = dispatcher.stream(Some("b".into()), shutdown.child_token());
    started(cancelled.start("probe", json!({"n": 1})));
    started(other.start("probe", json!({"n": 2})));
    settle().await;

    stream_token.cancel();
    let outcome = cancelled.next_outcome().await.unwrap();
    assert_eq!(outcome.result.unwrap_err(), ToolError::Cancelled);
    assert_eq!(probe.dropped(), 1);

    gate.add_permits(1);
    assert!(other.next_outcome().await.unwrap().result.is_ok());
    // cancel_all on a handle does not cancel the token it was given.
    other.cancel_all();
    assert!(!shutdown.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn unknown_tools_and_invalid_arguments_end_in_an_error_outcome() {
    let probe = Arc::new(Probe::new("probe"));
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    let unknown = started(tools.start("nope", json!({})));
    let invalid = started(tools.start("probe", json!({"n": "one", "extra": 1})));
    let outcomes = all_outcomes(&mut tools).await;
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].call_id, unknown);
    assert_eq!(
        outcomes[0].result.as_ref().unwrap_err(),
        &ToolError::UnknownTool("nope".into())
    );
    assert_eq!(outcomes[1].call_id, invalid);
    let Err(ToolError::InvalidArguments(message)) = &outcomes[1].result else {
        panic!("expected invalid arguments, got {:?}", outcomes[1].result);
    };
    assert!(
        message.contains("/n") && message.contains("extra"),
        "{message}"
    );
    assert_eq!(probe.runs(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_same_call_in_a_stream_runs_once() {
    let probe = Arc::new(Probe::new("probe"));
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    let first = started(tools.start("probe", json!({"n": 1, "city": "Paris"})));
    let again: Value = serde_json::from_str(r#"{"city": "Paris", "n": 1}"#).unwrap();
    assert_eq!(
        tools.start("probe", again),
        Start::Duplicate {
            call_id: first.clone()
        }
    );
    let outcomes = all_outcomes(&mut tools).await;
    assert_eq!(outcomes.len(), 1);
    // Still a duplicate after the first one finished.
    assert_eq!(
        tools.start("probe", json!({"n": 1, "city": "Paris"})),
        Start::Duplicate { call_id: first }
    );
    assert!(tools.next_outcome().await.is_none());

    // Another stream runs it again: the tool is not cached.
    let mut other = stream(&dispatcher, "t");
    started(other.start("probe", json!({"n": 1, "city": "Paris"})));
    assert!(!other.next_outcome().await.unwrap().cached);
    assert_eq!(probe.runs(), 2);
}

#[tokio::test(start_paused = true)]
async fn ten_concurrent_identical_calls_share_one_execution() {
    let (probe, gate) = Probe::gated("cached");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, Some(LONG)))],
        DispatcherConfig::default(),
    );
    let mut streams: Vec<StreamTools> = (0..10)
        .map(|i| stream(&dispatcher, &format!("s{i}")))
        .collect();
    for (i, tools) in streams.iter_mut().enumerate() {
        // Key order differs between calls; the canonical key does not.
        let args: Value = if i % 2 == 0 {
            serde_json::from_str(r#"{"n": 7, "city": "Oslo"}"#).unwrap()
        } else {
            serde_json::from_str(r#"{"city": "Oslo", "n": 7}"#).unwrap()
        };
        started(tools.start("cached", args));
    }
    settle().await;
    assert_eq!(probe.runs(), 1);

    gate.add_permits(1);
    let mut ran_it = 0;
    for tools in &mut streams {
        let outcome = tools.next_outcome().await.unwrap();
        assert_eq!(outcome.result.unwrap()["run"], 1);
        if !outcome.cached {
            ran_it += 1;
        }
    }
    assert_eq!(ran_it, 1, "exactly one call ran the tool; nine shared it");
    assert_eq!(probe.runs(), 1);

    // Later, the stored result is served.
    let mut later = stream(&dispatcher, "later");
    started(later.start("cached", json!({"n": 7, "city": "Oslo"})));
    let outcome = later.next_outcome().await.unwrap();
    assert!(outcome.cached);
    assert_eq!(probe.runs(), 1);
    assert!(
        dispatcher
            .cache()
            .contains("cached", &json!({"city": "Oslo", "n": 7}))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_call_is_not_cached() {
    let probe = Arc::new(Probe {
        failures_left: AtomicUsize::new(1),
        ..Probe::new("flaky")
    });
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, Some(LONG)))],
        DispatcherConfig::default(),
    );
    let mut first = stream(&dispatcher, "a");
    started(first.start("flaky", json!({"n": 1})));
    let failed = first.next_outcome().await.unwrap();
    assert_eq!(
        failed.result.unwrap_err(),
        ToolError::Unavailable("run 1 failed".into())
    );
    assert!(!dispatcher.cache().contains("flaky", &json!({"n": 1})));

    let mut second = stream(&dispatcher, "b");
    started(second.start("flaky", json!({"n": 1})));
    let retried = second.next_outcome().await.unwrap();
    assert_eq!(retried.result.unwrap()["run"], 2);
    assert!(!retried.cached);
    assert_eq!(probe.runs(), 2, "the failure was not served from the cache");
}

#[tokio::test(start_paused = true)]
async fn waiters_still_get_a_result_when_the_shared_execution_is_cancelled() {
    let (probe, gate) = Probe::gated("cached");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, Some(LONG)))],
        DispatcherConfig::default(),
    );
    let mut leader = stream(&dispatcher, "leader");
    let mut waiter = stream(&dispatcher, "waiter");
    started(leader.start("cached", json!({"n": 1})));
    settle().await;
    assert_eq!(probe.runs(), 1);
    started(waiter.start("cached", json!({"n": 1})));
    settle().await;
    assert_eq!(probe.runs(), 1, "the waiter joined the leader's execution");

    drop(leader);
    settle().await;
    assert_eq!(probe.dropped(), 1);
    assert_eq!(probe.runs(), 2, "the waiter runs the tool itself");

    gate.add_permits(1);
    let outcome = waiter.next_outcome().await.unwrap();
    assert_eq!(outcome.result.unwrap()["run"], 2);
    assert!(!outcome.cached);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_tool_is_an_internal_error() {
    let probe = Arc::new(Probe {
        panics: true,
        ..Probe::new("boom")
    });
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    let call_id = started(tools.start("boom", json!({})));
    let outcome = tools.next_outcome().await.unwrap();
    assert_eq!(outcome.call_id, call_id);
    assert!(
        matches!(outcome.result, Err(ToolError::Internal(_))),
        "{:?}",
        outcome.result
    );
}

/// Counts wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn poll_outcome_reports_idle_and_a_start_wakes_the_poller() {
    let probe = Arc::new(Probe::new("probe"));
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, None))],
        DispatcherConfig::default(),
    );
    let mut tools = stream(&dispatcher, "s");
    let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&waker);

    assert!(matches!(tools.poll_outcome(&mut cx), Poll::Ready(None)));
    started(tools.start("probe", json!({})));
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "a body that saw nothing in flight is woken"
    );

    assert!(matches!(
        tools.poll_outcome(&mut cx),
        Poll::Ready(None) | Poll::Pending
    ));
    started(tools.start("nope", json!({})));
    assert!(
        wakes.0.load(Ordering::SeqCst) >= 2,
        "an immediate outcome wakes the body too"
    );
    let outcomes = all_outcomes(&mut tools).await;
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn handles_can_move_between_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (probe, gate) = Probe::gated("gated");
    let probe = Arc::new(probe);
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, Some(LONG)))],
        DispatcherConfig::default(),
    );
    let args = json!({"n": 1});

    // A call started on this thread is let through and collected on another; its outcome
    // comes back here.
    let mut tools = stream(&dispatcher, "moved");
    let call_id = runtime.block_on(async { started(tools.start("gated", args.clone())) });
    let handle = runtime.handle().clone();
    let outcome = std::thread::spawn(move || {
        gate.add_permits(1);
        handle.block_on(tools.next_outcome())
    })
    .join()
    .expect("the collecting thread does not panic")
    .expect("one call was in flight");
    assert_eq!(outcome.call_id, call_id);
    assert!(!outcome.cached);
    assert_eq!(outcome.result.expect("the call succeeds")["run"], 1);

    // A clone of the dispatcher on another thread shares its cache: the same call is a hit there.
    let shared = dispatcher.clone();
    let handle = runtime.handle().clone();
    let call = args.clone();
    let again = std::thread::spawn(move || {
        handle.block_on(async {
            let mut tools = stream(&shared, "other thread");
            started(tools.start("gated", call));
            tools.next_outcome().await
        })
    })
    .join()
    .expect("the other thread does not panic")
    .expect("one call was in flight");
    assert!(again.cached);
    assert_eq!(again.result.expect("the cached result")["run"], 1);
    assert_eq!(probe.runs(), 1);
    assert!(dispatcher.cache().contains("gated", &args));
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_is_ready_at_once_without_a_task() {
    let probe = Arc::new(Probe::new("cached"));
    let dispatcher = dispatcher(
        vec![(Arc::clone(&probe), settings(LONG, Some(LONG)))],
        DispatcherConfig::default(),
    );
    let mut first = stream(&dispatcher, "first");
    started(first.start("cached", json!({"city": "Oslo"})));
    assert!(!first.next_outcome().await.unwrap().cached);

    let mut second = stream(&dispatcher, "second");
    started(second.start("cached", json!({"city": "Oslo"})));
    // No yield to the runtime: the outcome must already be there.
    let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
    let outcome = match second.poll_outcome(&mut Context::from_waker(&waker)) {
        Poll::Ready(Some(outcome)) => outcome,
        other => panic!("a cache hit is ready in start() itself, got {other:?}"),
    };
    assert!(outcome.cached);
    assert_eq!(outcome.result.unwrap()["run"], 1);
    assert_eq!(probe.runs(), 1);
}
