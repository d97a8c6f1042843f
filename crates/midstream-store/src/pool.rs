//! Connecting to SQLite or PostgreSQL and running the embedded migrations.
//!
//! Both backends share one query text (`$1`-style placeholders work in sqlx's SQLite driver
//! too) and one schema shape, so the code that uses the pool is written once and expanded for
//! each backend by [`on_pool!`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, SqliteConnection, SqlitePool};

use crate::StoreError;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local SQLite file (the default), in WAL mode.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names, or an error for any other scheme.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Lower-case name for logs and health output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store holds. The body is expanded once per
/// backend, so the SQL and binds are written once and type-checked for both.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite($p) => $body,
            $crate::pool::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Pool {
    /// A connection taken out of the pool for good (the pool may open a replacement).
    pub(crate) async fn detached(&self) -> Result<Connection, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool) => Connection::Sqlite(pool.acquire().await?.detach()),
            Pool::Postgres(pool) => Connection::Postgres(pool.acquire().await?.detach()),
        })
    }
}

/// One connection of either backend, owned outside the pool (the recorder's: see
/// [`crate::Recorder`] for why it keeps one).
#[derive(Debug)]
pub(crate) enum Connection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// [`on_pool!`] for a [`Connection`]: the body gets `&mut` the backend's connection.
macro_rules! on_connection {
    ($connection:expr, |$c:ident| $body:expr) => {
        match $connection {
            $crate::pool::Connection::Sqlite($c) => $body,
            $crate::pool::Connection::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_connection;

/// How long a query waits for a pooled connection before failing, so a dead database makes
/// requests fail fast instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the pool for `url` and applies the migrations of its backend.
pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Pool, StoreError> {
    match Backend::of_url(url)? {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // Checkpoints run in the background (`Store::checkpoint`), never inside a commit.
                .pragma("wal_autocheckpoint", "0");
            create_parent_dir(options.get_filename())?;
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
            Ok(Pool::Sqlite(pool))
        }
        Backend::Postgres => {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("../../migrations/postgres")
                .run(&pool)
                .await?;
            Ok(Pool::Postgres(pool))
        }
    }
}

/// A fresh clone has no `./data`: create the SQLite file's directory rather than failing.
fn create_parent_dir(file: &std::path::Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            Backend::of_url("sqlite://data/x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::of_url("sqlite::memory:").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::of_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            Backend::of_url("mysql://h/db"),
            Err(StoreError::UnsupportedUrl(_))
        ));
    }
}
