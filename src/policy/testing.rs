//! `converge policy test`: the `test_` rules of `*_test.rego` files, run as `opa test` runs
//! them (a test passes when its rule is true), with the policies and data loaded.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{PolicyError, PolicyFile, package_of};

/// A test rule head at the start of a line.
static TEST_HEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^(test_[A-Za-z0-9_]+)\b").expect("valid regex"));

/// One test's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    /// `data.main.test_denies_public_ssh`.
    pub name: String,
    /// The test file.
    pub file: String,
    /// Whether the rule was true.
    pub passed: bool,
    /// Why not: what it evaluated to, or the evaluation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Runs every `test_` rule of `tests`, with `policies` and `data` loaded.
pub fn run(
    policies: &[PolicyFile],
    tests: &[PolicyFile],
    data: &[(String, serde_json::Value)],
) -> Result<Vec<TestResult>, PolicyError> {
    let mut engine = regorus::Engine::new();
    for (path, doc) in data {
        engine
            .add_data(regorus::Value::from(doc.clone()))
            .map_err(|e| PolicyError::Data {
                path: path.clone(),
                message: e.to_string(),
            })?;
    }
    for f in policies.iter().chain(tests) {
        engine
            .add_policy(f.shown.clone(), f.text.clone())
            .map_err(|e| super::located(&e.to_string()))?;
    }
    let mut out = Vec::new();
    for f in tests {
        let Some(package) = package_of(&f.text) else {
            continue;
        };
        let names: BTreeSet<&str> = TEST_HEAD
            .captures_iter(&f.text)
            .map(|c| c.get(1).map_or("", |m| m.as_str()))
            .collect();
        for rule in names {
            let name = format!("data.{package}.{rule}");
            let (passed, message) = match engine.eval_rule(name.clone()) {
                Ok(regorus::Value::Bool(true)) => (true, None),
                Ok(regorus::Value::Undefined) => (false, Some("undefined".to_string())),
                Ok(other) => (
                    false,
                    Some(format!(
                        "evaluated to {}",
                        serde_json::to_string(&other).unwrap_or_default()
                    )),
                ),
                Err(e) => (false, Some(e.to_string())),
            };
            out.push(TestResult {
                name,
                file: f.shown.clone(),
                passed,
                message,
            });
        }
    }
    Ok(out)
}
