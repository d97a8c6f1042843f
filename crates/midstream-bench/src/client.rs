//! One HTTP/1.1 connection per client, on hyper directly: no pool, no retries, nothing
//! between the socket and the measurement.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Talking to the server failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("invalid URL {0:?}: expected http://host[:port][/path]")]
    InvalidUrl(String),
    /// The host name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// A `--header` is not `Name: value`.
    #[error("invalid header {0:?}: expected `Name: value`")]
    InvalidHeader(String),
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The HTTP exchange failed (handshake, request or response body).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// A non-JSON answer where JSON was expected.
    #[error("invalid JSON from {path}: {source}")]
    Json {
        /// The path requested.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

impl ClientError {
    /// A short, stable name for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Http(error) if error.is_timeout() => "timeout",
            Self::Http(_) => "http",
            Self::Json { .. } => "json",
            Self::InvalidUrl(_) | Self::Resolve(_) | Self::InvalidHeader(_) => "config",
        }
    }
}

/// Where requests go: a resolved address and the URL's path prefix.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    authority: HeaderValue,
    path_prefix: String,
}

impl Target {
    /// Parses and resolves `base` (`http://127.0.0.1:8080/v1`).
    pub async fn resolve(base: &str) -> Result<Self, ClientError> {
        let invalid = || ClientError::InvalidUrl(base.to_owned());
        let uri: Uri = base.parse().map_err(|_| invalid())?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid());
        }
        let authority = uri.authority().ok_or_else(invalid)?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ClientError::Resolve(authority.to_string()))?;
        Ok(Self {
            addr,
            authority: HeaderValue::from_str(authority.as_str()).map_err(|_| invalid())?,
            path_prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `prefix + path`, e.g. `/v1` + `/chat/completions`.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.path_prefix)
    }

    /// A `GET` of `path` (under the prefix) on a fresh connection, read whole, as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let path = self.path(path);
        let body = self.get(&path).await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Json { path, source })
    }

    /// A `GET` of `path_and_query` as it is (from the server's root) on a fresh connection,
    /// read whole.
    pub async fn get(&self, path_and_query: &str) -> Result<Bytes, ClientError> {
        let mut connection = Connection::open(self).await?;
        let body = connection
            .send(self.get_request(path_and_query, "*/*")?)
            .await?
            .into_body()
            .collect()
            .await?;
        Ok(body.to_bytes())
    }

    /// A bodiless `GET` of `path_and_query` (from the server's root) accepting `accept`.
    fn get_request(
        &self,
        path_and_query: &str,
        accept: &'static str,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = path_and_query
            .parse()
            .map_err(|_| ClientError::InvalidUrl(path_and_query.to_owned()))?;
        let headers = request.headers_mut();
        headers.insert(HOST, self.authority.clone());
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        Ok(request)
    }
}

/// The fixed parts of every request of a run: path, headers; the body varies.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    target: Target,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl RequestTemplate {
    /// `POST {base}/chat/completions` with JSON and SSE headers plus `headers`
    /// (`Name: value` each).
    pub fn chat(target: Target, headers: &[String]) -> Result<Self, ClientError> {
        Self::post(target, "/chat/completions", headers)
    }

    /// `POST {base}{path}`, otherwise as [`chat`](Self::chat).
    pub fn post(target: Target, path: &str, headers: &[String]) -> Result<Self, ClientError> {
        let headers = headers
            .iter()
            .map(|header| {
                let invalid = || ClientError::InvalidHeader(header.clone());
                let (name, value) = header.split_once(':').ok_or_else(invalid)?;
                Ok((
                    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid())?,
                    HeaderValue::from_str(value.trim()).map_err(|_| invalid())?,
                ))
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(Self {
            path: target.path(path),
            target,
            headers,
        })
    }

    /// Where the requests go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The request carrying `body`.
    pub fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        if let Ok(uri) = self.path.parse() {
            *request.uri_mut() = uri;
        }
        let headers = request.headers_mut();
        headers.insert(HOST, self.target.authority.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        request
    }

    /// A `GET` of `path_and_query` (from the server's root, as a server's answer gave it)
    /// for `text/event-stream`, without the template's headers: an `EventSource` sends none.
    pub fn get_events(&self, path_and_query: &str) -> Result<Request<Full<Bytes>>, ClientError> {
        self.target.get_request(path_and_query, "text/event-stream")
    }
}

/// One open HTTP/1.1 connection. Its socket is driven by a task that this handle owns:
/// dropping the handle (or [`close`](Self::close)) aborts the task, which closes the socket.
#[derive(Debug)]
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Connection {
    /// Connects (with `TCP_NODELAY`, as SDK clients do) and performs the HTTP/1 handshake.
    pub async fn open(target: &Target) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(ClientError::Connect)?;
        tcp.set_nodelay(true).map_err(ClientError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
        // Owned by `driver`: aborted when this handle goes. Errors surface on the response.
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, driver })
    }

    /// Whether another request may be sent (the server did not close, the last body was read).
    pub fn is_reusable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `request` once the connection is ready; resolves with the response head.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, ClientError> {
        self.sender.ready().await?;
        Ok(self.sender.send_request(request).await?)
    }

    /// Closes the socket now and waits until it is closed.
    pub async fn close(&mut self) {
        self.driver.abort();
        let _ = (&mut self.driver).await;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_base_url_resolves_to_its_address_and_prefix() {
        let target = Target::resolve("http://127.0.0.1:9/v1/")
            .await
            .expect("valid");
        assert_eq!(target.addr, SocketAddr::from(([127, 0, 0, 1], 9)));
        assert_eq!(target.path("/chat/completions"), "/v1/chat/completions");
        let bare = Target::resolve("http://127.0.0.1:9").await.expect("valid");
        assert_eq!(bare.path("/mock/stats"), "/mock/stats");
        for bad in ["https://127.0.0.1/v1", "127.0.0.1:9", "not a url"] {
            assert!(Target::resolve(bad).await.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn requests_carry_the_template_headers() {
        let target = Target::resolve("http://127.0.0.1:9/v1")
            .await
            .expect("valid");
        let template =
            RequestTemplate::chat(target.clone(), &["X-Midstream-Events: off".to_owned()])
                .expect("valid header");
        let request = template.request(Bytes::from_static(b"{}"));
        assert_eq!(request.uri(), "/v1/chat/completions");
        assert_eq!(request.headers()["x-midstream-events"], "off");
        assert_eq!(request.headers()[HOST], "127.0.0.1:9");
        let events = template
            .get_events("/v1/streams/s1/events?token=t")
            .expect("a path and query");
        assert_eq!(events.method(), Method::GET);
        assert_eq!(events.uri(), "/v1/streams/s1/events?token=t");
        assert_eq!(events.headers()[ACCEPT], "text/event-stream");
        assert!(
            !events.headers().contains_key("x-midstream-events"),
            "an EventSource sends no headers of its own"
        );
        assert!(template.get_events("no path").is_err());
        let streams = RequestTemplate::post(target.clone(), "/streams", &[]).expect("valid");
        assert_eq!(streams.request(Bytes::new()).uri(), "/v1/streams");
        assert!(RequestTemplate::chat(target, &["no colon".to_owned()]).is_err());
    }
}
