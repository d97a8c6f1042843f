//! Configuration: environment (`MIDSTREAM_*`, `DATABASE_URL`, `OPENAI_API_KEY`,
//! `UPSTREAM_BASE_URL`), `.env` (loaded by the binary), and an optional `midstream.toml`.
//!
//! Everything is read and validated once, at start-up, into [`Config`]. An invalid value
//! stops the start with one line naming the key and the problem ([`ConfigError`]). Every
//! variable, with its default, is documented in `.env.example` and the README.
//!
//! ```
//! use std::collections::HashMap;
//! use midstream_gateway::config::Config;
//!
//! let env = HashMap::from([("MIDSTREAM_ADDR", "127.0.0.1:9000")]);
//! let config = Config::load(&env).expect("valid");
//! assert_eq!(config.addr.port(), 9000);
//! assert!(config.upstreams.default.is_none(), "no UPSTREAM_BASE_URL: the demo model serves");
//! ```

mod env;
mod file;
mod live;
mod resilience;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderValue;
use midstream_store::{RecorderConfig, StoreOptions};
use midstream_tools::{DispatcherConfig, WeatherDefault};

use crate::inflight::{InflightConfig, ModelToolPolicy};
use crate::live::LiveConfig;
use crate::upstream::attempts::{BreakerPolicy, RetryPolicy};
use env::EnvExt;
pub use env::{Env, ProcessEnv};
pub use file::FileConfig;

/// Why the configuration is invalid: one line naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable or key has a value that cannot be used.
    #[error("{key}: {value:?} is not {expected}")]
    Invalid {
        /// The variable or `file: key`.
        key: String,
        /// What was given.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// `midstream.toml` (or the rules file) cannot be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, with the position when the parser knows it.
        message: String,
    },
    /// A value is well-formed but contradicts another one.
    #[error("{key}: {message}")]
    Conflict {
        /// The variable or key at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, value: &str, expected: &str) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: expected.to_owned(),
        }
    }

    fn conflict(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Conflict {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// A secret (an upstream key). Its `Debug` never shows the value, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (default).
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// One OpenAI-compatible upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `default` for `UPSTREAM_BASE_URL`, else the `[upstreams.NAME]` name.
    pub name: String,
    /// Base URL without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<Secret>,
}

/// The upstreams the gateway can route to.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    /// From `UPSTREAM_BASE_URL`; `None` means the built-in demo model serves unrouted models.
    pub default: Option<UpstreamConfig>,
    /// From `[upstreams.NAME]` in `midstream.toml`.
    pub named: BTreeMap<String, UpstreamConfig>,
    /// `HTTP_PROXY` or `ALL_PROXY` (either case) is set: plain-HTTP chat requests then go
    /// through reqwest, which honours them (and `NO_PROXY`), instead of the connections the
    /// streams drive themselves.
    pub proxied: bool,
}

/// Where an alias sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    /// Upstream name: `default`, `demo` or a `[upstreams]` name.
    pub upstream: String,
    /// The model name sent upstream.
    pub model: String,
    /// Where it goes when that upstream cannot answer, in order (`fallbacks = [...]`).
    pub fallbacks: Vec<ModelTarget>,
}

/// One fallback of an alias: an upstream and the model name sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTarget {
    /// Upstream name, as in [`ModelRoute::upstream`].
    pub upstream: String,
    /// The model name sent upstream.
    pub model: String,
}

/// The built-in demo model.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Pause between tokens, like a real model's pacing.
    pub token_delay: Duration,
}

/// Request and capacity bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Most messages in one request (400 beyond).
    pub max_messages: usize,
    /// Most streams open at once in this process (503 beyond).
    pub max_streams: usize,
    /// Most client connections served at once; beyond it new connections wait to be accepted.
    pub max_connections: usize,
    /// Most `/v1` requests per minute in this process, whoever sends them (503 beyond); 0: none.
    pub max_rpm: u32,
}

/// Time bounds.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Connecting to the upstream.
    pub upstream_connect: Duration,
    /// From sending the request to the upstream's response headers.
    pub upstream_headers: Duration,
    /// Longest silence between two upstream chunks before the stream is failed.
    pub upstream_idle: Duration,
    /// Longest a streaming response may run, from its first byte.
    pub max_stream: Duration,
    /// Interval of `: ping` comments on a quiet stream.
    pub keepalive: Duration,
    /// How long shutdown lets open streams finish.
    pub shutdown_grace: Duration,
    /// Longest wait for a stream's row to be committed before its first token is sent anyway
    /// (the row is still written when the database recovers).
    pub record_open_wait: Duration,
    /// A client's request head must arrive whole within this (else the connection is closed),
    /// a kept-alive connection is closed after this long without a request, and each piece of
    /// a request body must arrive within this of the previous one (else 408).
    pub client_read: Duration,
    /// Longest a response write may wait for a client that stopped reading.
    pub client_send: Duration,
}

