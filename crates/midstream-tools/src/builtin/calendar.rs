//! `calendar`: meetings in MidStream's own database — book (after a conflict check), list, check.
//!
//! `create` answers `{"status": "booked", "event"}`; for a meeting that is already in the
//! calendar (same start, end, title and attendees, ignoring case), `{"status":
//! "already_booked", "event"}` with the existing event, so asking twice never books twice; for
//! any other overlap, `{"status": "conflict", "conflicts", "requested"}`.
//!
//! Times come either as RFC 3339 (`start`, `from`, `to`) or as the phrases people say (`when`,
//! and `from`/`to` too), read in the calendar's time zone relative to its [`Clock`]. Results
//! give times as RFC 3339 in that zone, plus Unix ms.
//!
//! The phrases understood:
//!
//! | phrase                            | means                                                         |
//! | --------------------------------- | ------------------------------------------------------------- |
//! | `today`, `tomorrow`               | that day                                                      |
//! | `Friday`, `on Fri`, `this Friday` | the next Friday, today included while the time is still ahead |
//! | `next Friday`                     | the first Friday after today (never today)                    |
//! | `2025-06-03`                      | that date                                                     |
//! | `10am`, `10 AM`, `10:30 p.m.`     | 12-hour clock                                                 |
//! | `14:30`, `0:15`, `15`             | 24-hour clock; a bare hour only when it cannot be 12-hour     |
//! | `noon`, `midday`, `midnight`      | 12:00, 12:00, 00:00                                           |
//! | `in 20 minutes`, `in an hour`     | from now                                                      |
//!
//! A day and a time combine in either order, with `at`/`on` anywhere. A time alone means the
//! next time the clock shows it (today, or tomorrow if it has passed). A day alone is a whole
//! day (for `list`; `create` and `check` need a time). Anything else — an unknown word, two
//! days, `at 3` (am or pm?) — is refused with `invalid_arguments` rather than guessed.

mod phrase;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use midstream_store::{CalendarEvent, NewCalendarEvent, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use self::phrase::Moment;
use crate::{CallContext, Tool, ToolError};

/// Default length of a booked meeting.
const DEFAULT_DURATION_MINUTES: u32 = 30;
/// Longest meeting that can be booked (one day).
const MAX_DURATION_MINUTES: u32 = 24 * 60;
/// Default `list` window when no end is given.
const DEFAULT_LIST_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);
/// Longest `list` window (a year), so one call cannot read the whole table.
const MAX_LIST_WINDOW: SignedDuration = SignedDuration::from_hours(366 * 24);
/// Most events returned by one `list`, or listed as conflicts; the result says when it is cut.
const MAX_LISTED_EVENTS: usize = 100;

/// The current time, in Unix ms. A trait so tests can fix "now"; any `Fn() -> i64` is one.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

impl<F: Fn() -> i64 + Send + Sync + 'static> Clock for F {
    fn now_ms(&self) -> i64 {
        self()
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        midstream_store::clock::now_ms()
    }
}

