//! The summary's browser-stream section: `events` runs (memory log, Redis) against the plain
//! endpoint, round by round, and issue 18's two targets for them.
//!
//! A round is one `stream` run of the plain endpoint and one `events` run of each log, back to
//! back under the same load; ratios are taken within a round, then averaged, so that a machine
//! whose speed drifts between rounds (a shared one) moves both sides of each ratio together.

use std::fmt::Write as _;

use serde::Serialize;

use crate::events::EventsReport;
use crate::report::StreamReport;
use crate::summary::{METRICS, Metric, TargetCheck, check, number, observed, per_stream, times};

/// The gateway's CPU per stream through browser streams, at most this × the plain endpoint's
/// (issue 18: the memory log adds at most 10 %).
pub const CPU_RATIO_MAX: f64 = 1.10;

/// Redis round trips (writer pipelines) per token event, at most: each round trip carries the
/// events of several tokens, so Redis adds no round trip per token.
pub const REDIS_TRIPS_PER_TOKEN_MAX: f64 = 0.5;

/// The counter of the Redis writer's pipelines (`midstream_event_log_redis_batches_total`).
pub const REDIS_BATCHES: &str = "midstream_event_log_redis_batches_total";

/// The rows the targets read.
const CPU: &str = "gateway (or relay) CPU ms/stream";
const FIRST_TOKEN_P50: &str = "TTFT p50 (ms)";

/// The quantities of [`METRICS`] compared here, by name (their order is `METRICS`').
const COMPARED: [&str; 11] = [
    "TTFB p50 (ms)",
    "TTFB p99 (ms)",
    "TTFT p50 (ms)",
    "TTFT p90 (ms)",
    "TTFT p99 (ms)",
    "total p50 (ms)",
    "total p99 (ms)",
    "streams/s",
    "gateway (or relay) CPU ms/stream",
    "mock CPU ms/stream",
    "CPU of other users (% of machine)",
];

/// Redis's own CPU per stream (`--observe redis=PID`).
const REDIS_CPU: Metric = ("Redis CPU ms/stream", |r| {
    per_stream(r, |cpu| observed(cpu, "redis"))
});

/// The runs, in rounds: entry `i` of each list ran in round `i`.
#[derive(Debug, Default)]
pub struct EventsRounds {
    /// `stream` against the gateway with the default rules and tools: the plain endpoint.
    pub plain: Vec<StreamReport>,
    /// `events` against the same gateway (the memory log).
    pub memory: Vec<EventsReport>,
    /// `events` against a gateway with the same rules and tools and `MIDSTREAM_REDIS_URL`.
    pub redis: Vec<EventsReport>,
}

/// One compared quantity.
#[derive(Debug, Clone, Serialize)]
pub struct EventsRow {
    /// What is compared.
    pub metric: String,
    /// The plain endpoint, mean over the rounds.
    pub plain: Option<f64>,
    /// Events from the memory log, mean over the rounds.
    pub memory: Option<f64>,
    /// Events with Redis, mean over the rounds.
    pub redis: Option<f64>,
    /// Mean over the rounds of `memory / plain` of the round.
    pub memory_ratio: Option<f64>,
    /// Mean over the rounds of `redis / plain` of the round.
    pub redis_ratio: Option<f64>,
}

/// What the Redis runs made Redis do, per completed stream.
#[derive(Debug, Clone, Serialize)]
pub struct RedisWrites {
    /// Completed streams of the Redis runs.
    pub streams: u64,
    /// `token` events per stream.
    pub tokens: f64,
    /// Events per stream, `done` included.
    pub events: f64,
    /// `XADD` commands per stream.
    pub xadd: f64,
    /// `EXPIRE` commands per stream.
    pub expire: f64,
    /// The writer's pipelines per stream: its round trips.
    pub round_trips: Option<f64>,
}

impl RedisWrites {
    /// Round trips per token event.
    pub fn round_trips_per_token(&self) -> Option<f64> {
        Some(self.round_trips? / self.tokens).filter(|ratio| ratio.is_finite())
    }
}

/// The section, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct EventsSummary {
    /// Rounds (the longest list's length).
    pub rounds: usize,
    /// Subscribers per stream (of the first events run).
    pub subscribers: Option<usize>,
    /// Events per subscriber per stream, `done` included (of the first events run).
    pub events_per_subscriber: Option<f64>,
    /// The compared quantities.
    pub rows: Vec<EventsRow>,
    /// The gateway's CPU per stream in each round: plain, memory, Redis.
    pub cpu_per_round: Vec<[Option<f64>; 3]>,
    /// Redis's work, over every Redis run.
    pub redis_writes: Option<RedisWrites>,
    /// Failed streams: plain, memory, Redis, over all rounds.
    pub errors: [u64; 3],
}

