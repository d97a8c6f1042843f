//! The JSON body of a streaming chat request, with the `"mock"` steering object.

use serde_json::{Map, Value, json};

/// The prompt sent by default: neutral, so no prompt-scope rule fires and every detection
/// comes from the streamed answer.
const DEFAULT_PROMPT: &str = "Write a short paragraph of travel advice.";

/// A request body under construction.
#[derive(Debug, Clone)]
pub struct ChatBody(Map<String, Value>);

impl ChatBody {
    /// `{"model", "stream": true, "messages": [...]}` with the object `extra` merged in
    /// (objects merge key by key, anything else replaces).
    pub fn new(extra: Option<&Map<String, Value>>) -> Self {
        let mut body = Map::from_iter([
            ("model".to_owned(), json!("gpt-4o-mini")),
            ("stream".to_owned(), json!(true)),
            (
                "messages".to_owned(),
                json!([{"role": "user", "content": DEFAULT_PROMPT}]),
            ),
        ]);
        if let Some(extra) = extra {
            merge(&mut body, extra);
        }
        Self(body)
    }

    /// Sets `mock.<key>` unless `extra` already chose it.
    pub fn mock_default(mut self, key: &str, value: Value) -> Self {
        let mock = self.mock();
        mock.entry(key).or_insert(value);
        self
    }

    /// Sets `mock.<key>`, replacing any value.
    pub fn mock_set(mut self, key: &str, value: Value) -> Self {
        self.mock().insert(key.to_owned(), value);
        self
    }

    fn mock(&mut self) -> &mut Map<String, Value> {
        let mock = self
            .0
            .entry("mock")
            .or_insert_with(|| Value::Object(Map::new()));
        if !mock.is_object() {
            *mock = Value::Object(Map::new());
        }
        mock.as_object_mut()
            .expect("the mock slot was just made an object")
    }

    /// The serialised body.
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::from(Value::Object(self.0.clone()).to_string())
    }
}

fn merge(into: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        match (into.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(value)) => merge(existing, value),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &ChatBody) -> Value {
        serde_json::from_slice(&body.to_bytes()).expect("valid JSON")
    }

    #[test]
    fn extra_fields_merge_into_the_default_body() {
        let extra = json!({"model": "m", "mock": {"tokens": 5}, "temperature": 0});
        let body = parsed(&ChatBody::new(extra.as_object()));
        assert_eq!(body["model"], "m");
        assert_eq!(body["stream"], true);
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["mock"], json!({"tokens": 5}));
        assert_eq!(body["messages"][0]["role"], "user");
    }

    #[test]
    fn mock_defaults_yield_to_extra_and_sets_replace() {
        let extra = json!({"mock": {"tokens": 5}});
        let body = ChatBody::new(extra.as_object())
            .mock_default("tokens", json!(1000))
            .mock_default("delay_ms", json!(20))
            .mock_set("tag", json!("t-1"));
        assert_eq!(
            parsed(&body)["mock"],
            json!({"tokens": 5, "delay_ms": 20, "tag": "t-1"})
        );
        let replaced =
            ChatBody::new(json!({"mock": "x"}).as_object()).mock_set("hold", json!(true));
        assert_eq!(parsed(&replaced)["mock"], json!({"hold": true}));
    }
}
