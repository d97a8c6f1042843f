//! The optional `midstream.toml`: upstreams, model aliases, rules and tools. Raw serde
//! shapes with `deny_unknown_fields`, validated once into [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::inflight::ModelToolPolicy;

/// The whole file. Every section is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Named OpenAI-compatible upstreams, e.g. `[upstreams.openai]`.
    #[serde(default)]
    pub upstreams: BTreeMap<String, FileUpstream>,
    /// Model aliases: the name a client sends → an upstream and the model name sent there.
    #[serde(default)]
    pub models: BTreeMap<String, FileModel>,
    /// Intent rules, in the same shape as `config/intents.toml` (`[[intent]]`).
    #[serde(default)]
    pub intent: Vec<toml::Table>,
    /// Tool settings (`[tools.weather]`, `[tools.calendar]`).
    #[serde(default)]
    pub tools: toml::Table,
    /// What the gateway does with `tool_calls` the model streams for tools it owns.
    #[serde(default)]
    pub model_tools: ModelToolPolicy,
}

/// One `[upstreams.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstream {
    /// e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The environment variable that holds this upstream's key (the key itself never goes in
    /// the file). Default: none.
    pub api_key_env: Option<String>,
}

/// One `[models]` entry: `fast = { upstream = "openai", model = "gpt-4o-mini" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileModel {
    /// A name from `[upstreams]`, or `default` for `UPSTREAM_BASE_URL`, or `demo`.
    pub upstream: String,
    /// The model name sent upstream.
    pub model: String,
    /// Tried in order when `upstream` cannot answer:
    /// `fallbacks = [{ upstream = "local", model = "llama3" }]`.
    #[serde(default)]
    pub fallbacks: Vec<FileTarget>,
}

/// One fallback of a `[models]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTarget {
    /// As [`FileModel::upstream`].
    pub upstream: String,
    /// The model name sent upstream.
    pub model: String,
}
