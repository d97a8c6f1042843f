//! A client of `GET /v1/streams/{id}/events` that behaves like a browser's `EventSource`:
//! it remembers the last `id:` it saw and sends it as `Last-Event-ID` when it reconnects.

use serde_json::Value;

use crate::SseReader;

/// One named event as a browser would dispatch it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// The `id:` of the event (the last one seen, as `EventSource` carries it over).
    pub id: Option<u64>,
    /// The `event:` name.
    pub name: String,
    /// The `data:` JSON.
    pub data: Value,
}

/// What one connection to the events URL returned.
#[derive(Debug)]
pub struct EventsResponse {
    /// The status (200, or 204 after `done`, or an error).
    pub status: u16,
    /// The named events, in order.
    pub events: Vec<StreamEvent>,
    /// The `retry:` value, if one was sent.
    pub retry: Option<u64>,
    /// `: ping` comments seen.
    pub pings: usize,
    /// The error body, for a status other than 200 and 204.
    pub error: Option<Value>,
}

/// Connects to `url` (an `events_url`, relative to `base`), optionally resuming after
/// `last_event_id` and with a bearer key, and reads up to `limit` events (all, until the
/// server closes, for `None`); then drops the connection.
pub async fn read_events(
    client: &reqwest::Client,
    url: &str,
    last_event_id: Option<u64>,
    bearer: Option<&str>,
    limit: Option<usize>,
) -> EventsResponse {
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    if status != 200 {
        let error = response.json::<Value>().await.ok();
        return EventsResponse {
            status,
            events: Vec::new(),
            retry: None,
            pings: 0,
            error,
        };
    }
    let mut reader = SseReader::new(response);
    let mut answer = EventsResponse {
        status,
        events: Vec::new(),
        retry: None,
        pings: 0,
        error: None,
    };
    let mut last_id = last_event_id;
    while limit.is_none_or(|limit| answer.events.len() < limit) {
        let Some(frame) = reader.next_frame().await else {
            break;
        };
        let frame = frame.unwrap_or_else(|e| panic!("the events stream failed: {e}"));
        answer.retry = answer.retry.or(frame.retry);
        answer.pings += frame.comments.iter().filter(|c| *c == "ping").count();
        if let Some(id) = &frame.id {
            last_id = Some(id.parse().expect("ids are numbers"));
        }
        if let Some(data) = frame.data {
            answer.events.push(StreamEvent {
                id: last_id,
                name: frame.event.unwrap_or_else(|| "message".to_owned()),
                data: serde_json::from_str(&data).expect("event data is JSON"),
            });
        }
    }
    answer
}

/// The text the events show: a `snapshot` replaces it, each `token` appends.
pub fn text_of(events: &[StreamEvent]) -> String {
    let mut text = String::new();
    for event in events {
        match event.name.as_str() {
            "snapshot" => text = event.data["text"].as_str().unwrap_or_default().to_owned(),
            "token" => text.push_str(event.data["text"].as_str().unwrap_or_default()),
            _ => {}
        }
    }
    text
}
