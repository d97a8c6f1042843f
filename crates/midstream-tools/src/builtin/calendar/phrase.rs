//! Times people say ("next Wednesday at 10 AM", "tomorrow at 3pm") → instants. The grammar is
//! documented in the parent module, where users read it.
//!
//! Deliberately ours: the date maths is jiff's, but the small grammar is what the intent rules
//! capture, and no maintained crate parses exactly it (see the crate README).

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// Longest relative offset accepted ("in 10000 minutes" is about a week).
const MAX_RELATIVE_AMOUNT: i64 = 10_000;

/// What a phrase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// An instant: the phrase had a time.
    At(Timestamp),
    /// A whole day in the calendar's time zone: the phrase had no time.
    Day(Date),
}

#[derive(Debug, Clone, Copy)]
enum DaySpec {
    Today,
    Tomorrow,
    Weekday {
        weekday: Weekday,
        strictly_after_today: bool,
    },
    Date(Date),
}

/// Reads `phrase` relative to `now` in `tz`; `None` when it is not understood.
pub(crate) fn parse(phrase: &str, now: Timestamp, tz: &TimeZone) -> Option<Moment> {
    let normalised = phrase
        .to_lowercase()
        .replace("a.m.", "am")
        .replace("p.m.", "pm");
    let tokens: Vec<&str> = normalised
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|token| token.trim_end_matches(['.', '!', '?']))
        .filter(|token| !token.is_empty())
        .collect();
    if let Some(offset) = relative(&tokens) {
        return now.checked_add(offset).ok().map(Moment::At);
    }

    let mut day = None;
    let mut time = None;
    let mut rest = tokens.as_slice();
    while let Some((&token, tail)) = rest.split_first() {
        rest = tail;
        match token {
            "at" | "on" | "@" | "this" => {}
            "today" => fill(&mut day, DaySpec::Today)?,
            "tomorrow" => fill(&mut day, DaySpec::Tomorrow)?,
            "next" => {
                let (&name, tail) = rest.split_first()?;
                rest = tail;
                let weekday = weekday(name)?;
                fill(
                    &mut day,
                    DaySpec::Weekday {
                        weekday,
                        strictly_after_today: true,
                    },
                )?;
            }
            "noon" | "midday" => fill(&mut time, Time::new(12, 0, 0, 0).ok()?)?,
            "midnight" => fill(&mut time, Time::MIN)?,
            _ => {
                if let Some(weekday) = weekday(token) {
                    fill(
                        &mut day,
                        DaySpec::Weekday {
                            weekday,
                            strictly_after_today: false,
                        },
                    )?;
                } else if let Ok(date) = token.parse::<Date>() {
                    fill(&mut day, DaySpec::Date(date))?;
                } else {
                    let (clock, used_next) = clock_time(token, rest.first().copied())?;
                    if used_next {
                        rest = rest.get(1..)?;
                    }
                    fill(&mut time, clock)?;
                }
            }
        }
    }
    resolve(day, time, now, tz)
}

/// Puts `value` in an empty slot; `None` (not understood) when it was filled already.
fn fill<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// `in <n|a|an> <minutes|hours>`.
fn relative(tokens: &[&str]) -> Option<SignedDuration> {
    let ["in", amount, unit] = tokens else {
        return None;
    };
    let amount: i64 = match *amount {
        "a" | "an" => 1,
        digits => digits
            .parse()
            .ok()
            .filter(|n| (1..=MAX_RELATIVE_AMOUNT).contains(n))?,
    };
    match *unit {
        "minute" | "minutes" | "min" | "mins" => Some(SignedDuration::from_mins(amount)),
        "hour" | "hours" | "hr" | "hrs" => Some(SignedDuration::from_hours(amount)),
        _ => None,
    }
}

