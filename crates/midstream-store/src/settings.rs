//! Values every gateway process sharing the database must agree on.

use crate::pool::on_pool;
use crate::{Store, StoreError};

impl Store {
    /// The setting `name`; when it is not set yet, `proposed` is stored and returned. Of
    /// processes starting at once, the first insert wins and every process reads its value.
    pub async fn setting_or_insert(
        &self,
        name: &str,
        proposed: &str,
    ) -> Result<String, StoreError> {
        on_pool!(&self.pool, |pool| {
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(proposed)
            .execute(pool)
            .await?;
            let (value,): (String,) = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?;
            Ok(value)
        })
    }
}
