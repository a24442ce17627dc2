//! `converge rollout undo ADDR [--to REVISION]`: sends a service back to a revision it ran
//! before, through its own strategy and gates, under the write lock, and pins it there: plan
//! says `undone to rev N by ACTOR; the files still say rev M`, and apply refuses rev M until
//! the files name other images (or `apply --redo`), so the next merge does not redeploy what
//! was just undone.

use tokio_util::sync::CancellationToken;

use super::history::{Revision, revisions};
use super::{Error, Settings, session};
use crate::audit::NewEvent;
use crate::config::Environment;
use crate::model::Address;
use crate::rollout::deploy::{Revisions, UndoCheck};
use crate::rollout::record::{Undo, revision_number};
use crate::rollout::{RolloutContext, RolloutRequest};
use crate::state::{self, StateStore};

/// Runs the undo of `address` (to `to`, else the revision before the current one).
pub async fn run(g: &Settings, address: &Address, to: Option<&str>) -> Result<String, Error> {
    let name = session::env_name(g)?;
    let env = session::load(g, &name)?;
    let store = session::open_state(g, &name).await?;
    let audit = session::audit_context(g);
    let guard = session::lock(g, &name, store.as_ref(), "rollout undo", &audit).await?;
    let result = undo(g, &env, store.as_ref(), &audit, address, to).await;
    guard.release(store.as_ref()).await?;
    result
}

async fn undo(
    g: &Settings,
    env: &Environment,
    store: &dyn StateStore,
    audit: &crate::audit::Context,
    address: &Address,
    to: Option<&str>,
) -> Result<String, Error> {
    let stored = store.resources().await?;
    session::check_digests(&stored)?;
    let row = stored
        .iter()
        .find(|s| &s.address == address)
        .ok_or_else(|| Error::Usage(format!("no resource at {address} in {}'s state", env.name)))?;
    let deploy = crate::kinds::find(&row.kind)
        .and_then(|k| k.deploy)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{address} is {}; rollout undo works on kinds whose changes are rollouts ({})",
                row.kind,
                crate::kinds::ALL
                    .iter()
                    .filter(|k| k.deploy.is_some())
                    .map(|k| k.schema.kind)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let (events, head_seq, head_hash) = store.audit_chain().await?;
    if let Err(broken) = crate::audit::verify(&events, head_seq, &head_hash) {
        return Err(Error::Failed(format!(
            "the audit trail of {} does not verify (event {}: {}); its history cannot be trusted to undo from",
            env.name, broken.seq, broken.reason
        )));
    }
    let history = revisions(&events, address).map_err(|e| Error::Failed(e.to_string()))?;
    let current = match deploy.revisions() {
        Revisions::Images => {
            let target = pick_images(&history, row, to, address)?;
            return super::undo_host::run(g, env, store, audit, row, target).await;
        }
        registered => registered.current(&row.outputs).unwrap_or_default(),
    };
    let target = pick(&history, &current, to, address)?;
    let registry = session::registry(g, env).await;
    let warnings = deploy
        .check_undo(&registry, &target.task_definition, &target.images)
        .await
        .map_err(|e| match e {
            UndoCheck::Refused(why) => Error::Refused(format!(
                "{address}: {why} (`converge rollout history {address}` lists the others)"
            )),
            UndoCheck::Call(source) => Error::Provider {
                context: format!("{address}: checking rev {}", target.revision),
                source,
            },
        })?;
    for warning in warnings {
        g.say(&format!("{address}: {warning}"));
    }
    let live = session::refresh(g, &registry, &env.name, std::slice::from_ref(row)).await?;
    let kind = crate::kinds::lookup(&row.kind).expect("state holds registered kinds");
    let (prior, prior_outputs) = match live.get(address).cloned().flatten() {
        Some(l) => (kind.normalize(&l.properties), l.outputs),
        None => {
            return Err(Error::Refused(format!(
                "{address} no longer exists in the cloud; apply creates it again"
            )));
        }
    };
    let spec = deploy
        .spec(&row.properties)
        .map_err(|e| Error::Failed(format!("{address}: {e}")))?;
    let pin = Undo {
        from: current.clone(),
        from_images: crate::rollout::images(&row.properties),
        to: target.task_definition.clone(),
        to_images: target.images.clone(),
        actor: audit.actor.clone(),
        at: crate::rollout::record::now(),
    };
    let req = RolloutRequest::new(
        deploy,
        address.clone(),
        row.remote_id.clone(),
        (prior, prior_outputs),
        row.properties.clone(),
        spec,
    )
    .undoing(pin.clone());
    g.say(&format!(
        "{address}: undoing rev {} → rev {} ({}) through its {} rollout",
        revision_number(&current),
        revision_number(&target.task_definition),
        target.images.join(", "),
        req.spec.strategy.as_str()
    ));
    roll(g, env, store, audit, &registry, &req, &pin).await
}

