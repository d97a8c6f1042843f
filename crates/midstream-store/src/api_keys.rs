//! API keys: random secrets shown once, stored only as a SHA-256 hash.
//!
//! A key is 32 random bytes, so a fast hash is enough: there is nothing to brute-force that
//! a slow password hash would protect.

use sha2::{Digest, Sha256};

use crate::pool::on_pool;
use crate::{Store, StoreError};

/// Every key starts with this, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "msk_";

/// A key as stored (without its secret).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ApiKey {
    /// Stable id, recorded on the streams the key opens.
    pub id: String,
    /// A human label.
    pub name: String,
    /// The first characters of the secret, to tell keys apart in listings.
    pub prefix: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once revoked.
    pub revoked_at: Option<i64>,
}

/// A key just created: the only moment its secret is known.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored part.
    pub key: ApiKey,
    /// The secret to hand to the client, e.g. `msk_3f9a…`.
    pub secret: String,
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Creates a key from 32 bytes of `secret_entropy` (the caller supplies randomness, so this
    /// crate needs no RNG and tests can be deterministic).
    pub async fn create_api_key(
        &self,
        name: &str,
        secret_entropy: [u8; 32],
    ) -> Result<CreatedApiKey, StoreError> {
        let secret = format!("{KEY_PREFIX}{}", hex::encode(secret_entropy));
        let key = self.import_api_key(name, &secret).await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// Registers a secret chosen by the operator (`MIDSTREAM_API_KEYS`), once: importing the
    /// same secret again returns the existing key.
    pub async fn import_api_key(&self, name: &str, secret: &str) -> Result<ApiKey, StoreError> {
        let hash = hash_secret(secret);
        let key = ApiKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            prefix: secret.chars().take(KEY_PREFIX.len() + 6).collect(),
            created_at: crate::clock::now_ms(),
            revoked_at: None,
        };
        on_pool!(&self.pool, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, name, prefix, key_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_hash) DO NOTHING",
            )
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&hash)
            .bind(key.created_at)
            .execute(pool)
            .await?;
            Ok::<(), StoreError>(())
        })?;
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE key_hash = $1",
            )
            .bind(&hash)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The active (not revoked) key whose secret this is.
    pub async fn active_api_key(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_secret(secret);
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, name, prefix, created_at, revoked_at FROM api_keys \
                 WHERE key_hash = $1 AND revoked_at IS NULL",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// All keys, newest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, name, prefix, created_at, revoked_at FROM api_keys \
                 ORDER BY created_at DESC, id DESC",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// How many keys are active: with none, the gateway runs open (on loopback only).
    pub async fn count_active_api_keys(&self) -> Result<i64, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(
                sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
                    .fetch_one(pool)
                    .await?,
            )
        })
    }

    /// Revokes a key by id; false if there was no such active key.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let now = crate::clock::now_ms();
        on_pool!(&self.pool, |pool| {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
