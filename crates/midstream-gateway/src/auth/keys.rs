//! The validation cache, kept honest by the database's key generation.
//!
//! Every change to `api_keys` (create, revoke, an edit by hand in SQL) bumps one number in the
//! database (migration 0005's triggers). Each process reads it every [`REFRESH`] in a
//! background task: one indexed single-row read, never one per request. A cached validation
//! is trusted only under the generation it was made in, so within one refresh after a change
//! every process asks the database again. A validation records the generation read *before*
//! its query: a revocation that commits while the query runs then also outdates it, so there
//! is no window in which a stale "active" can be cached for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use midstream_store::{ApiKey, Store, StoreError};
use moka::sync::Cache;
use tokio_util::sync::CancellationToken;

use super::limits::{KeyLimiter, KeyLimits, LimitExceeded};
use super::shared_rate::SharedRate;
use super::{Caller, bearer};
use crate::error::ApiError;

/// How often each process reads the key generation: a revocation, an edit or a first key holds
/// everywhere within this (plus one small query).
pub const REFRESH: Duration = Duration::from_millis(500);

/// Cached validations per cache (by secret hash, by key id). Wrong secrets are cached too, so
/// a client retrying a bad key does not cost a query each time; TinyLFU admission keeps a
/// flood of one-off wrong secrets from evicting the keys in use.
const CACHE_ENTRIES: u64 = 10_000;
/// An upper bound on trusting a validation even with an unchanged generation, for the case
/// where the database stops answering the generation reads.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// How requests are authenticated; shared by every request of the process.
#[derive(Debug)]
pub struct Auth {
    store: Store,
    /// Whether a key is required: false only in open mode, until a first key exists.
    required: AtomicBool,
    /// The last key generation read from the database.
    generation: AtomicI64,
    /// Secret hash → validation.
    by_secret: Cache<String, Validation>,
    /// Key id → validation, for the signed stream URLs, which name the key instead of
    /// carrying its secret.
    by_id: Cache<String, Validation>,
    limits: KeyLimits,
    /// Requests per minute shared through Redis, when configured.
    shared: Option<SharedRate>,
}

/// The outcome of asking the database about one secret or id, and under which generation.
#[derive(Debug, Clone)]
struct Validation {
    generation: i64,
    /// `None`: no such active key.
    grant: Option<Arc<Grant>>,
}

/// An active key as the hot path needs it.
#[derive(Debug)]
struct Grant {
    id: String,
    /// Unix ms; checked on every request, so expiry needs no refresh.
    expires_at: Option<i64>,
    limiter: Arc<KeyLimiter>,
}

impl Auth {
    /// Auth over `store`, as it stands now: open when no key is active (the caller checks that
    /// open mode is allowed on its address). With `shared`, keys' requests per minute are
    /// counted across every process using the same Redis.
    pub async fn load(store: Store, shared: Option<SharedRate>) -> Result<Auth, StoreError> {
        let generation = store.api_key_generation().await?;
        let required = store.count_active_api_keys().await? > 0;
        let cache = || {
            Cache::builder()
                .max_capacity(CACHE_ENTRIES)
                .time_to_live(CACHE_TTL)
                .build()
        };
        Ok(Auth {
            store,
            required: AtomicBool::new(required),
            generation: AtomicI64::new(generation),
            by_secret: cache(),
            by_id: cache(),
            limits: KeyLimits::default(),
            shared,
        })
    }

    /// Whether requests need a key (false: open mode).
    pub fn is_required(&self) -> bool {
        self.required.load(Ordering::Acquire)
    }

    /// Per-key limits, for the routes that open streams.
    pub fn limits(&self) -> &KeyLimits {
        &self.limits
    }

    /// The caller behind a request's headers, within the key's requests-per-minute limit.
    pub async fn admit(&self, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
        let Some(grant) = self.grant_for_headers(headers).await? else {
            return Ok(Caller { key_id: None });
        };
        self.check_rate(&grant).await?;
        Ok(Caller {
            key_id: Some(grant.id.clone()),
        })
    }

