//! `midstream-load`: MidStream's load generator.
//!
//! It speaks HTTP/1.1 through hyper directly (one connection per client, no pool, no
//! retries) and reads SSE without parsing JSON per chunk, so the little CPU it takes from a
//! shared machine is spent on the measurement. Modes:
//!
//! - `stream`: N concurrent clients, M requests; per stream TTFB, first content token,
//!   inter-chunk gaps, total time, chunks, errors, `[DONE]`; p50/p90/p99/max, throughput,
//!   and with `--pid` the server's CPU per stream from `/proc`.
//! - `events`: browser streams, `POST /v1/streams` and S subscribers of each one's
//!   `events_url`; the same figures, the first `token` event as the first content, every
//!   subscriber checked for `done` and the same count of events; with `--metric` and
//!   `--redis`, what the server's counters and Redis's commands grew by per stream.
//! - `idle`: K held streams; the server's RSS before and after, per stream.
//! - `disconnect`: C streams dropped after their first content token; when the mock saw its
//!   upstream response closed (`GET /mock/stats`), relative to the drop.
//! - `tool-latency`: `intent` event → cached `tool.result`.
//! - `relay`: a bare TCP relay, so the same load through it shows what any proxy adds here.
//! - `summary`: the reports of one `scripts/bench` run compared and checked against the targets.
//!
//! Each mode prints a table and writes JSON (`--json FILE`, or stdout). Exit status: 0 when
//! every stream succeeded, 1 when the run finished with failed streams (the report says
//! which), 2 when it could not run.

mod body;
mod cli;
mod client;
mod counters;
mod criterion;
mod disconnect;
mod events;
mod events_summary;
mod idle;
mod limits;
mod load;
mod procfs;
mod relay;
mod report;
mod sse;
mod stats;
mod summary;
mod tool_latency;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use crate::body::ChatBody;
use crate::cli::{
    Cli, Command, DisconnectArgs, EventsArgs, IdleArgs, RelayArgs, RunArgs, StreamArgs,
    SummaryArgs, TargetArgs, ToolLatencyArgs,
};
use crate::client::{ClientError, RequestTemplate, Target};
use crate::counters::{CounterError, CounterWatch};
use crate::disconnect::DisconnectPlan;
use crate::events::{EventsPlan, EventsReport};
use crate::events_summary::EventsRounds;
use crate::idle::{IdleError, IdlePlan};
use crate::load::{LoadPlan, LoadResults};
use crate::procfs::{CpuWatch, ProcError};
use crate::report::{StreamReport, distribution_header, distribution_row};
use crate::summary::{Inputs, Summary};

