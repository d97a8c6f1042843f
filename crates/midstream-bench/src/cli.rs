//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// MidStream's load generator: streaming clients against any OpenAI-compatible base URL.
#[derive(Debug, Parser)]
#[command(name = "midstream-load", version)]
pub struct Cli {
    /// Runtime worker threads; 1 (default) runs every client on one thread, which leaves
    /// the most CPU to the processes being measured.
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// N concurrent streaming clients send M requests; latency percentiles and throughput.
    Stream(StreamArgs),
    /// Browser streams: `POST /v1/streams`, then S `EventSource`-like subscribers each.
    Events(EventsArgs),
    /// Hold K streams open and read the server's resident memory.
    Idle(IdleArgs),
    /// Drop C streams after their first content token; how soon the upstream is closed.
    Disconnect(DisconnectArgs),
    /// Time from an `intent` event to its cached `tool.result`.
    ToolLatency(ToolLatencyArgs),
    /// Relay TCP to an upstream and do nothing else: the floor of any proxy (with `stream`).
    Relay(RelayArgs),
    /// Compare the JSON reports of a benchmark run and check the targets.
    Summary(SummaryArgs),
}

/// Where requests go and what they carry.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Base URL, e.g. http://127.0.0.1:8080/v1 (requests go to BASE/chat/completions;
    /// `events`: BASE/streams).
    #[arg(long)]
    pub url: String,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// JSON object merged into the request body, e.g. '{"mock": {"tokens": 50}}'.
    #[arg(long)]
    pub body_extra: Option<String>,
    /// Longest time one stream may take, seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Write the JSON report here (`-` for stdout, the default, after the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// How many streams a measured run sends, and whose CPU it reads (`stream`, `events`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Clients at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Requests measured.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Requests sent first, at the same concurrency, and not measured.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// The server process: its CPU (utime+stime) over the run ÷ streams.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Another process whose CPU is reported, `LABEL=PID` (repeatable).
    #[arg(long = "observe", value_parser = parse_observed)]
    pub observe: Vec<(String, u32)>,
}

/// `stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    /// Target.
    pub target: TargetArgs,
    #[command(flatten)]
    /// Streams and CPU.
    pub run: RunArgs,
    /// A name for this run in the report.
    #[arg(long, default_value = "stream")]
    pub label: String,
}

/// `events`: `--requests` streams, `--concurrency` at once, each followed by `--subscribers`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    /// Target.
    pub target: TargetArgs,
    #[command(flatten)]
    /// Streams and CPU.
    pub run: RunArgs,
    /// Readers of each stream's `events_url`, opened at once after its POST is answered.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// A counter of the server's `GET /metrics` reported as its growth over the measured
    /// streams, e.g. `midstream_event_log_redis_batches_total` (repeatable).
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// The Redis the server writes to, `redis://host:port`: the commands it ran over the
    /// measured streams (`INFO commandstats`).
    #[arg(long)]
    pub redis: Option<String>,
    /// A name for this run in the report.
    #[arg(long, default_value = "events")]
    pub label: String,
}

/// `idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    /// Target.
    pub target: TargetArgs,
    /// Streams to hold open.
    #[arg(long)]
    pub streams: usize,
    /// The server process whose memory is read.
    #[arg(long)]
    pub pid: u32,
    /// Seconds to hold the streams once all are open.
    #[arg(long, default_value_t = 5)]
    pub hold_secs: u64,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 128)]
    pub open_concurrency: usize,
}

/// `disconnect`.
#[derive(Debug, Args)]
pub struct DisconnectArgs {
    #[command(flatten)]
    /// Target.
    pub target: TargetArgs,
    /// Disconnects to measure.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Streams at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// The mock's stats URL, e.g. http://127.0.0.1:9000/mock/stats.
    #[arg(long)]
    pub mock_stats: String,
}

/// `tool-latency`.
#[derive(Debug, Args)]
pub struct ToolLatencyArgs {
    #[command(flatten)]
    /// Target.
    pub target: TargetArgs,
    /// Streams measured (after one warm-up stream).
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Streams at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

/// `relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// The upstream's address, e.g. 127.0.0.1:9000.
    #[arg(long)]
    pub to: std::net::SocketAddr,
}

