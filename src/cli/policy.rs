//! `converge policy test`: the `test_` rules of the policy folder's `*_test.rego` files, run as
//! `opa test` runs them; exit 0 when all pass, 1 otherwise.

use clap::Subcommand;

use super::{CliError, EXIT_ERROR, EXIT_OK, Format, GlobalArgs, output};
use owo_colors::OwoColorize;

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the `test_` rules of `*_test.rego` files beside the policies (as `opa test`).
    Test,
}

pub(super) async fn run(g: &GlobalArgs, command: &PolicyCommand) -> Result<i32, CliError> {
    match command {
        PolicyCommand::Test => test(g),
    }
}

fn test(g: &GlobalArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json) {
        return Err(CliError::Usage(
            "policy test prints --format text or json".into(),
        ));
    }
    let (policies, tests) = crate::application::policy::files(&g.settings)?;
    if tests.is_empty() {
        return Err(CliError::Usage(
            "no *_test.rego files in the policy folder (--policy DIR, default ROOT/policies)"
                .into(),
        ));
    }
    let data = crate::application::policy::data(&g.settings)?;
    let results = crate::policy::testing::run(&policies, &tests, &data)
        .map_err(crate::application::Error::from)?;
    let passed = results.iter().filter(|r| r.passed).count();
    if g.format == Format::Json {
        output::json(&results);
    } else {
        let mut out = String::new();
        for r in &results {
            if r.passed {
                out.push_str(&format!("{} {}\n", "PASS".green(), r.name));
            } else {
                out.push_str(&format!(
                    "{} {} ({}): {}\n",
                    "FAIL".red(),
                    r.name,
                    r.file,
                    r.message.as_deref().unwrap_or("")
                ));
            }
        }
        out.push_str(&format!("{}\n", "-".repeat(80)));
        out.push_str(&format!("PASS: {passed}/{}\n", results.len()));
        if passed < results.len() {
            out.push_str(&format!(
                "FAIL: {}/{}\n",
                results.len() - passed,
                results.len()
            ));
        }
        output::print(&out);
    }
    Ok(if passed == results.len() && !results.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