/// Bounds on tool calls.
#[derive(Debug, Clone)]
pub struct ToolLimits {
    /// Tool calls running at once in the process.
    pub max_concurrent: usize,
    /// Tool calls running at once in one stream.
    pub max_per_stream: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MIDSTREAM_ADDR`.
    pub addr: SocketAddr,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `MIDSTREAM_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `MIDSTREAM_INSTANCE_ID`.
    pub instance_id: String,
    /// `MIDSTREAM_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `UPSTREAM_BASE_URL`, `OPENAI_API_KEY` and `[upstreams]`.
    pub upstreams: Upstreams,
    /// `[models]` aliases.
    pub models: BTreeMap<String, ModelRoute>,
    /// `MIDSTREAM_DEMO_TOKEN_DELAY_MS`.
    pub demo: DemoConfig,
    /// `MIDSTREAM_MAX_*`.
    pub limits: Limits,
    /// `MIDSTREAM_*_TIMEOUT_MS` and friends.
    pub timeouts: Timeouts,
    /// `MIDSTREAM_UPSTREAM_RETR*`: retries of a failed upstream request.
    pub retry: RetryPolicy,
    /// `MIDSTREAM_UPSTREAM_BREAKER_*`: when an upstream is skipped for a while.
    pub breaker: BreakerPolicy,
    /// `MIDSTREAM_RECORDER_*`.
    pub recorder: RecorderConfig,
    /// `MIDSTREAM_API_KEYS`: secrets accepted in addition to keys created with `midstream keys create`.
    pub api_keys: Vec<Secret>,
    /// `MIDSTREAM_CORS_ORIGINS`.
    pub cors_origins: Vec<HeaderValue>,
    /// `MIDSTREAM_WEB_DIR`: the browser app served at `/`.
    pub web_dir: PathBuf,
    /// The rules file: `MIDSTREAM_INTENTS`, else `config/intents.toml` when present.
    pub intents_file: Option<PathBuf>,
    /// `midstream.toml`, when one was loaded.
    pub file: FileConfigSummary,
    /// `[model_tools]`.
    pub model_tools: ModelToolPolicy,
    /// `MIDSTREAM_TOOLS_MAX_CONCURRENT`, `MIDSTREAM_TOOLS_MAX_PER_STREAM`.
    pub tool_limits: ToolLimits,
    /// Browser streams: `MIDSTREAM_STREAM_*`, `MIDSTREAM_EVENT_LOG_*`, `MIDSTREAM_REDIS_*`.
    pub live: LiveConfig,
}

/// What came from `midstream.toml` and is validated by the crates that own it.
#[derive(Debug, Clone, Default)]
pub struct FileConfigSummary {
    /// The file's path, if one was loaded.
    pub path: Option<PathBuf>,
    /// Its `[[intent]]` tables.
    pub intent: Vec<toml::Table>,
    /// Its `[tools]` table.
    pub tools: toml::Table,
}

const DEFAULT_DATABASE_URL: &str = "sqlite://data/midstream.db";
const DEFAULT_CONFIG_FILE: &str = "midstream.toml";
const DEFAULT_INTENTS_FILE: &str = "config/intents.toml";