/// `summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// `stream` report, direct to the mock.
    #[arg(long)]
    pub direct: Option<PathBuf>,
    /// `stream` report, through `relay` to the mock.
    #[arg(long)]
    pub relay: Option<PathBuf>,
    /// `stream` report, gateway with analysis off.
    #[arg(long)]
    pub off: Option<PathBuf>,
    /// `stream` report, gateway with the default rules and tools.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// `idle` report.
    #[arg(long)]
    pub idle: Option<PathBuf>,
    /// `disconnect` report.
    #[arg(long)]
    pub disconnect: Option<PathBuf>,
    /// `tool-latency` report.
    #[arg(long)]
    pub tool_latency: Option<PathBuf>,
    /// `stream` report of the plain endpoint in a round of browser streams: the gateway with
    /// the default rules and tools (repeatable, one per round, in order).
    #[arg(long)]
    pub plain: Vec<PathBuf>,
    /// `events` report of the same gateway (its memory log), one per round, in order.
    #[arg(long)]
    pub events_memory: Vec<PathBuf>,
    /// `events` report of a gateway with Redis, one per round, in order.
    #[arg(long)]
    pub events_redis: Vec<PathBuf>,
    /// Console output of the scanner's criterion bench.
    #[arg(long)]
    pub scanner: Option<PathBuf>,
    /// A condition of the run, `key=value` (repeatable, printed in order).
    #[arg(long = "condition", value_parser = parse_condition)]
    pub conditions: Vec<(String, String)>,
    /// Write the markdown summary here (it is also printed).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the JSON summary here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn parse_observed(value: &str) -> Result<(String, u32), String> {
    let (label, pid) = value
        .split_once('=')
        .ok_or_else(|| format!("expected LABEL=PID, got {value:?}"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("not a process id: {pid:?}"))?;
    Ok((label.to_owned(), pid))
}

fn parse_condition(value: &str) -> Result<(String, String), String> {
    let (key, value) = value
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {value:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_invocations_parse() {
        let cli = Cli::try_parse_from([
            "midstream-load",
            "stream",
            "--url",
            "http://127.0.0.1:1/v1",
            "--concurrency",
            "64",
            "--requests",
            "10",
            "--header",
            "X-Midstream-Events: off",
            "--pid",
            "42",
            "--observe",
            "mock=43",
            "--body-extra",
            "{\"mock\":{}}",
        ])
        .expect("valid");
        let Command::Stream(args) = cli.command else {
            panic!("stream");
        };
        assert_eq!(args.run.observe, [("mock".to_owned(), 43)]);
        assert_eq!(args.target.headers, ["X-Midstream-Events: off"]);
        assert!(
            Cli::try_parse_from([
                "midstream-load",
                "stream",
                "--url",
                "u",
                "--observe",
                "mock"
            ])
            .is_err()
        );
        for args in [
            &[
                "midstream-load",
                "idle",
                "--url",
                "u",
                "--streams",
                "5",
                "--pid",
                "1",
                "--hold-secs",
                "0",
            ][..],
            &[
                "midstream-load",
                "disconnect",
                "--url",
                "u",
                "--count",
                "3",
                "--mock-stats",
                "http://m/mock/stats",
            ],
            &[
                "midstream-load",
                "events",
                "--url",
                "u",
                "--subscribers",
                "3",
                "--warmup",
                "8",
                "--pid",
                "1",
                "--metric",
                "midstream_event_log_redis_batches_total",
                "--redis",
                "redis://127.0.0.1:6379",
                "--body-extra",
                "{}",
            ],
            &[
                "midstream-load",
                "tool-latency",
                "--url",
                "u",
                "--requests",
                "3",
            ],
            &[
                "midstream-load",
                "summary",
                "--condition",
                "a=b=c",
                "--direct",
                "d.json",
            ],
        ] {
            Cli::try_parse_from(args).expect("valid");
        }
    }

    #[test]
    fn conditions_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_condition("cpu=AMD = EPYC"),
            Ok(("cpu".to_owned(), "AMD = EPYC".to_owned()))
        );
        assert!(parse_condition("none").is_err());
    }
}
