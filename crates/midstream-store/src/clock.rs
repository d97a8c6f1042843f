//! Wall-clock time as stored in the record: Unix milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970, which only a broken
/// clock reports; the record must never panic over it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds as the record keeps timings: whole microseconds, so a value reads
/// `1736.096`, not `1736.0962020000002` (the float noise of `as_secs_f64() * 1000.0`).
pub fn ms_of(duration: Duration) -> f64 {
    // Exact up to 2^53 µs (285 years); the division then gives the nearest double to the
    // decimal value, which prints as that decimal.
    duration.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_are_whole_microseconds_without_float_noise() {
        let duration = Duration::from_nanos(1_736_096_202);
        assert_eq!(ms_of(duration).to_string(), "1736.096");
        assert_eq!(ms_of(Duration::from_nanos(999)).to_string(), "0");
        assert_eq!(ms_of(Duration::from_micros(1)).to_string(), "0.001");
    }
}
