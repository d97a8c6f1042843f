//! Disconnects: how long the target takes to close its upstream stream after its client left.
//!
//! Each stream carries a unique `mock.tag`; the client reads until the first content token,
//! notes the wall-clock time and closes its socket. The mock records, per tag, when it saw its
//! own response dropped (`GET /mock/stats`). Both clocks are this machine's `CLOCK_REALTIME`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::body::ChatBody;
use crate::client::{ClientError, RequestTemplate, Target};
use crate::load::{Failure, stream_until};
use crate::sse::FrameKind;
use crate::stats::{Distribution, Samples};

/// How long to wait for the mock to report every tag after the last client left.
const REPORT_PATIENCE: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct DisconnectPlan {
    /// Where and how to send.
    pub template: RequestTemplate,
    /// The body before tagging (a long, slow answer so it is cut mid-stream).
    pub body: ChatBody,
    /// Disconnects to measure.
    pub count: usize,
    /// Streams at once.
    pub concurrency: usize,
    /// The mock's `/mock/stats` URL (the mock itself, not the gateway).
    pub mock: Target,
    /// Longest wait for one stream's first content token.
    pub timeout: Duration,
}

/// The JSON written by `disconnect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DisconnectReport {
    /// The base URL.
    pub url: String,
    /// Disconnects asked for.
    pub count: usize,
    /// Streams at once.
    pub concurrency: usize,
    /// Streams that reached a content token and were dropped by the client.
    pub dropped: usize,
    /// Of those, the ones whose upstream the mock saw closed.
    pub upstream_closed: usize,
    /// Dropped streams whose upstream was still open at the end of the wait.
    pub upstream_not_closed: usize,
    /// Streams that failed before their first content token, by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Upstream closed − client dropped, ms.
    pub close_delay_ms: Option<Distribution>,
    /// Request → first content token of the dropped streams, ms.
    pub ttft_ms: Option<Distribution>,
}

/// A tag and when its client closed the socket (µs since the Unix epoch).
struct Dropped {
    tag: String,
    at_unix_us: u64,
    ttft: Duration,
}

/// Runs the disconnects and matches them with the mock's records.
pub async fn run(plan: &DisconnectPlan, url: &str) -> Result<DisconnectReport, ClientError> {
    let run_id = unix_us(SystemTime::now());
    let plan = Arc::new(plan.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    for _ in 0..plan.concurrency.clamp(1, plan.count.max(1)) {
        let plan = plan.clone();
        let next = next.clone();
        clients.spawn(async move {
            let mut dropped = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= plan.count {
                    break;
                }
                let tag = format!("disconnect-{run_id}-{index}");
                let attempt = tokio::time::timeout(plan.timeout, drop_one(&plan, tag))
                    .await
                    .unwrap_or(Err(Failure::Timeout));
                match attempt {
                    Ok(one) => dropped.push(one),
                    Err(failure) => *errors.entry(failure.kind()).or_default() += 1,
                }
            }
            (dropped, errors)
        });
    }
    let mut dropped = Vec::new();
    let mut errors_by_kind = BTreeMap::new();
    while let Some(joined) = clients.join_next().await {
        if let Ok((mut some, errors)) = joined {
            dropped.append(&mut some);
            for (kind, count) in errors {
                *errors_by_kind.entry(kind).or_insert(0) += count;
            }
        }
    }
    let closed = mock_closures(&plan.mock, &dropped).await?;
    let mut delays = Vec::new();
    let mut ttft = Samples::default();
    for one in &dropped {
        ttft.push(one.ttft);
        if let Some(closed_at) = closed.get(&one.tag) {
            delays.push(
                closed_at
                    .saturating_sub(one.at_unix_us)
                    .saturating_mul(1000),
            );
        }
    }
    Ok(DisconnectReport {
        url: url.to_owned(),
        count: plan.count,
        concurrency: plan.concurrency,
        dropped: dropped.len(),
        upstream_closed: delays.len(),
        upstream_not_closed: dropped.len() - delays.len(),
        errors_by_kind,
        close_delay_ms: Distribution::of(&mut delays),
        ttft_ms: ttft.distribution(),
    })
}

/// Streams until the first content token, then closes the socket.
async fn drop_one(plan: &DisconnectPlan, tag: String) -> Result<Dropped, Failure> {
    let body = plan
        .body
        .clone()
        .mock_set("tag", serde_json::Value::String(tag.clone()))
        .to_bytes();
    let mut opened = stream_until(&plan.template, body, |kind| {
        kind == (FrameKind::Chunk { content: true })
    })
    .await?;
    // Taken before the close, so the measured delay includes our own close.
    let at_unix_us = unix_us(SystemTime::now());
    opened.connection.close().await;
    Ok(Dropped {
        tag,
        at_unix_us,
        ttft: opened.elapsed,
    })
}

/// Polls the mock until it reports every dropped tag or [`REPORT_PATIENCE`] passes.
async fn mock_closures(
    mock: &Target,
    dropped: &[Dropped],
) -> Result<BTreeMap<String, u64>, ClientError> {
    let deadline = Instant::now() + REPORT_PATIENCE;
    loop {
        let stats = mock.get_json("").await?;
        let closed: BTreeMap<String, u64> = dropped
            .iter()
            .filter_map(|one| {
                let at = stats["dropped_at_unix_us"][&one.tag].as_u64()?;
                Some((one.tag.clone(), at))
            })
            .collect();
        if closed.len() == dropped.len() || Instant::now() >= deadline {
            return Ok(closed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix_us(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    })
}
