//! Metric names, so the gateway's `/metrics` documentation and this crate agree.
//!
//! Every metric has the label `tool` (the registered name, or [`UNKNOWN_TOOL`]).

/// Counter: cached-tool calls served without running the tool (a stored result, or a share
/// of an identical execution already running). Hits and misses are counted when the lookup
/// ends, so a call cancelled while it waits counts as neither.
pub const CACHE_HITS: &str = "midstream_tool_cache_hits_total";
/// Counter: cached-tool calls that found no result to reuse: they ran the tool, or shared an
/// execution that failed.
pub const CACHE_MISSES: &str = "midstream_tool_cache_misses_total";
/// Counter: finished calls, with the label `outcome` (`ok` or a [`ToolError::code`](crate::ToolError::code)).
pub const CALLS: &str = "midstream_tool_calls_total";
/// Histogram: seconds from a call's start to its outcome.
pub const CALL_SECONDS: &str = "midstream_tool_call_seconds";
/// The `tool` label of calls to names that are not registered (the set of such names is not
/// bounded, so they share one label value).
pub const UNKNOWN_TOOL: &str = "_unknown";
