//! [`TestApp`]: the real gateway on `127.0.0.1:0`, configured through an environment map
//! (never the process environment), with its own SQLite file or a fresh PostgreSQL database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use midstream_gateway::config::Config;
use midstream_gateway::server::{Gateway, StartError};
use midstream_store::Store;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which database the app records into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file in the app's temporary directory (the default).
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Configures a [`TestApp`].
#[derive(Debug)]
pub struct TestAppBuilder {
    env: HashMap<String, String>,
    database: Database,
    /// Holds the SQLite file and the written `midstream.toml`; the [`TestApp`] keeps it, so it
    /// is removed when the app is dropped.
    dir: TempDir,
}

impl TestAppBuilder {
    /// Sets an environment variable of the app's configuration.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.insert(key.to_owned(), value.into());
        self
    }

    /// Sends unrouted models to this upstream (e.g. a [`crate::MockUpstream`]'s base URL).
    pub fn upstream(self, base_url: impl Into<String>) -> Self {
        self.env("UPSTREAM_BASE_URL", base_url)
    }

    /// Records into PostgreSQL instead of SQLite.
    pub fn postgres(mut self) -> Self {
        self.database = Database::Postgres;
        self
    }

    /// Loads the repository's default rules (`config/intents.toml`).
    pub fn default_rules(self) -> Self {
        let path = repository_root().join("config/intents.toml");
        self.env("MIDSTREAM_INTENTS", path.display().to_string())
    }

    /// Writes `toml` to a file and uses it as `midstream.toml`.
    pub fn config_file(self, toml: &str) -> Self {
        let path = self.dir.path().join("midstream.toml");
        std::fs::write(&path, toml).expect("write the test midstream.toml");
        self.env("MIDSTREAM_CONFIG", path.display().to_string())
    }

    /// Writes a `midstream.toml` that points the weather tool at `weather` (both its geocoding
    /// and forecast APIs; the tool's default timeout).
    pub fn weather_api(self, weather: &crate::MockWeather) -> Self {
        self.config_file(&format!(
            "[tools.weather]\ngeocoding_base_url = \"{0}\"\nforecast_base_url = \"{0}\"\n",
            weather.base_url()
        ))
    }

    /// Builds and starts the gateway; panics with the start-up error if it cannot start.
    pub async fn start(self) -> TestApp {
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("the gateway did not start: {e}"))
    }

    /// Builds and starts the gateway, returning the start-up error (for tests of start-up refusals).
    pub async fn try_start(mut self) -> Result<TestApp, String> {
        let database_url = match self.database {
            Database::Sqlite => format!("sqlite://{}/midstream.db", self.dir.path().display()),
            Database::Postgres => midstream_store::testing::fresh_postgres_url().await,
        };
        self.env
            .entry("DATABASE_URL".to_owned())
            .or_insert(database_url);
        let config = Config::load(&self.env).map_err(|e| e.to_string())?;
        let gateway = Gateway::build(config).await.map_err(|e| e.to_string())?;
        let store = gateway.state().store.clone();
        let recorder = gateway.state().recorder.clone();
        let listener = gateway.bind().await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(gateway.serve(listener, signal));
        Ok(TestApp {
            addr,
            store,
            recorder,
            client: reqwest::Client::new(),
            shutdown,
            task: Some(task),
            _dir: self.dir,
        })
    }
}

/// A running gateway. Dropping it stops the server.
#[derive(Debug)]
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database, to inspect the record directly.
    pub store: Store,
    recorder: midstream_store::Recorder,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), StartError>>>,
    /// The app's files, removed when it is dropped.
    _dir: TempDir,
}

impl TestApp {
    /// A builder with test defaults: 127.0.0.1:0, a fresh SQLite file, the demo model at 1 ms
    /// per token, no rules.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: HashMap::from([
                ("MIDSTREAM_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
                ("MIDSTREAM_DEMO_TOKEN_DELAY_MS".to_owned(), "1".to_owned()),
                ("MIDSTREAM_INTENTS".to_owned(), "/dev/null".to_owned()),
                (
                    "MIDSTREAM_WEB_DIR".to_owned(),
                    repository_root().join("web").display().to_string(),
                ),
            ]),
            database: Database::Sqlite,
            dir: tempfile::Builder::new()
                .prefix("midstream-test-")
                .tempdir()
                .expect("create a temp dir"),
        }
    }

    /// The gateway with the defaults.
    pub async fn start() -> TestApp {
        TestApp::builder().start().await
    }

    /// The gateway with the default rules (`config/intents.toml`) in front of `mock`.
    pub async fn with_rules_before(mock: &crate::MockUpstream) -> TestApp {
        TestApp::builder()
            .default_rules()
            .upstream(mock.base_url())
            .start()
            .await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A full URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET` a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `POST /v1/chat/completions` with a JSON body.
    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// Waits until every record sent so far is written.
    pub async fn flush(&self) {
        assert!(self.recorder.flush().await, "the recorder flushed");
    }

    /// After a flush, asserts that no stream in the database is still `streaming` and no tool
    /// call still `running`: for fault tests, once every stream they started has ended.
    pub async fn assert_records_closed(&self) {
        self.flush().await;
        let (streams, calls) = self
            .store
            .unclosed_records()
            .await
            .expect("the sweep query runs");
        assert_eq!(
            (streams, calls),
            (0, 0),
            "(streams still streaming, tool calls still running) after every stream ended"
        );
    }

    /// `GET /v1/streams/{id}` after a flush.
    pub async fn record(&self, stream_id: &str) -> Value {
        self.flush().await;
        let response = self
            .client
            .get(self.url(&format!("/v1/streams/{stream_id}")))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status(), 200, "the record of {stream_id} exists");
        response.json().await.expect("the record is JSON")
    }

    /// Stops the server gracefully and returns how it ended. The app's files (its SQLite
    /// database) stay until the app is dropped, so the record can still be read afterwards.
    pub async fn stop(&mut self) -> Result<(), String> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(join) => Err(join.to_string()),
            },
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The stream id every gateway response carries (`X-Midstream-Stream-Id`).
///
/// # Panics
///
/// If the response has none.
pub fn stream_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-midstream-stream-id")
        .and_then(|v| v.to_str().ok())
        .expect("every response names its stream")
        .to_owned()
}

/// The repository root (this crate lives in `crates/midstream-testkit`).
pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
