//! The benchmark summary: the stream runs compared with the direct path, and the issue's
//! targets checked, as markdown (for BENCHMARKS.md) and JSON. The bare TCP relay's run, when
//! present, is shown beside them as the floor of what any proxy adds on the machine.

use std::fmt::Write as _;

use serde::Serialize;

use crate::criterion::BenchResult;
use crate::disconnect::DisconnectReport;
use crate::events_summary::{EventsRounds, EventsSummary};
use crate::idle::IdleReport;
use crate::procfs::CpuReport;
use crate::report::StreamReport;
use crate::stats::Distribution;

/// Idle streams the issue asks one gateway to hold.
pub const IDLE_STREAMS_TARGET: usize = 10_000;

/// What the summary is made from.
#[derive(Debug, Default)]
pub struct Inputs {
    /// `key=value` lines describing the run.
    pub conditions: Vec<(String, String)>,
    /// Load straight at the mock.
    pub direct: Option<StreamReport>,
    /// Through a bare TCP relay (`midstream-load relay`).
    pub relay: Option<StreamReport>,
    /// Through the gateway, analysis off.
    pub off: Option<StreamReport>,
    /// Through the gateway, default rules and tools.
    pub rules: Option<StreamReport>,
    /// Idle streams.
    pub idle: Option<IdleReport>,
    /// Disconnects.
    pub disconnect: Option<DisconnectReport>,
    /// Cached tool results.
    pub tool_latency: Option<StreamReport>,
    /// Browser streams against the plain endpoint, in rounds.
    pub events: EventsRounds,
    /// The scanner's criterion results.
    pub scanner: Vec<BenchResult>,
}

/// One compared quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub metric: String,
    /// Direct to the mock.
    pub direct: Option<f64>,
    /// Through the bare relay.
    pub relay: Option<f64>,
    /// Gateway, analysis off.
    pub off: Option<f64>,
    /// Gateway, default rules and tools.
    pub rules: Option<f64>,
    /// `relay − direct`: the floor of any proxy.
    pub relay_minus_direct: Option<f64>,
    /// `off − direct`.
    pub off_minus_direct: Option<f64>,
    /// `rules − direct`.
    pub rules_minus_direct: Option<f64>,
    /// `off / direct`.
    pub off_ratio: Option<f64>,
    /// `rules / direct`.
    pub rules_ratio: Option<f64>,
}

/// One target of the issue, checked.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The target as the issue states it.
    pub target: String,
    /// What was measured, with its unit and statistic.
    pub measured: String,
    /// `met`, `MISSED` or `not measured`.
    pub status: &'static str,
}

/// The summary as JSON.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The conditions of the run.
    pub conditions: Vec<(String, String)>,
    /// Stream metrics, each configuration beside the direct path.
    pub comparisons: Vec<Comparison>,
    /// The targets.
    pub targets: Vec<TargetCheck>,
    /// Failed streams per configuration.
    pub errors: Vec<(String, u64)>,
    /// Browser streams against the plain endpoint, when they ran.
    pub events: Option<EventsSummary>,
    /// The scanner's criterion results (median time and throughput).
    pub scanner: Vec<BenchResult>,
}