impl Config {
    /// Reads and validates everything from `env` (and the files it points to).
    pub fn load(env: &dyn Env) -> Result<Config, ConfigError> {
        let file_path = match env.get("MIDSTREAM_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let file = match &file_path {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let upstreams = upstreams(env, &file)?;
        let models = models(&file, &upstreams)?;
        let intents_file = match env.get("MIDSTREAM_INTENTS") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_INTENTS_FILE)).filter(|p| p.exists()),
        };
        // The defaults of what the crates own are theirs: each is defined once, there.
        let store = StoreOptions::default();
        let inflight = InflightConfig::default();
        let recorder = RecorderConfig::default();
        let tools = DispatcherConfig::default();
        let config = Config {
            addr: env.parse_or(
                "MIDSTREAM_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                "a socket address like 127.0.0.1:8080",
            )?,
            database_url: database_url(env)?,
            db_max_connections: u32::try_from(env.positive_or(
                "MIDSTREAM_DB_MAX_CONNECTIONS",
                u64::from(store.max_connections),
            )?)
            .map_err(|_| {
                ConfigError::invalid("MIDSTREAM_DB_MAX_CONNECTIONS", "", "at most 4294967295")
            })?,
            instance_id: env
                .get("MIDSTREAM_INSTANCE_ID")
                .unwrap_or_else(|| default_instance_id(store.instance_id)),
            log_format: match env.get("MIDSTREAM_LOG_FORMAT").as_deref() {
                None | Some("pretty") => LogFormat::Pretty,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "MIDSTREAM_LOG_FORMAT",
                        other,
                        "`pretty` or `json`",
                    ));
                }
            },
            upstreams,
            models,
            demo: DemoConfig {
                token_delay: Duration::from_millis(env.parse_or(
                    "MIDSTREAM_DEMO_TOKEN_DELAY_MS",
                    25,
                    "a number of milliseconds",
                )?),
            },
            limits: Limits {
                max_body_bytes: usize_of(env, "MIDSTREAM_MAX_BODY_BYTES", 4 * 1024 * 1024)?,
                max_messages: usize_of(env, "MIDSTREAM_MAX_MESSAGES", 2048)?,
                max_streams: usize_of(env, "MIDSTREAM_MAX_STREAMS", 20_000)?,
                max_connections: usize_of(env, "MIDSTREAM_MAX_CONNECTIONS", 25_000)?,
                max_rpm: env.parse_or(
                    "MIDSTREAM_MAX_RPM",
                    0,
                    "a number of requests per minute (0: no bound)",
                )?,
            },
            timeouts: Timeouts {
                upstream_connect: millis(env, "MIDSTREAM_UPSTREAM_CONNECT_TIMEOUT_MS", 10_000)?,
                upstream_headers: millis(env, "MIDSTREAM_UPSTREAM_HEADERS_TIMEOUT_MS", 120_000)?,
                upstream_idle: millis(
                    env,
                    "MIDSTREAM_UPSTREAM_IDLE_TIMEOUT_MS",
                    as_millis(inflight.upstream_idle),
                )?,
                max_stream: Duration::from_secs(env.positive_or(
                    "MIDSTREAM_MAX_STREAM_SECS",
                    inflight.max_stream_duration.as_secs(),
                )?),
                keepalive: Duration::from_secs(
                    env.positive_or("MIDSTREAM_KEEPALIVE_SECS", inflight.keepalive.as_secs())?,
                ),
                shutdown_grace: Duration::from_secs(env.parse_or(
                    "MIDSTREAM_SHUTDOWN_GRACE_SECS",
                    30,
                    "a number of seconds",
                )?),
                record_open_wait: millis(
                    env,
                    "MIDSTREAM_RECORD_OPEN_WAIT_MS",
                    as_millis(inflight.record_open_wait),
                )?,
                client_read: millis(env, "MIDSTREAM_CLIENT_READ_TIMEOUT_MS", 30_000)?,
                client_send: millis(env, "MIDSTREAM_CLIENT_SEND_TIMEOUT_MS", 60_000)?,
            },
            recorder: RecorderConfig {
                queue_capacity: usize_of(env, "MIDSTREAM_RECORDER_QUEUE", recorder.queue_capacity)?,
                buffer_limit: usize_of(env, "MIDSTREAM_RECORDER_BUFFER", recorder.buffer_limit)?,
                flush_interval: millis(
                    env,
                    "MIDSTREAM_RECORDER_FLUSH_MS",
                    as_millis(recorder.flush_interval),
                )?,
            },
            api_keys: env
                .list("MIDSTREAM_API_KEYS")
                .into_iter()
                .map(Secret::new)
                .collect(),
            cors_origins: cors_origins(env)?,
            web_dir: PathBuf::from(
                env.get("MIDSTREAM_WEB_DIR")
                    .unwrap_or_else(|| "web".to_owned()),
            ),
            intents_file,
            file: FileConfigSummary {
                path: file_path,
                intent: file.intent,
                tools: file.tools,
            },
            model_tools: file.model_tools,
            tool_limits: ToolLimits {
                max_concurrent: usize_of(
                    env,
                    "MIDSTREAM_TOOLS_MAX_CONCURRENT",
                    tools.max_concurrent,
                )?,
                max_per_stream: usize_of(
                    env,
                    "MIDSTREAM_TOOLS_MAX_PER_STREAM",
                    tools.max_per_stream,
                )?,
            },
            live: live::live_config(env, Duration::ZERO)?,
            retry: resilience::retry_policy(env)?,
            breaker: resilience::breaker_policy(env)?,
        };
        // Subscribers get keep-alives at the same interval as chat clients.
        Ok(Config {
            live: LiveConfig {
                keepalive: config.timeouts.keepalive,
                ..config.live
            },
            ..config
        })
    }

    /// Whether the listen address is loopback-only (open mode is allowed only there).
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }

    /// What the `weather` tool answers from when `[tools.weather]` sets no base URL: demo data
    /// while the demo model serves (no `UPSTREAM_BASE_URL`), so a first run needs no network;
    /// the public Open-Meteo otherwise.
    pub fn weather_default(&self) -> WeatherDefault {
        if self.upstreams.default.is_none() {
            WeatherDefault::DemoData
        } else {
            WeatherDefault::OpenMeteo
        }
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let file_error = |message: String| ConfigError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    toml::from_str(&text).map_err(|e| file_error(one_line(&e.to_string())))
}

