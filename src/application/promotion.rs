//! Promotion checks for `plan` and `apply`: each service change that brings new images is
//! judged against the completed rollouts of the environment promoted from (its audit trail,
//! which must verify). Plans show the verdict; apply refuses what is not promoted unless
//! `--allow-unpromoted "REASON"`, which is audited.

use std::collections::BTreeMap;

use super::{Error, Settings};
use crate::config::{Environment, Promotion};
use crate::model::Address;
use crate::plan::{Action, Plan};
use crate::promotion::{Proof, Verdict};
use crate::providers::Registry;

/// The verdict on every change in `plan` that brings a service new images (none without
/// `promotion`).
pub async fn verdicts(
    g: &Settings,
    env: &Environment,
    plan: &Plan,
    registry: &Registry,
) -> Result<BTreeMap<Address, Verdict>, Error> {
    let Some(promotion) = &env.promotion else {
        return Ok(BTreeMap::new());
    };
    let checked: Vec<(&Address, Vec<String>)> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
        .filter(|c| crate::kinds::lookup(&c.kind).is_some_and(|k| k.prop("rollout").is_some()))
        .filter_map(|c| {
            let after = crate::rollout::images(c.after.as_ref()?);
            let before = c.before.as_ref().map(crate::rollout::images);
            (before.as_ref() != Some(&after)).then_some((&c.address, after))
        })
        .collect();
    if checked.is_empty() {
        return Ok(BTreeMap::new());
    }
    let proof = proof(g, promotion).await?;
    let mut out = BTreeMap::new();
    for (address, images) in checked {
        let here = match registry.aws() {
            Some(aws) => crate::promotion::digests(aws, &images)
                .await
                .map_err(|source| Error::Provider {
                    context: format!("{address}: reading image digests for promotion"),
                    source,
                })?,
            None => BTreeMap::new(),
        };
        let verdict = Verdict::judge(address, &promotion.from, &images, &here, &proof);
        out.insert(address.clone(), verdict);
    }
    Ok(out)
}

/// What the environment promoted from proves, read from its state (never created).
async fn proof(g: &Settings, promotion: &Promotion) -> Result<Proof, Error> {
    let url = promotion.state_url.as_deref().or(g.state_url.as_deref());
    let from = &promotion.from;
    if let Some(path) = crate::state::sqlite_path(&g.root, from, url)?
        && !path.exists()
    {
        return Ok(Proof::Nothing(format!(
            "{from} has no state at {}",
            path.display()
        )));
    }
    let store = crate::state::open(&g.root, from, url).await?;
    let (events, head_seq, head_hash) = store.audit_chain().await?;
    if events.is_empty() {
        return Ok(Proof::Nothing(format!("{from} has no audit trail yet")));
    }
    Ok(Proof::from_chain(from, &events, head_seq, &head_hash))
}
