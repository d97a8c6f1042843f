//! The metrics a call records. Its own test binary, because it installs the global recorder.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use midstream_tools::{
    CallContext, Dispatcher, DispatcherConfig, Tool, ToolError, ToolRegistry, ToolSettings, metric,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Answers `{"ok": true}` once a permit is available; fails when `args.fail` is true.
struct Gated {
    name: &'static str,
    parameters: Value,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl Tool for Gated {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "waits for its gate"
    }
    fn parameters(&self) -> &Value {
        &self.parameters
    }
    async fn call(&self, args: Value, _ctx: &CallContext) -> Result<Value, ToolError> {
        self.gate
            .acquire()
            .await
            .expect("the gate stays open")
            .forget();
        if args["fail"] == true {
            return Err(ToolError::Unavailable("told to fail".into()));
        }
        Ok(json!({"ok": true}))
    }
}

/// A metric's name, labels, and value (counters) or sample count (histograms).
type Reading = (String, Vec<(String, String)>, u64);

fn read(snapshotter: &Snapshotter) -> Vec<Reading> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn value(metrics: &[Reading], name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

#[tokio::test(start_paused = true)]
async fn calls_record_cache_hits_misses_outcomes_and_durations() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let gate = Arc::new(Semaphore::new(0));
    let parameters = json!({"type": "object"});
    let mut registry = ToolRegistry::new();
    registry
        .register(
            Arc::new(Gated {
                name: "cached",
                parameters: parameters.clone(),
                gate: Arc::clone(&gate),
            }),
            ToolSettings {
                timeout: Duration::from_secs(60),
                cache_ttl: Some(Duration::from_secs(600)),
            },
        )
        .unwrap();
    let dispatcher = Dispatcher::new(registry, DispatcherConfig::default());

    // Ten identical calls: one miss, nine hits, ten `ok`.
    let mut streams: Vec<_> = (0..10)
        .map(|i| dispatcher.stream(Some(format!("s{i}")), CancellationToken::new()))
        .collect();
    for tools in &mut streams {
        tools.start("cached", json!({"city": "Oslo"}));
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    gate.add_permits(1);
    for tools in &mut streams {
        assert!(tools.next_outcome().await.unwrap().result.is_ok());
    }
    // A failure, a cancellation, and an unknown tool.
    let mut tools = dispatcher.stream(None, CancellationToken::new());
    tools.start("cached", json!({"fail": true}));
    gate.add_permits(1);
    assert!(tools.next_outcome().await.unwrap().result.is_err());
    tools.start("cached", json!({"city": "Rome"}));
    tools.start("nope", json!({}));
    tokio::time::sleep(Duration::from_millis(1)).await;
    drop(tools);
    tokio::time::sleep(Duration::from_millis(1)).await;

    let metrics = read(&snapshotter);
    let cached = [("tool", "cached")];
    // Rome was cancelled before its lookup ended, so it is neither a hit nor a miss.
    assert_eq!(
        value(&metrics, metric::CACHE_MISSES, &cached),
        2,
        "Oslo and the failure: {metrics:?}"
    );
    assert_eq!(value(&metrics, metric::CACHE_HITS, &cached), 9);
    let outcome = |o| [("tool", "cached"), ("outcome", o)];
    assert_eq!(value(&metrics, metric::CALLS, &outcome("ok")), 10);
    assert_eq!(value(&metrics, metric::CALLS, &outcome("unavailable")), 1);
    assert_eq!(value(&metrics, metric::CALLS, &outcome("cancelled")), 1);
    assert_eq!(
        value(
            &metrics,
            metric::CALLS,
            &[("tool", metric::UNKNOWN_TOOL), ("outcome", "unknown_tool")]
        ),
        1
    );
    assert_eq!(
        value(&metrics, metric::CALL_SECONDS, &cached),
        12,
        "one duration per call"
    );
}