/// Why a mode could not run (as opposed to streams that failed while it ran).
#[derive(Debug, Error)]
enum RunError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Idle(#[from] IdleError),
    #[error(transparent)]
    Counter(#[from] CounterError),
    #[error("--body-extra must be a JSON object: {0}")]
    BodyExtra(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read report {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("relay: {0}")]
    Relay(std::io::Error),
}

/// Whether the run's streams all succeeded.
enum Outcome {
    Clean,
    WithErrors,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let result = runtime
        .map_err(RunError::Runtime)
        .and_then(|runtime| runtime.block_on(run(cli.command)));
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::WithErrors) => ExitCode::from(1),
        Err(error) => {
            eprintln!("midstream-load: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<Outcome, RunError> {
    match command {
        Command::Stream(args) => stream(args).await,
        Command::Events(args) => events(args).await,
        Command::Idle(args) => idle(args).await,
        Command::Disconnect(args) => disconnect(args).await,
        Command::ToolLatency(args) => tool_latency(args).await,
        Command::Relay(RelayArgs { listen, to }) => relay::run(listen, to)
            .await
            .map(|()| Outcome::Clean)
            .map_err(RunError::Relay),
        Command::Summary(args) => summarize(&args),
    }
}

async fn stream(args: StreamArgs) -> Result<Outcome, RunError> {
    let plan = LoadPlan {
        template: template(&args.target).await?,
        body: chat_body(&args.target)?.to_bytes(),
        concurrency: args.run.concurrency.max(1),
        requests: args.run.requests,
        timeout: Duration::from_secs(args.target.timeout_secs),
    };
    warm_up(load::run(&LoadPlan {
        requests: args.run.warmup,
        ..plan.clone()
    }))
    .await;
    let report = measured(&args.run, &args.target, &args.label, load::run(&plan)).await?;
    emit(&report.table(), &report, args.target.json.as_deref())?;
    Ok(outcome(report.errors))
}

async fn events(args: EventsArgs) -> Result<Outcome, RunError> {
    let target = Target::resolve(&args.target.url).await?;
    let plan = EventsPlan {
        template: RequestTemplate::post(target.clone(), "/streams", &args.target.headers)?,
        body: chat_body(&args.target)?.to_bytes(),
        concurrency: args.run.concurrency.max(1),
        requests: args.run.requests,
        subscribers: args.subscribers.max(1),
        timeout: Duration::from_secs(args.target.timeout_secs),
    };
    warm_up(events::run(&EventsPlan {
        requests: args.run.warmup,
        ..plan.clone()
    }))
    .await;
    let counters = CounterWatch::start(&target, &args.metrics, args.redis.as_deref()).await?;
    let stream = measured(&args.run, &args.target, &args.label, events::run(&plan)).await?;
    let counters = counters.finish().await?;
    let report = EventsReport::new(stream, plan.subscribers, counters);
    emit(&report.table(), &report, args.target.json.as_deref())?;
    Ok(outcome(report.stream.errors))
}

/// Runs `streams` with the CPU of `run.pid` and of `run.observe` read around them.
async fn measured(
    run: &RunArgs,
    target: &TargetArgs,
    label: &str,
    streams: impl Future<Output = LoadResults>,
) -> Result<StreamReport, RunError> {
    let cpu = CpuWatch::start(run.pid, &run.observe)?;
    let results = streams.await;
    let cpu = cpu.finish()?;
    Ok(StreamReport::new(
        label,
        &target.url,
        run.concurrency.max(1),
        run.warmup,
        results,
        Some(cpu),
    ))
}

/// Runs the warm-up streams (none for a warm-up of 0); their failures are reported, not
/// counted.
async fn warm_up(streams: impl Future<Output = LoadResults>) {
    let warmed = streams.await;
    if warmed.error_count() > 0 {
        eprintln!(
            "warning: {} warm-up streams failed: {:?}",
            warmed.error_count(),
            warmed.errors
        );
    }
}

async fn idle(args: IdleArgs) -> Result<Outcome, RunError> {
    let plan = IdlePlan {
        template: template(&args.target).await?,
        body: chat_body(&args.target)?
            .mock_set("hold", Value::Bool(true))
            .to_bytes(),
        streams: args.streams,
        open_concurrency: args.open_concurrency,
        pid: args.pid,
        hold: Duration::from_secs(args.hold_secs),
        open_timeout: Duration::from_secs(args.target.timeout_secs),
    };
    let mut report = idle::run(&plan).await?;
    report.url.clone_from(&args.target.url);
    let table = format!(
        "idle: {} of {} streams open in {:.1} s, held {:.1} s ({} ended early)\n\
         server RSS: {:.1} MB before, {:.1} MB open, {:.1} MB after the hold = {:.1} KB/stream\n\
         server CPU while idle: {:.2} ms/s; its open-file limit: {}\n{}",
        report.streams_open,
        report.streams_requested,
        report.open_secs,
        report.hold_secs,
        report.closed_during_hold,
        report.rss_baseline_kib as f64 / 1024.0,
        report.rss_open_kib as f64 / 1024.0,
        report.rss_after_hold_kib as f64 / 1024.0,
        report.rss_per_stream_kib,
        report.target_cpu_ms_per_sec_idle,
        report
            .target_open_files_limit
            .map_or_else(|| "unlimited".to_owned(), |limit| limit.to_string()),
        error_lines(&report.errors_by_kind),
    );
    emit(&table, &report, args.target.json.as_deref())?;
    Ok(outcome(failures(
        &report.errors_by_kind,
        report.closed_during_hold,
    )))
}

async fn disconnect(args: DisconnectArgs) -> Result<Outcome, RunError> {
    let plan = DisconnectPlan {
        template: template(&args.target).await?,
        body: chat_body(&args.target)?
            .mock_default("tokens", Value::from(1000))
            .mock_default("delay_ms", Value::from(20)),
        count: args.count,
        concurrency: args.concurrency,
        mock: Target::resolve(&args.mock_stats).await?,
        timeout: Duration::from_secs(args.target.timeout_secs),
    };
    let report = disconnect::run(&plan, &args.target.url).await?;
    let mut table = format!(
        "disconnect: {} dropped after their first content token, {} upstreams closed, {} never closed\n",
        report.dropped, report.upstream_closed, report.upstream_not_closed
    );
    if report.close_delay_ms.is_some() || report.ttft_ms.is_some() {
        table.push_str(&distribution_header());
    }
    if let Some(delay) = &report.close_delay_ms {
        table.push_str(&distribution_row("upstream closed after", delay));
    }
    if let Some(ttft) = &report.ttft_ms {
        table.push_str(&distribution_row("first content token", ttft));
    }
    table.push_str(&error_lines(&report.errors_by_kind));
    emit(&table, &report, args.target.json.as_deref())?;
    Ok(outcome(failures(
        &report.errors_by_kind,
        report.upstream_not_closed,
    )))
}

async fn tool_latency(args: ToolLatencyArgs) -> Result<Outcome, RunError> {
    let plan = LoadPlan {
        template: template(&args.target).await?,
        body: chat_body(&args.target)?.to_bytes(),
        concurrency: args.concurrency.max(1),
        requests: args.requests,
        timeout: Duration::from_secs(args.target.timeout_secs),
    };
    let report = tool_latency::run(&plan, &args.target.url).await;
    emit(&report.table(), &report, args.target.json.as_deref())?;
    Ok(outcome(report.errors))
}

fn summarize(args: &SummaryArgs) -> Result<Outcome, RunError> {
    let inputs = Inputs {
        conditions: args.conditions.clone(),
        direct: read_report(args.direct.as_deref())?,
        relay: read_report(args.relay.as_deref())?,
        off: read_report(args.off.as_deref())?,
        rules: read_report(args.rules.as_deref())?,
        idle: read_report(args.idle.as_deref())?,
        disconnect: read_report(args.disconnect.as_deref())?,
        tool_latency: read_report(args.tool_latency.as_deref())?,
        events: EventsRounds {
            plain: read_reports(&args.plain)?,
            memory: read_reports(&args.events_memory)?,
            redis: read_reports(&args.events_redis)?,
        },
        scanner: match &args.scanner {
            Some(path) => {
                criterion::parse(&fs::read_to_string(path).map_err(|error| RunError::Read {
                    path: path.clone(),
                    reason: error.to_string(),
                })?)
            }
            None => Vec::new(),
        },
    };
    let summary = Summary::new(&inputs);
    let markdown = summary.markdown();
    print!("{markdown}");
    if let Some(path) = &args.markdown {
        write(path, markdown.as_bytes())?;
    }
    if let Some(path) = &args.json {
        write(path, &json_bytes(&summary))?;
    }
    Ok(Outcome::Clean)
}

async fn template(target: &TargetArgs) -> Result<RequestTemplate, RunError> {
    Ok(RequestTemplate::chat(
        Target::resolve(&target.url).await?,
        &target.headers,
    )?)
}

fn chat_body(target: &TargetArgs) -> Result<ChatBody, RunError> {
    let extra = match &target.body_extra {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Some(map),
            Ok(other) => return Err(RunError::BodyExtra(format!("got {other}"))),
            Err(error) => return Err(RunError::BodyExtra(error.to_string())),
        },
    };
    Ok(ChatBody::new(extra.as_ref()))
}

/// Failed streams by kind plus the streams that broke the mode's own promise (ended during the
/// hold, upstream never closed).
fn failures(errors_by_kind: &BTreeMap<String, u64>, broken: usize) -> u64 {
    errors_by_kind
        .values()
        .sum::<u64>()
        .saturating_add(u64::try_from(broken).unwrap_or(u64::MAX))
}

fn outcome(failed: u64) -> Outcome {
    if failed == 0 {
        Outcome::Clean
    } else {
        Outcome::WithErrors
    }
}

fn error_lines(errors: &std::collections::BTreeMap<String, u64>) -> String {
    errors
        .iter()
        .map(|(kind, count)| format!("error {kind}: {count}\n"))
        .collect()
}

/// Prints `table`, then writes `report` as JSON to `json` (stdout when absent or `-`).
fn emit(table: &str, report: &impl Serialize, json: Option<&Path>) -> Result<(), RunError> {
    print!("{table}");
    let bytes = json_bytes(report);
    match json {
        Some(path) if path != Path::new("-") => write(path, &bytes),
        _ => {
            println!("{}", String::from_utf8_lossy(&bytes));
            Ok(())
        }
    }
}

fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    // Our report types have string keys and finite numbers only.
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    fs::write(path, bytes).map_err(|source| RunError::Write {
        path: path.to_owned(),
        source,
    })
}

fn read_reports<T: DeserializeOwned>(paths: &[PathBuf]) -> Result<Vec<T>, RunError> {
    paths
        .iter()
        .filter_map(|path| read_report(Some(path)).transpose())
        .collect()
}

fn read_report<T: DeserializeOwned>(path: Option<&Path>) -> Result<Option<T>, RunError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let failed = |reason: String| RunError::Read {
        path: path.to_owned(),
        reason,
    };
    let text = fs::read_to_string(path).map_err(|error| failed(error.to_string()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| failed(error.to_string()))
}
