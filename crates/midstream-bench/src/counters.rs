//! Counters the server and Redis keep, read before and after a run: what the run made them do.
//!
//! - `--metric NAME`: a counter of the server's `GET /metrics` (Prometheus text; the series of
//!   every label set summed), e.g. `midstream_event_log_redis_batches_total`.
//! - `--redis URL`: Redis's own count of the commands it ran (`INFO commandstats`), e.g. how
//!   many `XADD`s, read over one plain RESP exchange (no password, no TLS: the benchmark's
//!   Redis is a local one).
//!
//! Both are read [`SETTLE`] after the streams end, so that writes the server queued during the
//! run (its Redis writer runs behind the streams) are counted with it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{ClientError, Target};

/// How long after the streams the counters are read.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Largest `INFO` reply read (a few KiB in practice).
const MAX_REPLY: usize = 1 << 20;

/// A counter could not be read.
#[derive(Debug, Error)]
pub enum CounterError {
    /// `GET /metrics` failed.
    #[error("metrics: {0}")]
    Metrics(#[from] ClientError),
    /// `--redis` is not `redis://host:port`.
    #[error("invalid Redis URL {0:?}: expected redis://host:port")]
    RedisUrl(String),
    /// Talking to Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] std::io::Error),
    /// Redis answered something other than the `INFO` text.
    #[error("redis answered {0:?}")]
    RedisReply(String),
}

/// What the counters grew by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// The server's counters, by name.
    pub metrics: BTreeMap<String, f64>,
    /// Commands Redis ran, by name (lower case, as `INFO` names them), the ones it ran at all.
    pub redis_calls: BTreeMap<String, u64>,
}

/// Where to read, and what was read at the start.
#[derive(Debug)]
pub struct CounterWatch {
    target: Target,
    metrics: Vec<String>,
    redis: Option<String>,
    start: Counters,
}

impl CounterWatch {
    /// Reads the starting values of `metrics` on `target`'s server and of Redis at `redis`;
    /// reads nothing (and does not wait) when there is nothing to read.
    pub async fn start(
        target: &Target,
        metrics: &[String],
        redis: Option<&str>,
    ) -> Result<Self, CounterError> {
        let mut watch = CounterWatch {
            target: target.clone(),
            metrics: metrics.to_vec(),
            redis: redis.map(redis_addr).transpose()?,
            start: Counters::default(),
        };
        watch.start = watch.read().await?;
        Ok(watch)
    }

    /// What the counters grew by since [`start`](Self::start).
    pub async fn finish(&self) -> Result<Counters, CounterError> {
        Ok(grown(&self.start, &self.read().await?))
    }

    async fn read(&self) -> Result<Counters, CounterError> {
        let mut counters = Counters::default();
        if self.metrics.is_empty() && self.redis.is_none() {
            return Ok(counters);
        }
        tokio::time::sleep(SETTLE).await;
        if !self.metrics.is_empty() {
            let text = self.target.get("/metrics").await?;
            let text = String::from_utf8_lossy(&text);
            for name in &self.metrics {
                counters
                    .metrics
                    .insert(name.clone(), metric_sum(&text, name));
            }
        }
        if let Some(addr) = &self.redis {
            counters.redis_calls = command_calls(&redis_info(addr).await?);
        }
        Ok(counters)
    }
}

/// `end − start`, counter by counter; Redis commands that did not run are left out.
fn grown(start: &Counters, end: &Counters) -> Counters {
    Counters {
        metrics: end
            .metrics
            .iter()
            .map(|(name, value)| {
                let before = start.metrics.get(name).copied().unwrap_or(0.0);
                (name.clone(), value - before)
            })
            .collect(),
        redis_calls: end
            .redis_calls
            .iter()
            .filter_map(|(name, calls)| {
                let before = start.redis_calls.get(name).copied().unwrap_or(0);
                let grown = calls.saturating_sub(before);
                (grown > 0).then(|| (name.clone(), grown))
            })
            .collect(),
    }
}

/// The sum of every series of the metric `name` in Prometheus text (0 when it has none yet:
/// a counter appears at its first increment).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.rsplit_once('}')?.1,
                None if rest.starts_with(' ') => rest,
                None => return None,
            };
            value.split_ascii_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// `host:port` of `redis://host:port[/db]`.
fn redis_addr(url: &str) -> Result<String, CounterError> {
    let invalid = || CounterError::RedisUrl(url.to_owned());
    let rest = url.strip_prefix("redis://").ok_or_else(invalid)?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid());
    }
    Ok(if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:6379")
    })
}

