//! The typed payloads of revision events (`first revision`, the rollout events): what a
//! revision ran, written and read through one type so `rollout history`, promotion and cost
//! attribution never pick keys out of JSON by hand. The field names are the trail's, so events
//! written before these types read back unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EventKind, NewEvent};

/// The revision a rollout event is about: the event's `after`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// The revision's id: an ECS task definition ARN, or a host app's colour.
    #[serde(default)]
    pub task_definition: String,
    /// The images it runs, in container (or service) order.
    #[serde(default)]
    pub images: Vec<String>,
    /// Traffic on the old and the new revision when the event was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// The rollout's id (empty for a service's first revision).
    #[serde(default)]
    pub rollout: String,
    /// The images' manifest digests (on `rollout complete`, where ECR resolved them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<BTreeMap<String, String>>,
    /// The backups taken before the rollout's pre_traffic hooks (on `rollout backup`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<crate::model::backup::Backup>,
    /// Older backup files removed to keep each accessory's newest `keep` (on `rollout backup`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<crate::model::backup::Pruned>,
}

/// Percent of traffic on each revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// On the old revision.
    pub old: i32,
    /// On the new one.
    pub new: i32,
}

/// The revision a rollout event went from: the event's `before`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Before {
    task_definition: String,
}

/// A revision event whose payload does not decode.
#[derive(Debug, thiserror::Error)]
#[error("audit event `{action}` of {address}: its revision does not decode: {source}")]
pub struct PayloadError {
    /// The event's action.
    pub action: String,
    /// The event's address.
    pub address: String,
    /// What serde said.
    #[source]
    pub source: serde_json::Error,
}

impl NewEvent {
    /// Sets the revision this event is about (`after`) and the one it went from (`before`,
    /// when there is one).
    pub fn revision(mut self, from: Option<&str>, revision: &Revision) -> NewEvent {
        self.before = from.map(|task_definition| {
            serde_json::to_value(Before {
                task_definition: task_definition.to_string(),
            })
            .expect("a revision serializes")
        });
        self.after = Some(serde_json::to_value(revision).expect("a revision serializes"));
        self
    }

    /// The revision a revision event is about (`Ok(None)` for other events, or one without
    /// an `after`).
    pub fn revision_after(&self) -> Result<Option<Revision>, PayloadError> {
        let is_revision = self.kind().is_some_and(EventKind::carries_a_revision);
        match (&self.after, is_revision) {
            (Some(after), true) => {
                serde_json::from_value(after.clone())
                    .map(Some)
                    .map_err(|source| PayloadError {
                        action: self.action.clone(),
                        address: self.address.clone().unwrap_or_default(),
                        source,
                    })
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_reads_back_from_an_event_written_before_the_types() {
        // As the driver wrote them by hand.
        let mut old = NewEvent::new("apply", EventKind::RolloutComplete, "ok");
        old.after = Some(serde_json::json!({
            "task_definition": "arn:aws:ecs:us-east-1:1:task-definition/api:2",
            "images": ["repo/api:v2"],
            "weights": { "old": 0, "new": 100 },
            "rollout": "r-1",
            "digests": { "repo/api:v2": "sha256:ab" },
        }));
        let rev = old.revision_after().unwrap().unwrap();
        assert_eq!(rev.images, ["repo/api:v2"]);
        assert_eq!(rev.weights, Some(Weights { old: 0, new: 100 }));
        let written = NewEvent::new("apply", EventKind::RolloutComplete, "ok")
            .revision(Some("arn:…/api:1"), &rev);
        assert_eq!(
            written.after, old.after,
            "the same JSON as before the types"
        );
        let first = NewEvent::new("apply", EventKind::FirstRevision, "ok").revision(
            None,
            &Revision {
                task_definition: "td:1".into(),
                images: vec!["i".into()],
                ..Revision::default()
            },
        );
        assert_eq!(
            first.after,
            Some(serde_json::json!({"task_definition": "td:1", "images": ["i"], "rollout": ""}))
        );
    }

    #[test]
    fn a_payload_that_does_not_decode_is_an_error_not_a_default() {
        let mut ev = NewEvent::new("apply", EventKind::RolloutComplete, "ok");
        ev.after = Some(serde_json::json!({ "images": "not a list" }));
        let err = ev.revision_after().unwrap_err();
        assert!(err.to_string().contains("rollout complete"), "{err}");
        let plan = NewEvent::new("plan", EventKind::Plan, "ok");
        assert!(plan.revision_after().unwrap().is_none());
    }
}