/// A quantity read from a stream report.
pub type Metric = (&'static str, fn(&StreamReport) -> Option<f64>);

/// The quantities compared across the configurations.
pub const METRICS: [Metric; 16] = [
    ("TTFB p50 (ms)", |r| r.ttfb_ms.map(|d| d.p50)),
    ("TTFB p99 (ms)", |r| r.ttfb_ms.map(|d| d.p99)),
    ("TTFT p50 (ms)", |r| r.ttft_ms.map(|d| d.p50)),
    ("TTFT p90 (ms)", |r| r.ttft_ms.map(|d| d.p90)),
    ("TTFT p99 (ms)", |r| r.ttft_ms.map(|d| d.p99)),
    ("TTFT max (ms)", |r| r.ttft_ms.map(|d| d.max)),
    ("inter-chunk gap p50 (ms)", |r| r.gap_ms.map(|d| d.p50)),
    ("inter-chunk gap p99 (ms)", |r| r.gap_ms.map(|d| d.p99)),
    ("total p50 (ms)", |r| r.total_ms.map(|d| d.p50)),
    ("total p99 (ms)", |r| r.total_ms.map(|d| d.p99)),
    ("streams/s", |r| Some(r.streams_per_sec)),
    ("chunks/s", |r| Some(r.chunks_per_sec)),
    ("gateway (or relay) CPU ms/stream", |r| {
        r.target_cpu_ms_per_stream
    }),
    ("mock CPU ms/stream", |r| {
        per_stream(r, |cpu| observed(cpu, "mock"))
    }),
    ("load generator CPU ms/stream", |r| {
        per_stream(r, |cpu| Some(cpu.load_generator_ms))
    }),
    ("CPU of other users (% of machine)", |r| {
        let cpu = r.cpu.as_ref()?;
        (cpu.machine_capacity_ms > 0.0)
            .then(|| 100.0 * cpu.unaccounted_ms / cpu.machine_capacity_ms)
    }),
];

/// A CPU time of `report` per completed stream.
pub fn per_stream(report: &StreamReport, pick: fn(&CpuReport) -> Option<f64>) -> Option<f64> {
    let total = pick(report.cpu.as_ref()?)?;
    (report.completed > 0).then(|| total / report.completed as f64)
}

/// The CPU of the process observed as `label`.
pub fn observed(cpu: &CpuReport, label: &str) -> Option<f64> {
    cpu.observed_ms
        .iter()
        .find(|(name, _)| name == label)
        .map(|(_, ms)| *ms)
}

impl Summary {
    /// Compares and checks.
    pub fn new(inputs: &Inputs) -> Self {
        let comparisons = METRICS
            .iter()
            .map(|(metric, pick)| {
                let pick = *pick;
                let direct = inputs.direct.as_ref().and_then(pick);
                let relay = inputs.relay.as_ref().and_then(pick);
                let off = inputs.off.as_ref().and_then(pick);
                let rules = inputs.rules.as_ref().and_then(pick);
                Comparison {
                    metric: (*metric).to_owned(),
                    direct,
                    relay,
                    off,
                    rules,
                    relay_minus_direct: difference(relay, direct),
                    off_minus_direct: difference(off, direct),
                    rules_minus_direct: difference(rules, direct),
                    off_ratio: ratio(off, direct),
                    rules_ratio: ratio(rules, direct),
                }
            })
            .collect();
        let errors = [
            ("direct", &inputs.direct),
            ("bare relay", &inputs.relay),
            ("gateway, analysis off", &inputs.off),
            ("gateway, rules and tools", &inputs.rules),
            ("tool latency", &inputs.tool_latency),
        ]
        .into_iter()
        .filter_map(|(name, report)| Some((name.to_owned(), report.as_ref()?.errors)))
        .collect();
        let events = EventsSummary::new(&inputs.events);
        let mut targets = targets(inputs);
        if !inputs.events.memory.is_empty() || !inputs.events.redis.is_empty() {
            targets.extend(EventsSummary::targets(events.as_ref()));
        }
        Self {
            conditions: inputs.conditions.clone(),
            comparisons,
            targets,
            errors,
            events,
            scanner: inputs.scanner.clone(),
        }
    }

    /// The summary as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from("## Conditions\n\n");
        for (key, value) in &self.conditions {
            let _ = writeln!(out, "- {key}: {value}");
        }
        out.push_str(
            "\n## Streaming: direct vs. through MidStream\n\n\
             | metric | direct | bare relay | analysis off | rules + tools | Δ relay | Δ off | Δ rules | off ÷ direct | rules ÷ direct |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for row in &self.comparisons {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.metric,
                number(row.direct),
                number(row.relay),
                number(row.off),
                number(row.rules),
                signed(row.relay_minus_direct),
                signed(row.off_minus_direct),
                signed(row.rules_minus_direct),
                times(row.off_ratio),
                times(row.rules_ratio),
            );
        }
        out.push_str("\nFailed streams: ");
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        out.push_str(&errors.join(", "));
        out.push('\n');
        if let Some(events) = &self.events {
            out.push_str(&events.markdown());
        }
        out.push_str("\n## Targets\n\n| target | measured | status |\n| --- | --- | --- |\n");
        for check in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                check.target, check.measured, check.status
            );
        }
        if !self.scanner.is_empty() {
            out.push_str(
                "\n## Scanner (criterion, medians)\n\n| benchmark | time | throughput |\n| --- | ---: | ---: |\n",
            );
            for bench in &self.scanner {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    bench.name,
                    bench.time,
                    bench.throughput.as_deref().unwrap_or("—")
                );
            }
        }
        out
    }
}

