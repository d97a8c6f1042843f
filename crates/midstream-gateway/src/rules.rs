//! Loading the intent rules: the rules file (`MIDSTREAM_INTENTS`, else `config/intents.toml`)
//! plus any `[[intent]]` tables of `midstream.toml`, compiled once into a [`Detector`].

use midstream_analysis::{Detector, RuleConfig, RuleSet};

use crate::config::Config;

/// Compiles every configured rule; the error is one line naming the file and the rule.
pub fn load_detector(config: &Config) -> Result<Detector, String> {
    let mut rules = match &config.intents_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            RuleSet::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => RuleSet::default(),
    };
    let file = config
        .file
        .path
        .as_ref()
        .map_or_else(|| "midstream.toml".to_owned(), |p| p.display().to_string());
    for table in &config.file.intent {
        let rule: RuleConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| format!("{file}: [[intent]]: {}", e.message()))?;
        rules.intent.push(rule);
    }
    Detector::new(rules).map_err(|e| format!("intent rules: {e}"))
}