/// TOML errors are multi-line with a source excerpt; the start-up error must be one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

fn database_url(env: &dyn Env) -> Result<String, ConfigError> {
    let url = env
        .get("DATABASE_URL")
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    midstream_store::Backend::of_url(&url).map_err(|_| {
        ConfigError::invalid("DATABASE_URL", &url, "a sqlite://… or postgres://… URL")
    })?;
    Ok(url)
}

fn upstreams(env: &dyn Env, file: &FileConfig) -> Result<Upstreams, ConfigError> {
    let default = env
        .get("UPSTREAM_BASE_URL")
        .map(|url| {
            Ok::<_, ConfigError>(UpstreamConfig {
                name: "default".to_owned(),
                base_url: base_url("UPSTREAM_BASE_URL", &url)?,
                api_key: env.get("OPENAI_API_KEY").map(Secret::new),
            })
        })
        .transpose()?;
    let mut named = BTreeMap::new();
    for (name, upstream) in &file.upstreams {
        let key = format!("midstream.toml: upstreams.{name}");
        if name == "default" || name == "demo" {
            return Err(ConfigError::conflict(
                &key,
                "`default` and `demo` are reserved upstream names",
            ));
        }
        let api_key = match &upstream.api_key_env {
            Some(var) => Some(Secret::new(env.get(var).ok_or_else(|| {
                ConfigError::conflict(&key, format!("api_key_env names {var}, which is not set"))
            })?)),
            None => None,
        };
        named.insert(
            name.clone(),
            UpstreamConfig {
                name: name.clone(),
                base_url: base_url(&format!("{key}.base_url"), &upstream.base_url)?,
                api_key,
            },
        );
    }
    let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|key| env.get(key).is_some());
    Ok(Upstreams {
        default,
        named,
        proxied,
    })
}

/// Accepts `http(s)://host[:port][/path]`, trimming a trailing slash so paths join cleanly.
fn base_url(key: &str, raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let valid = trimmed
        .parse::<http::Uri>()
        .ok()
        .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some());
    match valid {
        Some(_) => Ok(trimmed.to_owned()),
        None => Err(ConfigError::invalid(
            key,
            raw,
            "an http:// or https:// URL such as https://api.openai.com/v1",
        )),
    }
}

fn models(
    file: &FileConfig,
    upstreams: &Upstreams,
) -> Result<BTreeMap<String, ModelRoute>, ConfigError> {
    let known = |alias: &str, field: &str, upstream: &str| {
        let configured = match upstream {
            "demo" => true,
            "default" => upstreams.default.is_some(),
            name => upstreams.named.contains_key(name),
        };
        if configured {
            return Ok(upstream.to_owned());
        }
        Err(ConfigError::conflict(
            &format!("midstream.toml: models.{alias}.{field}"),
            format!("no upstream named {upstream:?} is configured"),
        ))
    };
    file.models
        .iter()
        .map(|(alias, route)| {
            let fallbacks = route
                .fallbacks
                .iter()
                .enumerate()
                .map(|(i, target)| {
                    Ok(ModelTarget {
                        upstream: known(
                            alias,
                            &format!("fallbacks[{i}].upstream"),
                            &target.upstream,
                        )?,
                        model: target.model.clone(),
                    })
                })
                .collect::<Result<_, ConfigError>>()?;
            Ok((
                alias.clone(),
                ModelRoute {
                    upstream: known(alias, "upstream", &route.upstream)?,
                    model: route.model.clone(),
                    fallbacks,
                },
            ))
        })
        .collect()
}

