//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `DATABASE_URL` is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL {0:?}: expected sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// The SQLite file's directory could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        /// The directory that could not be created.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored JSON document could not be decoded.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}
