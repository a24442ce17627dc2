//! `converge rollout history ADDR`: every revision a service ran, from the audit trail (which
//! must verify): each rollout's (or rolling deploy's) revision, images, time, actor, commit and
//! outcome, oldest first.

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::audit::{Event, EventKind, PayloadError};
use crate::model::Address;
use crate::state::StateStore;

/// One revision as the history shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Revision {
    /// `family:N` (the task definition's last segment).
    pub revision: String,
    /// The task definition ARN.
    pub task_definition: String,
    /// The images it ran.
    pub images: Vec<String>,
    /// When the rollout ended (RFC 3339).
    pub time: String,
    /// Who ran it.
    pub actor: String,
    /// The commit it came from.
    pub commit: String,
    /// `succeeded`, `rolled_back`, `refused`, `not_ready`.
    pub outcome: String,
    /// The rollout's id.
    pub rollout: String,
    /// What the last event said.
    pub detail: String,
}

/// The outcome a rollout's final audit event stands for.
fn outcome(kind: EventKind) -> Option<&'static str> {
    match kind {
        k if k.completes_a_revision() => Some("succeeded"),
        EventKind::Rollback => Some("rolled_back"),
        EventKind::RolloutRefused => Some("refused"),
        EventKind::RolloutNotReady => Some("not_ready"),
        _ => None,
    }
}

/// The revisions of `address` in `events`, one per rollout, oldest first; an event whose
/// revision does not decode is an error, never a blank row.
pub fn revisions(events: &[Event], address: &Address) -> Result<Vec<Revision>, PayloadError> {
    let mut out: Vec<Revision> = Vec::new();
    for e in events {
        if e.body.address.as_deref() != Some(address.as_str()) {
            continue;
        }
        let Some(outcome) = e.body.kind().and_then(outcome) else {
            continue;
        };
        let after = e.body.revision_after()?.unwrap_or_default();
        // `rollout not ready` is followed by its rollback: one row, the later outcome wins
        // unless it says more.
        if let Some(last) = out.last_mut()
            && !after.rollout.is_empty()
            && last.rollout == after.rollout
        {
            if last.outcome != "not_ready" {
                last.outcome = outcome.to_string();
            }
            last.time = e.time.clone();
            last.detail = e.body.detail.clone().unwrap_or_default();
            continue;
        }
        out.push(Revision {
            revision: after
                .task_definition
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            task_definition: after.task_definition,
            images: after.images,
            time: e.time.clone(),
            actor: e.actor.clone(),
            commit: e.commit.clone(),
            outcome: outcome.to_string(),
            rollout: after.rollout,
            detail: e.body.detail.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Prints the history of `address` from `store`'s verified audit trail.
pub(super) async fn run(
    g: &GlobalArgs,
    env: &str,
    store: &dyn StateStore,
    address: &Address,
) -> Result<i32, CliError> {
    let (events, head_seq, head_hash) = store.audit_chain().await?;
    if let Err(broken) = crate::audit::verify(&events, head_seq, &head_hash) {
        return Err(CliError::Failed(format!(
            "the audit trail of {env} does not verify (event {}: {}); its history cannot be trusted",
            broken.seq, broken.reason
        )));
    }
    let revisions = revisions(&events, address).map_err(|e| CliError::Failed(e.to_string()))?;
    if g.format == Format::Json {
        output::json(&serde_json::json!({
            "environment": env,
            "address": address.to_string(),
            "revisions": revisions,
        }));
        return Ok(EXIT_OK);
    }
    if revisions.is_empty() {
        output::print(&format!("No revisions of {address} recorded in {env}.\n"));
        return Ok(EXIT_OK);
    }
    let mut text = format!("{address} in {env}, oldest first:\n");
    for r in &revisions {
        text.push_str(&format!(
            "  {:<24} {:<12} {}  {} by {}{}\n      {}\n",
            r.revision,
            r.outcome,
            r.time,
            r.images.join(", "),
            r.actor,
            if r.commit.is_empty() {
                String::new()
            } else {
                format!(" (commit {})", &r.commit[..r.commit.len().min(12)])
            },
            r.detail
        ));
    }
    output::print(&text);
    Ok(EXIT_OK)
}
