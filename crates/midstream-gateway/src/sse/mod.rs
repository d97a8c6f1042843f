//! Server-sent events on the OpenAI-compatible endpoint: the few frames the gateway writes
//! itself. Upstream bytes are split into frames by `midstream_sse`.

pub mod authored;
pub mod translated;
