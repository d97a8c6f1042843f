//! `mock-upstream`: the mock OpenAI upstream as a process, for benchmarks and manual runs.
//!
//! Prints `listening on http://ADDR` as its first stdout line and `weather on http://ADDR` as
//! its second, then serves until Ctrl-C or SIGTERM. Every chat request is answered from the
//! flags, overridden by a `"mock"` object in the request body (see `LoadProfile`);
//! `GET /mock/stats` reports counters. Requests are not recorded and nothing is logged per
//! request, so the mock stays cheap while it shares the machine with the gateway under test.
//!
//! The same process serves the test kit's Open-Meteo-compatible weather API (`MockWeather`:
//! `/v1/search`, `/v1/forecast`) on a second loopback port, so a benchmark of the weather
//! tool needs no second mock process: point both `[tools.weather]` base URLs at it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use midstream_testkit::{LoadProfile, MockUpstream, MockWeather};

/// Mock OpenAI-compatible upstream for MidStream benchmarks.
#[derive(Debug, Parser)]
#[command(name = "mock-upstream", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first stdout line).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Text chunks per answer (at most 100000).
    #[arg(long, default_value_t = 50)]
    tokens: usize,
    /// Milliseconds between chunks.
    #[arg(long, default_value_t = 2)]
    delay_ms: u64,
    /// Milliseconds before the response headers.
    #[arg(long, default_value_t = 0)]
    first_token_delay_ms: u64,
    /// Tokio worker threads; keep it low so the mock leaves the CPU to the gateway.
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// Text whose words the answers cycle through, one word per chunk (default: a fixed
    /// pangram). Benchmarks pass a realistic paragraph that makes intent rules fire.
    #[arg(long)]
    text: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads.max(1))
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(args)),
        Err(error) => {
            eprintln!("mock-upstream: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> ExitCode {
    let mut profile = LoadProfile::new(
        args.tokens,
        Duration::from_millis(args.delay_ms),
        Duration::from_millis(args.first_token_delay_ms),
    );
    if let Some(text) = &args.text {
        profile = profile.with_text(text);
    }
    let started = MockUpstream::builder()
        .addr(args.addr)
        .record_requests(false)
        .load_profile(profile)
        .start()
        .await;
    let mock = match started {
        Ok(mock) => mock,
        Err(error) => {
            eprintln!("mock-upstream: cannot listen on {}: {error}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", mock.addr());
    let weather = MockWeather::start().await;
    println!("weather on {}", weather.base_url());
    shutdown_signal().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminated = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        () = interrupted => {}
        () = terminated => {}
    }
}
