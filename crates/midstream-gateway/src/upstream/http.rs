//! An OpenAI-compatible HTTP upstream: chat completions to `http://` upstreams over
//! connections their streams drive ([`super::driven`]), everything else through `reqwest`
//! (rustls, HTTP/2 by ALPN).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::driven::DrivenClient;
use super::{ErrorReply, UpstreamBody, UpstreamError, UpstreamResponse};
use crate::config::{Secret, Timeouts, UpstreamConfig, Upstreams};

/// Largest upstream error body kept (to pass through or quote).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Response headers a client may want from the upstream.
const PASSED_HEADERS: &[&str] = &[
    "retry-after",
    "x-request-id",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
];

/// One OpenAI-compatible API.
#[derive(Debug)]
pub struct HttpUpstream {
    name: String,
    completions_url: String,
    models_url: String,
    api_key: Option<Secret>,
    client: reqwest::Client,
    /// Set for `http://` upstreams unless a proxy is configured (see [`Upstreams::proxied`]).
    driven: Option<Arc<DrivenClient>>,
    headers_timeout: Duration,
}

impl HttpUpstream {
    /// An upstream using the shared client.
    pub fn new(
        config: &UpstreamConfig,
        upstreams: &Upstreams,
        client: reqwest::Client,
        timeouts: &Timeouts,
    ) -> HttpUpstream {
        let completions_url = format!("{}/chat/completions", config.base_url);
        let driven = completions_url
            .parse::<http::Uri>()
            .ok()
            .filter(|_| !upstreams.proxied)
            .and_then(|url| DrivenClient::for_url(&url, timeouts.upstream_connect))
            .map(Arc::new);
        HttpUpstream {
            name: config.name.clone(),
            completions_url,
            models_url: format!("{}/models", config.base_url),
            api_key: config.api_key.clone(),
            client,
            driven,
            headers_timeout: timeouts.upstream_headers,
        }
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Posts the request; resolves once the response headers arrived. Non-2xx statuses become
    /// [`UpstreamError::Status`] with the (bounded) body.
    pub async fn chat(
        &self,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let accept = HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        });
        let Some(driven) = &self.driven else {
            let request = self
                .client
                .post(&self.completions_url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, accept)
                .body(body);
            return self.send(request).await;
        };
        let response = self
            .within_headers_timeout(driven.post(&self.driven_headers(accept)?, body.into()))
            .await?
            .map_err(|e| self.connect_error(&e))?;
        let (head, body) = response.into_parts();
        self.accepted(head.status, passed_headers(&head.headers), body)
            .await
    }

    /// The upstream's own model list (`GET /models`), passed through by `/v1/models`.
    pub async fn models(&self) -> Result<serde_json::Value, UpstreamError> {
        let response = self.send(self.client.get(&self.models_url)).await?;
        let body = bounded_body(response.body).await;
        serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Body(format!("invalid model list: {e}")))
    }

    /// The headers of a chat request on a driven connection, with the upstream's key.
    fn driven_headers(&self, accept: HeaderValue) -> Result<HeaderMap, UpstreamError> {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, accept);
        if let Some(key) = &self.api_key {
            let value = HeaderValue::try_from(format!("Bearer {}", key.expose()))
                .map_err(|e| self.connect_error(&e))?;
            headers.insert(header::AUTHORIZATION, value);
        }
        Ok(headers)
    }

    /// Sends through reqwest with the upstream's key, bounded by the headers timeout.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<UpstreamResponse, UpstreamError> {
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = self
            .within_headers_timeout(request.send())
            .await?
            .map_err(|e| self.connect_error(&e))?;
        let status = response.status();
        let headers = passed_headers(response.headers());
        self.accepted(status, headers, response.bytes_stream())
            .await
    }

    /// A 2xx response (with the headers worth passing on) as it goes on; any other status
    /// becomes [`UpstreamError::Status`] with the (bounded) body.
    async fn accepted<E: std::error::Error>(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let body: UpstreamBody =
            Box::pin(body.map(|chunk| chunk.map_err(|e| UpstreamError::Body(error_chain(&e)))));
        if !status.is_success() {
            return Err(UpstreamError::Status(Box::new(ErrorReply {
                upstream: self.name.clone(),
                status,
                body: bounded_body(body).await,
                headers,
            })));
        }
        Ok(UpstreamResponse { headers, body })
    }

    async fn within_headers_timeout<T>(
        &self,
        response: impl Future<Output = T>,
    ) -> Result<T, UpstreamError> {
        tokio::time::timeout(self.headers_timeout, response)
            .await
            .map_err(|_| UpstreamError::Timeout {
                upstream: self.name.clone(),
                seconds: self.headers_timeout.as_secs(),
            })
    }

    fn connect_error(&self, error: &dyn std::error::Error) -> UpstreamError {
        UpstreamError::Connect {
            upstream: self.name.clone(),
            detail: error_chain(error),
        }
    }
}

fn passed_headers(headers: &HeaderMap) -> HeaderMap {
    PASSED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?;
            Some((HeaderName::from_static(name), value.clone()))
        })
        .collect()
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a response.
async fn bounded_body(mut stream: UpstreamBody) -> Bytes {
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    Bytes::from(body)
}

/// reqwest's top-level message is vague ("error sending request"); the cause says why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
