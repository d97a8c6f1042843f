//! The `Tool` trait: what every tool the gateway can run implements.

use async_trait::async_trait;
use serde_json::Value;

use crate::ToolError;

/// Who is calling, for tools that record it (the calendar notes which stream booked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The stream whose intent started the call, if any.
    pub stream_id: Option<String>,
}

/// A tool the gateway runs while a stream is being forwarded.
///
/// The [`Dispatcher`](crate::Dispatcher) validates the arguments against [`Tool::parameters`]
/// before [`Tool::call`], applies the timeout, and drops the call's future when its stream is
/// cancelled, so an implementation needs no timeout or cancellation logic of its own: it only
/// has to hold nothing across an `.await` that must outlive the call.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The registered name (`weather`), as rules and models refer to it.
    fn name(&self) -> &str;
    /// One sentence for humans and models.
    fn description(&self) -> &str;
    /// JSON Schema of the arguments object.
    fn parameters(&self) -> &Value;
    /// Runs the tool. `args` has already passed the schema.
    async fn call(&self, args: Value, ctx: &CallContext) -> Result<Value, ToolError>;
}
