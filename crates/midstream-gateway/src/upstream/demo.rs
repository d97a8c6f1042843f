//! The built-in demo model: a scripted, deterministic, OpenAI-compatible "model", so a fresh
//! clone runs end to end with no key and no network.
//!
//! It streams like a real model — a role chunk, one chunk per token-sized piece paced by
//! `MIDSTREAM_DEMO_TOKEN_DELAY_MS`, a finish chunk, usage when asked, `[DONE]` — and answers
//! what the last user message asked ([`ask`] picks out the topics, city, person, day and time):
//!
//! - the weather in a city: a sentence with "the weather in CITY", which the default `weather`
//!   rule catches; with no city, it asks for one;
//! - to schedule a meeting: with a person, a day and a clear time, a sentence with "schedule a
//!   meeting with PERSON DAY at TIME", which the default `schedule` rule catches (so the
//!   calendar books it); with a piece missing or unclear ("at 3": morning or afternoon?), it
//!   asks for that piece and books nothing;
//! - a joke, a greeting, anything else: an answer that triggers no tool.
//!
//! When the request offers a weather-like function tool and the user asks about the weather in
//! a city, it streams `tool_calls` instead; when the conversation ends with a tool result, it
//! answers from that result.

mod ask;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::HeaderMap;
use serde_json::{Value, json};
use tokio::time::Sleep;

use self::ask::{Asked, Clock, MeetingAsk};
use super::{UpstreamError, UpstreamResponse};
use crate::protocol::request::{ChatRequest, message_text};

/// The model name the demo reports.
pub const DEMO_MODEL: &str = "midstream-demo";

/// What the demo says to anything it has no script for. It names what it can do without
/// saying a phrase that a default rule would act on.
const INTRODUCTION: &str = "I'm the MidStream demo model, a scripted stand-in for a real LLM, \
so I only know a few tricks. Ask me about the weather in a city of your choice, ask me to \
schedule a meeting (tell me with whom, which day and at what time), or ask for a joke. While \
I stream, MidStream reads my words, starts a tool the moment a rule matches, and injects its \
result into this same stream. Set UPSTREAM_BASE_URL and OPENAI_API_KEY to talk to a real model \
instead.";

const JOKES: [&str; 3] = [
    "Why did the language model cross the road? It predicted the other side was the most \
likely next token.",
    "I asked a gateway for a joke about streaming. It sent me the punchline first, just to \
keep the time to first token low.",
    "There are two hard problems in computer science: cache invalidation, naming things, and \
off-by-one errors.",
];
/// The scripted model.
#[derive(Debug)]
pub struct DemoModel {
    token_delay: Duration,
    completions: AtomicU64,
}

/// What the demo will say.
enum Reply {
    Text(String),
    ToolCall { name: String, arguments: String },
}

impl DemoModel {
    /// A demo model pausing `token_delay` between tokens.
    pub fn new(token_delay: Duration) -> DemoModel {
        DemoModel {
            token_delay,
            completions: AtomicU64::new(0),
        }
    }