impl EventsSummary {
    /// Compares the rounds; `None` when no events run is given.
    pub fn new(rounds: &EventsRounds) -> Option<Self> {
        let first = rounds.memory.first().or(rounds.redis.first())?;
        let plain: Vec<&StreamReport> = rounds.plain.iter().collect();
        let memory: Vec<&StreamReport> = rounds.memory.iter().map(|r| &r.stream).collect();
        let redis: Vec<&StreamReport> = rounds.redis.iter().map(|r| &r.stream).collect();
        let rows = METRICS
            .iter()
            .filter(|(name, _)| COMPARED.contains(name))
            .chain([&REDIS_CPU])
            .map(|&(metric, pick)| EventsRow {
                metric: metric.to_owned(),
                plain: mean(plain.iter().map(|r| pick(r))),
                memory: mean(memory.iter().map(|r| pick(r))),
                redis: mean(redis.iter().map(|r| pick(r))),
                memory_ratio: round_ratio(&memory, &plain, pick),
                redis_ratio: round_ratio(&redis, &plain, pick),
            })
            .collect();
        let cpu =
            |reports: &[&StreamReport], round: usize| reports.get(round)?.target_cpu_ms_per_stream;
        let count = plain.len().max(memory.len()).max(redis.len());
        let errors = |reports: &[&StreamReport]| reports.iter().map(|r| r.errors).sum();
        Some(Self {
            rounds: count,
            subscribers: Some(first.subscribers),
            events_per_subscriber: Some(first.events_per_subscriber),
            rows,
            cpu_per_round: (0..count)
                .map(|round| [cpu(&plain, round), cpu(&memory, round), cpu(&redis, round)])
                .collect(),
            redis_writes: redis_writes(&rounds.redis),
            errors: [errors(&plain), errors(&memory), errors(&redis)],
        })
    }

    /// The gateway's CPU per stream, memory log ÷ plain endpoint, mean of the rounds.
    fn memory_cpu_ratio(&self) -> Option<f64> {
        self.row(CPU)?.memory_ratio
    }

    fn row(&self, metric: &str) -> Option<&EventsRow> {
        self.rows.iter().find(|row| row.metric == metric)
    }

    /// The section as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "\n## Browser streams: POST /v1/streams + EventSource vs. the plain endpoint\n\n",
        );
        let _ = writeln!(
            out,
            "{} round(s), each the plain endpoint (`stream`, the gateway with rules and tools), \
             then `events` on the same gateway (memory log) and on one with Redis, under the \
             same load; {} subscriber(s) per stream, {} events each. Values are means over the \
             rounds, ratios the mean of each round's ratio. For `events`, TTFB is the POST's \
             answer and TTFT the first `token` event on the first subscriber (time to first \
             event).\n",
            self.rounds,
            self.subscribers
                .map_or_else(|| "—".to_owned(), |s| s.to_string()),
            self.events_per_subscriber
                .map_or_else(|| "—".to_owned(), |e| format!("{e:.1}")),
        );
        out.push_str(
            "| metric | plain endpoint | events, memory log | events, Redis | memory ÷ plain | Redis ÷ plain |\n\
             | --- | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.metric,
                number(row.plain),
                number(row.memory),
                number(row.redis),
                times(row.memory_ratio),
                times(row.redis_ratio),
            );
        }
        out.push_str("\nGateway CPU per stream by round (ms; plain / memory / Redis):");
        for (round, cpu) in self.cpu_per_round.iter().enumerate() {
            let _ = write!(
                out,
                " {}: {} / {} / {};",
                round + 1,
                number(cpu[0]),
                number(cpu[1]),
                number(cpu[2])
            );
        }
        out.pop();
        out.push('\n');
        if let Some(writes) = &self.redis_writes {
            let _ = writeln!(
                out,
                "\nRedis per stream ({} streams): {:.2} XADD for {:.2} events ({:.2} tokens), \
                 {:.2} EXPIRE; {} writer pipelines (round trips) = {} per token.",
                writes.streams,
                writes.xadd,
                writes.events,
                writes.tokens,
                writes.expire,
                number(writes.round_trips),
                number(writes.round_trips_per_token()),
            );
        }
        let _ = writeln!(
            out,
            "\nFailed streams: plain endpoint {}, events with the memory log {}, events with Redis {}",
            self.errors[0], self.errors[1], self.errors[2]
        );
        out
    }

    /// Issue 18's targets.
    pub fn targets(summary: Option<&Self>) -> [TargetCheck; 2] {
        let ratio = summary.and_then(Self::memory_cpu_ratio);
        let per_round: Vec<String> = summary
            .map(|s| {
                s.cpu_per_round
                    .iter()
                    .filter_map(|&[plain, memory, _]| Some(format!("{:.3}×", memory? / plain?)))
                    .collect()
            })
            .unwrap_or_default();
        let cpu = check(
            format!(
                "browser streams, memory log: gateway CPU per stream ≤ {CPU_RATIO_MAX:.2} × the plain endpoint's"
            ),
            ratio.map(|ratio| {
                format!(
                    "{ratio:.3} × (mean of the rounds' ratios: {})",
                    per_round.join(", ")
                )
            }),
            ratio.map(|ratio| ratio <= CPU_RATIO_MAX),
        );
        let writes = summary.and_then(|s| s.redis_writes.as_ref());
        let trips = writes.and_then(RedisWrites::round_trips_per_token);
        let first_event = summary.and_then(|s| {
            let row = s.row(FIRST_TOKEN_P50)?;
            Some(row.redis? - row.memory?)
        });
        let redis = check(
            format!(
                "browser streams, Redis: no round trip per token (writer pipelines ≤ {REDIS_TRIPS_PER_TOKEN_MAX} per token event)"
            ),
            writes.zip(trips).map(|(writes, trips)| {
                format!(
                    "{trips:.3} per token ({} pipelines per stream of {:.1} tokens, {:.2} XADD per event); \
                     time to first event p50 with Redis {} ms against the memory log",
                    number(writes.round_trips),
                    writes.tokens,
                    writes.xadd / writes.events,
                    first_event.map_or_else(|| "—".to_owned(), |d| format!("{d:+.3}")),
                )
            }),
            trips.map(|trips| trips <= REDIS_TRIPS_PER_TOKEN_MAX),
        );
        [cpu, redis]
    }
}

