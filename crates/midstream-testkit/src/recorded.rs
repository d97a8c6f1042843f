//! What the mocks received: a bounded log of requests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::extract::Query;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

/// At most this many requests are kept (the most recent); older ones are only counted.
const MAX_RECORDED_REQUESTS: usize = 10_000;

/// One request as a mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The URI path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The request URI as received (path and query).
    pub uri: Uri,
    /// Every request header as received.
    pub headers: HeaderMap,
    /// The body parsed as JSON; `Value::Null` when it is empty or not JSON.
    pub body: serde_json::Value,
    /// The body bytes exactly as received.
    pub raw_body: Bytes,
}

impl RecordedRequest {
    /// The value of query parameter `name`, percent-decoded (the first one if repeated).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&self.uri).ok()?;
        pairs
            .into_iter()
            .find_map(|(key, value)| (key == name).then_some(value))
    }
}

/// Thread-safe request log, bounded to the [`MAX_RECORDED_REQUESTS`] most recent requests.
#[derive(Debug)]
pub(crate) struct RequestLog {
    enabled: bool,
    total: AtomicUsize,
    recent: Mutex<VecDeque<RecordedRequest>>,
}

impl RequestLog {
    /// A log that keeps requests (`enabled`) or only counts them (for benchmarks).
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            total: AtomicUsize::new(0),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether requests are kept; callers skip parsing bodies when they are not.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if !self.enabled {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == MAX_RECORDED_REQUESTS {
            recent.pop_front();
        }
        recent.push_back(request);
    }

    /// Every request received, including those no longer kept.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> RecordedRequest {
        RecordedRequest {
            method: Method::GET,
            path: "/v1/search".into(),
            uri: format!("/v1/search?{query}")
                .parse()
                .expect("a valid test URI"),
            headers: HeaderMap::new(),
            body: serde_json::Value::Null,
            raw_body: Bytes::new(),
        }
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let recorded = request("name=New+York&city=S%C3%A3o%20Paulo&flag");
        assert_eq!(recorded.query_param("name").as_deref(), Some("New York"));
        assert_eq!(recorded.query_param("city").as_deref(), Some("São Paulo"));
        assert_eq!(recorded.query_param("flag").as_deref(), Some(""));
        assert_eq!(recorded.query_param("missing"), None);
    }

    #[test]
    fn a_disabled_log_counts_without_keeping() {
        let log = RequestLog::new(false);
        log.record(request("a=1"));
        assert_eq!(log.total(), 1);
        assert!(log.snapshot().is_empty());
    }

    #[test]
    fn the_log_keeps_only_the_most_recent_requests() {
        let log = RequestLog::new(true);
        for index in 0..=MAX_RECORDED_REQUESTS {
            log.record(request(&format!("i={index}")));
        }
        let kept = log.snapshot();
        assert_eq!(log.total(), MAX_RECORDED_REQUESTS + 1);
        assert_eq!(kept.len(), MAX_RECORDED_REQUESTS);
        assert_eq!(kept[0].query_param("i").as_deref(), Some("1"));
    }
}
