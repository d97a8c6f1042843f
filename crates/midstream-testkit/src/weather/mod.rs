//! A mock Open-Meteo API (geocoding and forecast) that can be slow, fail or send garbage.
//!
//! Paths and shapes are Open-Meteo's, so the weather tool can be pointed at
//! [`MockWeather::base_url`] for both of its base URLs:
//! `GET /v1/search?name=Paris&count=1&language=en&format=json` and
//! `GET /v1/forecast?latitude=..&longitude=..&current=temperature_2m,...&timezone=auto`.
//! The places and their weather are fixed: see [`known_cities`].
//!
//! ```no_run
//! use std::time::Duration;
//! use midstream_testkit::{MockWeather, WeatherMode};
//!
//! # async fn demo() {
//! let weather = MockWeather::start().await;
//! weather.set_mode(WeatherMode::Slow(Duration::from_secs(30)));
//! // ... a tool call with a short timeout gives up ...
//! assert!(weather.wait_for_dropped(Duration::from_secs(5)).await);
//! # }
//! ```

mod cities;
mod handlers;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use cities::{CurrentWeather, KnownCity, known_cities};

use crate::disconnects::DisconnectLog;
use crate::recorded::{RecordedRequest, RequestLog};
use crate::server::RunningServer;

/// How the mock weather API behaves, for every request until changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeatherMode {
    /// Answers at once with the fixed data.
    #[default]
    Ok,
    /// Waits this long, then answers normally (a hung API when long enough).
    Slow(Duration),
    /// Answers with this status (500 if it is not a valid status) and Open-Meteo's error
    /// body, `{"error": true, "reason": ...}`.
    Fail(u16),
    /// Answers `200 application/json` with a body that is not valid JSON.
    Garbage,
}

/// A running mock weather API on a loopback port; it stops accepting when dropped.
#[derive(Debug)]
pub struct MockWeather {
    server: RunningServer,
    state: Arc<WeatherState>,
}

#[derive(Debug)]
struct WeatherState {
    mode: Mutex<WeatherMode>,
    geocoding_calls: AtomicUsize,
    forecast_calls: AtomicUsize,
    /// Requests whose handler was dropped before it answered.
    dropped: DisconnectLog,
    requests: RequestLog,
}

impl WeatherState {
    fn mode(&self) -> WeatherMode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MockWeather {
    /// Starts the API on `127.0.0.1:0` in [`WeatherMode::Ok`].
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> Self {
        let state = Arc::new(WeatherState {
            mode: Mutex::new(WeatherMode::Ok),
            geocoding_calls: AtomicUsize::new(0),
            forecast_calls: AtomicUsize::new(0),
            dropped: DisconnectLog::default(),
            requests: RequestLog::new(true),
        });
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        match RunningServer::bind(addr, handlers::router(state.clone())).await {
            Ok(server) => Self { server, state },
            Err(error) => panic!("the mock weather API could not bind 127.0.0.1:0: {error}"),
        }
    }

    /// `http://127.0.0.1:PORT`, to which `/v1/search` and `/v1/forecast` are appended.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Changes how every following request is answered.
    pub fn set_mode(&self, mode: WeatherMode) {
        *self
            .state
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Requests received on both endpoints (counted as they arrive, whatever the mode).
    pub fn calls(&self) -> usize {
        self.geocoding_calls() + self.forecast_calls()
    }

    /// Requests received on `/v1/search`.
    pub fn geocoding_calls(&self) -> usize {
        self.state.geocoding_calls.load(Ordering::Relaxed)
    }

    /// Requests received on `/v1/forecast`.
    pub fn forecast_calls(&self) -> usize {
        self.state.forecast_calls.load(Ordering::Relaxed)
    }

    /// Requests whose handler was dropped before answering: the client cancelled.
    pub fn dropped(&self) -> usize {
        self.state.dropped.count()
    }

    /// Waits until at least one request has been dropped (earlier ones count).
    ///
    /// Returns `false` if `timeout` elapsed first.
    pub async fn wait_for_dropped(&self, timeout: Duration) -> bool {
        self.state.dropped.wait_for(1, timeout).await
    }

    /// The requests received on both endpoints, oldest first (the 10,000 most recent).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.snapshot()
    }
}
