//! Where policies come from: `*.rego` files under a folder (by default `policies/` under the
//! project root), as they are on disk or as committed at a git ref (`--policy-ref`, so a pull
//! request is judged by the base branch's policy), and the data files `--data` names.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::PolicyError;

/// A policy (or test) file's text and the name messages give it.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// `policies/prod.rego`, or `origin/main:policies/prod.rego` when read at a ref.
    pub shown: String,
    /// Its Rego.
    pub text: String,
}

/// Where to read policies from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The project root (`--root`): names are shown relative to it.
    pub root: PathBuf,
    /// The policy folder (`--policy`, default `ROOT/policies`).
    pub dir: PathBuf,
    /// Read the files as committed at this git ref instead of from disk.
    pub git_ref: Option<String>,
}

/// The policy files and the test files (`*_test.rego`) of `source`, each sorted by name; none
/// when the folder does not exist (there, or at the ref).
pub fn read(source: &Source) -> Result<(Vec<PolicyFile>, Vec<PolicyFile>), PolicyError> {
    let files = match &source.git_ref {
        Some(reference) => at_ref(source, reference)?,
        None => on_disk(source)?,
    };
    Ok(files
        .into_iter()
        .partition(|f| !f.shown.ends_with("_test.rego")))
}

/// `path` as shown: relative to the project root when inside it.
fn shown(root: &Path, path: &Path) -> String {
    let inside = path.strip_prefix(root).unwrap_or(path);
    inside
        .strip_prefix(".")
        .unwrap_or(inside)
        .to_string_lossy()
        .into_owned()
}

fn on_disk(source: &Source) -> Result<Vec<PolicyFile>, PolicyError> {
    if !source.dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for path in walk(&source.dir, &["rego"])? {
        let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        out.push(PolicyFile {
            shown: shown(&source.root, &path),
            text,
        });
    }
    Ok(out)
}

/// Every file under `dir` whose extension is one of `extensions`, sorted.
fn walk(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, PolicyError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| PolicyError::Read {
            path: d.display().to_string(),
            message: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The policy folder's files as committed at `reference` (git runs with argument lists, the
/// ref checked to be a commit first).
fn at_ref(source: &Source, reference: &str) -> Result<Vec<PolicyFile>, PolicyError> {
    let fail = |message: String| PolicyError::GitRef {
        reference: reference.to_string(),
        message,
    };
    if reference.starts_with('-') || reference.is_empty() {
        return Err(fail("not a git ref".into()));
    }
    let git = |args: &[&str]| -> Result<String, PolicyError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&source.root)
            .args(args)
            .output()
            .map_err(|e| fail(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(fail(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        String::from_utf8(out.stdout).map_err(|e| fail(e.to_string()))
    };
    let commit = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &format!("{reference}^{{commit}}"),
    ])
    .map_err(|_| {
        fail(
            "no such commit in this repository (fetch it first, e.g. `git fetch origin main`)"
                .into(),
        )
    })?;
    let commit = commit.trim();
    let dir = shown(&source.root, &source.dir);
    let names = git(&["ls-tree", "-r", "--name-only", commit, "--", &dir])?;
    let mut out = Vec::new();
    for name in names.lines().filter(|n| n.ends_with(".rego")) {
        let text = git(&["show", &format!("{commit}:./{name}")])?;
        out.push(PolicyFile {
            shown: format!("{reference}:{name}"),
            text,
        });
    }
    out.sort_by(|a, b| a.shown.cmp(&b.shown));
    Ok(out)
}

/// The data documents under `dir` (`*.json`, `*.yaml`, `*.yml`), as conftest's `--data` reads
/// them: each merged into `data`.
pub fn read_data(root: &Path, dir: &Path) -> Result<Vec<(String, serde_json::Value)>, PolicyError> {
    let mut out = Vec::new();
    for path in walk(dir, &["json", "yaml", "yml"])? {
        let name = shown(root, &path);
        let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Read {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let bad = |message: String| PolicyError::Data {
            path: name.clone(),
            message,
        };
        let doc = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        } else {
            let value = regorus::Value::from_yaml_str(&text).map_err(|e| bad(e.to_string()))?;
            serde_json::to_value(value).map_err(|e| bad(e.to_string()))?
        };
        if !doc.is_object() {
            return Err(bad("a data document is a mapping at the top".into()));
        }
        out.push((name, doc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_relative_to_the_project_root() {
        for (root, path) in [
            (".", "./policies/cost.rego"),
            (".", "policies/cost.rego"),
            ("/p", "/p/policies/cost.rego"),
            ("/p/", "/p/policies/cost.rego"),
        ] {
            assert_eq!(
                shown(Path::new(root), Path::new(path)),
                "policies/cost.rego",
                "{root} {path}"
            );
        }
        assert_eq!(
            shown(Path::new("/p"), Path::new("/elsewhere/x.rego")),
            "/elsewhere/x.rego"
        );
    }
}