    /// Answers a request: an SSE stream, or a `chat.completion` object.
    pub fn chat(&self, request: &ChatRequest) -> UpstreamResponse {
        let n = self.completions.fetch_add(1, Ordering::Relaxed);
        let id = format!("chatcmpl-demo-{n}");
        let created = midstream_store::clock::now_ms() / 1000;
        let reply = choose_reply(request);
        let prompt_tokens = request
            .messages()
            .iter()
            .filter_map(|m| m.get("content").and_then(message_text))
            .map(|t| t.len() as i64 / 4 + 1)
            .sum::<i64>();
        let frames = if request.stream {
            stream_frames(&id, created, &reply, prompt_tokens, request.include_usage)
        } else {
            VecDeque::from([completion_body(&id, created, &reply, prompt_tokens)])
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", http::HeaderValue::from_static("demo"));
        UpstreamResponse {
            headers,
            body: Box::pin(DemoStream {
                frames,
                delay: if request.stream {
                    self.token_delay
                } else {
                    Duration::ZERO
                },
                sleep: None,
                sent_first: false,
            }),
        }
    }
}

fn choose_reply(request: &ChatRequest) -> Reply {
    let messages = request.messages();
    if let Some(last) = messages
        .last()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
    {
        let result = last
            .get("content")
            .and_then(message_text)
            .unwrap_or_default();
        let summary: String = result.chars().take(300).collect();
        return Reply::Text(format!(
            "Thanks, the tool answered. Here is what it found: {summary}"
        ));
    }
    let text = request.last_user_text().unwrap_or_default();
    let asked = ask::read(&text);
    if let Some(city) = asked.weather.as_ref().and_then(|w| w.city.as_deref())
        && asked.meeting.is_none()
        && let Some(name) = offered_tool(request, &["weather"])
    {
        return Reply::ToolCall {
            name,
            arguments: json!({ "city": city }).to_string(),
        };
    }
    Reply::Text(answer(&asked, &text))
}

/// The demo's answer to what was asked. Only the weather and meeting sentences contain
/// phrases the default rules act on, and only when everything they need was said.
fn answer(asked: &Asked, text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if asked.greeting {
        parts.push("Hello!".to_owned());
    }
    if let Some(weather) = &asked.weather {
        parts.push(match &weather.city {
            Some(city) => format!(
                "Let me check the weather in {city} for you. I am fetching the current \
                 conditions while I keep talking, and they will show up right here in the \
                 stream. Ask me about another city any time."
            ),
            None => "I can look up the current weather for you. Which city should I check? \
                     Name one and I will fetch its conditions while I answer."
                .to_owned(),
        });
    }
    if let Some(meeting) = &asked.meeting {
        parts.push(meeting_answer(meeting));
    }
    if asked.joke {
        let pick = text.bytes().map(usize::from).sum::<usize>() % JOKES.len();
        parts.push(format!("Here is one. {}", JOKES[pick]));
    }
    if asked.weather.is_none() && asked.meeting.is_none() && !asked.joke {
        parts.push(INTRODUCTION.to_owned());
    }
    parts.join(" ")
}

/// Books when the person, the day and a clear time were all said; otherwise asks for what is
/// missing, in words no rule acts on.
fn meeting_answer(meeting: &MeetingAsk) -> String {
    match (&meeting.person, &meeting.day, &meeting.time) {
        (Some(person), Some(day), Some(Clock::Clear(time))) => format!(
            "Sure, I can take care of that. I will schedule a meeting with {person} {day} at \
             {time} and check your calendar for conflicts while we talk. If the slot is \
             taken, the calendar will say so right here in the stream."
        ),
        (None, _, _) => "Happy to set that up. Who should the meeting be with? Tell me their \
                         name, the day and the time, and I will put it in the calendar."
            .to_owned(),
        (Some(person), None, _) => format!(
            "Which day should the meeting with {person} be? Tell me the day and the time, \
             for example tomorrow at 3pm."
        ),
        (Some(person), Some(day), None) => {
            format!("What time {day} should the meeting with {person} start?")
        }
        (Some(person), Some(day), Some(Clock::Ambiguous(hour))) => format!(
            "Is that {hour} in the morning or in the afternoon? Say {hour}am or {hour}pm and \
             the meeting with {person} {day} goes in the calendar."
        ),
    }
}

/// The first function tool in the request whose name contains one of the words.
fn offered_tool(request: &ChatRequest, words: &[&str]) -> Option<String> {
    request
        .body
        .get("tools")?
        .as_array()?
        .iter()
        .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
        .find(|name| words.iter().any(|w| name.to_lowercase().contains(w)))
        .map(str::to_owned)
}

/// Splits text roughly the way a tokenizer does: a leading space stays with its word,
/// punctuation stands alone, long words come in pieces of up to four characters.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        let separate = c == ' ' || c.is_ascii_punctuation();
        let split = match current.chars().last() {
            None => false,
            Some(last) if last.is_ascii_punctuation() => true,
            Some(' ') if current.len() == 1 => separate,
            Some(_) => separate || current.trim_start().chars().count() >= 4,
        };
        if split {
            tokens.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn chunk(id: &str, created: i64, delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": DEMO_MODEL,
        "system_fingerprint": "fp_midstream_demo",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
    })
}

fn frame(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn stream_frames(
    id: &str,
    created: i64,
    reply: &Reply,
    prompt_tokens: i64,
    include_usage: bool,
) -> VecDeque<Bytes> {
    let mut frames = VecDeque::new();
    frames.push_back(frame(&chunk(
        id,
        created,
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )));
    let (pieces, finish) = match reply {
        Reply::Text(text) => {
            let tokens = tokenize(text);
            for token in &tokens {
                frames.push_back(frame(&chunk(id, created, json!({"content": token}), None)));
            }
            (tokens.len(), "stop")
        }
        Reply::ToolCall { name, arguments } => {
            let call_id = format!("call_{id}");
            frames.push_back(frame(&chunk(
                id,
                created,
                json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            )));
            let parts = tokenize(arguments);
            for part in &parts {
                frames.push_back(frame(&chunk(
                    id,
                    created,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    None,
                )));
            }
            (parts.len() + 1, "tool_calls")
        }
    };
    frames.push_back(frame(&chunk(id, created, json!({}), Some(finish))));
    if include_usage {
        let completion = pieces as i64;
        frames.push_back(frame(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": DEMO_MODEL,
            "system_fingerprint": "fp_midstream_demo", "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion},
        })));
    }
    frames.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

