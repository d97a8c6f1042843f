//! Start-up and shutdown: opening the store, choosing the auth mode, serving, and stopping
//! gracefully.
//!
//! Shutdown (ctrl-c or SIGTERM): stop accepting connections; let open streams finish for up
//! to `MIDSTREAM_SHUTDOWN_GRACE_SECS`; then end the rest with an in-band error (recorded as
//! `interrupted`); finally flush the recorder so nothing already recorded is lost.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use midstream_store::{Recorder, Store, StoreError, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::auth::shared_rate::SharedRate;
use crate::config::Config;
use crate::inflight::{Analyzer, InflightConfig};
use crate::listener::ServeOptions;
use crate::rules::RulesError;
use crate::state::AppState;
use crate::upstream::Router;
use midstream_analysis::Action;
use midstream_tools::{Dispatcher, DispatcherConfig, ToolError, ToolsConfig, builtin_registry};

/// After the grace period, how long cut streams get to write their error and close.
const CUT_STREAMS_GRACE: Duration = Duration::from_secs(5);
/// How long the final recorder flush may take.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// No API key exists and the address is not loopback.
    #[error(
        "refusing to run without API keys on {0}, which is not a loopback address: create a key \
         with `midstream keys create` or set MIDSTREAM_API_KEYS, or bind 127.0.0.1"
    )]
    OpenOnPublicAddress(SocketAddr),
    /// The intent rules could not be loaded.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// `[tools]` of `midstream.toml` is not valid.
    #[error("midstream.toml: [tools]: {0}")]
    ToolsConfig(String),
    /// A tool could not be registered.
    #[error("tools: {0}")]
    Tools(#[from] ToolError),
    /// A rule or `[model_tools]` names a tool that is not registered.
    #[error("tools: {named_by} names tool {tool:?}, which is not registered")]
    UnknownTool {
        /// What names it: `intent "NAME"` or `[model_tools] owned`.
        named_by: String,
        /// The tool.
        tool: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// `MIDSTREAM_REDIS_URL` is not a Redis URL.
    #[error("MIDSTREAM_REDIS_URL: {0}")]
    RedisUrl(#[source] redis::RedisError),
    /// The listen address is taken or not permitted.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A built gateway, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    state: AppState,
    inflight: InflightConfig,
    tracker: TaskTracker,
}

impl Gateway {
    /// Opens the store (running migrations and marking interrupted streams), chooses the auth
    /// mode, starts the recorder and builds the upstream clients.
    pub async fn build(config: Config) -> Result<Gateway, StartError> {
        // Install the metrics recorder before anything records a metric.
        crate::telemetry::prometheus::handle();
        let store = Store::connect(
            &config.database_url,
            StoreOptions {
                max_connections: config.db_max_connections,
                instance_id: config.instance_id.clone(),
            },
        )
        .await?;
        let interrupted = store.mark_interrupted().await?;
        if interrupted > 0 {
            tracing::warn!(
                streams = interrupted,
                "marked streams left open by a previous run as interrupted"
            );
        }
        for secret in &config.api_keys {
            store
                .import_api_key("MIDSTREAM_API_KEYS", secret.expose())
                .await?;
        }
        let shared_rate = match config.live.redis_url.as_deref() {
            Some(url) => {
                tracing::info!("per-key limits: requests per minute shared through redis");
                Some(SharedRate::new(url).map_err(StartError::RedisUrl)?)
            }
            None => None,
        };
        let auth = Auth::load(store.clone(), shared_rate).await?;
        if !auth.is_required() {
            if !config.is_loopback() {
                return Err(StartError::OpenOnPublicAddress(config.addr));
            }
            tracing::warn!(
                addr = %config.addr,
                "no API keys: running OPEN on a loopback address; the first `midstream keys create` closes it without a restart"
            );
        }
        let tracker = TaskTracker::new();
        let recorder = Recorder::spawn(store.clone(), config.recorder.clone(), &tracker);
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.upstream_connect)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(StartError::Client)?;
        let inflight = InflightConfig {
            keepalive: config.timeouts.keepalive,
            upstream_idle: config.timeouts.upstream_idle,
            max_stream_duration: config.timeouts.max_stream,
            record_open_wait: config.timeouts.record_open_wait,
            ..InflightConfig::default()
        };
        let analyzer = analyzer(&config, &store, &client, inflight.shutdown.clone())?;
        let router = Router::new(&config, client);
        crate::upstream::log_configured(&config.upstreams);
        if router.is_demo() {
            tracing::info!(
                "no UPSTREAM_BASE_URL: the built-in DEMO MODEL (scripted, not an LLM) answers as `midstream-demo` (and aliases); other model names are 404 model_not_found"
            );
        }
        let hub = hub(&config, &store, inflight.shutdown.clone()).await?;
        let state = AppState {
            inflight: Arc::new(inflight.clone()),
            hub,
            streams: Arc::new(Semaphore::new(config.limits.max_streams)),
            config: Arc::new(config),
            store,
            recorder,
            router: Arc::new(router),
            auth: Arc::new(auth),
            analyzer,
        };
        Ok(Gateway {
            state,
            inflight,
            tracker,
        })
    }

    /// The shared state (for tests that inspect the store).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Binds the configured address.
    pub async fn bind(&self) -> Result<TcpListener, StartError> {
        let addr = self.state.config.addr;
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    }

    /// Serves until `shutdown` resolves, then stops gracefully (see the module docs).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), StartError> {
        let Gateway {
            state,
            inflight,
            tracker,
        } = self;
        let grace = state.config.timeouts.shutdown_grace;
        let recorder = state.recorder.clone();
        let hub = state.hub.clone();
        let cut_streams = inflight.shutdown.clone();
        let stop_accepting = CancellationToken::new();
        let options = ServeOptions {
            max_connections: state.config.limits.max_connections,
            read_timeout: state.config.timeouts.client_read,
            send_timeout: state.config.timeouts.client_send,
        };
        // Tracked like every task; stopped after the last request is served.
        let stop_watching = CancellationToken::new();
        tracker.spawn(state.auth.clone().watch(stop_watching.clone()));
        let app = crate::app::app(state, inflight);
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("listening on http://{addr}");
        }
        let serve = crate::listener::serve(listener, app, options, stop_accepting.clone());
        let mut serve = std::pin::pin!(serve);
        tokio::select! {
            () = &mut serve => {}
            () = shutdown => {
                tracing::info!(grace_secs = grace.as_secs(), "shutting down: no new connections; open streams may finish");
                stop_accepting.cancel();
                if tokio::time::timeout(grace, &mut serve).await.is_err() {
                    tracing::warn!("grace period over: ending the remaining streams");
                    cut_streams.cancel();
                    let _ = tokio::time::timeout(CUT_STREAMS_GRACE, &mut serve).await;
                }
            }
        }
        // Streams started by `POST /v1/streams` run on no connection: they were cut with the
        // others, and their records close before the flush.
        if tokio::time::timeout(CUT_STREAMS_GRACE, hub.detached_ended())
            .await
            .is_err()
        {
            tracing::warn!("streams without a client connection did not end in time");
        }
        let before = recorder.written();
        let flushed = tokio::time::timeout(FLUSH_DEADLINE, recorder.flush())
            .await
            .unwrap_or(false);
        let written = recorder.written();
        if flushed {
            tracing::info!(
                flushed = written - before,
                written_since_start = written,
                "recorder flushed; stopped"
            );
        } else {
            tracing::error!(
                flushed = written - before,
                written_since_start = written,
                "the recorder could not flush everything before exit; stopped"
            );
        }
        drop(recorder);
        stop_watching.cancel();
        tracker.close();
        Ok(())
    }
}

