//! Server-sent events on the OpenAI-compatible endpoint: splitting upstream bytes into
//! frames, and the few frames the gateway writes itself.

pub mod authored;
pub mod frames;
