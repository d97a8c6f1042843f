//! Cached tool results: how long after the `intent` event its cached `tool.result` arrives.
//!
//! The gateway injects the intent event right after the chunk that completed the intent, so
//! intent → cached result is the wire delay of a result that needed no tool call. One
//! warm-up stream fills the cache first.

use crate::load::{self, LoadPlan};
use crate::report::StreamReport;

/// Runs one warm-up stream, then `plan`, and reports; streams that lacked the intent or
/// the cached result count as errors (`no_intent`, `no_cached_result`).
pub async fn run(plan: &LoadPlan, url: &str) -> StreamReport {
    let warmup = LoadPlan {
        concurrency: 1,
        requests: 1,
        ..plan.clone()
    };
    let warmed = load::run(&warmup).await;
    let mut results = load::run(plan).await;
    let measured = u64::try_from(results.tool_latency.len()).unwrap_or(u64::MAX);
    let without_intent = results
        .completed
        .saturating_sub(measured + results.intent_without_cached_result);
    for (kind, count) in [
        ("no_intent", without_intent),
        ("no_cached_result", results.intent_without_cached_result),
        ("warmup_failed", warmed.error_count()),
    ] {
        if count > 0 {
            results.errors.insert(kind.to_owned(), count);
        }
    }
    StreamReport::new("tool-latency", url, plan.concurrency, 1, results, None)
}
