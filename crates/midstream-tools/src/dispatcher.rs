//! The dispatcher: runs tool calls for every stream, bounded globally and per stream.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{StreamTools, ToolCache, ToolRegistry};

/// Bounds of the [`Dispatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Tool executions running at once in the whole process (at least 1). A call that finds
    /// none free waits for one until its timeout, then ends `Overloaded`. Cache hits and calls
    /// sharing an identical execution take no slot.
    pub max_concurrent: usize,
    /// Calls of one stream in flight at once (at least 1). A call started beyond it is refused at
    /// once with `Overloaded`: queueing would need a second bound, and a stream asking for this
    /// many tools at once is a runaway model, not a user.
    pub max_per_stream: usize,
    /// Distinct calls one stream may start in its life; further ones are refused with
    /// `Overloaded`. Bounds the per-stream duplicate-detection table.
    pub max_calls_per_stream: usize,
    /// Results kept in the [`ToolCache`], in entries.
    pub cache_capacity: u64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            max_concurrent: 256,
            max_per_stream: 8,
            max_calls_per_stream: 256,
            cache_capacity: 10_000,
        }
    }
}

/// What every stream's [`StreamTools`] shares.
pub(crate) struct Shared {
    pub(crate) registry: ToolRegistry,
    pub(crate) cache: ToolCache,
    pub(crate) executions: Semaphore,
    pub(crate) config: DispatcherConfig,
}

/// Runs tool calls for all streams: one per process, cheap to clone (shared inside).
///
/// Each stream gets its own [`StreamTools`] from [`Dispatcher::stream`]; the handle owns that
/// stream's calls and cancels them when it is dropped.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl Dispatcher {
    /// A dispatcher for the tools in `registry`.
    pub fn new(registry: ToolRegistry, config: DispatcherConfig) -> Self {
        let config = DispatcherConfig {
            max_concurrent: config.max_concurrent.clamp(1, Semaphore::MAX_PERMITS),
            max_per_stream: config.max_per_stream.max(1),
            ..config
        };
        Dispatcher {
            shared: Arc::new(Shared {
                registry,
                cache: ToolCache::new(config.cache_capacity),
                executions: Semaphore::new(config.max_concurrent),
                config,
            }),
        }
    }

    /// The tools it runs.
    pub fn registry(&self) -> &ToolRegistry {
        &self.shared.registry
    }

    /// The shared result cache.
    pub fn cache(&self) -> &ToolCache {
        &self.shared.cache
    }

    /// Its bounds (after clamping to at least 1).
    pub fn config(&self) -> &DispatcherConfig {
        &self.shared.config
    }

    /// A per-stream handle. `cancel` is a child of the gateway's shutdown token (or the stream's
    /// own token): cancelling it ends every call of the handle with `Cancelled`. The handle
    /// takes a child of it, so [`StreamTools::cancel_all`] does not cancel `cancel` itself.
    pub fn stream(&self, stream_id: Option<String>, cancel: CancellationToken) -> StreamTools {
        StreamTools::new(Arc::clone(&self.shared), stream_id, cancel.child_token())
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("registry", &self.shared.registry)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}
