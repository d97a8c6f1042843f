//! Reading configuration values from the environment, through a trait so tests can pass a map
//! instead of mutating the process environment.

use std::collections::HashMap;
use std::str::FromStr;

use super::ConfigError;

/// A source of environment variables.
pub trait Env {
    /// The variable's value; `None` when unset. An empty value counts as unset, so
    /// `FOO=` in a `.env` file or compose file falls back to the default.
    fn get(&self, key: &str) -> Option<String>;
}

/// The real process environment (after `.env` was loaded by `dotenvy`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

impl Env for HashMap<&str, &str> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*v).to_owned())
    }
}

/// Typed reads with one-line errors that name the variable.
pub(crate) trait EnvExt: Env {
    /// Parses the variable, or returns `default` when unset.
    fn parse_or<T>(
        &self,
        key: &'static str,
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError::invalid(key, &raw, expected)),
        }
    }

    /// A positive integer (zero is refused: every bound here must let something through).
    fn positive_or(&self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        let value: u64 = self.parse_or(key, default, "a positive integer")?;
        if value == 0 {
            return Err(ConfigError::invalid(key, "0", "a positive integer"));
        }
        Ok(value)
    }

    /// A comma-separated list; empty items are skipped.
    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl<E: Env + ?Sized> EnvExt for E {}
