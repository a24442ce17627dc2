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
    let ours = of_the_resource(events, address);
    for (e, _) in events.iter().zip(&ours).filter(|(_, ours)| **ours) {
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

/// Which of `events` concern the resource now at `address`, under that address or, before a
/// `state mv` brought it there, under the one it had (followed back through every move; what
/// a name meant before a move took it away is another resource).
fn of_the_resource(events: &[Event], address: &Address) -> Vec<bool> {
    let mut name = address.as_str().to_string();
    let mut out = vec![false; events.len()];
    for (i, e) in events.iter().enumerate().rev() {
        if e.body.kind() == Some(EventKind::Move) {
            for (from, to) in moves_of(e) {
                if to == name {
                    name = from;
                    break;
                } else if from == name {
                    // Before this move the name was another resource's.
                    name.clear();
                }
            }
            continue;
        }
        out[i] = e.body.address.as_deref() == Some(name.as_str());
    }
    out
}

/// The (from, to) pairs a `moved` event made: `{address}` before and after for one move,
/// `{addresses: [...]}` for several made together.
fn moves_of(e: &Event) -> Vec<(String, String)> {
    let side = |v: &Option<serde_json::Value>| -> Vec<String> {
        let Some(v) = v else { return Vec::new() };
        match (v["address"].as_str(), v["addresses"].as_array()) {
            (Some(one), _) => vec![one.to_string()],
            (None, Some(many)) => many
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    side(&e.body.before)
        .into_iter()
        .zip(side(&e.body.after))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, address: &str, action: &str, before: &str, after: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "seq": seq, "id": format!("e{seq}"), "time": "2026-12-04T00:00:00Z",
            "environment": "dev", "actor": "a", "commit": "",
            "operation": "apply", "address": address, "action": action,
            "before": serde_json::from_str::<serde_json::Value>(before).unwrap(),
            "after": serde_json::from_str::<serde_json::Value>(after).unwrap(),
            "outcome": "ok", "detail": null, "prev_hash": "", "hash": "",
        }))
        .unwrap()
    }

    /// A resource moved `api` → `backend` → `svc` keeps the events of each of its names from
    /// before each move; a later resource named `api` is another one.
    #[test]
    fn the_history_follows_a_resource_through_its_moves() {
        let events = vec![
            event(1, "api", "create", "null", "{}"),
            event(
                2,
                "backend",
                "moved",
                r#"{"address":"api"}"#,
                r#"{"address":"backend"}"#,
            ),
            event(3, "backend", "update", "{}", "{}"),
            event(4, "api", "create", "null", "{}"),
            event(
                5,
                "svc",
                "moved",
                r#"{"address":"backend"}"#,
                r#"{"address":"svc"}"#,
            ),
            event(6, "svc", "update", "{}", "{}"),
        ];
        let svc = of_the_resource(&events, &Address::root("svc"));
        assert_eq!(svc, [true, false, true, false, false, true]);
        let api = of_the_resource(&events, &Address::root("api"));
        assert_eq!(api, [false, false, false, true, false, false]);
    }

    /// Moves made together by `moved` entries are one event listing them all.
    #[test]
    fn moves_made_together_are_followed_too() {
        let events = vec![
            event(1, "api", "create", "null", "{}"),
            event(2, "web", "create", "null", "{}"),
            event(
                3,
                "",
                "moved",
                r#"{"addresses":["api","web"]}"#,
                r#"{"addresses":["backend.api","backend.web"]}"#,
            ),
        ];
        let web = of_the_resource(&events, &Address::in_module("backend", "web"));
        assert_eq!(web, [false, true, false]);
    }
}