/// How the calendar reads times.
#[derive(Clone)]
pub struct CalendarConfig {
    /// Zone in which phrases ("tomorrow at 3pm") are read and results are written: an IANA name
    /// (`Europe/Paris`), `UTC`, or a fixed offset (`+02:00`).
    pub timezone: String,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            timezone: "UTC".to_owned(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for CalendarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarConfig")
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

/// The `calendar` tool.
pub struct CalendarTool {
    store: Store,
    timezone: TimeZone,
    clock: Arc<dyn Clock>,
    /// Held from the conflict check to the insert, so two bookings of one slot through this
    /// process cannot both pass the check. (Several gateway replicas can still race: see the
    /// crate README.)
    booking: tokio::sync::Mutex<()>,
    parameters: Value,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Action {
    Create,
    List,
    Check,
}

/// Arguments, once the schema has accepted them.
#[derive(Debug, Deserialize)]
struct CalendarArgs {
    action: Action,
    title: Option<String>,
    with: Option<String>,
    when: Option<String>,
    start: Option<String>,
    duration_minutes: Option<u32>,
    from: Option<String>,
    to: Option<String>,
}

/// A requested meeting.
struct Slot {
    title: String,
    attendees: Vec<String>,
    starts_at: Timestamp,
    ends_at: Timestamp,
}

impl Slot {
    /// Whether `event` is this very meeting: same start and end, and the same title and
    /// attendees up to case (the attendees in any order).
    fn is_booked_as(&self, event: &CalendarEvent) -> bool {
        let folded = |names: &[String]| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
            names.sort_unstable();
            names
        };
        event.starts_at == self.starts_at.as_millisecond()
            && event.ends_at == self.ends_at.as_millisecond()
            && event.title.to_lowercase() == self.title.to_lowercase()
            && folded(&event.attendees) == folded(&self.attendees)
    }
}

impl CalendarTool {
    /// The tool's registered name.
    pub const NAME: &'static str = "calendar";

    /// A calendar over `store`. Fails if the time zone is unknown.
    pub fn new(store: Store, config: CalendarConfig) -> Result<Self, ToolError> {
        let timezone = if config.timezone.eq_ignore_ascii_case("utc") {
            TimeZone::UTC
        } else {
            DateTimeParser::new()
                .parse_time_zone(&config.timezone)
                .map_err(|error| ToolError::InvalidConfig {
                    key: "tools.calendar.timezone".into(),
                    message: format!("{:?} is not a time zone: {error}", config.timezone),
                })?
        };
        Ok(CalendarTool {
            store,
            timezone,
            clock: config.clock,
            booking: tokio::sync::Mutex::new(()),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {
                        "type": "string",
                        "enum": ["create", "list", "check"],
                        "description": "create books a meeting unless it conflicts (the same meeting again is already_booked); check only reports conflicts; list shows meetings in a window."
                    },
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "with": {
                        "type": "string",
                        "maxLength": 200,
                        "description": "Who attends: \"John\" or \"Ann Lee and Bob\"."
                    },
                    "when": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "description": "When, as said: \"next Wednesday at 10 AM\", \"tomorrow at 3pm\". For list, a day (\"tomorrow\") lists that day."
                    },
                    "start": {"type": "string", "maxLength": 64, "description": "Start as RFC 3339; wins over when."},
                    "duration_minutes": {"type": "integer", "minimum": 1, "maximum": MAX_DURATION_MINUTES},
                    "from": {"type": "string", "minLength": 1, "maxLength": 100, "description": "list: window start (RFC 3339 or a phrase); default now."},
                    "to": {"type": "string", "minLength": 1, "maxLength": 100, "description": "list: window end (RFC 3339 or a phrase); default a week after from."}
                },
                "required": ["action"],
                "additionalProperties": false
            }),
        })
    }

    fn now(&self) -> Result<Timestamp, ToolError> {
        Timestamp::from_millisecond(self.clock.now_ms())
            .map_err(|error| ToolError::Internal(format!("the clock is out of range: {error}")))
    }

    /// An RFC 3339 time, or else a phrase.
    fn moment(&self, field: &str, text: &str) -> Result<Moment, ToolError> {
        if let Ok(instant) = text.parse::<Timestamp>() {
            return Ok(Moment::At(instant));
        }
        phrase::parse(text, self.now()?, &self.timezone).ok_or_else(|| {
            ToolError::InvalidArguments(format!(
                "{field}: cannot read {text:?} as a time; say e.g. \"tomorrow at 3pm\", \
                 \"next Wednesday at 10 AM\", \"on Friday at 14:30\", or give RFC 3339"
            ))
        })
    }

    /// The meeting that `create` or `check` asks about.
    fn slot(&self, args: &CalendarArgs) -> Result<Slot, ToolError> {
        let starts_at = match (&args.start, &args.when) {
            (Some(start), _) => start.parse::<Timestamp>().map_err(|error| {
                ToolError::InvalidArguments(format!(
                    "start: {start:?} is not an RFC 3339 time: {error}"
                ))
            })?,
            (None, Some(when)) => match self.moment("when", when)? {
                Moment::At(instant) => instant,
                Moment::Day(_) => {
                    return Err(ToolError::InvalidArguments(format!(
                        "when: {when:?} names a day but no time; say e.g. \"{when} at 10am\""
                    )));
                }
            },
            (None, None) => {
                return Err(ToolError::InvalidArguments(
                    "create and check need `when` (\"tomorrow at 3pm\") or `start` (RFC 3339)"
                        .into(),
                ));
            }
        };
        let minutes = args.duration_minutes.unwrap_or(DEFAULT_DURATION_MINUTES);
        let ends_at = starts_at
            .checked_add(SignedDuration::from_mins(i64::from(minutes)))
            .map_err(|error| {
                ToolError::InvalidArguments(format!("the meeting ends out of range: {error}"))
            })?;
        let attendees = args.with.as_deref().map(attendees).unwrap_or_default();
        let title = match (&args.title, args.with.as_deref().map(str::trim)) {
            (Some(title), _) => title.trim().to_owned(),
            (None, Some(with)) if !with.is_empty() => format!("Meeting with {with}"),
            (None, _) => "Meeting".to_owned(),
        };
        Ok(Slot {
            title,
            attendees,
            starts_at,
            ends_at,
        })
    }

    /// The window `list` reads: `from`/`to`, or the day or instant of `when`, or the next week.
    fn window(&self, args: &CalendarArgs) -> Result<(Timestamp, Timestamp), ToolError> {
        let day_start = |date: jiff::civil::Date| -> Result<Timestamp, ToolError> {
            date.to_zoned_datetime(self.timezone.clone())
                .map(|zoned| zoned.timestamp())
                .map_err(|error| {
                    ToolError::InvalidArguments(format!("{date} is out of range: {error}"))
                })
        };
        let next_day_start = |date: jiff::civil::Date| -> Result<Timestamp, ToolError> {
            let next = date.tomorrow().map_err(|error| {
                ToolError::InvalidArguments(format!("{date} is out of range: {error}"))
            })?;
            day_start(next)
        };
        let (from, default_to) = match (&args.from, &args.when) {
            (Some(from), _) => match self.moment("from", from)? {
                Moment::At(instant) => (instant, None),
                Moment::Day(date) => (day_start(date)?, None),
            },
            (None, Some(when)) => match self.moment("when", when)? {
                Moment::At(instant) => (instant, None),
                Moment::Day(date) => (day_start(date)?, Some(next_day_start(date)?)),
            },
            (None, None) => (self.now()?, None),
        };
        let to = match &args.to {
            Some(to) => match self.moment("to", to)? {
                Moment::At(instant) => instant,
                Moment::Day(date) => next_day_start(date)?,
            },
            None => match default_to {
                Some(to) => to,
                None => from.checked_add(DEFAULT_LIST_WINDOW).map_err(|error| {
                    ToolError::InvalidArguments(format!("the window ends out of range: {error}"))
                })?,
            },
        };
        if to <= from {
            return Err(ToolError::InvalidArguments(format!(
                "the window ends ({}) before it starts ({})",
                self.rfc3339(to),
                self.rfc3339(from)
            )));
        }
        if to.duration_since(from) > MAX_LIST_WINDOW {
            return Err(ToolError::InvalidArguments(
                "list at most a year at a time".into(),
            ));
        }
        Ok((from, to))
    }

    async fn overlapping(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CalendarEvent>, ToolError> {
        self.store
            .calendar_events_overlapping(from.as_millisecond(), to.as_millisecond())
            .await
            .map_err(|error| ToolError::Unavailable(format!("calendar database: {error}")))
    }

    async fn create(&self, slot: Slot, ctx: &CallContext) -> Result<Value, ToolError> {
        let _booking = self.booking.lock().await;
        let conflicts = self.overlapping(slot.starts_at, slot.ends_at).await?;
        if let Some(existing) = conflicts.iter().find(|event| slot.is_booked_as(event)) {
            return Ok(json!({"status": "already_booked", "event": self.event_json(existing)}));
        }
        if !conflicts.is_empty() {
            return Ok(json!({
                "status": "conflict",
                "conflicts": self.events_json(&conflicts),
                "requested": self.slot_json(&slot),
            }));
        }
        let event = self
            .store
            .insert_calendar_event(&NewCalendarEvent {
                title: slot.title,
                attendees: slot.attendees,
                starts_at: slot.starts_at.as_millisecond(),
                ends_at: slot.ends_at.as_millisecond(),
                stream_id: ctx.stream_id.clone(),
            })
            .await
            .map_err(|error| ToolError::Unavailable(format!("calendar database: {error}")))?;
        Ok(json!({"status": "booked", "event": self.event_json(&event)}))
    }

    async fn check(&self, slot: Slot) -> Result<Value, ToolError> {
        let conflicts = self.overlapping(slot.starts_at, slot.ends_at).await?;
        let status = if conflicts.is_empty() {
            "free"
        } else {
            "conflict"
        };
        Ok(json!({
            "status": status,
            "conflicts": self.events_json(&conflicts),
            "requested": self.slot_json(&slot),
        }))
    }

    async fn list(&self, from: Timestamp, to: Timestamp) -> Result<Value, ToolError> {
        let events = self.overlapping(from, to).await?;
        Ok(json!({
            "status": "ok",
            "from": self.rfc3339(from),
            "to": self.rfc3339(to),
            "events": self.events_json(&events),
            "truncated": events.len() > MAX_LISTED_EVENTS,
        }))
    }

    /// RFC 3339 in the calendar's zone (`2025-06-11T10:00:00+02:00`).
    fn rfc3339(&self, instant: Timestamp) -> String {
        let offset = self.timezone.to_offset(instant);
        instant.display_with_offset(offset).to_string()
    }

    fn rfc3339_ms(&self, ms: i64) -> Value {
        Timestamp::from_millisecond(ms)
            .map_or(Value::Null, |instant| Value::String(self.rfc3339(instant)))
    }

    fn event_json(&self, event: &CalendarEvent) -> Value {
        json!({
            "id": event.id,
            "title": event.title,
            "attendees": event.attendees,
            "start": self.rfc3339_ms(event.starts_at),
            "end": self.rfc3339_ms(event.ends_at),
            "starts_at_ms": event.starts_at,
            "ends_at_ms": event.ends_at,
            "stream_id": event.stream_id,
        })
    }

    fn events_json(&self, events: &[CalendarEvent]) -> Vec<Value> {
        events
            .iter()
            .take(MAX_LISTED_EVENTS)
            .map(|event| self.event_json(event))
            .collect()
    }

    fn slot_json(&self, slot: &Slot) -> Value {
        json!({
            "title": slot.title,
            "attendees": slot.attendees,
            "start": self.rfc3339(slot.starts_at),
            "end": self.rfc3339(slot.ends_at),
            "starts_at_ms": slot.starts_at.as_millisecond(),
            "ends_at_ms": slot.ends_at.as_millisecond(),
        })
    }
}

