//! Calendar events owned by the gateway (the `calendar` tool books into them).

use crate::pool::on_pool;
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
        on_pool!(&self.pool, |pool| {
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
            .execute(pool)
            .await?;
            Ok::<(), StoreError>(())
        })?;
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
