//! The tool result cache: identical calls share one execution and, for a while, its result.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use moka::Expiry;
use moka::future::Cache;
use serde_json::Value;

use crate::canonical::canonical_json;
use crate::{ToolError, metric};

/// A tool name plus the canonical JSON of its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    tool: String,
    args: String,
}

/// A successful result and how long it may be reused; the TTL travels with the value because
/// it is per tool.
#[derive(Debug, Clone)]
struct CachedValue {
    value: Arc<Value>,
    ttl: Duration,
}

/// Expires each entry its own TTL after it was stored; reading does not extend it.
struct PerToolTtl;

impl Expiry<CacheKey, CachedValue> for PerToolTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &CachedValue,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// What [`ToolCache::get_or_run`] produced.
#[derive(Debug, Clone)]
pub struct CacheOutcome {
    /// The result.
    pub value: Arc<Value>,
    /// `true` when this call did not run the tool: the result was stored already, or the call
    /// joined an identical execution that another call had started.
    pub cached: bool,
}

/// Results of cacheable tools (moka future cache), bounded to `capacity` entries.
///
/// - Key: tool name + [canonical JSON](crate::canonical_json) of the arguments, so argument key
///   order does not matter.
/// - Each tool's TTL ([`ToolSettings::cache_ttl`](crate::ToolSettings::cache_ttl)) starts when the
///   result is stored.
/// - Single flight: concurrent identical calls share **one** execution. If the call running it is
///   cancelled (its stream went away, or its own timeout ran out), one of the waiting calls
///   runs the tool instead, so waiters are never failed by someone else's cancellation.
/// - Errors are **not** stored: the calls that were waiting on a failed execution receive its
///   error, and the next call runs the tool again.
///
/// Cheap to clone (shared inside).
#[derive(Clone)]
pub struct ToolCache {
    entries: Cache<CacheKey, CachedValue>,
}

impl ToolCache {
    /// A cache of at most `capacity` results (least recently/frequently used are evicted).
    pub fn new(capacity: u64) -> Self {
        ToolCache {
            entries: Cache::builder()
                .max_capacity(capacity)
                .expire_after(PerToolTtl)
                .build(),
        }
    }

    /// The cached value, if it can be had without waiting: a hit resolves on the first poll
    /// of moka's lookup; anything else (a miss, or the cache busy with housekeeping) is `None`
    /// and the caller takes the normal, spawned path. Counts a hit when it finds one.
    pub fn get_now(&self, tool: &str, args: &Value) -> Option<Arc<Value>> {
        let key = CacheKey {
            tool: tool.to_owned(),
            args: canonical_json(args),
        };
        let value = self.entries.get(&key).now_or_never()??.value;
        metrics::counter!(metric::CACHE_HITS, "tool" => tool.to_owned()).increment(1);
        Some(value)
    }

    /// The stored result for `tool` with `args`, or else the result of `run`, which is stored
    /// for `ttl` if it succeeds. Concurrent identical lookups await the same `run` (only one of
    /// the `run` futures passed in is polled). Counts a hit or a miss in the metrics.
    pub async fn get_or_run<F>(
        &self,
        tool: &str,
        args: &Value,
        ttl: Duration,
        run: F,
    ) -> Result<CacheOutcome, ToolError>
    where
        F: Future<Output = Result<Value, ToolError>>,
    {
        let key = CacheKey {
            tool: tool.to_owned(),
            args: canonical_json(args),
        };
        let looked_up = self
            .entries
            .entry(key)
            .or_try_insert_with(async {
                let value = run.await?;
                Ok::<_, ToolError>(CachedValue {
                    value: Arc::new(value),
                    ttl,
                })
            })
            .await;
        match looked_up {
            Ok(entry) => {
                let cached = !entry.is_fresh();
                let counter = if cached {
                    metric::CACHE_HITS
                } else {
                    metric::CACHE_MISSES
                };
                metrics::counter!(counter, "tool" => tool.to_owned()).increment(1);
                Ok(CacheOutcome {
                    value: entry.into_value().value,
                    cached,
                })
            }
            Err(error) => {
                metrics::counter!(metric::CACHE_MISSES, "tool" => tool.to_owned()).increment(1);
                Err(ToolError::clone(&error))
            }
        }
    }

    /// Whether a live result is stored for `tool` with `args`.
    pub fn contains(&self, tool: &str, args: &Value) -> bool {
        self.entries.contains_key(&CacheKey {
            tool: tool.to_owned(),
            args: canonical_json(args),
        })
    }

    /// Number of stored results. Approximate: moka applies writes lazily.
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }
}

impl fmt::Debug for ToolCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    async fn counted(runs: &AtomicUsize, value: Value) -> Result<Value, ToolError> {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(value)
    }

    #[tokio::test]
    async fn a_stored_result_is_reused_whatever_the_key_order() {
        let cache = ToolCache::new(100);
        let runs = AtomicUsize::new(0);
        let first = cache
            .get_or_run(
                "t",
                &json!({"a": 1, "b": 2}),
                HOUR,
                counted(&runs, json!("x")),
            )
            .await
            .unwrap();
        assert!(!first.cached);
        let second = cache
            .get_or_run(
                "t",
                &json!({"b": 2, "a": 1}),
                HOUR,
                counted(&runs, json!("y")),
            )
            .await
            .unwrap();
        assert!(second.cached);
        assert_eq!(*second.value, json!("x"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(cache.contains("t", &json!({"b": 2, "a": 1})));
    }

    #[tokio::test]
    async fn tools_and_arguments_are_separate_entries() {
        let cache = ToolCache::new(100);
        let runs = AtomicUsize::new(0);
        for (tool, args) in [
            ("t", json!({"a": 1})),
            ("u", json!({"a": 1})),
            ("t", json!({"a": 2})),
        ] {
            let outcome = cache
                .get_or_run(tool, &args, HOUR, counted(&runs, json!(1)))
                .await
                .unwrap();
            assert!(!outcome.cached);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn errors_are_not_stored() {
        let cache = ToolCache::new(100);
        let runs = AtomicUsize::new(0);
        let failing = async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(ToolError::Unavailable("down".into()))
        };
        let error = cache
            .get_or_run("t", &json!({}), HOUR, failing)
            .await
            .unwrap_err();
        assert_eq!(error, ToolError::Unavailable("down".into()));
        assert!(!cache.contains("t", &json!({})));
        let outcome = cache
            .get_or_run("t", &json!({}), HOUR, counted(&runs, json!("ok")))
            .await
            .unwrap();
        assert!(!outcome.cached);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_entry_expires_after_its_ttl() {
        let cache = ToolCache::new(100);
        let runs = AtomicUsize::new(0);
        let ttl = Duration::from_millis(50);
        cache
            .get_or_run("t", &json!({}), ttl, counted(&runs, json!(1)))
            .await
            .unwrap();
        // Sleeping longer than the TTL guarantees expiry however slow the machine is.
        tokio::time::sleep(ttl * 4).await;
        assert!(!cache.contains("t", &json!({})));
        let again = cache
            .get_or_run("t", &json!({}), ttl, counted(&runs, json!(2)))
            .await
            .unwrap();
        assert!(!again.cached);
        assert_eq!(*again.value, json!(2));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn capacity_is_bounded() {
        let cache = ToolCache::new(10);
        let runs = AtomicUsize::new(0);
        for i in 0..100 {
            cache
                .get_or_run("t", &json!({"i": i}), HOUR, counted(&runs, json!(i)))
                .await
                .unwrap();
        }
        cache.entries.run_pending_tasks().await;
        assert!(cache.entry_count() <= 10, "{} entries", cache.entry_count());
    }
}
