//! Reading state and live state and computing the plan, as plan and apply both do.

use std::collections::BTreeMap;

use super::{Error, Settings, session};
use crate::config::Environment;
use crate::model::{Address, LiveMap};
use crate::plan::{self, Plan, PlanOptions};
use crate::providers::Registry;
use crate::state::{ResourceState, StateStore};

/// Everything a plan was computed from, kept for apply.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// State when planned.
    pub state: Vec<ResourceState>,
    /// Live state when planned.
    pub live: LiveMap,
    /// Services `rollout undo` pinned to an earlier revision.
    pub pins: crate::rollout::Pins,
    /// The promotion verdict on each service change that brings new images.
    pub promotion: BTreeMap<Address, crate::promotion::Verdict>,
}

/// Parses `--target` addresses, checking they exist in the files or in state.
pub fn targets(
    raw: &[String],
    env: &Environment,
    state: &[ResourceState],
) -> Result<Vec<Address>, Error> {
    raw.iter()
        .map(|t| {
            let a = Address::parse(t)
                .ok_or_else(|| Error::Usage(format!("--target {t}: not an address")))?;
            if env.resources.contains_key(&a) || state.iter().any(|s| s.address == a) {
                Ok(a)
            } else {
                Err(Error::Usage(format!(
                    "--target {t}: no resource at that address in {}",
                    env.name
                )))
            }
        })
        .collect()
}

/// Reads state, refreshes live state and computes the plan (with the promotion verdicts).
pub async fn refresh_and_plan(
    s: &Settings,
    env: &Environment,
    store: &dyn StateStore,
    registry: &Registry,
    raw_targets: &[String],
    destroy: bool,
) -> Result<Planned, Error> {
    let serial = store.serial().await?;
    let stored = store.resources().await?;
    session::check_digests(&stored)?;
    let moves = resolve_moves(env, &stored)?;
    let live = session::refresh(s, registry, &env.name, &stored).await?;
    // From here on, state reads as it will once the moves are made (apply makes them first).
    let state = plan::moves::moved_state(&stored, &moves);
    let live = renamed(live, &moves);
    let pins = renamed(crate::rollout::pins(store).await?, &moves);
    let targets = targets(raw_targets, env, &state)?;
    let mut plan = plan::compute(
        env,
        &state,
        &live,
        serial,
        &PlanOptions {
            targets,
            destroy,
            pins: pins.clone(),
            moves,
            outputs: store.outputs().await?,
        },
    );
    let promotion = super::promotion::verdicts(s, env, &plan, registry).await?;
    for change in plan.changes.iter_mut() {
        if let Some(v) = promotion.get(&change.address) {
            let note = v.note();
            change.note = Some(match change.note.take() {
                Some(before) => format!("{before}; {note}"),
                None => note,
            });
        }
    }
    Ok(Planned {
        plan,
        state,
        live,
        pins,
        promotion,
    })
}

/// The moves `env`'s `moved` entries make of `state`, or their conflicts as errors located at
/// the entries.
pub fn resolve_moves(
    env: &Environment,
    state: &[ResourceState],
) -> Result<Vec<plan::moves::Move>, Error> {
    plan::moves::resolve(&env.moved, state).map_err(|conflicts| {
        Error::Config(crate::config::ConfigErrors {
            errors: conflicts
                .into_iter()
                .map(|c| {
                    let entry = &env.moved[c.entry];
                    crate::config::ConfigError::at(
                        &env.files[entry.file],
                        &entry.span,
                        c.message,
                        "this `moved` entry",
                    )
                })
                .collect(),
        })
    })
}

/// `map` with each moved resource's entry under its new address.
fn renamed<V>(mut map: BTreeMap<Address, V>, moves: &[plan::moves::Move]) -> BTreeMap<Address, V> {
    let taken: Vec<(Address, V)> = moves
        .iter()
        .filter_map(|m| map.remove(&m.from).map(|v| (m.to.clone(), v)))
        .collect();
    map.extend(taken);
    map
}
