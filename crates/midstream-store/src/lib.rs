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
mod pool;
mod recorder;
mod streams;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::sync::Arc;

pub use analysis::{IntentRecord, ToolCallRecord};
pub use api_keys::{ApiKey, CreatedApiKey, KEY_PREFIX, hash_secret};
pub use calendar::{CalendarEvent, NewCalendarEvent};
pub use error::StoreError;
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

/// The database: a pool plus this process's identity. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    instance_id: Arc<str>,
}

impl Store {
    /// Connects (creating a SQLite file and its directory if needed) and applies migrations.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let pool = pool::connect(url, options.max_connections.max(1)).await?;
        Ok(Store {
            pool,
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

    /// Closes the pool; queries after this fail. The recorder's writer keeps the connection it
    /// took out of the pool until it ends (see [`Recorder`]).
    pub async fn close(&self) {
        on_pool!(&self.pool, |pool| pool.close().await);
    }
}
