//! Where requests go: an OpenAI-compatible HTTP upstream, or the built-in demo model, and the
//! routing of model names (aliases from `midstream.toml`) to them.
//!
//! The HTTP client is `reqwest` used directly, not async-openai: the proxy must forward the
//! upstream's bytes unchanged (async-openai re-frames SSE events), pass the upstream's own
//! 4xx status and body through, and retry only by its own bounded policy, before the first
//! byte, recording every attempt ([`attempts`]); async-openai retries 429s inside the call,
//! unseen and unbounded by the gateway.

pub mod attempts;
pub mod demo;
mod driven;
mod http;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use ::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures_util::Stream;

pub use attempts::{Answered, Attempt};
pub use demo::{DEMO_MODEL, DemoModel};
pub use http::HttpUpstream;

use crate::config::{Config, ModelRoute};
use crate::error::ApiError;
use crate::protocol::request::ChatRequest;
use attempts::Resilience;

/// The upstream's response body: raw bytes as they arrive.
pub type UpstreamBody = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

/// A successful response whose headers have arrived (other statuses become
/// [`UpstreamError::Status`]).
pub struct UpstreamResponse {
    /// Headers worth passing to the client.
    pub headers: HeaderMap,
    /// The body.
    pub body: UpstreamBody,
}

/// An upstream's error response (boxed in errors: it is large and rare).
#[derive(Debug, Clone)]
pub struct ErrorReply {
    /// Upstream name.
    pub upstream: String,
    /// Its status.
    pub status: StatusCode,
    /// Its body (bounded).
    pub body: Bytes,
    /// `retry-after` and rate-limit headers.
    pub headers: HeaderMap,
}

/// How talking to the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection (refused, DNS, TLS).
    #[error("cannot connect to upstream {upstream}: {detail}")]
    Connect {
        /// Upstream name.
        upstream: String,
        /// What failed.
        detail: String,
    },
    /// No response headers in time.
    #[error("upstream {upstream} sent no response within {seconds} s")]
    Timeout {
        /// Upstream name.
        upstream: String,
        /// The limit.
        seconds: u64,
    },
    /// The upstream answered with an error status.
    #[error("upstream {} answered {}", .0.upstream, .0.status)]
    Status(Box<ErrorReply>),
    /// The body broke off (connection reset, malformed chunked encoding, ...).
    #[error("upstream connection failed mid-response: {0}")]
    Body(String),
}

impl UpstreamError {
    /// Short label for the `midstream_upstream_errors_total{kind}` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Status(reply) if reply.status.is_server_error() => "status_5xx",
            UpstreamError::Status(_) => "status_4xx",
            UpstreamError::Body(_) => "body",
        }
    }
}

impl From<UpstreamError> for ApiError {
    /// 4xx pass through with their status and body; anything else is a 502.
    fn from(error: UpstreamError) -> ApiError {
        match error {
            UpstreamError::Status(reply) if reply.status.is_client_error() => {
                ApiError::UpstreamRejected(reply)
            }
            UpstreamError::Status(reply) => ApiError::UpstreamFailed {
                message: format!(
                    "upstream {} answered {}: {}",
                    reply.upstream,
                    reply.status,
                    upstream_message(&reply.body)
                ),
                retryable: true,
            },
            other => ApiError::UpstreamFailed {
                retryable: !matches!(other, UpstreamError::Body(_)),
                message: other.to_string(),
            },
        }
    }
}

/// The `error.message` of an OpenAI-style error body, else the start of the body.
fn upstream_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

/// A model name nothing serves: 404 `model_not_found`, naming the models that exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The model `{model}` does not exist or you do not have access to it. Available models: \
     {available}. (No UPSTREAM_BASE_URL is set, so the built-in demo model answers; set it to \
     use a real model.)"
)]
pub struct UnknownModel {
    /// The name asked for.
    pub model: String,
    /// The names that exist, comma-separated: the demo model first, then the aliases.
    pub available: String,
}

impl From<UnknownModel> for ApiError {
    fn from(error: UnknownModel) -> ApiError {
        ApiError::NotFound {
            message: error.to_string(),
            code: "model_not_found",
        }
    }
}

/// One place requests can be sent.
#[derive(Debug)]
pub enum Upstream {
    /// An OpenAI-compatible HTTP API.
    Http(HttpUpstream),
    /// The built-in scripted model.
    Demo(DemoModel),
}

impl Upstream {
    /// The configured name (`demo`, `default`, or a `[upstreams]` name).
    pub fn name(&self) -> &str {
        match self {
            Upstream::Http(http) => http.name(),
            Upstream::Demo(_) => "demo",
        }
    }

    /// Sends a chat request; resolves when the response headers arrived.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        upstream_model: &str,
    ) -> Result<UpstreamResponse, UpstreamError> {
        match self {
            Upstream::Http(http) => {
                http.chat(request.upstream_body(upstream_model), request.stream)
                    .await
            }
            Upstream::Demo(demo) => Ok(demo.chat(request)),
        }
    }
}

/// A resolved destination for one request.
#[derive(Debug, Clone)]
pub struct Route {
    /// Where to send it.
    pub upstream: Arc<Upstream>,
    /// The model name to send.
    pub model: String,
    /// Where it goes when `upstream` cannot answer, in order, with the model name for each.
    pub fallbacks: Vec<(Arc<Upstream>, String)>,
}

