//! Policy as code: Rego policies (the `regorus` crate, no OPA binary) judged on every plan and
//! apply, with conftest's conventions: `deny`, `violation`, `warn` and `exception` rules (and
//! their `deny_NAME` forms) in `package main` or `--namespace`, each yielding a message or an
//! object with `msg` and optionally `address`.
//!
//! `sources` reads the files (a folder, or a git ref so a pull request cannot loosen the policy
//! that judges it), `input` builds the input document and its JSON Schema, `testing` runs
//! `*_test.rego` files as `opa test` does.

pub mod input;
pub mod sources;
pub mod testing;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::plan::policy::{PolicyFinding, PolicyVerdict};
pub use sources::{PolicyFile, Source};

/// Why policies could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// What was read.
        path: String,
        /// Why not.
        message: String,
    },
    /// A policy file is not valid Rego (the message locates it: file:line:column).
    #[error("{0}")]
    Parse(String),
    /// A data file is not JSON or YAML, or its keys clash with another's.
    #[error("data file {path}: {message}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Evaluating a rule failed (a runtime error in the policy).
    #[error("{policy}: evaluating {rule} failed: {message}")]
    Eval {
        /// The policy file.
        policy: String,
        /// The rule.
        rule: String,
        /// The evaluator's message.
        message: String,
    },
    /// `--policy-ref` could not be read with git.
    #[error("--policy-ref {reference}: {message}")]
    GitRef {
        /// The ref.
        reference: String,
        /// What git said.
        message: String,
    },
}

/// The rule kinds conftest reads, and whether each denies.
const DECISIONS: &[(&str, bool)] = &[("deny", true), ("violation", true), ("warn", false)];

/// A rule head at the start of a line: `deny`, `deny_public_ingress`, `warn_cost`, `exception`.
static RULE_HEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(deny|violation|warn|exception)(_[A-Za-z0-9_]+)?\b").expect("valid regex")
});
/// A module's package line.
static PACKAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^package\s+([A-Za-z0-9_.]+)").expect("valid regex"));

/// A parse error from regorus (`--> FILE:LINE:COL`, a snippet, `error: MESSAGE`) as
/// `FILE:LINE:COL: MESSAGE` with the snippet under it.
fn located(message: &str) -> PolicyError {
    let text = message.trim();
    let at = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::to_string);
    let what = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string);
    match (at, what) {
        (Some(at), Some(what)) => {
            let snippet: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let t = l.trim();
                    !t.starts_with("--> ") && !t.starts_with("error: ")
                })
                .collect();
            PolicyError::Parse(format!("{at}: {what}\n{}", snippet.join("\n")))
        }
        _ => PolicyError::Parse(text.to_string()),
    }
}

/// The package a Rego module declares.
pub fn package_of(text: &str) -> Option<String> {
    PACKAGE.captures(text).map(|c| c[1].to_string())
}

/// A policy file that declares decision rules, with an engine of its own (the library files
/// and data loaded too), so every message is traced to the file that wrote it.
struct Decider {
    file: String,
    rules: BTreeSet<String>,
    engine: regorus::Engine,
}

/// Loaded policies, ready to judge plans.
pub struct Policies {
    namespace: String,
    files: Vec<String>,
    deciders: Vec<Decider>,
    /// Every file (for the `exception` rules, which apply whichever file declares them).
    all: regorus::Engine,
    has_exceptions: bool,
}