fn targets(inputs: &Inputs) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let ttft = |report: &Option<StreamReport>| report.as_ref().and_then(|r| r.ttft_ms);
    let (direct_ttft, rules_ttft) = (ttft(&inputs.direct), ttft(&inputs.rules));
    let relay_ttft = ttft(&inputs.relay);
    for (label, limit, of) in [
        (
            "p50",
            0.2,
            (|d: &Distribution| d.p50) as fn(&Distribution) -> f64,
        ),
        ("p99", 1.0, |d: &Distribution| d.p99),
    ] {
        let added = direct_ttft.zip(rules_ttft).map(|(d, r)| of(&r) - of(&d));
        let floor = direct_ttft.zip(relay_ttft).map(|(d, r)| of(&r) - of(&d));
        checks.push(check(
            format!("added TTFT {label} ≤ {limit} ms (rules and tools on, same run as direct)"),
            added.map(|added| {
                format!(
                    "{added:+.3} ms (difference of the {label}s){}",
                    relay_note(floor.map(|floor| format!("{floor:+.3} ms")))
                )
            }),
            added.map(|added| added <= limit),
        ));
    }
    let throughput = inputs
        .rules
        .as_ref()
        .zip(inputs.direct.as_ref())
        .map(|(r, d)| r.streams_per_sec / d.streams_per_sec);
    checks.push(check(
        "throughput through the gateway ≥ 0.95 × direct".to_owned(),
        throughput.map(|ratio| format!("{ratio:.3} × (streams/s, rules and tools on)")),
        throughput.map(|ratio| ratio >= 0.95),
    ));
    let cpu = inputs
        .rules
        .as_ref()
        .and_then(|r| r.target_cpu_ms_per_stream);
    let relay_cpu = inputs
        .relay
        .as_ref()
        .and_then(|r| r.target_cpu_ms_per_stream);
    checks.push(check(
        "gateway CPU per 50-token stream ≤ 0.5 ms".to_owned(),
        cpu.map(|cpu| {
            format!(
                "{cpu:.3} ms (utime+stime ÷ streams, rules and tools on){}",
                relay_note(relay_cpu.map(|relay| format!("{relay:.3} ms")))
            )
        }),
        cpu.map(|cpu| cpu <= 0.5),
    ));
    checks.push(idle_check(inputs.idle.as_ref()));
    let disconnect = inputs.disconnect.as_ref();
    let delay = disconnect.and_then(|d| d.close_delay_ms);
    checks.push(check(
        "upstream closed ≤ 50 ms after its client disconnects".to_owned(),
        disconnect.zip(delay).map(|(d, delay)| {
            format!(
                "p50 {:.3}, p99 {:.3}, max {:.3} ms over {} ({} never closed)",
                delay.p50, delay.p99, delay.max, delay.count, d.upstream_not_closed
            )
        }),
        disconnect
            .zip(delay)
            .map(|(d, delay)| delay.max <= 50.0 && d.upstream_not_closed == 0),
    ));
    let tool = inputs.tool_latency.as_ref().and_then(|t| t.tool_latency_ms);
    checks.push(check(
        "cached tool result on the wire ≤ 1 ms after the chunk that completed its intent"
            .to_owned(),
        tool.map(|d| {
            format!(
                "p50 {:.3}, p99 {:.3}, max {:.3} ms over {} streams",
                d.p50, d.p99, d.max, d.count
            )
        }),
        tool.map(|d| d.p99 <= 1.0),
    ));
    checks
}

/// What the bare relay measured for the same target, when it ran.
fn relay_note(floor: Option<String>) -> String {
    floor.map_or_else(String::new, |floor| format!("; a bare TCP relay: {floor}"))
}

fn idle_check(idle: Option<&IdleReport>) -> TargetCheck {
    let target = format!("{IDLE_STREAMS_TARGET} idle streams, gateway RSS ≤ 200 MB");
    let Some(idle) = idle else {
        return check(target, None, None);
    };
    let rss_mb = idle.rss_after_hold_kib as f64 / 1024.0;
    let at_target_mb = (idle.rss_baseline_kib as f64
        + idle.rss_per_stream_kib * IDLE_STREAMS_TARGET as f64)
        / 1024.0;
    let mut measured = format!(
        "{rss_mb:.1} MB with {} streams open ({:.1} KB/stream over a {:.1} MB baseline)",
        idle.streams_open,
        idle.rss_per_stream_kib,
        idle.rss_baseline_kib as f64 / 1024.0
    );
    if idle.streams_open >= IDLE_STREAMS_TARGET || rss_mb > 200.0 {
        if idle.streams_open < IDLE_STREAMS_TARGET {
            let _ = write!(
                measured,
                "; extrapolated to {IDLE_STREAMS_TARGET}: {at_target_mb:.1} MB"
            );
        }
        return check(target, Some(measured), Some(rss_mb <= 200.0));
    }
    let _ = write!(
        measured,
        "; only {} of {IDLE_STREAMS_TARGET} held, extrapolated {at_target_mb:.1} MB",
        idle.streams_open
    );
    TargetCheck {
        target,
        measured,
        status: "not reached",
    }
}

/// A target, its measurement, and whether it was met (`None`: not measured).
pub fn check(target: String, measured: Option<String>, met: Option<bool>) -> TargetCheck {
    TargetCheck {
        target,
        measured: measured.unwrap_or_else(|| "—".to_owned()),
        status: match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        },
    }
}

