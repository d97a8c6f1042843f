//! Reading `text/event-stream` responses the way a strict client would.
//!
//! [`SseParser`] is written here rather than taken from `eventsource-stream` on purpose:
//! tests need comment lines, blocks without data, and byte-exact raw input, which that
//! crate does not expose.

mod collected;
mod parser;
mod reader;

pub use collected::{Collected, collect_sse};
pub use parser::{SseFrame, SseParseError, SseParser};
pub use reader::{MAX_BODY_BYTES, SseReader};
