//! API-key authentication for `/v1/*`.
//!
//! Keys are `Authorization: Bearer msk_…` secrets, stored hashed (see `midstream keys
//! create`). With no key at all the gateway runs open, and only on a loopback address: the
//! server refuses to start open anywhere else. Validated keys are cached for a minute so the
//! hot path does not query the database per request; a revoked key stops working within
//! that minute.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;
use midstream_store::Store;

use crate::error::ApiError;

/// Who is calling; in the request extensions of every `/v1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id; `None` in open mode.
    pub key_id: Option<String>,
}

impl Caller {
    /// Whether this caller may see a stream opened by `owner`: its own streams, or any
    /// stream in open mode.
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        self.key_id.is_none() || self.key_id.as_deref() == owner
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No keys exist: every request is allowed (loopback only).
    Open,
    /// Requests need an active key.
    Keys {
        /// Where keys are stored.
        store: Store,
        /// Secret hash → key id, for recently validated keys (bounded: 10,000 entries, 60 s).
        cache: moka::sync::Cache<String, Arc<str>>,
    },
}

impl Auth {
    /// Key mode backed by `store`.
    pub fn keys(store: Store) -> Auth {
        Auth::Keys {
            store,
            cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// The caller behind a request's headers.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
        let (store, cache) = match self {
            Auth::Open => return Ok(Caller { key_id: None }),
            Auth::Keys { store, cache } => (store, cache),
        };
        let secret = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = midstream_store::hash_secret(secret);
        if let Some(id) = cache.get(&hash) {
            return Ok(Caller {
                key_id: Some(id.to_string()),
            });
        }
        let key = store
            .active_api_key(secret)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        cache.insert(hash, key.id.as_str().into());
        Ok(Caller {
            key_id: Some(key.id),
        })
    }
}

/// Middleware: authenticates, or answers 401 in OpenAI's shape.
pub async fn require_key(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.authenticate(request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}
