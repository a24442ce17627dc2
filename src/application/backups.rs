//! The backups converge took of a host app's accessories before migrations, from the audit
//! trail (which must verify): every file a `rollout backup` event recorded and no later one
//! pruned, newest first (`converge backups ADDR`). No host is called.

use super::Error;
use crate::audit::{Event, EventKind, PayloadError};
use crate::model::Address;
use crate::model::backup::Backup;
use crate::state::StateStore;

/// The backups of `address` in `events` that are still kept on their hosts, newest first.
pub fn kept(events: &[Event], address: &Address) -> Result<Vec<Backup>, PayloadError> {
    let mut out: Vec<Backup> = Vec::new();
    for e in events {
        if e.body.address.as_deref() != Some(address.as_str())
            || e.body.kind() != Some(EventKind::RolloutBackup)
        {
            continue;
        }
        let after = e.body.revision_after()?.unwrap_or_default();
        out.retain(|b| {
            !after
                .pruned
                .iter()
                .any(|p| p.host == b.host && p.path == b.path)
        });
        out.extend(after.backups);
    }
    out.reverse();
    Ok(out)
}

/// The kept backups of `address` in `store`'s audit trail, which must verify first.
pub async fn verified(
    env: &str,
    store: &dyn StateStore,
    address: &Address,
) -> Result<Vec<Backup>, Error> {
    let (events, head_seq, head_hash) = store.audit_chain().await?;
    if let Err(broken) = crate::audit::verify(&events, head_seq, &head_hash) {
        return Err(Error::Failed(format!(
            "the audit trail of {env} does not verify (event {}: {}); its backups cannot be trusted",
            broken.seq, broken.reason
        )));
    }
    Ok(kept(&events, address)?)
}
