//! Calendar events owned by the gateway (the `calendar` tool books into them).

use crate::pool::{Pool, on_connection, on_pool};
use crate::{Store, StoreError};

/// An event to book.
#[derive(Debug, Clone)]
pub struct NewCalendarEvent {
    /// What it is.
    pub title: String,
    /// Who attends.
    pub attendees: Vec<String>,
    /// Unix ms, inclusive.
    pub starts_at: i64,
    /// Unix ms, exclusive; after `starts_at`.
    pub ends_at: i64,
    /// The stream whose intent booked it, if any.
    pub stream_id: Option<String>,
}

/// A booked event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CalendarEvent {
    /// Its id.
    pub id: String,
    /// What it is.
    pub title: String,
    /// Who attends.
    pub attendees: Vec<String>,
    /// Unix ms.
    pub starts_at: i64,
    /// Unix ms.
    pub ends_at: i64,
    /// The stream that booked it.
    pub stream_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct CalendarRow {
    id: String,
    title: String,
    attendees: String,
    starts_at: i64,
    ends_at: i64,
    stream_id: Option<String>,
    created_at: i64,
}

impl TryFrom<CalendarRow> for CalendarEvent {
    type Error = StoreError;

    fn try_from(row: CalendarRow) -> Result<Self, StoreError> {
        Ok(CalendarEvent {
            id: row.id,
            title: row.title,
            attendees: serde_json::from_str(&row.attendees)?,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            stream_id: row.stream_id,
            created_at: row.created_at,
        })
    }
}

impl Store {
    /// Books an event.
    pub async fn insert_calendar_event(
        &self,
        event: &NewCalendarEvent,
    ) -> Result<CalendarEvent, StoreError> {
        let stored = CalendarEvent {
            id: uuid::Uuid::now_v7().to_string(),
            title: event.title.clone(),
            attendees: event.attendees.clone(),
            starts_at: event.starts_at,
            ends_at: event.ends_at,
            stream_id: event.stream_id.clone(),
            created_at: crate::clock::now_ms(),
        };
        let attendees = serde_json::to_string(&stored.attendees)?;
        macro_rules! insert {
            () => {
                sqlx::query(
                    "INSERT INTO calendar_events \
                     (id, title, attendees, starts_at, ends_at, stream_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&stored.id)
                .bind(&stored.title)
                .bind(&attendees)
                .bind(stored.starts_at)
                .bind(stored.ends_at)
                .bind(&stored.stream_id)
                .bind(stored.created_at)
            };
        }
        // On SQLite every write goes through the writer connection, so that a stream's row
        // never waits in SQLite's busy handler behind this insert (see `Store::on_writer`).
        // PostgreSQL locks rows, not the database: the pool serves.
        match &self.pool {
            Pool::Sqlite(_) => {
                self.on_writer(async |connection| {
                    on_connection!(connection, |c| {
                        insert!().execute(&mut *c).await?;
                    });
                    Ok(())
                })
                .await?;
            }
            Pool::Postgres(pool) => {
                insert!().execute(pool).await?;
            }
        }
        Ok(stored)
    }

    /// Events that overlap `[from, to)`, in start order: both a listing and a conflict check.
    pub async fn calendar_events_overlapping(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<CalendarEvent>, StoreError> {
        let rows: Vec<CalendarRow> = on_pool!(&self.pool, |pool| {
            sqlx::query_as(
                "SELECT id, title, attendees, starts_at, ends_at, stream_id, created_at \
                 FROM calendar_events WHERE starts_at < $2 AND ends_at > $1 \
                 ORDER BY starts_at, id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(CalendarEvent::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::StoreOptions;

    fn event(starts_at: i64) -> NewCalendarEvent {
        NewCalendarEvent {
            title: "Sync".into(),
            attendees: vec!["Ann".into()],
            starts_at,
            ends_at: starts_at + 1,
            stream_id: None,
        }
    }

    /// On SQLite a booking is written on the writer connection, after the write in progress
    /// there (a stream's row, a batch), never beside it in SQLite's busy handler.
    #[tokio::test]
    async fn on_sqlite_a_booking_waits_its_turn_on_the_writer_connection() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}/calendar.db", dir.path().display());
        let store = Store::connect(&url, StoreOptions::default())
            .await
            .expect("store");
        let held = store.writer.lock().await;
        let booking = tokio::spawn({
            let store = store.clone();
            async move { store.insert_calendar_event(&event(1_000)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!booking.is_finished(), "the booking waits for the writer");
        drop(held);
        let booked = booking.await.expect("joined").expect("booked");
        let found = store
            .calendar_events_overlapping(0, 2_000)
            .await
            .expect("read");
        assert_eq!(found, vec![booked]);
    }
}
