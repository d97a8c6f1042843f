//! HTTP routes, one file each. Handlers are thin: parse, call, map.

pub mod browser;
pub mod chat;
pub mod completions;
pub mod events;
pub mod fallback;
pub mod health;
pub mod metrics;
pub mod models;
pub mod responses;
pub mod streams;
pub mod translated;
pub mod ui_chat;
