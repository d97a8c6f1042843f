//! HTTP routes, one file each. Handlers are thin: parse, call, map.

pub mod chat;
pub mod fallback;
pub mod health;
pub mod metrics;
pub mod models;
pub mod streams;
