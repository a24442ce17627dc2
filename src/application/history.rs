//! Every revision a service ran, from the audit trail: each rollout's (or rolling deploy's)
//! revision, images, time, actor, commit and outcome, oldest first (`rollout history` and
//! `rollout undo` read it).

use super::Error;
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
    /// The backups taken before its pre_traffic hooks (migrations) ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<crate::model::backup::Backup>,
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
    let mut backups: std::collections::BTreeMap<String, Vec<crate::model::backup::Backup>> =
        Default::default();
    for e in events {
        if e.body.address.as_deref() != Some(address.as_str()) {
            continue;
        }
        if e.body.kind() == Some(EventKind::RolloutBackup) {
            let after = e.body.revision_after()?.unwrap_or_default();
            backups
                .entry(after.rollout)
                .or_default()
                .extend(after.backups);
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
            backups: Vec::new(),
        });
    }
    for r in &mut out {
        r.backups = backups.remove(&r.rollout).unwrap_or_default();
    }
    Ok(out)
}

/// The revisions of `address` in `store`'s audit trail, which must verify first.
pub async fn verified(
    env: &str,
    store: &dyn StateStore,
    address: &Address,
) -> Result<Vec<Revision>, Error> {
    let (events, head_seq, head_hash) = store.audit_chain().await?;
    if let Err(broken) = crate::audit::verify(&events, head_seq, &head_hash) {
        return Err(Error::Failed(format!(
            "the audit trail of {env} does not verify (event {}: {}); its history cannot be trusted",
            broken.seq, broken.reason
        )));
    }
    Ok(revisions(&events, address)?)
}
