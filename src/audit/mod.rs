//! The audit trail: append-only, hash-chained events; who did what, when, from which commit.
//!
//! Each event's hash is SHA-256 over the previous event's hash and the event's canonical JSON
//! (every field but the hash, keys sorted). The environment's chain head (last sequence number
//! and hash) is kept beside the events, so an edited, deleted (even the last), inserted or
//! reordered event breaks [`verify`].

mod context;
mod kind;
mod payload;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use context::Context;
pub use kind::EventKind;
pub use payload::{PayloadError, Revision, Weights};

/// The hash that precedes the first event of an environment.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event about to be appended: what happened, before sequence number and hashes exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The command that caused it: `apply`, `drift`, `import`, `state rm`, `lock force-unlock`...
    pub operation: String,
    /// The resource it concerns, if any.
    pub address: Option<String>,
    /// What was done: an [`EventKind`]'s string (`create`, `rollout complete`, ...), as
    /// stored; read it with [`NewEvent::kind`].
    pub action: String,
    /// Properties before, secrets redacted.
    pub before: Option<serde_json::Value>,
    /// Properties after, secrets redacted.
    pub after: Option<serde_json::Value>,
    /// `ok`, `failed`, `skipped`, `drift`, `none`...
    pub outcome: String,
    /// A free-text detail: an error message, the drifted fields, a reason.
    pub detail: Option<String>,
}

impl NewEvent {
    /// An event of `kind` with no address, before or after.
    pub fn new(operation: &str, kind: EventKind, outcome: &str) -> NewEvent {
        NewEvent {
            operation: operation.into(),
            address: None,
            action: kind.as_str().into(),
            before: None,
            after: None,
            outcome: outcome.into(),
            detail: None,
        }
    }

    /// The kind of event (`None`: an action this binary does not write).
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.action)
    }

    /// Sets the address.
    pub fn address(mut self, address: impl ToString) -> NewEvent {
        self.address = Some(address.to_string());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> NewEvent {
        self.detail = Some(detail.into());
        self
    }
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the environment's chain, from 1; shown as the event's ID.
    pub seq: i64,
    /// A UUID, unique across environments.
    pub id: String,
    /// RFC 3339 UTC time.
    pub time: String,
    /// The environment.
    pub environment: String,
    /// Who: `CONVERGE_ACTOR`, `GITHUB_ACTOR` or the OS user.
    pub actor: String,
    /// From which commit: `GITHUB_SHA` or the project's git HEAD (empty when neither).
    pub commit: String,
    /// What happened.
    #[serde(flatten)]
    pub body: NewEvent,
    /// The previous event's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl Event {
    /// Builds the next event of a chain whose head is (`prev_seq`, `prev_hash`).
    pub fn seal(
        ctx: &Context,
        environment: &str,
        prev_seq: i64,
        prev_hash: &str,
        body: NewEvent,
    ) -> Event {
        let mut event = Event {
            seq: prev_seq + 1,
            id: uuid::Uuid::new_v4().to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            environment: environment.to_string(),
            actor: ctx.actor.clone(),
            commit: ctx.commit.clone(),
            body,
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        event
    }

    /// The hash this event should have, from its content and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = json.as_object_mut() {
            obj.remove("hash");
        }
        // serde_json's map is ordered by key, so this is canonical.
        let canonical = serde_json::to_string(&json).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(canonical.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// Why a chain failed verification: the first event found broken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    /// The sequence number (ID) of the first broken event.
    pub seq: i64,
    /// Its UUID, when the event exists.
    pub id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Checks a chain (events in stored order) against its recorded head (`head_seq`, `head_hash`).
pub fn verify(events: &[Event], head_seq: i64, head_hash: &str) -> Result<usize, Broken> {
    let mut prev_hash = GENESIS.to_string();
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let broken = |reason: String| Broken {
            seq: e.seq,
            id: Some(e.id.clone()),
            reason,
        };
        if e.seq != expected_seq {
            return Err(broken(format!(
                "expected event {expected_seq} here, found event {}: an event was deleted, inserted or reordered",
                e.seq
            )));
        }
        if e.prev_hash != prev_hash {
            return Err(broken(
                "its previous-hash link does not match the event before it".into(),
            ));
        }
        if e.compute_hash() != e.hash {
            return Err(broken(
                "its content does not match its hash: the event was edited".into(),
            ));
        }
        prev_hash = e.hash.clone();
    }
    let last = events.len() as i64;
    if last != head_seq || prev_hash != head_hash {
        return Err(Broken {
            seq: last + 1,
            id: None,
            reason: format!(
                "the chain ends at event {last} but the recorded head is event {head_seq}: events were removed from the end"
            ),
        });
    }
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<Event> {
        let ctx = Context {
            actor: "alice".into(),
            commit: "abc".into(),
        };
        let mut out: Vec<Event> = Vec::new();
        for i in 0..n {
            let (seq, hash) = out
                .last()
                .map(|e| (e.seq, e.hash.clone()))
                .unwrap_or((0, GENESIS.into()));
            out.push(Event::seal(
                &ctx,
                "dev",
                seq,
                &hash,
                NewEvent::new("apply", EventKind::Create, "ok").address(format!("r{i}")),
            ));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(3);
        assert_eq!(verify(&c, 3, &c[2].hash), Ok(3));
        assert_eq!(verify(&[], 0, GENESIS), Ok(0));
    }

    #[test]
    fn edits_deletions_reorders_and_truncation_are_found() {
        let c = chain(4);
        let head = c[3].hash.clone();

        let mut edited = c.clone();
        edited[1].actor = "mallory".into();
        assert_eq!(verify(&edited, 4, &head).unwrap_err().seq, 2);

        let mut deleted = c.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, 4, &head).unwrap_err().seq, 3);

        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped, 4, &head).unwrap_err().seq, 3);

        let truncated = c[..3].to_vec();
        assert!(
            verify(&truncated, 4, &head)
                .unwrap_err()
                .reason
                .contains("removed from the end")
        );
    }
}
