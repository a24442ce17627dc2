//! Policy as code in plan and apply: the run's policies loaded (`--policy`, `--policy-ref`,
//! `--data`, `--namespace`), a plan judged, and every evaluation recorded in the audit trail.
//! There is no flag to skip a `deny`: it is changed in a reviewed policy file.

use std::path::PathBuf;

use super::{Error, Settings, session};
use crate::audit::{EventKind, NewEvent};
use crate::plan::Plan;
use crate::plan::policy::PolicyVerdict;
use crate::policy::{Policies, PolicyFile, Source, sources};
use crate::state::{self, StateStore};

/// Where this run's policies come from.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    /// `--policy DIR` (default `ROOT/policies`).
    pub dir: Option<PathBuf>,
    /// `--policy-ref REF`: the files as committed at REF.
    pub git_ref: Option<String>,
    /// `--data DIR`: JSON and YAML documents merged into `data`.
    pub data: Option<PathBuf>,
    /// `--namespace NS` (default `main`).
    pub namespace: Option<String>,
}

impl PolicySettings {
    /// The package decision rules are read from.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("main")
    }
}

/// The policy and test files of this run.
pub fn files(s: &Settings) -> Result<(Vec<PolicyFile>, Vec<PolicyFile>), Error> {
    let source = Source {
        root: s.root.clone(),
        dir: s
            .policy
            .dir
            .clone()
            .unwrap_or_else(|| s.root.join("policies")),
        git_ref: s.policy.git_ref.clone(),
    };
    Ok(sources::read(&source)?)
}

/// The data documents of this run (`--data`).
pub fn data(s: &Settings) -> Result<Vec<(String, serde_json::Value)>, Error> {
    match &s.policy.data {
        Some(dir) if !dir.is_dir() => Err(Error::Usage(format!(
            "--data {}: not a folder",
            dir.display()
        ))),
        Some(dir) => Ok(sources::read_data(&s.root, dir)?),
        None => Ok(Vec::new()),
    }
}

/// This run's policies, or `None` when the project has none.
pub fn load(s: &Settings) -> Result<Option<Policies>, Error> {
    let (policies, _) = files(s)?;
    if let Some(dir) = &s.policy.dir
        && policies.is_empty()
        && s.policy.git_ref.is_none()
        && !dir.is_dir()
    {
        return Err(Error::Usage(format!(
            "--policy {}: not a folder",
            dir.display()
        )));
    }
    if policies.is_empty() {
        return Ok(None);
    }
    Ok(Some(Policies::load(
        &policies,
        &data(s)?,
        s.policy.namespace(),
    )?))
}

/// Judges `plan` with this run's policies (loaded with [`load`] before any cloud call; none:
/// `None`), the input being the plan's JSON
/// document with who runs it, and records the evaluation as a `policy check` event (its
/// verdict in `after`).
pub async fn judge(
    s: &Settings,
    policies: Option<&Policies>,
    plan: &Plan,
    store: &dyn StateStore,
    operation: &str,
) -> Result<Option<PolicyVerdict>, Error> {
    let Some(policies) = policies else {
        return Ok(None);
    };
    let ctx = session::audit_context(s);
    let input = crate::policy::input::document(plan, &ctx.actor, &ctx.commit, operation);
    let verdict = policies.evaluate(&input)?;
    let mut event = NewEvent::new(
        operation,
        EventKind::PolicyCheck,
        if verdict.denies() { "denied" } else { "ok" },
    )
    .detail(format!(
        "{} denied, {} warned, by {} polic{} (namespace {}){}",
        verdict.denials.len(),
        verdict.warnings.len(),
        verdict.policies.len(),
        if verdict.policies.len() == 1 {
            "y"
        } else {
            "ies"
        },
        verdict.namespace,
        s.policy
            .git_ref
            .as_ref()
            .map(|r| format!(", as committed at {r}"))
            .unwrap_or_default()
    ));
    event.after = serde_json::to_value(&verdict).ok();
    store.commit(state::Change::None, event, &ctx).await?;
    Ok(Some(verdict))
}

/// The refusal a denying verdict makes (exit 1), naming each policy file, rule and address.
pub fn refusal(env: &str, verdict: &PolicyVerdict) -> Option<Error> {
    verdict.denies().then(|| {
        let lines: Vec<String> = verdict.denials.iter().map(|d| d.line()).collect();
        Error::Refused(format!(
            "{env}: denied by policy:\n  {}\nChange the files, or the policy in a reviewed change; no flag skips a deny.",
            lines.join("\n  ")
        ))
    })
}
