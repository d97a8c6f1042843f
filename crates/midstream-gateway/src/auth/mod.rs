//! API-key authentication for `/v1/*`, and each key's own limits.
//!
//! Keys are `Authorization: Bearer msk_…` secrets, stored hashed (see `midstream keys
//! create`). With no active key the gateway runs open, and only on a loopback address: the
//! server refuses to start open anywhere else. Creating the first key switches a running open
//! gateway to requiring keys (it does not switch back when the last key goes: an operator who
//! revokes every key wants the gateway closed, not open).
//!
//! Validations are cached ([`keys`]) so the hot path does not query the database per request;
//! a revocation, an edit or a first key reaches every process sharing the database within a
//! second through the database's key generation. Expiry needs no database: each request
//! compares the cached expiry with the clock.
//!
//! ```
//! use midstream_gateway::auth::Caller;
//!
//! let open = Caller { key_id: None };
//! assert!(open.may_see(Some("key-1")), "open mode sees every stream");
//! let keyed = Caller { key_id: Some("key-1".to_owned()) };
//! assert!(keyed.may_see(Some("key-1")) && !keyed.may_see(Some("key-2")) && !keyed.may_see(None));
//! ```

pub mod keys;
pub mod limits;
pub mod shared_rate;
pub mod total_rate;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

pub use keys::Auth;

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

/// The secret of `Authorization: Bearer …`, if the header holds one.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Middleware: authenticates and applies the key's requests-per-minute limit, or answers 401
/// or 429 in OpenAI's shape.
pub async fn require_key(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.admit(request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}
