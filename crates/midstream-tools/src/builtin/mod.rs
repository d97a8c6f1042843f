//! The tools MidStream ships with. Each is one file; [`builtin_registry`](crate::builtin_registry)
//! registers them from the `[tools]` configuration.

pub mod calendar;
pub mod weather;

pub use calendar::{CalendarConfig, CalendarTool, Clock, SystemClock};
pub use weather::{WeatherConfig, WeatherTool};
