//! Who is acting and from which commit, as recorded on every audit event.

use std::path::Path;
use std::process::Command;

/// The actor and commit recorded on events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// `CONVERGE_ACTOR`, else `GITHUB_ACTOR`, else the OS user.
    pub actor: String,
    /// `GITHUB_SHA`, else `git rev-parse HEAD` in the project root, else empty.
    pub commit: String,
}

impl Context {
    /// Detects the actor and commit from the environment and the project's git checkout.
    pub fn detect(root: &Path) -> Context {
        let non_empty = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let actor = non_empty("CONVERGE_ACTOR")
            .or_else(|| non_empty("GITHUB_ACTOR"))
            .unwrap_or_else(|| whoami::username().unwrap_or_else(|_| "unknown".into()));
        let commit = non_empty("GITHUB_SHA").unwrap_or_else(|| git_head(root).unwrap_or_default());
        Context { actor, commit }
    }
}

fn git_head(root: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