/// Runs the undo rollout `req` (pinned at `pin`) and audits how it ended.
pub(super) async fn roll(
    g: &Settings,
    env: &Environment,
    store: &dyn StateStore,
    audit: &crate::audit::Context,
    registry: &crate::providers::Registry,
    req: &RolloutRequest,
    pin: &Undo,
) -> Result<String, Error> {
    let interrupt = CancellationToken::new();
    let report = |line: &str| g.say(line);
    let ctx = RolloutContext::for_environment(
        env,
        store,
        audit,
        registry,
        "rollout undo",
        &interrupt,
        &report,
    );
    let outcome = crate::rollout::run(&ctx, req).await;
    finish(store, audit, &req.address, pin, outcome.map(|_| ())).await
}

/// Audits how the undo of `address` to `pin` ended and says so: exit 0 and what apply now
/// refuses, or the failure.
pub(super) async fn finish(
    store: &dyn StateStore,
    audit: &crate::audit::Context,
    address: &Address,
    pin: &Undo,
    outcome: Result<(), crate::rollout::RolloutError>,
) -> Result<String, Error> {
    let (result, detail) = match &outcome {
        Ok(()) => ("ok", pin.describe()),
        Err(e) => ("failed", e.to_string()),
    };
    store
        .commit(
            state::Change::None,
            NewEvent::new("rollout undo", crate::audit::EventKind::Undo, result)
                .address(address)
                .detail(detail.clone()),
            audit,
        )
        .await?;
    match outcome {
        Ok(()) => Ok(format!(
            "{address}: {detail}. apply refuses rev {} until the files name other images, or with `converge apply --redo`.",
            revision_number(&pin.from)
        )),
        Err(e) => Err(Error::Failed(format!("{address}: undo: {e}"))),
    }
}

/// The revision to go back to: `--to` (`N`, `family:N` or the ARN), else the newest revision
/// other than the current one that completed a rollout.
fn pick(
    history: &[Revision],
    current: &str,
    to: Option<&str>,
    address: &Address,
) -> Result<Revision, Error> {
    let mut succeeded = history.iter().filter(|r| r.outcome == "succeeded");
    let found = match to {
        Some(want) => succeeded.rfind(|r| {
            r.task_definition == want
                || r.revision == want
                || revision_number(&r.task_definition) == want
        }),
        None => succeeded.rfind(|r| r.task_definition != current),
    };
    let found = found.cloned().ok_or_else(|| {
        Error::Usage(format!(
            "{address}: {}; `converge rollout history {address}` lists the revisions it ran",
            match to {
                Some(want) => format!("no revision {want} completed a rollout"),
                None => "no earlier revision completed a rollout".to_string(),
            }
        ))
    })?;
    if found.task_definition == current {
        return Err(Error::Usage(format!(
            "{address} already runs rev {}",
            found.revision
        )));
    }
    Ok(found)
}

/// A host app's revision to go back to: `--to` (an image tag or reference it ran), else the
/// newest revision with other images than the files' that completed a rollout.
fn pick_images(
    history: &[Revision],
    row: &state::ResourceState,
    to: Option<&str>,
    address: &Address,
) -> Result<Revision, Error> {
    let current = crate::rollout::images(&row.properties);
    let mut succeeded = history.iter().filter(|r| r.outcome == "succeeded");
    let found = match to {
        Some(want) => succeeded.rfind(|r| {
            r.images
                .iter()
                .any(|i| i == want || i.ends_with(&format!(":{want}")))
        }),
        None => succeeded.rfind(|r| r.images != current),
    };
    let found = found.cloned().ok_or_else(|| {
        Error::Usage(format!(
            "{address}: {}; `converge rollout history {address}` lists the images it ran",
            match to {
                Some(want) => format!("no rollout of {want} completed"),
                None => "no rollout of other images completed".to_string(),
            }
        ))
    })?;
    if found.images == current {
        return Err(Error::Usage(format!(
            "{address} already runs {}",
            current.join(", ")
        )));
    }
    Ok(found)
}
