//! MidStream's SQL record: SQLite by default, PostgreSQL in production.
//!
//! One [`Store`] wraps a pool of either backend; migrations for both live in `migrations/`
//! and run at [`Store::connect`]. Streams are written off the hot path by the [`Recorder`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), midstream_store::StoreError> {
//! use midstream_store::{Store, StoreOptions};
//!
//! let store = Store::connect("sqlite://data/midstream.db", StoreOptions::default()).await?;
//! let interrupted = store.mark_interrupted().await?;
//! if let Some(row) = store.stream("0190f6c2-…").await? {
//!     println!("{} is {}", row.id, row.status);
//! }
//! # let _ = interrupted;
//! # Ok(())
//! # }
//! ```

mod analysis;
mod api_keys;
mod calendar;
pub mod clock;
mod error;
mod history;
mod pool;
mod recorder;
mod settings;
mod streams;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::sync::Arc;

pub use analysis::{IntentRecord, ToolCallRecord};
pub use api_keys::{ApiKey, CreatedApiKey, KEY_PREFIX, KeyOptions, hash_secret};
pub use calendar::{CalendarEvent, NewCalendarEvent};
pub use error::StoreError;
pub use history::{HistoryQuery, StreamSummary};
pub use pool::Backend;
pub use recorder::{OpenReceipt, Recorder, RecorderConfig, metric};
pub use streams::{
    EventRow, MessageRow, NewMessage, NewStream, StreamClose, StreamEvent, StreamRow, StreamStatus,
    Usage,
};

use pool::{Pool, on_pool};

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size. SQLite serialises writes anyway; readers share the rest.
    pub max_connections: u32,
    /// Names this gateway process in the streams it records, so that at the next start it
    /// marks only its own unfinished streams `interrupted`.
    pub instance_id: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            instance_id: "local".to_owned(),
        }
    }
}

/// The database: a pool, the writer connection, and this process's identity. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// The connection the recorder writes on (and, on SQLite, every other write of this
    /// process): see [`Store::on_writer`]. `None` until the first write and after a failed one.
    writer: Arc<tokio::sync::Mutex<Option<pool::Connection>>>,
    instance_id: Arc<str>,
}

impl Store {
    /// Connects (creating a SQLite file and its directory if needed) and applies migrations.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let pool = pool::connect(url, options.max_connections.max(1)).await?;
        Ok(Store {
            pool,
            writer: Arc::default(),
            instance_id: options.instance_id.into(),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// This process's instance id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// Runs `write` on the writer connection, taking one out of the pool when there is none; a
    /// connection that fails a write may be broken, so it is dropped and the next write takes
    /// another. Writes through here run one at a time.
    ///
    /// Why one writer: SQLite lets one connection write at a time, and a connection that finds
    /// the database locked sleeps in SQLite's busy handler (1, 2, 5, 10 … ms) instead of being
    /// woken when the lock is free. With the recorder on one connection and a tool's insert on
    /// a pooled one, a stream's row (which the first token waits for) slept behind the tool's
    /// insert: p99 0.46 → 3.6 ms, max 18.6 ms, with four tools inserting (BENCHMARKS.md).
    /// Queued here, the row waits for the statement in progress only.
    pub(crate) async fn on_writer<T>(
        &self,
        write: impl AsyncFnOnce(&mut pool::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.writer.lock().await;
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.pool.detached().await?,
        };
        let written = write(&mut connection).await;
        if written.is_ok() {
            *slot = Some(connection);
        }
        written
    }

    /// Closes the pool; queries after this fail. The writer connection (see
    /// [`Store::on_writer`]) lives until the last clone of the store is dropped.
    pub async fn close(&self) {
        on_pool!(&self.pool, |pool| pool.close().await);
    }
}
