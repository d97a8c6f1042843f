//! Requests per minute shared by every gateway process, through Redis, when
//! `MIDSTREAM_REDIS_URL` is set: one atomic Lua script per request runs GCRA (the algorithm
//! `governor` runs in memory) on one Redis key per API key, on Redis's clock, so processes
//! whose clocks differ still agree.
//!
//! Redis must never hold a request up: a check that fails or takes longer than
//! [`CHECK_TIMEOUT`] (the first one, which connects: [`CONNECT_TIMEOUT`]) falls back to the
//! process's own limiter, with one log line when Redis is
//! lost and one when it is back; for [`RETRY_AFTER`] after a failure, no request tries Redis.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// The longest a request waits for Redis's answer before its key's limit is checked locally.
const CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest the first request waits for the connection (made once per process; a
/// loaded machine needs more than one round trip's time for it).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failure, how long requests use the local limiter without trying Redis.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// GCRA on the key `KEYS[1]`, which holds the theoretical arrival time in ms. `ARGV[1]` is the
/// emission interval (60,000 / rpm ms), `ARGV[2]` the burst tolerance ((rpm − 1) intervals),
/// so a fresh key may send `rpm` requests at once, then one per interval. Returns 0 when the
/// request is allowed, or the ms until it would be.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - tolerance
if now < allowed_at then return math.ceil(allowed_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
return 0
";

/// The shared limiter's connection and health.
pub struct SharedRate {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    script: redis::Script,
    /// While `Some` and in the future, Redis is not tried.
    resting_until: Mutex<Option<Instant>>,
    healthy: AtomicBool,
}

impl std::fmt::Debug for SharedRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRate")
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SharedRate {
    /// A shared limiter on the Redis at `url` (checked for syntax only: it connects on first
    /// use).
    pub fn new(url: &str) -> Result<SharedRate, redis::RedisError> {
        Ok(SharedRate {
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
            script: redis::Script::new(GCRA),
            resting_until: Mutex::new(None),
            healthy: AtomicBool::new(true),
        })
    }

    /// Counts one request of `key_id` against `rpm` across every process: `Some(Ok(()))` when
    /// allowed, `Some(Err(wait))` when refused, `None` when Redis could not answer (the caller
    /// then checks its local limiter).
    pub async fn check(&self, key_id: &str, rpm: u32) -> Option<Result<(), Duration>> {
        if self
            .resting_until
            .lock()
            .ok()
            .and_then(|until| *until)
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        let interval = 60_000.0 / f64::from(rpm.max(1));
        let tolerance = interval * f64::from(rpm.saturating_sub(1));
        let attempt = async {
            let connect = self.connection.get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(CHECK_TIMEOUT))
                    .set_number_of_retries(0);
                ConnectionManager::new_with_config(self.client.clone(), config)
            });
            let mut connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| {
                    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                })??
                .clone();
            tokio::time::timeout(
                CHECK_TIMEOUT,
                self.script
                    .key(format!("midstream:rpm:{key_id}"))
                    .arg(interval)
                    .arg(tolerance)
                    .invoke_async::<i64>(&mut connection),
            )
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })?
        };
        let outcome = attempt.await;
        match outcome {
            Ok(wait_ms) => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "per-key limits: redis is back; requests per minute are shared again"
                    );
                }
                if wait_ms > 0 {
                    Some(Err(Duration::from_millis(wait_ms.unsigned_abs())))
                } else {
                    Some(Ok(()))
                }
            }
            Err(error) => {
                if let Ok(mut until) = self.resting_until.lock() {
                    *until = Some(Instant::now() + RETRY_AFTER);
                }
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "per-key limits: redis is unreachable; each process applies requests per minute on its own until it is back");
                }
                None
            }
        }
    }
}