/// `INFO commandstats`, in one RESP exchange on a new connection.
async fn redis_info(addr: &str) -> Result<String, CounterError> {
    let mut socket = TcpStream::connect(addr).await?;
    socket
        .write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        .await?;
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let read = socket.read(&mut buffer).await?;
        if read == 0 || reply.len() > MAX_REPLY {
            return Err(CounterError::RedisReply(
                String::from_utf8_lossy(&reply).into_owned(),
            ));
        }
        reply.extend_from_slice(&buffer[..read]);
        if let Some(text) = bulk_string(&reply)? {
            return Ok(text);
        }
    }
}

/// The text of a whole RESP bulk string reply (`$LEN\r\n…\r\n`); `None` while incomplete.
fn bulk_string(reply: &[u8]) -> Result<Option<String>, CounterError> {
    let Some(end) = memchr::memmem::find(reply, b"\r\n") else {
        return Ok(None);
    };
    let length = reply[..end]
        .strip_prefix(b"$")
        .and_then(|digits| std::str::from_utf8(digits).ok()?.parse::<usize>().ok())
        .ok_or_else(|| {
            CounterError::RedisReply(String::from_utf8_lossy(&reply[..end]).into_owned())
        })?;
    let body = &reply[end + 2..];
    Ok((body.len() >= length).then(|| String::from_utf8_lossy(&body[..length]).into_owned()))
}

/// `calls` of every `cmdstat_NAME:calls=N,…` line.
fn command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .trim()
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_sums_its_series_and_nothing_that_only_starts_like_it() {
        let text = "# TYPE midstream_event_log_redis_batches_total counter\n\
                    midstream_event_log_redis_batches_total 41\n\
                    midstream_event_log_redis_batches_total_other 1000\n\
                    midstream_http_requests_total{route=\"/v1/streams\",status=\"201\"} 3\n\
                    midstream_http_requests_total{route=\"/{x}\",status=\"200\"} 4.5\n";
        assert_eq!(
            metric_sum(text, "midstream_event_log_redis_batches_total"),
            41.0
        );
        assert_eq!(metric_sum(text, "midstream_http_requests_total"), 7.5);
        assert_eq!(metric_sum(text, "midstream_not_yet_incremented"), 0.0);
    }

    #[test]
    fn command_calls_are_read_from_info_commandstats() {
        let info = "# Commandstats\r\n\
                    cmdstat_xadd:calls=178,usec=3160,usec_per_call=17.75,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_expire:calls=20,usec=361,usec_per_call=2.03\r\n\
                    cmdstat_broken:usec=1\r\n";
        assert_eq!(
            command_calls(info),
            BTreeMap::from([("expire".to_owned(), 20), ("xadd".to_owned(), 178)])
        );
    }

    #[test]
    fn a_bulk_reply_is_read_whole_or_not_at_all() {
        assert_eq!(bulk_string(b"$5\r\nab").expect("valid"), None);
        assert_eq!(bulk_string(b"$5").expect("valid so far"), None);
        assert_eq!(
            bulk_string(b"$5\r\nabcde\r\n").expect("valid"),
            Some("abcde".to_owned())
        );
        assert!(bulk_string(b"-NOAUTH Authentication required.\r\n").is_err());
    }

    #[test]
    fn redis_urls_give_their_address() {
        assert_eq!(
            redis_addr("redis://127.0.0.1:6390/0").expect("valid"),
            "127.0.0.1:6390"
        );
        assert_eq!(
            redis_addr("redis://localhost").expect("valid"),
            "localhost:6379"
        );
        for bad in [
            "127.0.0.1:6379",
            "redis://",
            "redis://user:pw@h:1",
            "rediss://h:1",
        ] {
            assert!(redis_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counters_grow_from_their_start() {
        let start = Counters {
            metrics: BTreeMap::from([("b".to_owned(), 2.0)]),
            redis_calls: BTreeMap::from([("xadd".to_owned(), 10), ("info".to_owned(), 1)]),
        };
        let end = Counters {
            metrics: BTreeMap::from([("a".to_owned(), 3.0), ("b".to_owned(), 5.0)]),
            redis_calls: BTreeMap::from([
                ("xadd".to_owned(), 25),
                ("info".to_owned(), 1),
                ("expire".to_owned(), 4),
            ]),
        };
        assert_eq!(
            grown(&start, &end),
            Counters {
                metrics: BTreeMap::from([("a".to_owned(), 3.0), ("b".to_owned(), 3.0)]),
                redis_calls: BTreeMap::from([("expire".to_owned(), 4), ("xadd".to_owned(), 15)]),
            }
        );
    }
}
