//! Test support: a fresh PostgreSQL database per test run, and a sweep for records left open.
//!
//! The server comes from `MIDSTREAM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Tests **fail** rather than skip when it is
//! unreachable, with one line saying how to provide one.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::pool::on_pool;
use crate::{Store, StoreError};

impl Store {
    /// How many streams are still `streaming` and how many tool calls still `running`, in
    /// the whole database: after a fault test whose streams have all ended, both must be 0.
    pub async fn unclosed_records(&self) -> Result<(i64, i64), StoreError> {
        on_pool!(&self.pool, |pool| {
            let streams =
                sqlx::query_scalar("SELECT COUNT(*) FROM streams WHERE status = 'streaming'")
                    .fetch_one(pool)
                    .await?;
            let calls =
                sqlx::query_scalar("SELECT COUNT(*) FROM tool_calls WHERE status = 'running'")
                    .fetch_one(pool)
                    .await?;
            Ok((streams, calls))
        })
    }
}

/// The admin connection used to create test databases.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Test databases older than this are dropped when a new one is made (crashed runs leave some).
const STALE_AFTER_SECS: i64 = 6 * 3600;

/// Creates an empty database and returns its URL.
///
/// # Panics
///
/// When PostgreSQL cannot be reached or refuses to create a database — in a test, that is
/// the message the developer needs.
pub async fn fresh_postgres_url() -> String {
    let admin = std::env::var("MIDSTREAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
    let options = PgConnectOptions::from_str(&admin).unwrap_or_else(|e| {
        panic!("MIDSTREAM_TEST_POSTGRES_URL={admin:?} is not a PostgreSQL URL: {e}")
    });
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and is unreachable at {admin} ({e}); start one with \
                 `docker compose up -d postgres` or point MIDSTREAM_TEST_POSTGRES_URL at a server"
            )
        });
    let now = crate::clock::now_ms() / 1000;
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'midstream_test_%'")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    for name in stale {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|ts| ts.parse::<i64>().ok())
            .unwrap_or(now);
        if now - created > STALE_AFTER_SECS {
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
        }
    }
    let name = format!("midstream_test_{now}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name} on {admin}: {e}"));
    pool.close().await;
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("MIDSTREAM_TEST_POSTGRES_URL={admin:?} has no database path"),
    }
}