fn cors_origins(env: &dyn Env) -> Result<Vec<HeaderValue>, ConfigError> {
    env.list("MIDSTREAM_CORS_ORIGINS")
        .into_iter()
        .map(|origin| {
            let valid = origin
                .parse::<http::Uri>()
                .ok()
                .filter(|u| u.scheme().is_some() && u.host().is_some() && u.path() == "/");
            match (valid, HeaderValue::from_str(&origin)) {
                (Some(_), Ok(value)) => Ok(value),
                _ => Err(ConfigError::invalid(
                    "MIDSTREAM_CORS_ORIGINS",
                    &origin,
                    "a comma-separated list of origins like https://app.example.com",
                )),
            }
        })
        .collect()
}

fn usize_of(env: &dyn Env, key: &'static str, default: usize) -> Result<usize, ConfigError> {
    let value = env.positive_or(key, u64::try_from(default).unwrap_or(u64::MAX))?;
    usize::try_from(value).map_err(|_| ConfigError::invalid(key, &value.to_string(), "smaller"))
}

fn millis(env: &dyn Env, key: &'static str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(env.positive_or(key, default)?))
}

/// A default duration as the milliseconds its variable is given in.
fn as_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The host name, so replicas sharing a database tell their streams apart; `fallback` when
/// there is none.
fn default_instance_id(fallback: String) -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        Config::load(&env)
    }

    #[test]
    fn defaults_serve_the_demo_model_on_loopback_with_sqlite() {
        let config = load(&[("MIDSTREAM_CONFIG", "")]).expect("defaults are valid");
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert!(config.is_loopback());
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert!(config.upstreams.default.is_none());
        assert_eq!(config.weather_default(), WeatherDefault::DemoData);
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.recorder.flush_interval, Duration::from_millis(250));
        let real = load(&[
            ("MIDSTREAM_CONFIG", ""),
            ("UPSTREAM_BASE_URL", "http://127.0.0.1:9/v1"),
        ])
        .expect("valid");
        assert_eq!(real.weather_default(), WeatherDefault::OpenMeteo);
    }

    #[test]
    fn model_tools_are_read_into_the_policy_the_streams_use_with_its_defaults() {
        let config = load(&[("MIDSTREAM_CONFIG", "")]).expect("defaults are valid");
        assert_eq!(config.model_tools, ModelToolPolicy::default());
        let file: FileConfig =
            toml::from_str("[model_tools]\nowned = [\"weather\"]\n").expect("valid");
        assert!(file.model_tools.owned.contains("weather"));
        assert!(!file.model_tools.continue_with_results);
        assert_eq!(
            file.model_tools.max_steps,
            ModelToolPolicy::DEFAULT_MAX_STEPS
        );
        let error =
            toml::from_str::<FileConfig>("[model_tools]\nsteps = 2\n").expect_err("unknown key");
        assert!(
            error.to_string().contains("unknown field `steps`"),
            "{error}"
        );
    }

    #[test]
    fn a_proxy_in_the_environment_is_noticed_in_either_case() {
        for key in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            let config =
                load(&[("MIDSTREAM_CONFIG", ""), (key, "http://proxy:3128")]).expect("valid");
            assert!(config.upstreams.proxied, "{key}");
        }
        let config = load(&[
            ("MIDSTREAM_CONFIG", ""),
            ("HTTPS_PROXY", "http://proxy:3128"),
        ])
        .expect("valid");
        assert!(
            !config.upstreams.proxied,
            "HTTPS_PROXY does not apply to http:// upstreams"
        );
    }

    #[test]
    fn an_invalid_value_names_its_key_in_one_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "MIDSTREAM_ADDR",
                "localhost",
                "MIDSTREAM_ADDR: \"localhost\" is not a socket address",
            ),
            (
                "DATABASE_URL",
                "mysql://x",
                "DATABASE_URL: \"mysql://x\" is not a sqlite",
            ),
            (
                "UPSTREAM_BASE_URL",
                "ftp://x",
                "UPSTREAM_BASE_URL: \"ftp://x\" is not an http",
            ),
            (
                "MIDSTREAM_LOG_FORMAT",
                "xml",
                "MIDSTREAM_LOG_FORMAT: \"xml\" is not `pretty` or `json`",
            ),
            (
                "MIDSTREAM_MAX_STREAMS",
                "0",
                "MIDSTREAM_MAX_STREAMS: \"0\" is not a positive integer",
            ),
            (
                "MIDSTREAM_RECORDER_FLUSH_MS",
                "soon",
                "MIDSTREAM_RECORDER_FLUSH_MS: \"soon\" is not",
            ),
            (
                "MIDSTREAM_CORS_ORIGINS",
                "not a url",
                "MIDSTREAM_CORS_ORIGINS: \"not a url\" is not",
            ),
        ];
        for (key, value, expected) in cases {
            let error = load(&[(key, value)]).expect_err(key).to_string();
            assert!(error.starts_with(expected), "{key}: got {error}");
            assert!(!error.contains('\n'), "{key}: not one line: {error}");
        }
    }

    #[test]
    fn upstream_base_url_is_normalised_and_the_key_is_never_printed() {
        let config = load(&[
            ("UPSTREAM_BASE_URL", "https://api.openai.com/v1/"),
            ("OPENAI_API_KEY", "sk-very-secret"),
        ])
        .expect("valid");
        let upstream = config.upstreams.default.expect("configured");
        assert_eq!(upstream.base_url, "https://api.openai.com/v1");
        assert!(!format!("{upstream:?}").contains("sk-very-secret"));
    }

    #[test]
    fn the_file_is_validated_with_the_key_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "[models]\nfast = { upstream = \"nowhere\", model = \"m\" }\n",
        )
        .expect("write");
        let error = Config::load(&HashMap::from([(
            "MIDSTREAM_CONFIG",
            path.to_str().expect("utf-8"),
        )]))
        .expect_err("unknown upstream");
        assert_eq!(
            error.to_string(),
            "midstream.toml: models.fast.upstream: no upstream named \"nowhere\" is configured"
        );

        std::fs::write(
            &path,
            "[upstreams.openai]\nbase_url = \"https://x\"\ncolour = 1\n",
        )
        .expect("write");
        let error = Config::load(&HashMap::from([(
            "MIDSTREAM_CONFIG",
            path.to_str().expect("utf-8"),
        )]))
        .expect_err("unknown field")
        .to_string();
        assert!(error.contains("unknown field `colour`"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/midstream.example.toml"
        );
        let config = Config::load(&HashMap::from([
            ("MIDSTREAM_CONFIG", path),
            ("OPENAI_API_KEY", "sk-x"),
        ]))
        .expect("the example midstream.toml is valid");
        assert_eq!(
            config.models["fast"],
            ModelRoute {
                upstream: "openai".into(),
                model: "gpt-4o-mini".into(),
                fallbacks: Vec::new(),
            }
        );
    }

    /// An environment that remembers every key the configuration asks for, so the test sees
    /// the variables actually read (names built at run time included), not those spelled in
    /// the source.
    struct RecordingEnv<'a> {
        inner: &'a dyn Env,
        asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
    }

    impl Env for RecordingEnv<'_> {
        fn get(&self, key: &str) -> Option<String> {
            self.asked.borrow_mut().insert(key.to_owned());
            self.inner.get(key)
        }
    }

    /// Every variable [`Config::load`] reads is documented in `.env.example`, and every
    /// documented default is accepted as-is (the file can be copied to `.env` unchanged).
    #[test]
    fn env_example_documents_every_variable() {
        let example = include_str!("../../../../.env.example");
        let mut env: HashMap<&str, &str> = example
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .filter(|(key, _)| *key != "MIDSTREAM_CONFIG")
            .collect();
        // Some keys are read only when another is set: the upstream key only with an upstream.
        env.insert("UPSTREAM_BASE_URL", "https://api.openai.com/v1");
        let recording = RecordingEnv {
            inner: &env,
            asked: Default::default(),
        };
        Config::load(&recording).expect("the documented defaults are valid");
        let asked = recording.asked.into_inner();
        assert!(asked.len() > 20, "{asked:?}");
        // Standard variables such as the proxies are read in either case and documented once, in
        // upper case, commented out because they are not ours to default.
        let documented = |key: &str| {
            example.lines().any(|line| {
                let line = line.strip_prefix("# ").unwrap_or(line);
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('='))
            })
        };
        for key in &asked {
            assert!(
                documented(key) || documented(&key.to_ascii_uppercase()),
                "{key} is read but not in .env.example"
            );
        }
    }
}
