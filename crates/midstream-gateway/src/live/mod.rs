//! Browser streams: a stream's events kept in an event log, so that `EventSource` clients (and
//! the AI SDK's `useChat`) can follow a stream, drop, and resume it exactly — on this process
//! or, with Redis, on another.
//!
//! The stream's [`StreamRecord`](crate::inflight::StreamRecord) writes what the client was sent
//! into a [`Producer`]; the producer numbers the events and hands them to the logs once per
//! upstream read. Subscribers read a log from the seq they last saw ([`feed`]).
//!
//! | file | job |
//! | --- | --- |
//! | `event.rs` | [`LiveEvent`], its SSE form |
//! | `log.rs` | the [`EventLog`] trait, [`Snapshot`] |
//! | `memory.rs` | [`MemoryLog`], the default |
//! | `redis.rs` | [`RedisLog`], shared by processes |
//! | `producer.rs` | [`Producer`]: a stream's writing end |
//! | `hub.rs` | [`Hub`]: logs, running streams, chats, signer |
//! | `feed.rs` | a subscriber's reads: log, gaps, the database fallback |
//! | `token.rs` | [`Signer`]: the signed tokens of `events_url` |
//! | `ui_stream.rs` | the AI SDK UI message stream encoding |
//! | `config.rs` | [`LiveConfig`] |

mod config;

/// A map keyed by stream id, hashed with foldhash (seeded per process) instead of SipHash: a
/// followed stream looks its log up once per flush and per read, and SipHash was a tenth of
/// what following cost (BENCHMARKS.md).
type StreamMap<V> = foldhash::HashMap<std::sync::Arc<str>, V>;

mod event;
pub mod feed;
mod hub;
mod log;
mod memory;
mod producer;
mod redis;
mod token;
pub mod ui_stream;

pub use config::LiveConfig;
pub use event::{EventKind, LiveEvent, sse_frame};
pub use hub::Hub;
pub use log::{EventLog, Gap, LogError, LogRead, Snapshot};
pub use memory::{MemoryBounds, MemoryLog};
pub use producer::{Producer, Publish};
pub use redis::{Control, RedisBounds, RedisLog};
pub use token::Signer;