impl Route {
    /// The route of the target at `index` of [`targets`](Self::targets) alone: where a
    /// stream's follow-up requests go once that target answered.
    pub fn answered_by(&self, index: usize) -> Route {
        match index.checked_sub(1).and_then(|i| self.fallbacks.get(i)) {
            Some((upstream, model)) => Route {
                upstream: upstream.clone(),
                model: model.clone(),
                fallbacks: Vec::new(),
            },
            None => Route {
                upstream: self.upstream.clone(),
                model: self.model.clone(),
                fallbacks: Vec::new(),
            },
        }
    }

    /// The primary, then each fallback: an upstream and the model name to send it.
    pub fn targets(&self) -> impl Iterator<Item = (&Upstream, &str)> {
        std::iter::once((&*self.upstream, self.model.as_str())).chain(
            self.fallbacks
                .iter()
                .map(|(upstream, model)| (&**upstream, model.as_str())),
        )
    }
}

/// Model name → upstream.
#[derive(Debug)]
pub struct Router {
    /// `UPSTREAM_BASE_URL`, or the demo model.
    default: Arc<Upstream>,
    demo: Arc<Upstream>,
    named: HashMap<String, Arc<Upstream>>,
    aliases: Vec<(String, ModelRoute)>,
    resilience: Resilience,
}

impl Router {
    /// Builds every configured upstream.
    pub fn new(config: &Config, client: reqwest::Client) -> Router {
        let demo = Arc::new(Upstream::Demo(DemoModel::new(config.demo.token_delay)));
        let http = |u: &crate::config::UpstreamConfig| {
            Arc::new(Upstream::Http(HttpUpstream::new(
                u,
                &config.upstreams,
                client.clone(),
                &config.timeouts,
            )))
        };
        let default = config
            .upstreams
            .default
            .as_ref()
            .map_or_else(|| demo.clone(), http);
        let named = config
            .upstreams
            .named
            .iter()
            .map(|(name, u)| (name.clone(), http(u)))
            .collect();
        Router {
            default,
            demo,
            named,
            aliases: config
                .models
                .iter()
                .map(|(a, r)| (a.clone(), r.clone()))
                .collect(),
            resilience: Resilience::new(config.retry, config.breaker),
        }
    }

    /// Sends a chat request along `route`: its targets in order, with retries and circuit
    /// breakers ([`attempts`]); `attempt` gets every attempt, for the record.
    pub async fn send(
        &self,
        route: &Route,
        request: &ChatRequest,
        attempt: impl FnMut(Attempt),
    ) -> Result<Answered, UpstreamError> {
        self.resilience.send(route, request, attempt).await
    }

    /// Whether unrouted models go to the demo model.
    pub fn is_demo(&self) -> bool {
        matches!(*self.default, Upstream::Demo(_))
    }

    /// Where a model goes: an alias's upstream, else the default upstream with the name
    /// unchanged. While the demo model serves (no `UPSTREAM_BASE_URL`), only its own name and
    /// the aliases exist, and any other name is [`UnknownModel`] (404 `model_not_found`, as
    /// OpenAI answers), rather than the demo's script under another model's name. A real
    /// upstream judges names itself.
    pub fn resolve(&self, model: &str) -> Result<Route, UnknownModel> {
        let route = match self.aliases.iter().find(|(alias, _)| alias == model) {
            Some((_, route)) => Route {
                upstream: self.upstream(&route.upstream),
                model: route.model.clone(),
                fallbacks: route
                    .fallbacks
                    .iter()
                    .map(|t| (self.upstream(&t.upstream), t.model.clone()))
                    .collect(),
            },
            None if self.is_demo() && model != DEMO_MODEL => {
                return Err(UnknownModel {
                    model: model.to_owned(),
                    available: std::iter::once(DEMO_MODEL)
                        .chain(self.aliases.iter().map(|(alias, _)| alias.as_str()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            None => Route {
                upstream: self.default.clone(),
                model: model.to_owned(),
                fallbacks: Vec::new(),
            },
        };
        Ok(route)
    }

    /// The upstream a configured name means (names were checked when the config loaded).
    fn upstream(&self, name: &str) -> Arc<Upstream> {
        match name {
            "demo" => self.demo.clone(),
            "default" => self.default.clone(),
            name => self
                .named
                .get(name)
                .cloned()
                .unwrap_or_else(|| self.default.clone()),
        }
    }

    /// The aliases, for `/v1/models`.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &ModelRoute)> {
        self.aliases.iter().map(|(a, r)| (a.as_str(), r))
    }

    /// The default upstream, for listing its models.
    pub fn default_upstream(&self) -> &Upstream {
        &self.default
    }
}

/// Logs each configured upstream with its address at start-up: never its key (only whether it
/// has one), nor credentials or a query in its URL.
pub fn log_configured(upstreams: &crate::config::Upstreams) {
    for upstream in upstreams.default.iter().chain(upstreams.named.values()) {
        tracing::info!(
            upstream = %upstream.name,
            base_url = %address_of(&upstream.base_url),
            with_key = upstream.api_key.is_some(),
            "upstream configured"
        );
    }
}

/// `base_url` without user info, query or fragment.
fn address_of(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod address_tests {
    use super::address_of;

    #[test]
    fn addresses_in_the_log_carry_no_credentials() {
        assert_eq!(
            address_of("https://user:pa55@api.example.com/v1?key=s3cret#x"),
            "https://api.example.com/v1"
        );
        assert_eq!(
            address_of("http://127.0.0.1:8000/v1"),
            "http://127.0.0.1:8000/v1"
        );
    }
}