#[async_trait]
impl Tool for CalendarTool {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Books meetings (refusing overlaps), lists them, and checks a slot for conflicts."
    }

    fn parameters(&self) -> &Value {
        &self.parameters
    }

    async fn call(&self, args: Value, ctx: &CallContext) -> Result<Value, ToolError> {
        let args: CalendarArgs = serde_json::from_value(args)
            .map_err(|error| ToolError::InvalidArguments(error.to_string()))?;
        match args.action {
            Action::Create => {
                let slot = self.slot(&args)?;
                self.create(slot, ctx).await
            }
            Action::Check => {
                let slot = self.slot(&args)?;
                self.check(slot).await
            }
            Action::List => {
                let (from, to) = self.window(&args)?;
                self.list(from, to).await
            }
        }
    }
}

impl std::fmt::Debug for CalendarTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarTool")
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

/// "Ann Lee and Bob", "Ann, Bob & Carol" → one name each.
fn attendees(with: &str) -> Vec<String> {
    with.split([',', '&'])
        .flat_map(|part| part.split(" and "))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendees_are_split_on_and_commas_and_ampersands() {
        assert_eq!(attendees("John"), ["John"]);
        assert_eq!(attendees("Ann Lee and Bob"), ["Ann Lee", "Bob"]);
        assert_eq!(
            attendees("Ann, Bob & Carol and Dan"),
            ["Ann", "Bob", "Carol", "Dan"]
        );
        assert_eq!(attendees(" , "), Vec::<String>::new());
        assert_eq!(attendees("Alexander"), ["Alexander"]);
    }
}