fn completion_body(id: &str, created: i64, reply: &Reply, prompt_tokens: i64) -> Bytes {
    let (message, finish, completion) = match reply {
        Reply::Text(text) => (
            json!({"role": "assistant", "content": text, "refusal": null}),
            "stop",
            tokenize(text).len() as i64,
        ),
        Reply::ToolCall { name, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_{id}"), "type": "function", "function": {"name": name, "arguments": arguments}}
            ]}),
            "tool_calls",
            tokenize(arguments).len() as i64 + 1,
        ),
    };
    Bytes::from(
        json!({
            "id": id, "object": "chat.completion", "created": created, "model": DEMO_MODEL,
            "system_fingerprint": "fp_midstream_demo",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion},
        })
        .to_string(),
    )
}

/// Releases the frames one by one, `delay` apart (the first at once).
struct DemoStream {
    frames: VecDeque<Bytes>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    sent_first: bool,
}

impl Stream for DemoStream {
    type Item = Result<Bytes, UpstreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.frames.is_empty() {
            return Poll::Ready(None);
        }
        if self.sent_first && !self.delay.is_zero() {
            let delay = self.delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        self.sent_first = true;
        Poll::Ready(self.frames.pop_front().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    /// The demo's text answer to `prompt`.
    fn text_answer(prompt: &str) -> String {
        answer(&ask::read(prompt), prompt)
    }

    #[test]
    fn tokens_rebuild_the_text() {
        let meeting = text_answer("Schedule a meeting with Maria tomorrow at 3pm");
        for text in [INTRODUCTION, JOKES[0], &meeting, "a, b!  c", ""] {
            assert_eq!(tokenize(text).concat(), text);
        }
        let tokens = tokenize("Hello world, again.");
        assert!(tokens.len() >= 5, "{tokens:?}");
        assert!(tokens.iter().all(|t| t.chars().count() <= 5), "{tokens:?}");
    }

    fn request(body: Value) -> ChatRequest {
        ChatRequest::parse(body.to_string().as_bytes(), 100).expect("valid")
    }

    async fn collect(response: UpstreamResponse) -> String {
        let chunks: Vec<_> = response.body.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.expect("ok").to_vec()).expect("utf-8"))
            .collect()
    }

