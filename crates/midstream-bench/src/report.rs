//! The stream report: what one `stream` or `tool-latency` run measured, as JSON and as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::load::{EventCounts, LoadResults};
use crate::procfs::CpuReport;
use crate::stats::Distribution;

/// The JSON written by `stream` (and embedded by `tool-latency`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamReport {
    /// A free label (`direct`, `gateway-off`, ...).
    pub label: String,
    /// The base URL loaded.
    pub url: String,
    /// Clients at once.
    pub concurrency: usize,
    /// Requests measured (after the warm-up).
    pub requests: usize,
    /// Requests sent first and not measured.
    pub warmup: usize,
    /// Wall time of the measured requests, seconds.
    pub wall_secs: f64,
    /// Streams that ended with `[DONE]` and no error.
    pub completed: u64,
    /// Failed streams, total.
    pub errors: u64,
    /// Failed streams by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Completed streams per second.
    pub streams_per_sec: f64,
    /// Data frames per second.
    pub chunks_per_sec: f64,
    /// Data frames per completed stream.
    pub chunks_per_stream: f64,
    /// Keep-alive comments seen.
    pub comments: u64,
    /// Request → response head, ms.
    pub ttfb_ms: Option<Distribution>,
    /// Request → first content token, ms.
    pub ttft_ms: Option<Distribution>,
    /// Between data frames of a stream, ms.
    pub gap_ms: Option<Distribution>,
    /// Request → end of stream, ms.
    pub total_ms: Option<Distribution>,
    /// `intent` → cached `tool.result`, ms.
    pub tool_latency_ms: Option<Distribution>,
    /// Streams with an intent and no cached result after it.
    pub intent_without_cached_result: u64,
    /// MidStream events seen.
    pub events: EventCounts,
    /// CPU over the measured requests.
    pub cpu: Option<CpuReport>,
    /// The measured process's CPU per completed stream, ms.
    pub target_cpu_ms_per_stream: Option<f64>,
}

impl StreamReport {
    /// Summarises `results`.
    pub fn new(
        label: &str,
        url: &str,
        concurrency: usize,
        warmup: usize,
        mut results: LoadResults,
        cpu: Option<CpuReport>,
    ) -> Self {
        let wall_secs = results.wall.as_secs_f64().max(f64::MIN_POSITIVE);
        let completed = results.completed;
        let per_stream = |value: f64| (completed > 0).then(|| value / completed as f64);
        let target_cpu_ms_per_stream = cpu
            .as_ref()
            .and_then(|cpu| cpu.target_ms)
            .and_then(per_stream);
        Self {
            label: label.to_owned(),
            url: url.to_owned(),
            concurrency,
            requests: usize::try_from(completed + results.error_count()).unwrap_or(usize::MAX),
            warmup,
            wall_secs,
            completed,
            errors: results.error_count(),
            errors_by_kind: results.errors.clone(),
            streams_per_sec: completed as f64 / wall_secs,
            chunks_per_sec: results.chunks as f64 / wall_secs,
            chunks_per_stream: per_stream(results.chunks as f64).unwrap_or(0.0),
            comments: results.comments,
            ttfb_ms: results.ttfb.distribution(),
            ttft_ms: results.ttft.distribution(),
            gap_ms: results.gaps.distribution(),
            total_ms: results.total.distribution(),
            tool_latency_ms: results.tool_latency.distribution(),
            intent_without_cached_result: results.intent_without_cached_result,
            events: results.events,
            cpu,
            target_cpu_ms_per_stream,
        }
    }

    /// A plain-text table for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} concurrent, {} requests ({} completed, {} errors) in {:.2} s against {}",
            self.label,
            self.concurrency,
            self.requests,
            self.completed,
            self.errors,
            self.wall_secs,
            self.url
        );
        out.push_str(&distribution_header());
        for (name, distribution) in [
            ("TTFB", &self.ttfb_ms),
            ("first content token", &self.ttft_ms),
            ("inter-chunk gap", &self.gap_ms),
            ("total", &self.total_ms),
            ("intent -> cached result", &self.tool_latency_ms),
        ] {
            if let Some(distribution) = distribution {
                out.push_str(&distribution_row(name, distribution));
            }
        }
        let _ = writeln!(
            out,
            "throughput: {:.1} streams/s, {:.0} chunks/s, {:.1} chunks/stream",
            self.streams_per_sec, self.chunks_per_sec, self.chunks_per_stream
        );
        let events = &self.events;
        if *events != EventCounts::default() {
            let _ = writeln!(
                out,
                "events: {} intent, {} tool.started, {} tool.result ({} cached), {} tool.error",
                events.intent,
                events.tool_started,
                events.tool_result,
                events.tool_result_cached,
                events.tool_error
            );
        }
        if let Some(cpu) = &self.cpu {
            out.push_str(&cpu_line(cpu, self.target_cpu_ms_per_stream));
        }
        for (kind, count) in &self.errors_by_kind {
            let _ = writeln!(out, "error {kind}: {count}");
        }
        out
    }
}

/// The header of a distribution table, in ms.
pub fn distribution_header() -> String {
    format!(
        "{:<26}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
        "ms", "count", "mean", "p50", "p90", "p99", "max"
    )
}

/// One row of a distribution table.
pub fn distribution_row(name: &str, d: &Distribution) -> String {
    format!(
        "{:<26}{:>8}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}\n",
        name, d.count, d.mean, d.p50, d.p90, d.p99, d.max
    )
}

fn cpu_line(cpu: &CpuReport, per_stream: Option<f64>) -> String {
    let mut line = String::from("cpu ms:");
    if let Some(target) = cpu.target_ms {
        let _ = write!(line, " target {target:.0}");
        if let Some(per_stream) = per_stream {
            let _ = write!(line, " ({per_stream:.3}/stream)");
        }
        line.push(',');
    }
    for (label, value) in &cpu.observed_ms {
        let _ = write!(line, " {label} {value:.0},");
    }
    let _ = writeln!(
        line,
        " load generator {:.0}, machine busy {:.0} of {:.0} ({:.0} not ours)",
        cpu.load_generator_ms, cpu.machine_busy_ms, cpu.machine_capacity_ms, cpu.unaccounted_ms
    );
    line
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_report_derives_rates_and_per_stream_cpu() {
        let mut results = LoadResults {
            wall: Duration::from_secs(2),
            completed: 10,
            chunks: 500,
            ..LoadResults::default()
        };
        results.errors.insert("no_done".to_owned(), 1);
        results.ttft.push(Duration::from_millis(3));
        let cpu = CpuReport {
            target_ms: Some(5.0),
            ..CpuReport::default()
        };
        let report = StreamReport::new("x", "http://h/v1", 4, 0, results, Some(cpu));
        assert_eq!(report.requests, 11);
        assert_eq!(report.streams_per_sec, 5.0);
        assert_eq!(report.chunks_per_sec, 250.0);
        assert_eq!(report.chunks_per_stream, 50.0);
        assert_eq!(report.target_cpu_ms_per_stream, Some(0.5));
        assert!(report.ttfb_ms.is_none());
        let table = report.table();
        assert!(table.contains("first content token"), "{table}");
        assert!(table.contains("(0.500/stream)"), "{table}");
        assert!(table.contains("error no_done: 1"), "{table}");
        let json = serde_json::to_string(&report).expect("serialisable");
        let back: StreamReport = serde_json::from_str(&json).expect("readable");
        assert_eq!(back.completed, 10);
    }
}
