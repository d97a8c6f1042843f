//! Idle streams: hold K streams open through the target and read its resident memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::client::RequestTemplate;
use crate::limits::{LimitError, ensure_open_files};
use crate::load::{Failure, OpenedStream, stream_until};
use crate::procfs::{self, CpuWatch, ProcError};
use crate::sse::FrameKind;

/// Descriptors this process needs besides one per stream (runtime, stdio, /proc reads).
const SPARE_FILES: u64 = 64;

/// What to run.
#[derive(Debug, Clone)]
pub struct IdlePlan {
    /// Where and how to send.
    pub template: RequestTemplate,
    /// The body of every request (asks the mock to hold the stream).
    pub body: Bytes,
    /// Streams to hold open.
    pub streams: usize,
    /// Streams being opened at once (bounds the accept backlog we put on the target).
    pub open_concurrency: usize,
    /// The process whose memory is read.
    pub pid: u32,
    /// How long to keep the streams open once all are open.
    pub hold: Duration,
    /// Longest wait for one stream's first frame.
    pub open_timeout: Duration,
}

/// The idle run could not start.
#[derive(Debug, thiserror::Error)]
pub enum IdleError {
    /// Not enough file descriptors for this process.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The target's `/proc` entries could not be read.
    #[error(transparent)]
    Proc(#[from] ProcError),
}

/// The JSON written by `idle`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleReport {
    /// The base URL.
    pub url: String,
    /// Streams asked for.
    pub streams_requested: usize,
    /// Streams that received their first frame.
    pub streams_open: usize,
    /// Streams that failed to open, by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Open streams that ended while they should have been held.
    pub closed_during_hold: usize,
    /// Time to open every stream, seconds.
    pub open_secs: f64,
    /// How long the streams were held after opening, seconds.
    pub hold_secs: f64,
    /// The target's RSS before the first stream, KiB.
    pub rss_baseline_kib: u64,
    /// Its RSS once every stream was open, KiB.
    pub rss_open_kib: u64,
    /// Its RSS at the end of the hold, KiB.
    pub rss_after_hold_kib: u64,
    /// (RSS at the end of the hold − baseline) / open streams, KiB.
    pub rss_per_stream_kib: f64,
    /// The target's CPU while every stream sat idle, ms per second of hold.
    pub target_cpu_ms_per_sec_idle: f64,
    /// The target's soft limit on open files (it needs two per proxied stream).
    pub target_open_files_limit: Option<u64>,
}

/// How one stream ended.
enum Ended {
    /// Held until told to close.
    Held,
    /// The server ended it during the hold.
    Early,
}

/// Opens the streams, measures, closes them.
pub async fn run(plan: &IdlePlan) -> Result<IdleReport, IdleError> {
    let streams = u64::try_from(plan.streams).unwrap_or(u64::MAX);
    ensure_open_files(streams.saturating_add(SPARE_FILES))?;
    let target_open_files_limit = procfs::open_files_limit(plan.pid)?;
    if let Some(limit) = target_open_files_limit
        && limit < streams.saturating_mul(2).saturating_add(SPARE_FILES)
    {
        eprintln!(
            "warning: the target (pid {}) may open only {limit} files; proxying {} streams takes \
             two descriptors each (client and upstream) plus its own",
            plan.pid, plan.streams
        );
    }
    let rss_baseline_kib = procfs::rss_kib(plan.pid)?;
    let plan_shared = Arc::new(plan.clone());
    let opening = Arc::new(Semaphore::new(plan.open_concurrency.max(1)));
    let (opened_tx, mut opened_rx) = mpsc::channel(plan.streams.max(1));
    let (close_tx, close_rx) = watch::channel(false);
    let closed_early = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..plan.streams {
        let plan = plan_shared.clone();
        let opening = opening.clone();
        let opened = opened_tx.clone();
        let close = close_rx.clone();
        let closed_early = closed_early.clone();
        tasks.spawn(async move {
            if let Ended::Early = hold_one(&plan, opening, opened, close).await {
                closed_early.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    drop(opened_tx);
    let mut streams_open = 0;
    let mut errors_by_kind = BTreeMap::new();
    while let Some(opened) = opened_rx.recv().await {
        match opened {
            Ok(()) => streams_open += 1,
            Err(kind) => *errors_by_kind.entry(kind).or_insert(0) += 1,
        }
    }
    let open_secs = started.elapsed().as_secs_f64();
    let rss_open_kib = procfs::rss_kib(plan.pid)?;
    let before_hold = closed_early.load(Ordering::Relaxed);
    let cpu = CpuWatch::start(Some(plan.pid), &[])?;
    let hold_started = Instant::now();
    tokio::time::sleep(plan.hold).await;
    let hold_secs = hold_started.elapsed().as_secs_f64();
    let idle_cpu_ms = cpu.finish()?.target_ms.unwrap_or(0.0);
    let rss_after_hold_kib = procfs::rss_kib(plan.pid)?;
    let closed_during_hold = closed_early.load(Ordering::Relaxed) - before_hold;
    let _ = close_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let rss_per_stream_kib = if streams_open > 0 {
        rss_after_hold_kib.saturating_sub(rss_baseline_kib) as f64 / streams_open as f64
    } else {
        0.0
    };
    Ok(IdleReport {
        url: String::new(),
        streams_requested: plan.streams,
        streams_open,
        errors_by_kind,
        closed_during_hold,
        open_secs,
        hold_secs,
        rss_baseline_kib,
        rss_open_kib,
        rss_after_hold_kib,
        rss_per_stream_kib,
        target_cpu_ms_per_sec_idle: idle_cpu_ms / hold_secs.max(f64::MIN_POSITIVE),
        target_open_files_limit,
    })
}

/// Opens one stream (while holding an opening permit), reports it, then reads keep-alives
/// until `close` says so.
async fn hold_one(
    plan: &IdlePlan,
    opening: Arc<Semaphore>,
    opened: mpsc::Sender<Result<(), String>>,
    mut close: watch::Receiver<bool>,
) -> Ended {
    let permit = opening.acquire_owned().await;
    let open = tokio::time::timeout(
        plan.open_timeout,
        stream_until(&plan.template, plan.body.clone(), |kind| {
            !matches!(kind, FrameKind::Comment)
        }),
    )
    .await
    .unwrap_or(Err(Failure::Timeout));
    drop(permit);
    let OpenedStream {
        mut connection,
        mut body,
        mut scanner,
        ..
    } = match open {
        Ok(open) => {
            let _ = opened.send(Ok(())).await;
            open
        }
        Err(failure) => {
            let _ = opened.send(Err(failure.kind())).await;
            return Ended::Held;
        }
    };
    drop(opened);
    let ended = loop {
        tokio::select! {
            _ = close.wait_for(|close| *close) => break Ended::Held,
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() && scanner.feed(data, |_| {}).is_err() {
                        break Ended::Early;
                    }
                }
                _ => break Ended::Early,
            },
        }
    };
    connection.close().await;
    ended
}
