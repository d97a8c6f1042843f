//! An OpenAI-compatible HTTP upstream, through `reqwest` (rustls).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, header};

use super::{ErrorReply, UpstreamError, UpstreamResponse};
use crate::config::{Secret, UpstreamConfig};

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
    headers_timeout: Duration,
}

impl HttpUpstream {
    /// An upstream using the shared client.
    pub fn new(
        config: &UpstreamConfig,
        client: reqwest::Client,
        headers_timeout: Duration,
    ) -> HttpUpstream {
        HttpUpstream {
            name: config.name.clone(),
            completions_url: format!("{}/chat/completions", config.base_url),
            models_url: format!("{}/models", config.base_url),
            api_key: config.api_key.clone(),
            client,
            headers_timeout,
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
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let request = self
            .client
            .post(&self.completions_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, accept)
            .body(body);
        let (status, headers, response) = self.send(request).await?;
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| UpstreamError::Body(error_chain(&e))));
        Ok(UpstreamResponse {
            status,
            headers,
            body: Box::pin(body),
        })
    }

    /// The upstream's own model list (`GET /models`), passed through by `/v1/models`.
    pub async fn models(&self) -> Result<serde_json::Value, UpstreamError> {
        let (_, _, response) = self.send(self.client.get(&self.models_url)).await?;
        let body = bounded_body(response).await;
        serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Body(format!("invalid model list: {e}")))
    }

    /// Sends with the upstream's key, bounded by the headers timeout; a non-2xx status becomes
    /// [`UpstreamError::Status`] with the (bounded) body.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<(http::StatusCode, HeaderMap, reqwest::Response), UpstreamError> {
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = tokio::time::timeout(self.headers_timeout, request.send())
            .await
            .map_err(|_| UpstreamError::Timeout {
                upstream: self.name.clone(),
                seconds: self.headers_timeout.as_secs(),
            })?
            .map_err(|e| UpstreamError::Connect {
                upstream: self.name.clone(),
                detail: error_chain(&e),
            })?;
        let status = response.status();
        let headers = passed_headers(response.headers());
        if !status.is_success() {
            let body = bounded_body(response).await;
            return Err(UpstreamError::Status(Box::new(ErrorReply {
                upstream: self.name.clone(),
                status,
                body,
                headers,
            })));
        }
        Ok((status, headers, response))
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

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error response.
async fn bounded_body(response: reqwest::Response) -> Bytes {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
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