    /// Counts one request against the key's requests per minute: across processes through
    /// Redis when it answers, else in this process.
    async fn check_rate(&self, grant: &Grant) -> Result<(), LimitExceeded> {
        if let (Some(shared), Some(rpm)) = (&self.shared, grant.limiter.rpm()) {
            match shared.check(&grant.id, rpm).await {
                Some(Ok(())) => return Ok(()),
                Some(Err(wait)) => return Err(grant.limiter.rate_refused(wait)),
                None => {}
            }
        }
        grant.limiter.check_rate()
    }

    /// The caller behind a request's headers, without counting the request against any limit
    /// (for routes that authenticate themselves, like a stream's events).
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
        let grant = self.grant_for_headers(headers).await?;
        Ok(Caller {
            key_id: grant.map(|grant| grant.id.clone()),
        })
    }

    /// Checks that the key a signed stream URL names is still active: a revoked or expired key
    /// takes its URLs with it, and a URL signed while the gateway ran open stops working once
    /// keys are required.
    pub async fn admit_signed(&self, caller: Caller) -> Result<Caller, ApiError> {
        if !self.is_required() {
            return Ok(caller);
        }
        let Some(id) = caller.key_id.as_deref() else {
            return Err(ApiError::InvalidStreamToken);
        };
        let load = self.store.active_api_key_by_id(id);
        match self.validate(&self.by_id, id.to_owned(), load).await? {
            Some(_) => Ok(caller),
            None => Err(ApiError::Unauthorized),
        }
    }

    /// `None` in open mode; otherwise the active key the headers carry, or 401.
    async fn grant_for_headers(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<Arc<Grant>>, ApiError> {
        if !self.is_required() {
            return Ok(None);
        }
        let secret = bearer(headers).ok_or(ApiError::Unauthorized)?;
        let hash = midstream_store::hash_secret(secret);
        let load = self.store.active_api_key(secret);
        let grant = self.validate(&self.by_secret, hash, load).await?;
        grant.map(Some).ok_or(ApiError::Unauthorized)
    }

    /// A cached validation made under the current generation and not expired since, or a
    /// fresh one from `load`.
    async fn validate(
        &self,
        cache: &Cache<String, Validation>,
        key: String,
        load: impl Future<Output = Result<Option<ApiKey>, StoreError>>,
    ) -> Result<Option<Arc<Grant>>, ApiError> {
        let generation = self.generation.load(Ordering::Acquire);
        let now = midstream_store::clock::now_ms();
        let grant = match cache.get(&key) {
            Some(cached) if cached.generation == generation => cached.grant,
            _ => {
                let grant = load.await?.map(|row| {
                    Arc::new(Grant {
                        limiter: self.limits.for_key(&row),
                        id: row.id,
                        expires_at: row.expires_at,
                    })
                });
                cache.insert(
                    key,
                    Validation {
                        generation,
                        grant: grant.clone(),
                    },
                );
                grant
            }
        };
        Ok(grant.filter(|grant| grant.expires_at.is_none_or(|at| now < at)))
    }

    /// Reads the key generation every [`REFRESH`] until `stop`: a change outdates every
    /// cached validation, and in open mode, a first active key makes keys required.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.refresh().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("API keys: the key generation is readable again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "API keys: cannot read the key generation; cached keys stay valid for at most 60 s");
                }
                Err(_) => {}
            }
        }
    }

    async fn refresh(&self) -> Result<(), StoreError> {
        let generation = self.store.api_key_generation().await?;
        if self.generation.load(Ordering::Acquire) == generation {
            return Ok(());
        }
        if !self.is_required() && self.store.count_active_api_keys().await? > 0 {
            self.required.store(true, Ordering::Release);
            tracing::info!("API keys: a key exists now; every /v1 request needs one");
        }
        self.generation.store(generation, Ordering::Release);
        Ok(())
    }
}