    #[tokio::test]
    async fn the_demo_streams_openai_chunks_with_usage() {
        let demo = DemoModel::new(Duration::ZERO);
        let body = collect(demo.chat(&request(json!({
            "model": "x", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]
        }))))
        .await;
        assert!(body.ends_with("data: [DONE]\n\n"));
        let chunks: Vec<Value> = body
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).expect("json"))
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect();
        // "hi" is a greeting: the demo introduces itself. (It used to advertise the tools by
        // saying the phrases that trigger them, so every first "hi" booked a meeting.)
        assert_eq!(text, format!("Hello! {INTRODUCTION}"));
        assert_eq!(
            chunks
                .last()
                .and_then(|c| c.pointer("/usage/completion_tokens"))
                .and_then(Value::as_i64),
            Some(tokenize(&text).len() as i64)
        );
    }

    /// The tool rules of the shipped `config/intents.toml` that fire on `text` in `scope`, with
    /// their arguments.
    fn tools_fired(text: &str, scope: midstream_analysis::Scope) -> Vec<(String, Value)> {
        use std::sync::{Arc, LazyLock};

        use midstream_analysis::{Detector, ScanOutput, Scanner};

        // Compiled once: building the rules' automata takes seconds in a debug build.
        static DEFAULT_RULES: LazyLock<Arc<Detector>> = LazyLock::new(|| {
            Arc::new(
                Detector::from_toml(include_str!("../../../../config/intents.toml"))
                    .expect("the shipped rules load"),
            )
        });
        let detector = &*DEFAULT_RULES;
        let mut scanner = Scanner::new(detector.clone(), scope);
        let mut out = ScanOutput::default();
        scanner.feed(text.as_bytes(), &mut out);
        scanner.finish(&mut out);
        out.detections
            .iter()
            .filter_map(|d| {
                let args = d.args.clone()?;
                Some((detector.rules()[d.rule.0].name.clone(), args))
            })
            .collect()
    }

    fn meeting_args(with: &str, when: &str) -> Value {
        json!({"action": "create", "with": with, "when": when, "title": format!("Meeting with {with}")})
    }

    #[test]
    fn answers_trigger_the_default_rules_only_for_what_was_asked() {
        let weather = |city: &str| vec![("weather".to_owned(), json!({"city": city}))];
        let schedule =
            |with: &str, when: &str| vec![("schedule".to_owned(), meeting_args(with, when))];
        let cases: Vec<(&str, Vec<(String, Value)>)> = vec![
            ("What's the weather in Lisbon?", weather("Lisbon")),
            ("what is the weather like in new york", weather("New York")),
            ("Is it raining in São Paulo?", weather("São Paulo")),
            (
                "Schedule a meeting with Maria tomorrow at 3pm",
                schedule("Maria", "tomorrow at 3pm"),
            ),
            (
                "could you book a call with john next wednesday at 10 AM?",
                schedule("John", "next Wednesday at 10 AM"),
            ),
            (
                "Book an appointment with Bob Monday at 3 p.m.",
                schedule("Bob", "Monday at 3 pm"),
            ),
            (
                "Set up a sync with Ann Lee on Friday at 14:30",
                schedule("Ann Lee", "on Friday at 14:30"),
            ),
            (
                "What's the weather in Oslo? And schedule a meeting with Eve today at noon.",
                [weather("Oslo"), schedule("Eve", "today at 12pm")].concat(),
            ),
            // Nothing to act on, or not enough: no tool.
            ("Tell me a joke", vec![]),
            ("Hi", vec![]),
            ("Hello! What can you do?", vec![]),
            ("What's on my calendar tomorrow?", vec![]),
            ("How did the meeting with John go?", vec![]),
            ("What's the weather like?", vec![]),
            ("Schedule a meeting tomorrow at 3pm", vec![]),
            ("Schedule a meeting with Maria", vec![]),
            ("Schedule a meeting with Maria tomorrow", vec![]),
            ("Schedule a meeting with Maria tomorrow at 3", vec![]),
            ("Book a call with Maria next week at 3pm", vec![]),
        ];
        for (prompt, expected) in cases {
            let text = text_answer(prompt);
            assert_eq!(
                tools_fired(&text, midstream_analysis::Scope::Output),
                expected,
                "{prompt:?} was answered {text:?}"
            );
        }
    }

    #[test]
    fn a_meeting_said_as_the_rule_reads_it_is_echoed_with_the_same_arguments() {
        // The prompt's own intent and the answer's then make one call, not two.
        for prompt in [
            "Schedule a meeting with Maria tomorrow at 3pm",
            "Please schedule a meeting with John next Wednesday at 10 AM.",
            "Can you set up a meeting with Ann Lee tomorrow at 3pm?",
            "What's the weather in New York?",
        ] {
            let asked = tools_fired(prompt, midstream_analysis::Scope::Prompt);
            assert_eq!(asked.len(), 1, "{prompt}");
            assert_eq!(
                tools_fired(&text_answer(prompt), midstream_analysis::Scope::Output),
                asked,
                "{prompt}"
            );
        }
    }

    #[test]
    fn unclear_meetings_are_asked_about_not_booked() {
        let answer = text_answer("Schedule a meeting with Maria tomorrow at 3");
        assert!(
            answer.contains("3 in the morning or in the afternoon"),
            "{answer}"
        );
        let answer = text_answer("Schedule a meeting tomorrow at 3pm");
        assert!(
            answer.contains("Who should the meeting be with?"),
            "{answer}"
        );
        let answer = text_answer("Schedule a meeting with Maria");
        assert!(answer.contains("Which day"), "{answer}");
        let answer = text_answer("What's the weather like?");
        assert!(answer.contains("Which city"), "{answer}");
        let joke = text_answer("Tell me a joke");
        assert!(JOKES.iter().any(|j| joke.contains(j)), "{joke}");
        assert_eq!(joke, text_answer("Tell me a joke"), "deterministic");
    }

    #[tokio::test]
    async fn the_demo_calls_an_offered_weather_tool_and_answers_from_its_result() {
        let demo = DemoModel::new(Duration::ZERO);
        let tools =
            json!([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]);
        let body = collect(demo.chat(&request(json!({
            "model": "x", "stream": true, "tools": tools,
            "messages": [{"role": "user", "content": "What's the weather in Tokyo?"}]
        }))))
        .await;
        assert!(body.contains(r#""name":"get_weather""#));
        assert!(body.contains(r#""finish_reason":"tool_calls""#));
        let arguments: String = body
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| {
                c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).expect("json"),
            json!({"city": "Tokyo"})
        );

        let answer = collect(demo.chat(&request(json!({
            "model": "x", "stream": false,
            "messages": [{"role": "user", "content": "weather?"},
                         {"role": "assistant", "content": null, "tool_calls": []},
                         {"role": "tool", "tool_call_id": "c", "content": "{\"temperature\": 21}"}]
        }))))
        .await;
        let completion: Value = serde_json::from_str(&answer).expect("json");
        assert!(
            completion["choices"][0]["message"]["content"]
                .as_str()
                .expect("text")
                .contains("21")
        );
    }
}
