//! Why a tool call (or a tool's registration) failed.

use std::time::Duration;

/// Why a tool call failed, or why a tool could not be registered.
///
/// It is `Clone` because one failed execution can be shared by several identical calls that
/// waited on it (see [`ToolCache`](crate::ToolCache)); the causes are therefore kept as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not match the tool's JSON Schema, or make no sense to the tool.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The call did not finish within the tool's timeout (which covers the whole call).
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The service behind the tool answered with an error or with something unreadable.
    #[error("{}", upstream_message(*.status, .message))]
    Upstream {
        /// The HTTP status it answered with, when there was an answer.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// What the call asked for does not exist (an unknown city, say).
    #[error("not found: {0}")]
    NotFound(String),
    /// A resource the tool needs (a service, the database) cannot be reached right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or broken invariant inside the tool (including a tool that panicked).
    #[error("internal error: {0}")]
    Internal(String),
    /// No tool of that name is registered.
    #[error("unknown tool {0:?}")]
    UnknownTool(String),
    /// Too many calls in flight: the stream's or the process's bound was reached.
    #[error("too many tool calls in flight; try again later")]
    Overloaded,
    /// The call's stream was cancelled (client gone, stream stopped, or shutdown).
    #[error("cancelled")]
    Cancelled,
    /// A tool could not be registered: duplicate or malformed name, or an invalid schema.
    #[error("cannot register tool {tool:?}: {message}")]
    Registration {
        /// The tool's name.
        tool: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration {key}: {message}")]
    InvalidConfig {
        /// The key, dotted as in `midstream.toml` (`tools.weather.timeout_ms`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ToolError {
    /// A short, stable code for the `tool.error` event payload and the metrics' `outcome` label.
    /// Clients may match on it; never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::Timeout(_) => "timeout",
            ToolError::Upstream { .. } => "upstream",
            ToolError::NotFound(_) => "not_found",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::Internal(_) => "internal",
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::Overloaded => "overloaded",
            ToolError::Cancelled => "cancelled",
            ToolError::Registration { .. } => "registration",
            ToolError::InvalidConfig { .. } => "invalid_config",
        }
    }
}

fn upstream_message(status: Option<u16>, message: &str) -> String {
    match status {
        Some(status) => format!("upstream error (HTTP {status}): {message}"),
        None => format!("upstream error: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            ToolError::Timeout(Duration::from_millis(1500)).to_string(),
            "timed out after 1500 ms"
        );
        let upstream = ToolError::Upstream {
            status: Some(502),
            message: "bad gateway".into(),
        };
        assert_eq!(
            upstream.to_string(),
            "upstream error (HTTP 502): bad gateway"
        );
        assert_eq!(upstream.code(), "upstream");
        assert_eq!(ToolError::Overloaded.code(), "overloaded");
    }
}