/// Redis's work per stream over every Redis run that counted it.
fn redis_writes(runs: &[EventsReport]) -> Option<RedisWrites> {
    let counted: Vec<&EventsReport> = runs
        .iter()
        .filter(|run| !run.counters.redis_calls.is_empty())
        .collect();
    let streams: u64 = counted.iter().map(|run| run.stream.completed).sum();
    if streams == 0 {
        return None;
    }
    let per_stream = |count: &dyn Fn(&EventsReport) -> f64| {
        counted.iter().map(|run| count(run)).sum::<f64>() / streams as f64
    };
    let calls = |run: &EventsReport, name: &str| {
        run.counters.redis_calls.get(name).copied().unwrap_or(0) as f64
    };
    let batches = |run: &EventsReport| run.counters.metrics.get(REDIS_BATCHES).copied();
    let completed = |run: &EventsReport| run.stream.completed as f64;
    Some(RedisWrites {
        streams,
        tokens: per_stream(&|run| run.tokens_per_stream * completed(run)),
        events: per_stream(&|run| run.events_per_subscriber * completed(run)),
        xadd: per_stream(&|run| calls(run, "xadd")),
        expire: per_stream(&|run| calls(run, "expire")),
        round_trips: counted
            .iter()
            .all(|run| batches(run).is_some())
            .then(|| per_stream(&|run| batches(run).unwrap_or(0.0))),
    })
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The mean over the rounds of `pick(value) / pick(base)`, rounds paired by position.
fn round_ratio(
    values: &[&StreamReport],
    bases: &[&StreamReport],
    pick: fn(&StreamReport) -> Option<f64>,
) -> Option<f64> {
    mean(values.iter().zip(bases).map(|(value, base)| {
        let base = pick(base).filter(|base| *base != 0.0)?;
        Some(pick(value)? / base)
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::counters::Counters;
    use crate::load::LoadResults;
    use crate::procfs::CpuReport;

    /// A run of 100 streams of 50 tokens with this TTFT and gateway (and Redis) CPU in total.
    fn run(ttft_ms: f64, cpu_ms: f64, redis_ms: Option<f64>) -> StreamReport {
        let mut results = LoadResults {
            wall: Duration::from_secs(1),
            completed: 100,
            chunks: 100 * 50,
            ..LoadResults::default()
        };
        results.ttft.push(Duration::from_secs_f64(ttft_ms / 1e3));
        let cpu = CpuReport {
            target_ms: Some(cpu_ms),
            observed_ms: redis_ms
                .map(|ms| ("redis".to_owned(), ms))
                .into_iter()
                .collect(),
            ..CpuReport::default()
        };
        StreamReport::new("x", "u", 64, 0, results, Some(cpu))
    }

    fn events(ttft_ms: f64, cpu_ms: f64, redis: Option<(f64, u64, f64)>) -> EventsReport {
        let counters = redis.map_or_else(Counters::default, |(_, xadd, batches)| Counters {
            metrics: BTreeMap::from([(REDIS_BATCHES.to_owned(), batches)]),
            redis_calls: BTreeMap::from([("xadd".to_owned(), xadd), ("expire".to_owned(), 900)]),
        });
        EventsReport::new(
            run(ttft_ms, cpu_ms, redis.map(|(ms, _, _)| ms)),
            1,
            counters,
        )
    }

    #[test]
    fn ratios_are_taken_within_each_round_then_averaged() {
        let rounds = EventsRounds {
            plain: vec![run(3.0, 100.0, None), run(3.0, 200.0, None)],
            memory: vec![events(3.5, 105.0, None), events(3.5, 230.0, None)],
            redis: vec![
                events(3.6, 120.0, Some((50.0, 5100, 400.0))),
                events(3.6, 240.0, Some((50.0, 5100, 600.0))),
            ],
        };
        let summary = EventsSummary::new(&rounds).expect("events ran");
        assert_eq!(summary.rounds, 2);
        assert_eq!(summary.events_per_subscriber, Some(51.0));
        let cpu = summary.row(CPU).expect("the CPU row");
        assert_eq!(cpu.plain, Some(1.5), "mean of 1.0 and 2.0 ms per stream");
        let ratio = cpu.memory_ratio.expect("both ran");
        assert!(
            (ratio - 1.1).abs() < 1e-9,
            "(1.05 + 1.15) / 2, not 1.675 / 1.5: {ratio}"
        );
        let redis_cpu = summary.row(REDIS_CPU.0).expect("the Redis row");
        assert_eq!((redis_cpu.plain, redis_cpu.redis), (None, Some(0.5)));
        let writes = summary.redis_writes.clone().expect("Redis counted");
        assert_eq!(
            (writes.streams, writes.xadd, writes.tokens),
            (200, 51.0, 50.0)
        );
        assert_eq!(writes.round_trips, Some(5.0));
        assert_eq!(writes.round_trips_per_token(), Some(0.1));
        let [cpu_check, redis_check] = EventsSummary::targets(Some(&summary));
        assert_eq!(cpu_check.status, "met", "{}", cpu_check.measured);
        assert!(
            cpu_check.measured.contains("1.050×, 1.150×"),
            "{}",
            cpu_check.measured
        );
        assert_eq!(redis_check.status, "met", "{}", redis_check.measured);
        assert!(
            redis_check.measured.contains(
                "0.100 per token (5.000 pipelines per stream of 50.0 tokens, 1.00 XADD per event)"
            ),
            "{}",
            redis_check.measured
        );
        assert!(
            redis_check.measured.contains("+0.100 ms"),
            "{}",
            redis_check.measured
        );
        let markdown = summary.markdown();
        assert!(
            markdown.contains(
                "| gateway (or relay) CPU ms/stream | 1.500 | 1.675 | 1.800 | 1.100× | 1.200× |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "(ms; plain / memory / Redis): 1: 1.000 / 1.050 / 1.200; 2: 2.000 / 2.300 / 2.400\n"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "51.00 XADD for 51.00 events (50.00 tokens), 9.00 EXPIRE; 5.000 writer pipelines"
            ),
            "{markdown}"
        );
    }

    #[test]
    fn a_miss_and_what_was_not_measured() {
        let rounds = EventsRounds {
            plain: vec![run(3.0, 100.0, None)],
            memory: vec![events(3.5, 125.0, None)],
            redis: vec![events(3.6, 120.0, Some((50.0, 5100, 4000.0)))],
        };
        let summary = EventsSummary::new(&rounds).expect("events ran");
        let [cpu_check, redis_check] = EventsSummary::targets(Some(&summary));
        assert_eq!(cpu_check.status, "MISSED");
        assert_eq!(redis_check.status, "MISSED", "0.8 round trips per token");
        assert!(EventsSummary::new(&EventsRounds::default()).is_none());
        let [cpu_check, redis_check] = EventsSummary::targets(None);
        assert_eq!(
            (cpu_check.status, redis_check.status),
            ("not measured", "not measured")
        );
        let no_redis = EventsRounds {
            redis: Vec::new(),
            ..rounds
        };
        let summary = EventsSummary::new(&no_redis).expect("memory ran");
        assert!(summary.redis_writes.is_none());
        assert!(!summary.markdown().contains("Redis per stream"));
    }
}
