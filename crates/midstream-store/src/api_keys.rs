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
    /// Unix ms after which the key is refused, if it expires.
    pub expires_at: Option<i64>,
    /// The key's own limit of requests per minute, if any.
    pub rpm: Option<i64>,
    /// The key's own limit of streams open at once, if any.
    pub max_streams: Option<i64>,
}

impl ApiKey {
    /// Whether the key is usable at `now_ms`: not revoked and not expired.
    pub fn is_active_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now_ms < at)
    }
}

/// What a new key may carry besides its name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// Unix ms after which the key is refused.
    pub expires_at: Option<i64>,
    /// Requests per minute (at least 1).
    pub rpm: Option<u32>,
    /// Streams open at once (at least 1).
    pub max_streams: Option<u32>,
}

/// A key just created: the only moment its secret is known.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored part.
    pub key: ApiKey,
    /// The secret to hand to the client, e.g. `msk_3f9a…`.
    pub secret: String,
}

/// The columns of [`ApiKey`], in one place for every query that reads keys.
const KEY_COLUMNS: &str = "id, name, prefix, created_at, revoked_at, expires_at, rpm, max_streams";

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
        options: KeyOptions,
    ) -> Result<CreatedApiKey, StoreError> {
        let secret = format!("{KEY_PREFIX}{}", hex::encode(secret_entropy));
        let key = self.insert_api_key(name, &secret, options).await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// Registers a secret chosen by the operator (`MIDSTREAM_API_KEYS`), once: importing the
    /// same secret again returns the existing key.
    pub async fn import_api_key(&self, name: &str, secret: &str) -> Result<ApiKey, StoreError> {
        self.insert_api_key(name, secret, KeyOptions::default())
            .await
    }

    async fn insert_api_key(
        &self,
        name: &str,
        secret: &str,
        options: KeyOptions,
    ) -> Result<ApiKey, StoreError> {
        let hash = hash_secret(secret);
        let id = uuid::Uuid::now_v7().to_string();
        let prefix: String = secret.chars().take(KEY_PREFIX.len() + 6).collect();
        let now = crate::clock::now_ms();
        on_pool!(&self.pool, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, name, prefix, key_hash, created_at, expires_at, rpm, \
                 max_streams) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (key_hash) DO NOTHING",
            )
            .bind(&id)
            .bind(name)
            .bind(&prefix)
            .bind(&hash)
            .bind(now)
            .bind(options.expires_at)
            .bind(options.rpm.map(i64::from))
            .bind(options.max_streams.map(i64::from))
            .execute(pool)
            .await?;
            Ok::<(), StoreError>(())
        })?;
        let query = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .bind(&hash)
                .fetch_one(pool)
                .await?)
        })
    }

    /// The active (neither revoked nor expired) key whose secret this is.
    pub async fn active_api_key(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        self.active_key_where("key_hash", &hash_secret(secret))
            .await
    }

    /// The active (neither revoked nor expired) key with this id: a stream URL signed for a
    /// key is honoured only while the key is.
    pub async fn active_api_key_by_id(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.active_key_where("id", id).await
    }

    async fn active_key_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let now = crate::clock::now_ms();
        let query = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE {column} = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        );
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .bind(value)
                .bind(now)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// All keys, newest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let query = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC");
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .fetch_all(pool)
                .await?)
        })
    }

    /// How many keys are active (neither revoked nor expired): with none, the gateway runs
    /// open (on loopback only).
    pub async fn count_active_api_keys(&self) -> Result<i64, StoreError> {
        let now = crate::clock::now_ms();
        on_pool!(&self.pool, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(now)
            .fetch_one(pool)
            .await?)
        })
    }

    /// A number that changes whenever any key is created, revoked or otherwise changed (a
    /// trigger bumps it): one cheap read tells a process whether its cached validations still
    /// hold.
    pub async fn api_key_generation(&self) -> Result<i64, StoreError> {
        on_pool!(&self.pool, |pool| {
            Ok(
                sqlx::query_scalar("SELECT generation FROM api_key_generation WHERE id = 1")
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