impl Policies {
    /// Loads `files` (Rego v1; `import rego.v1` accepted) and `data` documents (merged into
    /// `data` as conftest does) for rules in package `namespace`. Bad Rego is an error located
    /// in its file.
    pub fn load(
        files: &[PolicyFile],
        data: &[(String, serde_json::Value)],
        namespace: &str,
    ) -> Result<Policies, PolicyError> {
        let mut base = regorus::Engine::new();
        for (path, doc) in data {
            base.add_data(regorus::Value::from(doc.clone()))
                .map_err(|e| PolicyError::Data {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
        let mut all = base.clone();
        let mut library = base;
        let mut decision_files = Vec::new();
        let mut has_exceptions = false;
        for f in files {
            all.add_policy(f.shown.clone(), f.text.clone())
                .map_err(|e| located(&e.to_string()))?;
            let in_namespace = package_of(&f.text).as_deref() == Some(namespace);
            let rules: BTreeSet<String> = if in_namespace {
                RULE_HEAD
                    .captures_iter(&f.text)
                    .map(|c| c[0].to_string())
                    .collect()
            } else {
                BTreeSet::new()
            };
            has_exceptions |= rules.contains("exception");
            let decisions: BTreeSet<String> =
                rules.into_iter().filter(|r| r != "exception").collect();
            if decisions.is_empty() {
                library
                    .add_policy(f.shown.clone(), f.text.clone())
                    .map_err(|e| located(&e.to_string()))?;
            } else {
                decision_files.push((f, decisions));
            }
        }
        let mut deciders = Vec::new();
        for (f, rules) in decision_files {
            let mut engine = library.clone();
            engine
                .add_policy(f.shown.clone(), f.text.clone())
                .map_err(|e| located(&e.to_string()))?;
            deciders.push(Decider {
                file: f.shown.clone(),
                rules,
                engine,
            });
        }
        Ok(Policies {
            namespace: namespace.to_string(),
            files: files.iter().map(|f| f.shown.clone()).collect(),
            deciders,
            all,
            has_exceptions,
        })
    }

    /// How many policy files were loaded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no policy file was loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Judges `input` (the plan's JSON document with `actor` and `commit`).
    pub fn evaluate(&self, input: &serde_json::Value) -> Result<PolicyVerdict, PolicyError> {
        let input = regorus::Value::from(input.clone());
        let excepted = if self.has_exceptions {
            let mut engine = self.all.clone();
            engine.set_input(input.clone());
            let value = self.rule(&mut engine, "(exceptions)", "exception")?;
            exception_names(&value)
        } else {
            BTreeSet::new()
        };
        let mut verdict = PolicyVerdict {
            namespace: self.namespace.clone(),
            policies: self.files.clone(),
            ..PolicyVerdict::default()
        };
        for decider in &self.deciders {
            let mut engine = decider.engine.clone();
            engine.set_input(input.clone());
            for rule in &decider.rules {
                let (kind, name) = match rule.split_once('_') {
                    Some((kind, name)) => (kind, name),
                    None => (rule.as_str(), ""),
                };
                let Some(&(_, denies)) = DECISIONS.iter().find(|(k, _)| *k == kind) else {
                    continue;
                };
                if excepted.contains(name) {
                    verdict.exceptions.push(rule.clone());
                    continue;
                }
                let value = self.rule(&mut engine, &decider.file, rule)?;
                for (msg, address) in messages(&value, rule) {
                    let finding = PolicyFinding {
                        policy: decider.file.clone(),
                        rule: rule.clone(),
                        msg,
                        address,
                    };
                    if denies {
                        verdict.denials.push(finding);
                    } else {
                        verdict.warnings.push(finding);
                    }
                }
            }
        }
        verdict.exceptions.sort();
        verdict.exceptions.dedup();
        Ok(verdict)
    }

    fn rule(
        &self,
        engine: &mut regorus::Engine,
        file: &str,
        rule: &str,
    ) -> Result<regorus::Value, PolicyError> {
        engine
            .eval_rule(format!("data.{}.{rule}", self.namespace))
            .map_err(|e| PolicyError::Eval {
                policy: file.to_string(),
                rule: rule.to_string(),
                message: e.to_string(),
            })
    }
}

/// The messages a decision rule's value holds: a string, a set or array of strings or of
/// objects with `msg` (and `address`), or `true` (the rule's name stands for the message).
fn messages(value: &regorus::Value, rule: &str) -> Vec<(String, Option<String>)> {
    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    let one = |v: &serde_json::Value| -> Option<(String, Option<String>)> {
        match v {
            serde_json::Value::String(s) => Some((s.clone(), None)),
            serde_json::Value::Object(o) => Some((
                o.get("msg").and_then(|m| m.as_str()).map_or_else(
                    || serde_json::Value::Object(o.clone()).to_string(),
                    str::to_string,
                ),
                o.get("address")
                    .and_then(|a| a.as_str())
                    .map(str::to_string),
            )),
            serde_json::Value::Bool(true) => Some((rule.to_string(), None)),
            _ => None,
        }
    };
    match &json {
        serde_json::Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// The rule names `exception` rules list (conftest: each result is a list of names; `""`
/// stands for the bare `deny`/`warn`/`violation`).
fn exception_names(value: &regorus::Value) -> BTreeSet<String> {
    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    let mut out = BTreeSet::new();
    let mut add = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(names) => {
            out.extend(names.iter().filter_map(|n| n.as_str().map(str::to_string)));
        }
        _ => {}
    };
    match &json {
        serde_json::Value::Array(items) => items.iter().for_each(&mut add),
        other => add(other),
    }
    out
}

#[cfg(test)]
mod tests;
