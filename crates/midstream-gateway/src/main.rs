//! `midstream`: run the gateway, or manage API keys.
//!
//! The process uses the system allocator. mimalloc saved a few per cent of CPU per stream, but
//! with hyper's per-connection buffers it kept ≈ 21 KB more resident memory per idle stream
//! (57 against 36 KB, `BENCHMARKS.md`), and memory per held stream is what limits a gateway.

use std::num::NonZeroU32;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use midstream_gateway::config::{Config, ProcessEnv};
use midstream_gateway::server::{Gateway, shutdown_signal};
use midstream_store::{KeyOptions, Store, StoreOptions};

/// MidStream: a real-time gateway for LLM streams.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the default). Configuration comes from the environment, `.env` and
    /// `midstream.toml`; see `.env.example`.
    Serve,
    /// Check that a running gateway is ready (GET /readyz on MIDSTREAM_ADDR); exit 0 if so.
    /// For container health checks, which then need no curl in the image.
    Probe,
    /// Manage API keys (stored hashed in DATABASE_URL).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create a key and print its secret (shown only this once). Running gateways sharing the
    /// database accept it within a second; a gateway running open starts requiring keys.
    Create {
        /// A label for the key.
        #[arg(long, default_value = "default")]
        name: String,
        /// Refuse the key after this long: a number with a unit, `s`, `m`, `h` or `d` (`90d`).
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<std::time::Duration>,
        /// The key's own limit of requests per minute (429 with `Retry-After` beyond it).
        #[arg(long)]
        rpm: Option<NonZeroU32>,
        /// The key's own limit of streams open at once (429 beyond it).
        #[arg(long)]
        max_streams: Option<NonZeroU32>,
    },
    /// List keys (without secrets).
    List,
    /// Revoke a key by id; every gateway sharing the database refuses it within a second.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A missing `.env` is normal; a malformed one is reported by the config errors it causes.
    let _ = dotenvy::dotenv();
    let config = match Config::load(&ProcessEnv) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("midstream: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    midstream_gateway::telemetry::logging::init(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("midstream: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Probe => probe(&config).await,
            Command::Keys { action } => keys(config, action).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("midstream: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let gateway = Gateway::build(config).await.map_err(|e| e.to_string())?;
    let listener = gateway.bind().await.map_err(|e| e.to_string())?;
    gateway
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn probe(config: &Config) -> Result<(), String> {
    let mut addr = config.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/readyz"))
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| format!("probe: {addr} is not answering: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "probe: {addr} is not ready ({})",
            response.status()
        ))
    }
}

async fn keys(config: Config, action: KeysAction) -> Result<(), String> {
    let store = Store::connect(
        &config.database_url,
        StoreOptions {
            max_connections: 1,
            instance_id: config.instance_id.clone(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    match action {
        KeysAction::Create {
            name,
            expires_in,
            rpm,
            max_streams,
        } => {
            let expires_at = expires_in.map(|ttl| {
                let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
                midstream_store::clock::now_ms().saturating_add(ttl)
            });
            let options = KeyOptions {
                expires_at,
                rpm: rpm.map(NonZeroU32::get),
                max_streams: max_streams.map(NonZeroU32::get),
            };
            let created = store
                .create_api_key(&name, rand::random(), options)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", created.secret);
            eprintln!(
                "created key {} ({}); the secret above is shown only once",
                created.key.id, created.key.name
            );
        }
        KeysAction::List => {
            let now = midstream_store::clock::now_ms();
            println!("id\tname\tprefix\tstate\texpires_at_ms\trpm\tmax_streams");
            for key in store.list_api_keys().await.map_err(|e| e.to_string())? {
                let state = match (key.revoked_at, key.is_active_at(now)) {
                    (Some(_), _) => "revoked",
                    (None, false) => "expired",
                    (None, true) => "active",
                };
                let or_dash = |n: Option<i64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
                println!(
                    "{}\t{}\t{}…\t{state}\t{}\t{}\t{}",
                    key.id,
                    key.name,
                    key.prefix,
                    or_dash(key.expires_at),
                    or_dash(key.rpm),
                    or_dash(key.max_streams)
                );
            }
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_api_key(&id).await.map_err(|e| e.to_string())? {
                return Err(format!("no active key with id {id}"));
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

/// `--expires-in`: `30s`, `15m`, `12h`, `90d`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h or d (e.g. 90d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number (e.g. 90d)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    number
        .checked_mul(seconds)
        .filter(|&s| s > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} must be more than zero and less than forever"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn expiry_durations_need_a_unit() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        for bad in ["90", "d", "0h", "5w", "-1d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
