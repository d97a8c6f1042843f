//! What the user asked the demo model: the topics of the last user message, and the city,
//! person, day and time in it.
//!
//! Plain phrase matching over words, no language model: the demo only has to answer sensibly.
//! A piece it cannot read is left out, and the demo asks for it instead of guessing, so it
//! never books a meeting the user did not ask for. Names and cities written in lower case are
//! capitalised, because the default intent rules look for capitalised names.

/// The topics found, with what was said about each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    /// Asked about the weather.
    pub weather: Option<WeatherAsk>,
    /// Asked to schedule a meeting.
    pub meeting: Option<MeetingAsk>,
    /// Asked for a joke.
    pub joke: bool,
    /// Said hello.
    pub greeting: bool,
}

/// A weather question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WeatherAsk {
    /// The city, capitalised ("Lisbon", "New York"), when one was named.
    pub city: Option<String>,
}

/// A request to schedule a meeting, with whatever it said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MeetingAsk {
    /// Who with: one capitalised name ("Maria", "Ann Lee").
    pub person: Option<String>,
    /// The day, as the calendar tool reads it: `today`, `tomorrow`, `Friday`, `on Friday`,
    /// `this Friday`, `next Friday`.
    pub day: Option<String>,
    /// The time of day.
    pub time: Option<Clock>,
}

/// A time of day as said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clock {
    /// One the calendar reads without doubt: `3pm`, `10 AM`, `10:30`, `15:00`.
    Clear(String),
    /// A bare hour from 1 to 12: morning or afternoon?
    Ambiguous(u8),
}

/// Words that mean the weather is the topic.
const WEATHER_WORDS: &[&str] = &[
    "weather",
    "forecast",
    "temperature",
    "rain",
    "raining",
    "snow",
    "snowing",
    "sunny",
    "umbrella",
];
/// Verbs that ask for a meeting to be booked (`set` only as `set ... up`).
const SCHEDULE_VERBS: &[&str] = &[
    "schedule", "book", "arrange", "organise", "organize", "plan", "setup",
];
/// What can be scheduled.
const MEETING_NOUNS: &[&str] = &[
    "meeting",
    "meetings",
    "call",
    "appointment",
    "sync",
    "catch-up",
    "chat",
];
const WEEKDAYS: &[(&str, &str)] = &[
    ("monday", "Monday"),
    ("mon", "Monday"),
    ("tuesday", "Tuesday"),
    ("tue", "Tuesday"),
    ("tues", "Tuesday"),
    ("wednesday", "Wednesday"),
    ("wed", "Wednesday"),
    ("thursday", "Thursday"),
    ("thu", "Thursday"),
    ("thurs", "Thursday"),
    ("friday", "Friday"),
    ("fri", "Friday"),
    ("saturday", "Saturday"),
    ("sat", "Saturday"),
    ("sunday", "Sunday"),
    ("sun", "Sunday"),
];
/// Words that end a name or a city, or cannot be one, whatever their case.
const NOT_A_NAME: &[&str] = &[
    "a", "about", "after", "an", "and", "any", "at", "before", "but", "for", "from", "her", "here",
    "him", "his", "in", "is", "it", "like", "me", "my", "next", "now", "on", "or", "our", "please",
    "right", "someone", "somebody", "that", "the", "their", "them", "there", "this", "to", "today",
    "tomorrow", "tonight", "us", "week", "what", "when", "with", "you", "your",
];
/// Longest city or name taken, in words.
const MAX_NAME_WORDS: usize = 3;

/// One word of the message.
#[derive(Debug)]
struct Word<'a> {
    text: &'a str,
    lower: String,
    /// Punctuation (`,`, `?`, …) stands between this word and the one before.
    after_break: bool,
}

impl Word<'_> {
    fn is(&self, word: &str) -> bool {
        self.lower == word
    }

    fn is_capitalised(&self) -> bool {
        self.text.chars().next().is_some_and(char::is_uppercase)
    }

    /// Could be part of a name: letters (and `'`, `-`), not a function word, day or month.
    fn can_name(&self) -> bool {
        self.text.chars().next().is_some_and(char::is_alphabetic)
            && self
                .text
                .chars()
                .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
            && !NOT_A_NAME.contains(&self.lower.as_str())
            && weekday(&self.lower).is_none()
    }
}

