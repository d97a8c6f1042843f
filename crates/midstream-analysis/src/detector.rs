//! The compiled rule set, shared by every stream.

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::{RuleSet, Scope};
use crate::engine::ScopeEngine;
use crate::error::{RuleError, RuleLabel, RuleProblem};
use crate::output::ScanOutput;
use crate::rule::{Rule, RuleId, compile};
use crate::scan::ScanState;

/// Rules compiled once, then shared by every stream as `Arc<Detector>` (it is `Send + Sync`).
#[derive(Debug)]
pub struct Detector {
    rules: Vec<Rule>,
    prompt: ScopeEngine,
    output: ScopeEngine,
}

impl Detector {
    /// Validates and compiles a rule set. The error names the first invalid intent.
    pub fn new(rules: RuleSet) -> Result<Detector, RuleError> {
        let mut names = HashSet::new();
        let mut compiled_rules = Vec::with_capacity(rules.intent.len());
        let mut programs = Vec::with_capacity(rules.intent.len());
        for (index, config) in rules.intent.iter().enumerate() {
            let compiled = compile(index, config)?;
            if !names.insert(config.name.clone()) {
                return Err(RuleError::rule(
                    RuleLabel::new(index, &config.name),
                    RuleProblem::DuplicateName,
                ));
            }
            programs.push(compiled.regex.map(Arc::new));
            compiled_rules.push(compiled.rule);
        }
        let prompt = ScopeEngine::build(Scope::Prompt, &compiled_rules, &programs)?;
        let output = ScopeEngine::build(Scope::Output, &compiled_rules, &programs)?;
        Ok(Detector {
            rules: compiled_rules,
            prompt,
            output,
        })
    }

    /// Parses and compiles a rule file ([`RuleSet::from_toml`] then [`Detector::new`]).
    pub fn from_toml(text: &str) -> Result<Detector, RuleError> {
        Detector::new(RuleSet::from_toml(text)?)
    }

    /// A detector without rules: scanning is a no-op.
    pub fn empty() -> Detector {
        Detector {
            rules: Vec::new(),
            prompt: ScopeEngine::empty(),
            output: ScopeEngine::empty(),
        }
    }

    /// Every rule in file order; a [`RuleId`] indexes this slice.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule a detection refers to.
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.0)
    }

    /// Whether any rule watches `scope` (if not, the caller may skip scanning it).
    pub fn has_rules(&self, scope: Scope) -> bool {
        self.engine(scope).has_rules()
    }

    /// Whether `scope` has redact or stop rules (see [`crate::Scanner::guards_output`]).
    pub fn guards_output(&self, scope: Scope) -> bool {
        self.engine(scope).guard.is_some()
    }

    /// Scans a whole text at once (prompts): feed then finish.
    pub fn scan_complete(&self, scope: Scope, text: &str) -> ScanOutput {
        let engine = self.engine(scope);
        let mut state = ScanState::new(engine);
        let mut out = ScanOutput::default();
        state.feed(engine, &self.rules, text.as_bytes(), &mut out);
        state.finish(engine, &self.rules, &mut out);
        state.recycle(engine);
        out
    }

    pub(crate) fn engine(&self, scope: Scope) -> &ScopeEngine {
        match scope {
            Scope::Prompt => &self.prompt,
            Scope::Output => &self.output,
        }
    }
}
