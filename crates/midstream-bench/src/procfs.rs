//! What `/proc` says about a process and the machine: CPU time, resident memory, limits.

use std::fs;
use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `/proc` could not be read or did not say what we expected.
#[derive(Debug, Error)]
pub enum ProcError {
    /// The file could not be read (the process may have exited).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file had an unexpected shape.
    #[error("unexpected content in {0}")]
    Format(String),
}

fn read(path: String) -> Result<String, ProcError> {
    fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
}

/// User plus system CPU time of `pid` so far (all its threads, living and exited).
pub fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
    let path = format!("/proc/{pid}/stat");
    let ticks = cpu_ticks(&read(path.clone())?).ok_or(ProcError::Format(path))?;
    Ok(ticks_to_duration(ticks))
}

/// Resident set size of `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64, ProcError> {
    let path = format!("/proc/{pid}/status");
    vm_rss_kib(&read(path.clone())?).ok_or(ProcError::Format(path))
}

/// The soft limit on open files of `pid`; `None` when unlimited.
pub fn open_files_limit(pid: u32) -> Result<Option<u64>, ProcError> {
    let path = format!("/proc/{pid}/limits");
    nofile_soft_limit(&read(path.clone())?).ok_or(ProcError::Format(path))
}

/// The machine's CPU time so far, summed over every core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineCpu {
    /// Time spent running anything (user, nice, system, irq, softirq, steal).
    pub busy: Duration,
    /// Busy plus idle and iowait.
    pub total: Duration,
}

impl MachineCpu {
    /// Reads the first line of `/proc/stat`.
    pub fn now() -> Result<Self, ProcError> {
        let path = "/proc/stat".to_owned();
        let (busy, total) = machine_ticks(&read(path.clone())?).ok_or(ProcError::Format(path))?;
        Ok(Self {
            busy: ticks_to_duration(busy),
            total: ticks_to_duration(total),
        })
    }
}

/// CPU used by the processes of a run and by the whole machine, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuReport {
    /// The measured process (`--pid`), if any.
    pub target_ms: Option<f64>,
    /// Other named processes (`--observe LABEL=PID`).
    pub observed_ms: Vec<(String, f64)>,
    /// This load generator.
    pub load_generator_ms: f64,
    /// Every core of the machine, busy.
    pub machine_busy_ms: f64,
    /// Cores × wall time.
    pub machine_capacity_ms: f64,
    /// Busy time of everything not named above: other users of the machine.
    pub unaccounted_ms: f64,
}

/// CPU counters taken at the start of a run, to be differenced at its end.
#[derive(Debug)]
pub struct CpuWatch {
    target: Option<(u32, Duration)>,
    observed: Vec<(String, u32, Duration)>,
    own: Duration,
    machine: MachineCpu,
}

impl CpuWatch {
    /// Takes the starting counters of `target`, of each `observed` process, of this process
    /// and of the machine.
    pub fn start(target: Option<u32>, observed: &[(String, u32)]) -> Result<Self, ProcError> {
        Ok(Self {
            target: target
                .map(|pid| Ok::<_, ProcError>((pid, cpu_time(pid)?)))
                .transpose()?,
            observed: observed
                .iter()
                .map(|(label, pid)| Ok((label.clone(), *pid, cpu_time(*pid)?)))
                .collect::<Result<_, ProcError>>()?,
            own: cpu_time(std::process::id())?,
            machine: MachineCpu::now()?,
        })
    }

    /// What each counter grew by since [`start`](Self::start).
    pub fn finish(&self) -> Result<CpuReport, ProcError> {
        let since = |pid: u32, start: Duration| -> Result<f64, ProcError> {
            Ok(ms(cpu_time(pid)?.saturating_sub(start)))
        };
        let target_ms = self
            .target
            .map(|(pid, start)| since(pid, start))
            .transpose()?;
        let observed_ms = self
            .observed
            .iter()
            .map(|(label, pid, start)| Ok((label.clone(), since(*pid, *start)?)))
            .collect::<Result<Vec<_>, ProcError>>()?;
        let load_generator_ms = since(std::process::id(), self.own)?;
        let machine = MachineCpu::now()?;
        let machine_busy_ms = ms(machine.busy.saturating_sub(self.machine.busy));
        let named = target_ms.unwrap_or(0.0)
            + observed_ms.iter().map(|(_, value)| value).sum::<f64>()
            + load_generator_ms;
        Ok(CpuReport {
            target_ms,
            observed_ms,
            load_generator_ms,
            machine_busy_ms,
            machine_capacity_ms: ms(machine.total.saturating_sub(self.machine.total)),
            unaccounted_ms: (machine_busy_ms - named).max(0.0),
        })
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / per_second))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field
/// 2) may contain spaces and parentheses, so fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `Some(None)` for "unlimited".
fn nofile_soft_limit(limits: &str) -> Option<Option<u64>> {
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_ascii_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// (busy, total) ticks from the aggregate `cpu` line of `/proc/stat`.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user and nice).
    let field = |index: usize| values.get(index).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    Some((busy, busy + field(3) + field(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (mid (stream) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    120 35 0 0 20 0 3 0 100 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(155));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_and_open_file_limits_are_read() {
        let status = "Name:\tmidstream\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(12345));
        assert_eq!(vm_rss_kib("Name: x\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95000                95000                processes \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(nofile_soft_limit(limits), Some(Some(20000)));
        assert_eq!(
            nofile_soft_limit(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Some(None)
        );
    }

    #[test]
    fn machine_busy_time_excludes_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(machine_ticks(stat), Some((161, 1181)));
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(rss_kib(pid).expect("own status") > 0);
        assert!(cpu_time(pid).is_ok());
        assert!(open_files_limit(pid).is_ok());
        let machine = MachineCpu::now().expect("/proc/stat");
        assert!(machine.total >= machine.busy);
        let watch = CpuWatch::start(Some(pid), &[("self".to_owned(), pid)]).expect("start");
        let report = watch.finish().expect("finish");
        assert!(report.target_ms.is_some());
        assert_eq!(report.observed_ms.len(), 1);
    }
}