/// Reads the last user message.
pub(crate) fn read(text: &str) -> Asked {
    let words = words(text);
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.lower.as_str()));
    let weather = has(WEATHER_WORDS).then(|| WeatherAsk { city: city(&words) });
    let set_up = words
        .iter()
        .position(|w| w.is("set"))
        .is_some_and(|i| words.iter().skip(i + 1).take(3).any(|w| w.is("up")));
    let schedules = has(SCHEDULE_VERBS) || set_up;
    let meeting = (schedules && (has(MEETING_NOUNS) || has(&["with"]))).then(|| MeetingAsk {
        person: person(&words),
        day: day(&words),
        time: time(&words),
    });
    Asked {
        weather,
        meeting,
        joke: has(&["joke", "jokes", "funny"]),
        greeting: words.first().is_some_and(|w| {
            ["hello", "hi", "hey", "hiya", "greetings", "morning"].contains(&w.lower.as_str())
        }),
    }
}

/// Splits `text` into words: letters, digits and `'` `’` `-` `:`, with a `.` kept inside a
/// word (`p.m`, `Dr.Smith`) and noted as a break at its end.
fn words(text: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut start = None;
    let mut pending_break = false;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next_is_word = chars.get(i + 1).is_some_and(|&(_, n)| n.is_alphanumeric());
        let inside = c.is_alphanumeric()
            || (start.is_some() && matches!(c, '\'' | '’' | '-' | ':' | '.') && next_is_word);
        match (inside, start) {
            (true, None) => start = Some(at),
            (true, Some(_)) => {}
            (false, Some(begin)) => {
                words.push(word(&text[begin..at], pending_break));
                pending_break = false;
                start = None;
                pending_break |= !c.is_whitespace();
            }
            (false, None) => pending_break |= !c.is_whitespace(),
        }
    }
    if let Some(begin) = start {
        words.push(word(&text[begin..], pending_break));
    }
    words
}

fn word(text: &str, after_break: bool) -> Word<'_> {
    Word {
        text,
        lower: text.to_lowercase().replace('’', "'"),
        after_break,
    }
}

