//! `drift`'s use case: live state against the last applied state, audited (one event per
//! drifted resource, or one saying none drifted). What `rollout undo` pinned is not drift.

use super::{Error, Settings, session};
use crate::audit::NewEvent;
use crate::plan::drift::Drifted;
use crate::state::{self, StateStore};

/// What one drift check found.
#[derive(Debug)]
pub struct Checked {
    /// The environment checked.
    pub environment: String,
    /// How many resources state holds (all were read).
    pub checked: usize,
    /// What changed outside converge.
    pub drifted: Vec<Drifted>,
}

/// Checks the settings' environment for drift (rolling back rollouts paused past their
/// timeout first, under the write lock).
pub async fn check(g: &Settings) -> Result<Checked, Error> {
    let name = session::env_name(g)?;
    let env = session::load(g, &name)?;
    let store = session::open_state(g, &name).await?;
    let registry = session::registry(g, &env).await;
    super::pauses::expire(
        g,
        &env,
        store.as_ref(),
        &registry,
        super::pauses::Lock::Take,
    )
    .await?;
    let stored = store.resources().await?;
    session::check_digests(&stored)?;
    let live = session::refresh(g, &registry, &name, &stored).await?;
    let pins = crate::rollout::pins(store.as_ref()).await?;
    let (drifted, undone): (Vec<Drifted>, Vec<Drifted>) =
        crate::plan::drift::compute(&stored, &live)
            .into_iter()
            .partition(|d| {
                crate::model::Address::parse(&d.address).is_none_or(|a| !pins.contains_key(&a))
            });
    for d in &undone {
        if let Some(pin) =
            crate::model::Address::parse(&d.address).and_then(|a| pins.get(&a).cloned())
        {
            g.say(&format!(
                "{}: {} (`rollout undo`, not drift)",
                d.address,
                pin.describe()
            ));
        }
    }
    record(store.as_ref(), &drifted, &session::audit_context(g)).await?;
    Ok(Checked {
        environment: name,
        checked: stored.len(),
        drifted,
    })
}

async fn record(
    store: &dyn StateStore,
    drifted: &[Drifted],
    ctx: &crate::audit::Context,
) -> Result<(), Error> {
    if drifted.is_empty() {
        store
            .commit(
                state::Change::None,
                NewEvent::new("drift", crate::audit::EventKind::DriftCheck, "none"),
                ctx,
            )
            .await?;
    }
    for d in drifted {
        let mut event =
            NewEvent::new("drift", crate::audit::EventKind::Drift, "drift").address(&d.address);
        if d.status == "deleted" {
            event.detail = Some("deleted outside converge".into());
        } else if d.status == "interrupted" {
            event.detail = Some("left in flight by an interrupted apply".into());
        } else {
            event.before = Some(
                d.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.last_applied.clone()))
                    .collect(),
            );
            event.after = Some(
                d.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.live.clone()))
                    .collect(),
            );
            event.detail = Some(format!(
                "changed outside converge: {}",
                d.fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        store.commit(state::Change::None, event, ctx).await?;
    }
    Ok(())
}
