//! Latency distributions: exact percentiles from every sample.
//!
//! We keep every sample (8 bytes each; a 20 s run at 64 streams is well under a million
//! inter-chunk gaps) and sort once at the end, rather than use a histogram crate: exact
//! nearest-rank percentiles are simpler to check and the memory is bounded by the run's
//! request count times its chunks per request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Samples of one quantity, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<u64>);

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, value: Duration) {
        self.0.push(nanos(value));
    }

    /// Moves every sample of `other` into this one.
    pub fn append(&mut self, other: &mut Samples) {
        self.0.append(&mut other.0);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The distribution of the samples, `None` when there are none.
    pub fn distribution(&mut self) -> Option<Distribution> {
        Distribution::of(&mut self.0)
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Distribution {
    /// The distribution of `nanos` (sorted in place); `None` when empty.
    pub fn of(nanos: &mut [u64]) -> Option<Self> {
        let count = nanos.len();
        let max = *nanos.iter().max()?;
        nanos.sort_unstable();
        let sum: u128 = nanos.iter().map(|&value| u128::from(value)).sum();
        let mean = sum as f64 / count as f64;
        Some(Self {
            count,
            mean: millis(mean),
            p50: millis(percentile(nanos, 50) as f64),
            p90: millis(percentile(nanos, 90) as f64),
            p99: millis(percentile(nanos, 99) as f64),
            max: millis(max as f64),
        })
    }
}

/// The nearest-rank `p`th percentile of sorted, non-empty `sorted`: the smallest sample
/// such that at least `p`% of the samples are at most it.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// A duration in whole nanoseconds, saturating (at 584 years).
pub fn nanos(value: Duration) -> u64 {
    u64::try_from(value.as_nanos()).unwrap_or(u64::MAX)
}

fn millis(nanos: f64) -> f64 {
    nanos / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_millis(values: &[u64]) -> Samples {
        let mut samples = Samples::default();
        for &value in values {
            samples.push(Duration::from_millis(value));
        }
        samples
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_hundred() {
        let mut values: Vec<u64> = (1..=100).rev().collect();
        let distribution = from_millis(&values).distribution().expect("samples");
        assert_eq!(distribution.count, 100);
        assert_eq!(distribution.p50, 50.0);
        assert_eq!(distribution.p90, 90.0);
        assert_eq!(distribution.p99, 99.0);
        assert_eq!(distribution.max, 100.0);
        assert_eq!(distribution.mean, 50.5);
        values.sort_unstable();
        assert_eq!(percentile(&values, 100), 100);
    }

    #[test]
    fn small_sets_round_the_rank_up() {
        let distribution = from_millis(&[10, 1, 5]).distribution().expect("samples");
        assert_eq!(distribution.p50, 5.0, "rank ceil(1.5) = 2");
        assert_eq!(distribution.p90, 10.0);
        assert_eq!(distribution.p99, 10.0);
        let one = from_millis(&[7]).distribution().expect("one sample");
        assert_eq!((one.p50, one.p99, one.max, one.mean), (7.0, 7.0, 7.0, 7.0));
    }

    #[test]
    fn a_single_outlier_shows_in_p99_only_past_a_hundred_samples() {
        let mut values = vec![1; 199];
        values.push(1000);
        let distribution = from_millis(&values).distribution().expect("samples");
        assert_eq!(distribution.p99, 1.0);
        assert_eq!(distribution.max, 1000.0);
        let mut values = vec![1; 99];
        values.extend([1000, 1000]);
        assert_eq!(
            from_millis(&values).distribution().expect("samples").p99,
            1000.0
        );
    }

    #[test]
    fn sub_millisecond_precision_is_kept() {
        let mut samples = Samples::default();
        samples.push(Duration::from_micros(150));
        samples.push(Duration::from_nanos(250_500));
        let distribution = samples.distribution().expect("samples");
        assert_eq!(distribution.p50, 0.15);
        assert_eq!(distribution.max, 0.2505);
    }

    #[test]
    fn no_samples_no_distribution() {
        assert_eq!(Samples::default().distribution(), None);
        let mut merged = from_millis(&[1]);
        merged.append(&mut from_millis(&[2, 3]));
        assert_eq!(merged.len(), 3);
    }
}