/// The name starting at `words[from]`: capitalised words that can name (up to
/// [`MAX_NAME_WORDS`]), or else one lower-case word that can, capitalised.
fn name_at(words: &[Word<'_>], from: usize) -> Option<String> {
    let first = words.get(from).filter(|w| !w.after_break && w.can_name())?;
    if !first.is_capitalised() {
        return Some(capitalise(first.text));
    }
    let run: Vec<&str> = words[from..]
        .iter()
        .enumerate()
        .take_while(|(i, w)| (*i == 0 || !w.after_break) && w.can_name() && w.is_capitalised())
        .take(MAX_NAME_WORDS)
        .map(|(_, w)| w.text)
        .collect();
    Some(run.join(" "))
}

/// The city of a weather question: after `in`, `for` or `at` ("the weather in New York"),
/// else right before the weather word ("Lisbon weather").
fn city(words: &[Word<'_>]) -> Option<String> {
    let after_preposition = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is("in") || w.is("for") || w.is("at"))
        .find_map(|(i, _)| {
            let lower_run = words.get(i + 1).is_some_and(|w| !w.is_capitalised());
            let name = name_at(words, i + 1)?;
            // A lower-case city may have more words ("new york"): take them while they can.
            if lower_run {
                let more: Vec<String> = words[i + 1..]
                    .iter()
                    .enumerate()
                    .take_while(|(j, w)| (*j == 0 || !w.after_break) && w.can_name())
                    .take(MAX_NAME_WORDS)
                    .map(|(_, w)| capitalise(w.text))
                    .collect();
                return Some(more.join(" "));
            }
            Some(name)
        });
    after_preposition.or_else(|| {
        let at = words
            .iter()
            .position(|w| WEATHER_WORDS.contains(&w.lower.as_str()))?;
        let before = words.get(at.checked_sub(1)?)?;
        (!words[at].after_break && before.is_capitalised() && before.can_name())
            .then(|| before.text.trim_end_matches("'s").to_owned())
    })
}

/// Who the meeting is with: the name after `with`.
fn person(words: &[Word<'_>]) -> Option<String> {
    words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is("with"))
        .find_map(|(i, _)| name_at(words, i + 1))
}

/// The day: `today`, `tomorrow`, `tonight` (today), or a weekday with `next`, `this` or `on`.
fn day(words: &[Word<'_>]) -> Option<String> {
    for (i, w) in words.iter().enumerate() {
        match w.lower.as_str() {
            "today" | "tonight" => return Some("today".to_owned()),
            "tomorrow" => return Some("tomorrow".to_owned()),
            lower => {
                if let Some(name) = weekday(lower) {
                    let qualifier = i
                        .checked_sub(1)
                        .and_then(|p| words.get(p))
                        .filter(|_| !w.after_break)
                        .map(|p| p.lower.as_str())
                        .filter(|p| matches!(*p, "next" | "this" | "on"));
                    return Some(match qualifier {
                        Some(q) => format!("{q} {name}"),
                        None => name.to_owned(),
                    });
                }
            }
        }
    }
    None
}

fn weekday(lower: &str) -> Option<&'static str> {
    WEEKDAYS
        .iter()
        .find(|(said, _)| *said == lower)
        .map(|(_, name)| *name)
}

/// The time of day: `at 3`, `3pm`, `3 pm`, `3 p.m.`, `10:30`, `at 15`, `noon`, `midnight`.
/// A number counts only with `at` before it, a colon, or am/pm ("with 3 people" is no time).
fn time(words: &[Word<'_>]) -> Option<Clock> {
    let tonight = words.iter().any(|w| w.is("tonight"));
    for (i, w) in words.iter().enumerate() {
        match w.lower.as_str() {
            "noon" | "midday" => return Some(Clock::Clear("12pm".to_owned())),
            "midnight" => return Some(Clock::Clear("12am".to_owned())),
            _ => {}
        }
        let split = w
            .text
            .find(|c: char| !(c.is_ascii_digit() || c == ':'))
            .unwrap_or(w.text.len());
        let (digits, attached) = w.text.split_at(split);
        if digits.is_empty() {
            continue;
        }
        let next = words.get(i + 1).filter(|n| !n.after_break);
        let (meridiem, spaced) = match (meridiem(attached), next) {
            (Some(m), _) if !attached.is_empty() => (Some(m), false),
            (None, _) if !attached.is_empty() => continue,
            (_, Some(n)) if meridiem(n.text).is_some() => (meridiem(n.text), true),
            _ => (None, false),
        };
        let at_before = i
            .checked_sub(1)
            .and_then(|p| words.get(p))
            .is_some_and(|p| p.is("at") && !w.after_break);
        let (hour, minutes) = match digits.split_once(':') {
            Some((h, m)) if m.len() == 2 => (h, Some(m)),
            Some(_) => continue,
            None => (digits, None),
        };
        if !(at_before || meridiem.is_some() || minutes.is_some()) {
            continue;
        }
        let Ok(hour_value) = hour.parse::<u8>() else {
            continue;
        };
        if hour.len() > 2 || minutes.is_some_and(|m| m.parse::<u8>().map_or(true, |m| m > 59)) {
            continue;
        }
        let minutes_text = minutes.map(|m| format!(":{m}")).unwrap_or_default();
        return Some(match meridiem {
            Some(m) if (1..=12).contains(&hour_value) => {
                let gap = if spaced { " " } else { "" };
                Clock::Clear(format!("{hour_value}{minutes_text}{gap}{m}"))
            }
            Some(_) => continue,
            None if minutes.is_some() && hour_value <= 23 => {
                Clock::Clear(format!("{hour_value}{minutes_text}"))
            }
            None if hour_value == 0 || (13..=23).contains(&hour_value) => {
                Clock::Clear(format!("{hour_value}:00"))
            }
            None if tonight && (1..=11).contains(&hour_value) => {
                Clock::Clear(format!("{hour_value}pm"))
            }
            None if (1..=12).contains(&hour_value) => Clock::Ambiguous(hour_value),
            None => continue,
        });
    }
    None
}

/// `am`, `AM`, `a.m` (the final dot is not part of the word) → as written without dots.
fn meridiem(text: &str) -> Option<String> {
    let plain: String = text.chars().filter(|c| *c != '.').collect();
    matches!(plain.to_lowercase().as_str(), "am" | "pm").then_some(plain)
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting(text: &str) -> MeetingAsk {
        read(text)
            .meeting
            .unwrap_or_else(|| panic!("{text:?} asks for a meeting"))
    }

    fn clear(time: &str) -> Option<Clock> {
        Some(Clock::Clear(time.to_owned()))
    }

    #[test]
    fn weather_questions_name_their_city() {
        for (text, city) in [
            ("What's the weather in Lisbon?", Some("Lisbon")),
            ("what is the weather like in lisbon", Some("Lisbon")),
            ("Weather for New York tomorrow, please", Some("New York")),
            ("weather in new york", Some("New York")),
            ("Is it going to rain in São Paulo today?", Some("São Paulo")),
            ("What's the forecast for tomorrow in Oslo?", Some("Oslo")),
            ("How is the Tokyo weather?", Some("Tokyo")),
            ("What's the weather like?", None),
            ("What's the weather in the city?", None),
        ] {
            assert_eq!(
                read(text).weather,
                Some(WeatherAsk {
                    city: city.map(str::to_owned)
                }),
                "{text}"
            );
        }
        assert_eq!(read("Tell me a joke").weather, None);
        assert_eq!(
            read("I'm training a model").weather,
            None,
            "rain inside a word"
        );
    }

    #[test]
    fn meeting_requests_name_person_day_and_time() {
        assert_eq!(
            meeting("Schedule a meeting with Maria tomorrow at 3pm"),
            MeetingAsk {
                person: Some("Maria".into()),
                day: Some("tomorrow".into()),
                time: clear("3pm"),
            }
        );
        assert_eq!(
            meeting("could you book a call with john next wednesday at 10 AM?"),
            MeetingAsk {
                person: Some("John".into()),
                day: Some("next Wednesday".into()),
                time: clear("10 AM"),
            }
        );
        assert_eq!(
            meeting("Please set a meeting up with Ann Lee on Fri at 14:30."),
            MeetingAsk {
                person: Some("Ann Lee".into()),
                day: Some("on Friday".into()),
                time: clear("14:30"),
            }
        );
        assert_eq!(
            meeting("Arrange a sync with Dr Smith at 9:15am this Thursday"),
            MeetingAsk {
                person: Some("Dr Smith".into()),
                day: Some("this Thursday".into()),
                time: clear("9:15am"),
            }
        );
        assert_eq!(
            meeting("Book an appointment with Bob Monday at 3 p.m."),
            MeetingAsk {
                person: Some("Bob".into()),
                day: Some("Monday".into()),
                time: clear("3 pm"),
            }
        );
        assert_eq!(
            meeting("schedule a meeting with Maria at noon today").time,
            clear("12pm")
        );
        assert_eq!(
            meeting("book a call with Eve tonight at 8").time,
            clear("8pm")
        );
        assert_eq!(
            meeting("book a call with Eve tonight at 8").day.as_deref(),
            Some("today")
        );
    }

    #[test]
    fn what_is_missing_or_unclear_stays_out() {
        assert_eq!(
            meeting("Schedule a meeting tomorrow at 3pm"),
            MeetingAsk {
                person: None,
                day: Some("tomorrow".into()),
                time: clear("3pm"),
            }
        );
        let vague = meeting("Schedule a meeting with me sometime");
        assert_eq!(vague.person, None);
        assert_eq!(vague.day, None);
        assert_eq!(vague.time, None);
        assert_eq!(
            meeting("Schedule a meeting with Maria tomorrow at 3").time,
            Some(Clock::Ambiguous(3))
        );
        assert_eq!(meeting("Book a call with Maria next week").day, None);
        assert_eq!(
            meeting("Book a call with 3 people on Friday").time,
            None,
            "a count is not a time"
        );
        assert_eq!(meeting("Book a call with Maria at 25:00").time, None);
    }

    #[test]
    fn only_requests_to_schedule_are_meetings() {
        for text in [
            "What's on my calendar tomorrow?",
            "How did the meeting with John go?",
            "Book a flight to Paris",
            "Tell me a joke",
        ] {
            assert_eq!(read(text).meeting, None, "{text}");
        }
    }

    #[test]
    fn jokes_and_greetings_are_noticed() {
        let asked = read("Hi! Tell me a joke.");
        assert!(asked.joke && asked.greeting);
        assert_eq!(asked.weather, None);
        assert_eq!(asked.meeting, None);
        assert!(!read("Say something").greeting);
    }

    #[test]
    fn words_keep_inner_punctuation_and_note_breaks() {
        let split = words("It's 10:30 a.m., with Ann-Marie! ok");
        let texts: Vec<&str> = split.iter().map(|w| w.text).collect();
        assert_eq!(texts, ["It's", "10:30", "a.m", "with", "Ann-Marie", "ok"]);
        let breaks: Vec<bool> = split.iter().map(|w| w.after_break).collect();
        assert_eq!(breaks, [false, false, false, true, false, true]);
    }
}
