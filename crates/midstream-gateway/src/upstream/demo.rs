//! The built-in demo model: a scripted, deterministic, OpenAI-compatible "model", so a fresh
//! clone runs end to end with no key and no network.
//!
//! It streams like a real model — a role chunk, one chunk per token-sized piece paced by
//! `MIDSTREAM_DEMO_TOKEN_DELAY_MS`, a finish chunk, usage when asked, `[DONE]` — and its
//! script contains the phrases the default intent rules catch ("schedule a meeting with John
//! next Wednesday at 10 AM", "the weather in Paris"). When the request offers a weather-like
//! function tool and the user asks about the weather, it streams `tool_calls` instead; when
//! the conversation ends with a tool result, it answers from that result.

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

use super::{UpstreamError, UpstreamResponse};
use crate::protocol::request::{ChatRequest, message_text};

/// The model name the demo reports.
pub const DEMO_MODEL: &str = "midstream-demo";

const GREETING: &str = "Hello! I'm the MidStream demo model, a scripted stand-in for a real LLM. \
While I stream, MidStream reads my words: when I say I can schedule a meeting with John next \
Wednesday at 10 AM, or mention the weather in Paris, it starts those tools at once and injects \
their results into this same stream, before I finish my sentence. Set UPSTREAM_BASE_URL and \
OPENAI_API_KEY to talk to a real model instead.";

const WEATHER: &str = "Let me check that for you. The weather in Paris looks changeable this \
week, so I will fetch the live forecast while I keep talking. Bring a light jacket either way, \
and let me know if you want the forecast for another city.";

const MEETING: &str = "Sure, I can take care of that. I will schedule a meeting with John next \
Wednesday at 10 AM and check your calendar for conflicts while we talk. If that slot does not \
work, tell me another time and I will move it.";

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
    let asked = request.last_user_text().unwrap_or_default().to_lowercase();
    if asked.contains("weather") {
        if let Some(name) = offered_tool(request, &["weather"]) {
            let city = ["Paris", "London", "Berlin", "Tokyo", "New York"]
                .into_iter()
                .find(|c| asked.contains(&c.to_lowercase()))
                .unwrap_or("Paris");
            return Reply::ToolCall {
                name,
                arguments: json!({ "city": city }).to_string(),
            };
        }
        return Reply::Text(WEATHER.to_owned());
    }
    if ["meeting", "schedule", "calendar"]
        .iter()
        .any(|w| asked.contains(w))
    {
        return Reply::Text(MEETING.to_owned());
    }
    Reply::Text(GREETING.to_owned())
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

    #[test]
    fn tokens_rebuild_the_text() {
        for text in [GREETING, WEATHER, MEETING, "a, b!  c", ""] {
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
        assert_eq!(text, GREETING);
        assert!(text.contains("schedule a meeting with John next Wednesday at 10 AM"));
        assert!(text.contains("the weather in Paris"));
        assert_eq!(
            chunks
                .last()
                .and_then(|c| c.pointer("/usage/completion_tokens"))
                .and_then(Value::as_i64),
            Some(tokenize(GREETING).len() as i64)
        );
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
