//! GitHub Actions glue: the step summary, `::error` annotations and the sticky plan comment
//! (DESIGN §9). Outside Actions these do nothing.

use std::io::Write;

use super::{CliError, output};
use crate::providers::github::{CommentOutcome, GitHub};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// True inside a GitHub Actions job.
pub fn in_actions() -> bool {
    var("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Appends `markdown` to `GITHUB_STEP_SUMMARY` when the job has one; a failure is a warning.
pub fn step_summary(markdown: &str) {
    let Some(path) = var("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{markdown}"));
    if let Err(e) = written {
        output::status(&format!(
            "warning: cannot append to GITHUB_STEP_SUMMARY {path}: {e}"
        ));
    }
}

/// Escapes a workflow command's message (`%`, CR, LF).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property (also `:` and `,`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `--comment` / `--comment=required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CommentMode {
    /// A failed API call is a warning.
    Warn,
    /// A failed API call fails the command.
    Required,
}

/// Why the plan could not be commented.
#[derive(Debug, thiserror::Error)]
enum CommentError {
    /// The job does not say which pull request, or lacks a token.
    #[error("{0}")]
    Setup(String),
    /// GitHub's API refused or failed.
    #[error(transparent)]
    Api(#[from] crate::providers::github::GitHubError),
}

impl From<&str> for CommentError {
    fn from(why: &str) -> CommentError {
        CommentError::Setup(why.to_string())
    }
}

/// The pull request number: `--pr`, else the event payload at `GITHUB_EVENT_PATH`.
fn pull_request(explicit: Option<u64>) -> Result<u64, CommentError> {
    if let Some(n) = explicit {
        return Ok(n);
    }
    let path = var("GITHUB_EVENT_PATH").ok_or(
        "no pull request: pass --pr N, or run on a pull_request event (GITHUB_EVENT_PATH)",
    )?;
    let text =
        std::fs::read_to_string(&path).map_err(|e| CommentError::Setup(format!("{path}: {e}")))?;
    let event: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CommentError::Setup(format!("{path}: {e}")))?;
    event["pull_request"]["number"]
        .as_u64()
        .or_else(|| {
            event["issue"]["pull_request"]
                .is_object()
                .then(|| event["issue"]["number"].as_u64())
                .flatten()
        })
        .ok_or_else(|| {
            CommentError::Setup(format!("{path}: not a pull request event; pass --pr N"))
        })
}

/// Posts or edits the environment's sticky comment; returns what was done, or fails/warns
/// according to `mode`.
pub async fn comment(
    mode: CommentMode,
    pr: Option<u64>,
    marker: &str,
    body: &str,
) -> Result<(), CliError> {
    let attempt = async {
        let number = pull_request(pr)?;
        let token = var("GITHUB_TOKEN").ok_or("GITHUB_TOKEN is not set")?;
        let repository = var("GITHUB_REPOSITORY").ok_or("GITHUB_REPOSITORY is not set")?;
        let api = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        GitHub::new(&api, &repository, &token)
            .upsert_comment(number, marker, body)
            .await
            .map(|outcome| (number, outcome))
            .map_err(CommentError::from)
    };
    match attempt.await {
        Ok((n, CommentOutcome::Created(id))) => {
            output::status(&format!(
                "Commented the plan on pull request #{n} (comment {id})."
            ));
            Ok(())
        }
        Ok((n, CommentOutcome::Updated(id))) => {
            output::status(&format!(
                "Updated the plan comment on pull request #{n} (comment {id})."
            ));
            Ok(())
        }
        Err(e) if mode == CommentMode::Required => {
            Err(CliError::Failed(format!("plan --comment=required: {e}")))
        }
        Err(e) => {
            output::status(&format!("warning: could not comment the plan: {e}"));
            if in_actions() {
                println!(
                    "::warning::{}",
                    escape_data(&format!("could not comment the plan: {e}"))
                );
            }
            Ok(())
        }
    }
}