fn difference(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    Some(value? - base?)
}

fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    let base = base.filter(|base| *base != 0.0)?;
    Some(value? / base)
}

/// `1.234`, or `—`.
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |value| format!("{value:.3}"))
}

fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |value| format!("{value:+.3}"))
}

/// `1.234×`, or `—`.
pub fn times(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |value| format!("{value:.3}×"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::load::LoadResults;

    fn report(ttft_ms: &[f64], streams: u64, wall_secs: u64, cpu_ms: Option<f64>) -> StreamReport {
        let mut results = LoadResults {
            wall: Duration::from_secs(wall_secs),
            completed: streams,
            ..LoadResults::default()
        };
        for ms in ttft_ms {
            results.ttft.push(Duration::from_secs_f64(ms / 1e3));
        }
        let cpu = cpu_ms.map(|target| crate::procfs::CpuReport {
            target_ms: Some(target),
            ..Default::default()
        });
        StreamReport::new("x", "u", 1, 0, results, cpu)
    }

    #[test]
    fn differences_ratios_and_targets() {
        let inputs = Inputs {
            conditions: vec![("tokens".to_owned(), "50".to_owned())],
            direct: Some(report(&[2.0, 2.0, 3.0], 1000, 10, None)),
            relay: Some(report(&[2.05, 2.05, 3.2], 1000, 10, Some(50.0))),
            off: Some(report(&[2.1, 2.1, 3.5], 990, 10, Some(100.0))),
            rules: Some(report(&[2.5, 2.5, 3.5], 940, 10, Some(400.0))),
            ..Inputs::default()
        };
        let summary = Summary::new(&inputs);
        let ttft_p50 = &summary.comparisons[2];
        assert_eq!(ttft_p50.metric, "TTFT p50 (ms)");
        assert!((ttft_p50.rules_minus_direct.expect("both") - 0.5).abs() < 1e-9);
        assert!((ttft_p50.off_ratio.expect("both") - 1.05).abs() < 1e-9);
        let cpu = summary
            .comparisons
            .iter()
            .find(|row| row.metric == "gateway (or relay) CPU ms/stream")
            .expect("cpu row");
        assert_eq!(cpu.direct, None);
        assert!((cpu.rules.expect("measured") - 400.0 / 940.0).abs() < 1e-9);
        let status: Vec<&str> = summary.targets.iter().map(|t| t.status).collect();
        assert_eq!(
            status,
            [
                "MISSED",
                "met",
                "MISSED",
                "met",
                "not measured",
                "not measured",
                "not measured"
            ]
        );
        let markdown = summary.markdown();
        assert!(markdown.contains("- tokens: 50"), "{markdown}");
        assert!(
            markdown.contains(
                "| TTFT p50 (ms) | 2.000 | 2.050 | 2.100 | 2.500 | +0.050 | +0.100 | +0.500 | 1.050× | 1.250× |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("| 0.940 × (streams/s, rules and tools on) | MISSED |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("+0.500 ms (difference of the p50s); a bare TCP relay: +0.050 ms |"),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "0.426 ms (utime+stime ÷ streams, rules and tools on); a bare TCP relay: 0.050 ms |"
            ),
            "{markdown}"
        );
    }

    #[test]
    fn too_few_idle_streams_are_extrapolated_and_never_reported_as_met() {
        let idle = IdleReport {
            url: String::new(),
            streams_requested: 10_000,
            streams_open: 5_000,
            errors_by_kind: Default::default(),
            closed_during_hold: 0,
            open_secs: 1.0,
            hold_secs: 1.0,
            rss_baseline_kib: 10 * 1024,
            rss_open_kib: 60 * 1024,
            rss_after_hold_kib: 60 * 1024,
            rss_per_stream_kib: 50.0 * 1024.0 / 5000.0,
            target_cpu_ms_per_sec_idle: 0.0,
            target_open_files_limit: Some(20_000),
        };
        let check = idle_check(Some(&idle));
        assert_eq!(check.status, "not reached");
        assert!(
            check.measured.contains("extrapolated 110.0 MB"),
            "{}",
            check.measured
        );
        let over_already = IdleReport {
            rss_after_hold_kib: 201 * 1024,
            ..idle.clone()
        };
        let check = idle_check(Some(&over_already));
        assert_eq!(check.status, "MISSED", "over the bound with fewer streams");
        assert!(
            check.measured.contains("extrapolated to 10000"),
            "{}",
            check.measured
        );
        let full = IdleReport {
            streams_open: 10_000,
            rss_after_hold_kib: 150 * 1024,
            ..idle
        };
        assert_eq!(idle_check(Some(&full)).status, "met");
    }
}
