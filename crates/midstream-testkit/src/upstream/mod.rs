//! A mock OpenAI-compatible upstream that misbehaves on demand and records what it sees.
//!
//! Routes: `POST /v1/chat/completions`, `GET /v1/models`, and `GET /mock/stats` (counters
//! as JSON, for load generators). Each chat request gets the next pushed [`Scenario`]
//! (FIFO), or the default one when the queue is empty.
//!
//! ```no_run
//! use std::time::Duration;
//! use midstream_testkit::{MockUpstream, Scenario, Split};
//!
//! # async fn demo() {
//! let mock = MockUpstream::start().await;
//! mock.push(
//!     Scenario::fixture("text-long")
//!         .split(Split::Random { seed: 1, max: 7 })
//!         .delay(Duration::from_millis(5))
//!         .drop_after(20),
//! );
//! // ... point the gateway at mock.base_url(), let its client go away mid-stream ...
//! assert!(mock.wait_for_early_disconnect(Duration::from_secs(5)).await);
//! # }
//! ```
//!
//! # Early disconnects
//!
//! Every response holds a guard from the moment its handler starts until its body has been
//! produced to the end (a scripted abort counts as an end). hyper drops the handler or the
//! body as soon as it reads EOF on the connection (it watches for it even while the body is
//! pending), so a peer that goes away is recorded within milliseconds whether the mock was
//! waiting before the headers, sleeping between frames or stalled; see the crate README for
//! measured latencies.

mod body;
mod data_lines;
mod fixtures;
mod garbage;
mod handlers;
mod load_profile;
mod render;
mod respond;
mod scenario;
mod split;
mod usage;

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use fixtures::{fixture_bytes, fixture_names};
pub use load_profile::{LoadProfile, MAX_LOAD_TOKENS};
pub use scenario::{MockToolCall, Scenario, Split};

use crate::disconnects::{DisconnectLog, EarlyDisconnect};
use crate::recorded::{RecordedRequest, RequestLog};
use crate::server::RunningServer;
use respond::ChatRequest;

/// A running mock upstream on a loopback port; it stops accepting when dropped.
#[derive(Debug)]
pub struct MockUpstream {
    server: RunningServer,
    state: Arc<UpstreamState>,
}

/// Configures a [`MockUpstream`] before it starts (the binary uses this; tests usually
/// call [`MockUpstream::start`]).
#[derive(Debug)]
pub struct MockUpstreamBuilder {
    addr: SocketAddr,
    record_requests: bool,
    fallback: Fallback,
}

/// What a request gets when no scenario is queued.
#[derive(Debug)]
enum Fallback {
    Fixed(Scenario),
    Load(LoadProfile),
}

/// State shared by the handlers.
#[derive(Debug)]
struct UpstreamState {
    /// Pushed scenarios (as many as the test pushes) and the fallback.
    script: Mutex<Script>,
    requests: RequestLog,
    disconnects: DisconnectLog,
    chat_requests: AtomicUsize,
}

#[derive(Debug)]
struct Script {
    queue: VecDeque<Scenario>,
    fallback: Fallback,
}

impl UpstreamState {
    fn next_scenario(&self, request: &ChatRequest) -> Scenario {
        let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(scenario) = script.queue.pop_front() {
            return scenario;
        }
        match &script.fallback {
            Fallback::Fixed(scenario) => scenario.clone(),
            Fallback::Load(profile) => profile.scenario_for(request.mock.as_ref()),
        }
    }
}

impl Default for MockUpstreamBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            record_requests: true,
            fallback: Fallback::Fixed(Scenario::default()),
        }
    }
}

impl MockUpstreamBuilder {
    /// The address to bind (default `127.0.0.1:0`, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Whether to keep every request for [`MockUpstream::requests`] (default yes); a
    /// benchmark turns it off so memory does not grow with the request count.
    pub fn record_requests(mut self, record: bool) -> Self {
        self.record_requests = record;
        self
    }

    /// Answers requests that find the queue empty from this profile and their `"mock"`
    /// object, instead of from the default scenario.
    pub fn load_profile(mut self, profile: LoadProfile) -> Self {
        self.fallback = Fallback::Load(profile);
        self
    }

    /// Binds and starts serving.
    ///
    /// # Errors
    ///
    /// If the address cannot be bound.
    pub async fn start(self) -> io::Result<MockUpstream> {
        let state = Arc::new(UpstreamState {
            script: Mutex::new(Script {
                queue: VecDeque::new(),
                fallback: self.fallback,
            }),
            requests: RequestLog::new(self.record_requests),
            disconnects: DisconnectLog::default(),
            chat_requests: AtomicUsize::new(0),
        });
        let server = RunningServer::bind(self.addr, handlers::router(state.clone())).await?;
        Ok(MockUpstream { server, state })
    }
}

impl MockUpstream {
    /// A builder for a non-default mock (address, recording, load profile).
    pub fn builder() -> MockUpstreamBuilder {
        MockUpstreamBuilder::default()
    }

    /// Starts a mock on `127.0.0.1:0` that answers with [`Scenario::default`] until told
    /// otherwise.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> Self {
        match Self::builder().start().await {
            Ok(mock) => mock,
            Err(error) => panic!("the mock upstream could not bind 127.0.0.1:0: {error}"),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The OpenAI base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// Queues `scenario` (FIFO): each chat request takes the oldest queued scenario.
    pub fn push(&self, scenario: Scenario) {
        self.script().queue.push_back(scenario);
    }

    /// Answers every request that finds the queue empty with `scenario`.
    pub fn set_default(&self, scenario: Scenario) {
        self.script().fallback = Fallback::Fixed(scenario);
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.state
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The requests received on `/v1/...`, oldest first (the 10,000 most recent).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.snapshot()
    }

    /// How many requests were received on `/v1/...`, malformed ones included.
    pub fn request_count(&self) -> usize {
        self.state.requests.total()
    }

    /// How many chat-completion requests were answered with a scenario.
    pub fn chat_completion_count(&self) -> usize {
        self.state.chat_requests.load(Ordering::Relaxed)
    }

    /// How many connections the mock accepted (a client that reuses its connections opens
    /// one per concurrent request).
    pub fn accepted_connections(&self) -> usize {
        self.server.accepted_connections()
    }

    /// How many responses were dropped by the peer before they finished.
    pub fn early_disconnects(&self) -> usize {
        self.state.disconnects.count()
    }

    /// When each early disconnect happened and which tagged scenario it cut short.
    pub fn early_disconnect_log(&self) -> Vec<EarlyDisconnect> {
        self.state.disconnects.records()
    }

    /// Waits until at least one early disconnect has happened (earlier ones count).
    ///
    /// Returns `false` if `timeout` elapsed first.
    pub async fn wait_for_early_disconnect(&self, timeout: Duration) -> bool {
        self.wait_for_early_disconnects(1, timeout).await
    }

    /// Waits until at least `count` early disconnects have happened.
    ///
    /// Returns `false` if `timeout` elapsed first.
    pub async fn wait_for_early_disconnects(&self, count: usize, timeout: Duration) -> bool {
        self.state.disconnects.wait_for(count, timeout).await
    }

    /// Responses whose handler has started and whose body has neither finished nor been
    /// dropped: open upstream streams, from the gateway's point of view.
    pub fn open_responses(&self) -> usize {
        self.state.disconnects.in_flight()
    }
}