/// The browser streams' hub: the signing secret (configured, or generated once and kept in the
/// database so every process sharing it agrees), the memory log, and the Redis log when
/// configured (unreachable at start is not fatal: it is retried, and said in the log and
/// `/readyz`).
async fn hub(
    config: &Config,
    store: &Store,
    shutdown: CancellationToken,
) -> Result<crate::live::Hub, StartError> {
    use crate::live::{Hub, RedisLog, Signer};
    let live = &config.live;
    let secret = match &live.secret {
        Some(secret) => secret.expose().to_owned(),
        None => {
            let proposed = hex::encode(rand::random::<[u8; 32]>());
            store.setting_or_insert("stream_secret", &proposed).await?
        }
    };
    let shared = match &live.redis_url {
        Some(url) => {
            let log = RedisLog::new(url, live.redis).map_err(StartError::RedisUrl)?;
            match log.ping().await {
                Ok(()) => tracing::info!("event log: memory, shared through redis"),
                Err(error) => {
                    tracing::warn!(%error, "event log: redis is unreachable at start; retrying as streams run")
                }
            }
            Some(log)
        }
        None => None,
    };
    Ok(Hub::new(
        live.clone(),
        Signer::new(secret.as_bytes()),
        shared,
        shutdown,
    ))
}

/// Compiles the rules, registers the tools, and checks that every tool a rule or
/// `[model_tools]` names exists.
fn analyzer(
    config: &Config,
    store: &Store,
    client: &reqwest::Client,
    shutdown: CancellationToken,
) -> Result<Analyzer, StartError> {
    let detector = crate::rules::load_detector(config)?;
    let tools: ToolsConfig = toml::Value::Table(config.file.tools.clone())
        .try_into()
        .map_err(|e: toml::de::Error| StartError::ToolsConfig(e.message().to_owned()))?;
    let registry = builtin_registry(
        &tools,
        store.clone(),
        client.clone(),
        config.weather_default(),
    )?;
    for rule in detector.rules() {
        if let Action::Tool { tool, .. } = &rule.action
            && registry.get(tool).is_none()
        {
            return Err(StartError::UnknownTool {
                named_by: format!("intent {:?}", rule.name),
                tool: tool.clone(),
            });
        }
    }
    if let Some(unknown) = config
        .model_tools
        .owned
        .iter()
        .find(|t| registry.get(t).is_none())
    {
        return Err(StartError::UnknownTool {
            named_by: "[model_tools] owned".to_owned(),
            tool: unknown.clone(),
        });
    }
    let dispatcher = Dispatcher::new(
        registry,
        DispatcherConfig {
            max_concurrent: config.tool_limits.max_concurrent,
            max_per_stream: config.tool_limits.max_per_stream,
            ..DispatcherConfig::default()
        },
    );
    let policy = config.model_tools.clone();
    tracing::info!(rules = detector.rules().len(), tools = ?dispatcher.registry().names().collect::<Vec<_>>(), "inflight analysis ready");
    Ok(Analyzer::new(
        Arc::new(detector),
        dispatcher,
        policy,
        shutdown,
    ))
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
