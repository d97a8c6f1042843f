//! The OpenAI chat-completions wire format, as far as the gateway must understand it:
//! validating requests, and reading (never re-writing) the chunks an upstream sends.

pub mod chunk;
pub mod completions;
pub mod request;
pub mod responses;