fn weekday(token: &str) -> Option<Weekday> {
    Some(match token {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" | "tues" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// `10`, `10am`, `10:30`, `10:30pm`, with the am/pm possibly in the `next` token. Returns the
/// time and whether `next` was used.
fn clock_time(token: &str, next: Option<&str>) -> Option<(Time, bool)> {
    let split = token
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(token.len());
    let (digits, suffix) = token.split_at(split);
    let (suffix, used_next) = match (suffix, next) {
        ("", Some(meridiem @ ("am" | "pm"))) => (meridiem, true),
        _ => (suffix, false),
    };
    let (hour, minute) = match digits.split_once(':') {
        Some((hour, minute)) if minute.len() == 2 => (hour, Some(minute)),
        Some(_) => return None,
        None => (digits, None),
    };
    if hour.is_empty() || hour.len() > 2 {
        return None;
    }
    let hour: i8 = hour.parse().ok()?;
    let minute_value: i8 = minute.map_or(Some(0), |m| m.parse().ok())?;
    let hour = match suffix {
        "am" | "pm" if (1..=12).contains(&hour) => hour % 12 + if suffix == "pm" { 12 } else { 0 },
        // A bare hour that could be either half of the day is not guessed.
        "" if minute.is_some() || hour == 0 || hour >= 13 => hour,
        _ => return None,
    };
    Some((Time::new(hour, minute_value, 0, 0).ok()?, used_next))
}

fn resolve(
    day: Option<DaySpec>,
    time: Option<Time>,
    now: Timestamp,
    tz: &TimeZone,
) -> Option<Moment> {
    let today = now.to_zoned_datetime(tz.clone()).date();
    let on = |date: Date, time: Time| -> Option<Timestamp> {
        let zoned = DateTime::from_parts(date, time)
            .to_zoned_datetime(tz.clone())
            .ok()?;
        Some(zoned.timestamp())
    };
    let moment = match (day, time) {
        (None, None) => return None,
        (Some(day), None) => Moment::Day(match day {
            DaySpec::Weekday {
                weekday,
                strictly_after_today: false,
            } if today.weekday() == weekday => today,
            day => day_of(day, today)?,
        }),
        (None, Some(time)) => {
            let at = on(today, time)?;
            Moment::At(if at >= now {
                at
            } else {
                on(today.tomorrow().ok()?, time)?
            })
        }
        (Some(day), Some(time)) => {
            if let DaySpec::Weekday {
                weekday,
                strictly_after_today: false,
            } = day
            {
                let at = on(today, time)?;
                if today.weekday() == weekday && at >= now {
                    return Some(Moment::At(at));
                }
            }
            Moment::At(on(day_of(day, today)?, time)?)
        }
    };
    Some(moment)
}

/// The date a day names, a weekday being the first one after today.
fn day_of(day: DaySpec, today: Date) -> Option<Date> {
    match day {
        DaySpec::Today => Some(today),
        DaySpec::Tomorrow => today.tomorrow().ok(),
        DaySpec::Weekday { weekday, .. } => today.nth_weekday(1, weekday).ok(),
        DaySpec::Date(date) => Some(date),
    }
}

#[cfg(test)]
mod tests {
    use jiff::fmt::temporal::DateTimeParser;

    use super::*;

    /// Wednesday 4 June 2025, 12:00 UTC.
    fn now() -> Timestamp {
        "2025-06-04T12:00:00Z".parse().unwrap()
    }

    fn at(phrase: &str, tz: &str) -> Option<String> {
        let tz = DateTimeParser::new().parse_time_zone(tz).unwrap();
        match parse(phrase, now(), &tz)? {
            Moment::At(instant) => Some(instant.to_string()),
            Moment::Day(date) => Some(format!("day {date}")),
        }
    }

    #[test]
    fn phrases_resolve_to_the_expected_instants() {
        let table = [
            ("next Wednesday at 10 AM", "2025-06-11T10:00:00Z"),
            ("tomorrow at 3pm", "2025-06-05T15:00:00Z"),
            ("on Friday at 14:30", "2025-06-06T14:30:00Z"),
            ("today at noon", "2025-06-04T12:00:00Z"),
            ("Monday 9am", "2025-06-09T09:00:00Z"),
            ("Wednesday at 3pm", "2025-06-04T15:00:00Z"),
            ("Wednesday at 9am", "2025-06-11T09:00:00Z"),
            ("this Thursday at 9:15 a.m.", "2025-06-05T09:15:00Z"),
            ("next thu 9 PM", "2025-06-05T21:00:00Z"),
            ("3pm tomorrow", "2025-06-05T15:00:00Z"),
            ("at 11am", "2025-06-05T11:00:00Z"),
            ("at 5pm", "2025-06-04T17:00:00Z"),
            ("at 12am", "2025-06-05T00:00:00Z"),
            ("tomorrow at midnight", "2025-06-05T00:00:00Z"),
            ("Sunday at 0:30", "2025-06-08T00:30:00Z"),
            ("on Saturday at 18", "2025-06-07T18:00:00Z"),
            ("2025-07-01 at 10:00", "2025-07-01T10:00:00Z"),
            ("in 2 hours", "2025-06-04T14:00:00Z"),
            ("in 30 minutes", "2025-06-04T12:30:00Z"),
            ("in an hour", "2025-06-04T13:00:00Z"),
            ("Tomorrow at 3pm.", "2025-06-05T15:00:00Z"),
        ];
        for (phrase, expected) in table {
            assert_eq!(at(phrase, "UTC").as_deref(), Some(expected), "{phrase:?}");
        }
    }

    #[test]
    fn phrases_are_read_in_the_calendar_time_zone() {
        // Paris is UTC+2 in June; 12:00 UTC is 14:00 there.
        assert_eq!(
            at("tomorrow at 3pm", "Europe/Paris").as_deref(),
            Some("2025-06-05T13:00:00Z")
        );
        assert_eq!(
            at("at 1pm", "Europe/Paris").as_deref(),
            Some("2025-06-05T11:00:00Z")
        );
        assert_eq!(
            at("today at 9am", "+05:30").as_deref(),
            Some("2025-06-04T03:30:00Z")
        );
        // 12:00 UTC is already Thursday 01:00 in Auckland (UTC+12 in June).
        assert_eq!(
            at("Thursday 9am", "Pacific/Auckland").as_deref(),
            Some("2025-06-04T21:00:00Z")
        );
    }

    #[test]
    fn a_day_without_a_time_is_a_day() {
        assert_eq!(at("tomorrow", "UTC").as_deref(), Some("day 2025-06-05"));
        assert_eq!(at("on Friday", "UTC").as_deref(), Some("day 2025-06-06"));
        assert_eq!(at("Wednesday", "UTC").as_deref(), Some("day 2025-06-04"));
        assert_eq!(
            at("next Wednesday", "UTC").as_deref(),
            Some("day 2025-06-11")
        );
    }

    #[test]
    fn what_is_not_understood_is_not_guessed() {
        for phrase in [
            "",
            "someday",
            "at 3",
            "tomorrow at 3",
            "13pm",
            "0am",
            "25:00",
            "10:75",
            "10:5",
            "today tomorrow",
            "3pm at 4pm",
            "next week",
            "next",
            "tomorrow at 3pm with John",
            "in 0 minutes",
            "in 2 fortnights",
            "123:00",
        ] {
            assert_eq!(at(phrase, "UTC"), None, "{phrase:?}");
        }
    }
}
