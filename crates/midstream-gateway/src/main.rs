//! `midstream`: run the gateway, or manage API keys.
//!
//! The process uses the system allocator. mimalloc saved a few per cent of CPU per stream, but
//! with hyper's per-connection buffers it kept ≈ 21 KB more resident memory per idle stream
//! (57 against 36 KB, `BENCHMARKS.md`), and memory per held stream is what limits a gateway.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use midstream_gateway::config::{Config, ProcessEnv};
use midstream_gateway::server::{Gateway, shutdown_signal};
use midstream_store::{Store, StoreOptions};

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
    /// Create a key and print its secret (shown only this once).
    Create {
        /// A label for the key.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List keys (without secrets).
    List,
    /// Revoke a key by id.
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
        KeysAction::Create { name } => {
            let created = store
                .create_api_key(&name, rand::random())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", created.secret);
            eprintln!(
                "created key {} ({}); the secret above is shown only once. Restart the gateway if it was running without keys.",
                created.key.id, created.key.name
            );
        }
        KeysAction::List => {
            for key in store.list_api_keys().await.map_err(|e| e.to_string())? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}…\t{state}", key.id, key.name, key.prefix);
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
