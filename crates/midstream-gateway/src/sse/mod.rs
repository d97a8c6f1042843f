//! Server-sent events on the OpenAI-compatible endpoint: the few frames the gateway writes
//! itself, and the reading of chunks framed in several lines. Upstream bytes are split into
//! frames by `midstream_sse`.

pub mod authored;
pub mod multi_data;
pub mod translated;
