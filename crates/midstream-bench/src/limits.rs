//! Raising this process's open-file limit for thousands of concurrent streams.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use thiserror::Error;

/// The open-file limit cannot cover the streams asked for.
#[derive(Debug, Error)]
pub enum LimitError {
    /// The hard limit is below what is needed; only a privileged user can raise it.
    #[error(
        "{needed} open files are needed but the hard limit (ulimit -Hn) is {hard}: \
         raise it (e.g. `ulimit -n {needed}` as root, or LimitNOFILE in systemd) or ask for fewer streams"
    )]
    HardLimitTooLow {
        /// Descriptors needed.
        needed: u64,
        /// The hard limit.
        hard: u64,
    },
    /// `setrlimit` refused.
    #[error("cannot raise the open-file limit to {needed}: {source}")]
    Refused {
        /// Descriptors needed.
        needed: u64,
        /// Why.
        source: std::io::Error,
    },
}

/// Makes sure at least `needed` files can be open, raising the soft limit (never above the
/// hard one). Returns the soft limit now in force (`u64::MAX` for unlimited).
pub fn ensure_open_files(needed: u64) -> Result<u64, LimitError> {
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return Ok(current);
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < needed {
        return Err(LimitError::HardLimitTooLow { needed, hard });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .map_err(|errno| LimitError::Refused {
        needed,
        source: errno.into(),
    })?;
    Ok(hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_need_is_already_met_and_an_impossible_one_names_the_hard_limit() {
        assert!(ensure_open_files(16).expect("16 files") >= 16);
        let hard = getrlimit(Resource::Nofile).maximum;
        if let Some(hard) = hard.filter(|hard| *hard < u64::MAX) {
            let error = ensure_open_files(hard + 1).expect_err("above the hard limit");
            assert!(
                error
                    .to_string()
                    .contains(&format!("hard limit (ulimit -Hn) is {hard}"))
            );
        }
    }
}
