//! Loading the intent rules: the rules file (`MIDSTREAM_INTENTS`, else `config/intents.toml`)
//! plus any `[[intent]]` tables of `midstream.toml`, compiled once into a [`Detector`].

use std::path::PathBuf;

use midstream_analysis::{Detector, RuleConfig, RuleError, RuleSet};

use crate::config::Config;

/// Why the rules could not be loaded; each displays as one line naming the file and the rule.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The rules file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The rules file is not valid.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the rule.
        source: RuleError,
    },
    /// An `[[intent]]` table of `midstream.toml` is not a rule.
    #[error("{file}: [[intent]]: {message}")]
    Table {
        /// The configuration file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The rules together do not compile (a duplicate name, a pattern too large, ...).
    #[error("intent rules: {0}")]
    Compile(#[source] RuleError),
}

/// Compiles every configured rule.
pub fn load_detector(config: &Config) -> Result<Detector, RulesError> {
    let mut rules = match &config.intents_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
                path: path.clone(),
                source,
            })?;
            RuleSet::from_toml(&text).map_err(|source| RulesError::File {
                path: path.clone(),
                source,
            })?
        }
        None => RuleSet::default(),
    };
    let file = config
        .file
        .path
        .as_ref()
        .map_or_else(|| "midstream.toml".to_owned(), |p| p.display().to_string());
    for table in &config.file.intent {
        let rule: RuleConfig =
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| RulesError::Table {
                    file: file.clone(),
                    message: e.message().to_owned(),
                })?;
        rules.intent.push(rule);
    }
    Detector::new(rules).map_err(RulesError::Compile)
}
