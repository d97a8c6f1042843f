//! MidStream tools: the [`Tool`] trait, the [`ToolRegistry`], the [`Dispatcher`] that runs calls
//! while a stream keeps flowing, the [`ToolCache`], and the built-in `weather` and `calendar`
//! tools (docs/architecture.md, "Tools and the dispatcher").
//!
//! The gateway builds one [`Dispatcher`] at start-up and asks it for a [`StreamTools`] per
//! stream. [`StreamTools::start`] returns at once (emit `tool.started`); the stream's body polls
//! [`StreamTools::poll_outcome`] for finished calls (emit `tool.result` / `tool.error`) while it
//! forwards tokens; dropping the handle cancels whatever is still running.
//!
//! ```
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use midstream_tools::{
//!     CallContext, Dispatcher, DispatcherConfig, Start, Tool, ToolError, ToolRegistry,
//!     ToolSettings,
//! };
//! use serde_json::{Value, json};
//! use tokio_util::sync::CancellationToken;
//!
//! /// Says hello to whoever is named.
//! struct Greet {
//!     parameters: Value,
//! }
//!
//! #[async_trait]
//! impl Tool for Greet {
//!     fn name(&self) -> &str {
//!         "greet"
//!     }
//!     fn description(&self) -> &str {
//!         "Greets someone by name."
//!     }
//!     fn parameters(&self) -> &Value {
//!         &self.parameters
//!     }
//!     async fn call(&self, args: Value, _ctx: &CallContext) -> Result<Value, ToolError> {
//!         Ok(json!({ "greeting": format!("Hello, {}!", args["name"].as_str().unwrap_or("you")) }))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ToolError> {
//! let mut registry = ToolRegistry::new();
//! let parameters = json!({
//!     "type": "object",
//!     "properties": { "name": { "type": "string" } },
//!     "required": ["name"],
//! });
//! registry.register(Arc::new(Greet { parameters }), ToolSettings::default())?;
//! let dispatcher = Dispatcher::new(registry, DispatcherConfig::default());
//!
//! let shutdown = CancellationToken::new();
//! let mut tools = dispatcher.stream(Some("stream-1".into()), shutdown.child_token());
//! let Start::Started { call_id } = tools.start("greet", json!({ "name": "Ada" })) else {
//!     unreachable!("the first call of a stream is never a duplicate");
//! };
//! // A rule firing twice on the same text does not run the tool twice.
//! assert!(matches!(tools.start("greet", json!({ "name": "Ada" })), Start::Duplicate { .. }));
//!
//! let outcome = tools.next_outcome().await.expect("one call is in flight");
//! assert_eq!(outcome.call_id, call_id);
//! assert_eq!(*outcome.result?, json!({ "greeting": "Hello, Ada!" }));
//! assert!(tools.next_outcome().await.is_none());
//! # Ok(())
//! # }
//! ```

pub mod builtin;
mod cache;
mod call;
mod canonical;
mod config;
mod dispatcher;
mod error;
pub mod metric;
mod registry;
mod stream;
mod tool;

pub use cache::{CacheOutcome, ToolCache};
pub use canonical::canonical_json;
pub use config::{CalendarSection, ToolsConfig, WeatherDefault, WeatherSection, builtin_registry};
pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use error::ToolError;
pub use registry::{RegisteredTool, ToolDescription, ToolRegistry, ToolSettings};
pub use stream::{Start, StreamTools, ToolOutcome};
pub use tool::{CallContext, Tool};
