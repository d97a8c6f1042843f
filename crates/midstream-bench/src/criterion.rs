//! Reading the text criterion prints, for the summary: benchmark name, median time and
//! median throughput. (Criterion's own JSON lives under `target/criterion`, whose layout is
//! not a stable interface; its console format has been stable for years.)

use serde::Serialize;

/// One criterion benchmark's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BenchResult {
    /// `group/name/parameter`.
    pub name: String,
    /// The median estimate, with its unit (`539.19 µs`).
    pub time: String,
    /// The median throughput with its unit, when the bench declares one.
    pub throughput: Option<String>,
}

/// The results in `output`, in order. Comparisons with a previous run (`change:` blocks)
/// and the outlier notes are ignored.
pub fn parse(output: &str) -> Vec<BenchResult> {
    let mut results: Vec<BenchResult> = Vec::new();
    let mut name: Option<String> = None;
    let mut in_change = false;
    for line in output.lines() {
        let trimmed = line.trim();
        if trimmed == "change:" {
            in_change = true;
            continue;
        }
        if !line.starts_with(' ') && !trimmed.is_empty() {
            in_change = false;
            let (head, rest) = line.split_once("time:").unwrap_or((line, ""));
            name = Some(head.trim().to_owned());
            if rest.is_empty() {
                continue;
            }
            if let (Some(name), Some(time)) = (name.take(), median(rest)) {
                results.push(BenchResult {
                    name,
                    time,
                    throughput: None,
                });
            }
            continue;
        }
        if in_change {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("time:") {
            if let (Some(name), Some(time)) = (name.take(), median(rest)) {
                results.push(BenchResult {
                    name,
                    time,
                    throughput: None,
                });
            }
        } else if let Some(rest) = trimmed.strip_prefix("thrpt:")
            && let Some(last) = results.last_mut()
            && last.throughput.is_none()
        {
            last.throughput = median(rest);
        }
    }
    results
}

/// The middle value of `[low unit mid unit high unit]`.
fn median(bracketed: &str) -> Option<String> {
    let inside = bracketed.trim().strip_prefix('[')?.split(']').next()?;
    let words: Vec<&str> = inside.split_whitespace().collect();
    (words.len() == 6).then(|| format!("{} {}", words[2], words[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
Gnuplot not found, using plotters backend
detections 119
scan_1MB_1000_rules/chunk_bytes/4
                        time:   [12.901 ms 13.056 ms 13.195 ms]
                        thrpt:  [75.784 MiB/s 76.596 MiB/s 77.516 MiB/s]
                 change:
                        time:   [+74.559% +75.569% +76.922%] (p = 0.00 < 0.05)
                        thrpt:  [−43.478% −43.042% −42.713%]
                        Performance has regressed.
Found 3 outliers among 20 measurements (15.00%)
  3 (15.00%) high severe
short                   time:   [521.55 µs 539.19 µs 559.43 µs]
                        thrpt:  [7.3217 Melem/s 7.5965 Melem/s 7.8535 Melem/s]
";

    #[test]
    fn medians_are_read_and_comparisons_skipped() {
        assert_eq!(
            parse(OUTPUT),
            [
                BenchResult {
                    name: "scan_1MB_1000_rules/chunk_bytes/4".to_owned(),
                    time: "13.056 ms".to_owned(),
                    throughput: Some("76.596 MiB/s".to_owned()),
                },
                BenchResult {
                    name: "short".to_owned(),
                    time: "539.19 µs".to_owned(),
                    throughput: Some("7.5965 Melem/s".to_owned()),
                },
            ]
        );
        assert_eq!(parse("test mode\nSuccess\n"), []);
    }
}
