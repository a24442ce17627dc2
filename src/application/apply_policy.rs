//! What apply decides before and after it changes anything: which unpromoted services it must
//! refuse (or, with `--allow-unpromoted`, the audited override) and the audit of host keys
//! `--accept-new-host-keys` let in.

use super::{Error, Settings};

/// The services apply must refuse for promotion, with why; with `--allow-unpromoted`, none
/// (each override is audited with its reason and what it let through).
pub async fn unpromoted(
    g: &Settings,
    verdicts: &std::collections::BTreeMap<crate::model::Address, crate::promotion::Verdict>,
    store: &dyn crate::state::StateStore,
    ctx: &crate::audit::Context,
    operation: &str,
) -> Result<std::collections::BTreeMap<crate::model::Address, String>, Error> {
    let refused: std::collections::BTreeMap<_, _> = verdicts
        .iter()
        .filter(|(_, v)| !v.refused.is_empty())
        .map(|(a, v)| (a.clone(), v.refused.join("; ")))
        .collect();
    let Some(reason) = &g.allow_unpromoted else {
        return Ok(refused);
    };
    for (address, why) in &refused {
        g.say(&format!("warning: {address}: {why}; allowed: {reason}"));
        let event = crate::audit::NewEvent::new(
            operation,
            crate::audit::EventKind::PromotionOverride,
            "ok",
        )
        .address(address)
        .detail(format!("{why}; reason: {reason}"));
        store.commit(crate::state::Change::None, event, ctx).await?;
    }
    Ok(std::collections::BTreeMap::new())
}

/// Records each SSH host key `--accept-new-host-keys` let in since the last call.
pub async fn audit_accepted_host_keys(
    g: &Settings,
    hosts: &crate::hosts::app::HostOptions,
    store: &dyn crate::state::StateStore,
    ctx: &crate::audit::Context,
    operation: &str,
) -> Result<(), Error> {
    for key in hosts.accepted.take() {
        g.say(&format!("warning: accepted the new host key of {key}"));
        let event =
            crate::audit::NewEvent::new(operation, crate::audit::EventKind::HostKeyAccepted, "ok")
                .detail(format!(
                    "{key} recorded in known_hosts (--accept-new-host-keys)"
                ));
        store.commit(crate::state::Change::None, event, ctx).await?;
    }
    Ok(())
}
