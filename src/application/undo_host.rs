//! `converge rollout undo ADDR [--to TAG]` of a host app: the app goes back to the images of an
//! earlier rollout, blue/green (or recreate) through its own rollout with its health checks,
//! hooks and gates, and is pinned there as an ECS service is: plan says `undone to rev v1 by
//! ACTOR; the files still say rev v2`, and apply refuses v2 until the files name other images
//! (or `apply --redo`).

use super::history::Revision;
use super::{Error, Settings, session};
use crate::config::Environment;
use crate::model::Value;
use crate::rollout::RolloutRequest;
use crate::rollout::record::Undo;
use crate::state::{self, StateStore};

/// `properties` with each service's image replaced by `images` (one per service, in service
/// order, as the history records them).
fn with_images(properties: &Value, images: &[String]) -> Option<Value> {
    let mut out = properties.clone();
    let Value::Map(top) = &mut out else {
        return None;
    };
    let Some(Value::Map(services)) = top.get_mut("services") else {
        return None;
    };
    if services.len() != images.len() {
        return None;
    }
    for (service, image) in services.values_mut().zip(images) {
        let Value::Map(fields) = service else {
            return None;
        };
        fields.insert("image".into(), Value::str(image));
    }
    Some(out)
}

/// The app's properties as the files give them now, other resources' outputs as state records
/// them; refused while some are unknown.
async fn from_files(
    env: &Environment,
    store: &dyn StateStore,
    address: &crate::model::Address,
) -> Result<Value, Error> {
    let files = session::resolved(env, store, address).await?;
    if files.contains_unknown() {
        return Err(Error::Refused(format!(
            "{address}: some properties depend on resources not applied yet; apply first"
        )));
    }
    Ok(files)
}

/// Rolls the host app `row` back to `target`'s images and pins it there.
pub(super) async fn run(
    g: &Settings,
    env: &Environment,
    store: &dyn StateStore,
    audit: &crate::audit::Context,
    row: &state::ResourceState,
    target: Revision,
) -> Result<String, Error> {
    let address = &row.address;
    let files = from_files(env, store, address).await?;
    let current = crate::rollout::images(&files);
    let desired = with_images(&files, &target.images).ok_or_else(|| {
        Error::Refused(format!(
            "{address}: the rollout of {} ran other services than the files name now; change the images in the files instead",
            target.images.join(", ")
        ))
    })?;
    let registry = session::registry(g, env).await;
    let live = session::refresh(g, &registry, &env.name, std::slice::from_ref(row)).await?;
    let kind = crate::kinds::lookup(&row.kind).expect("state holds registered kinds");
    let (prior, prior_outputs) = match live.get(address).cloned().flatten() {
        Some(l) => (kind.normalize(&l.properties), l.outputs),
        None => (row.properties.clone(), row.outputs.clone()),
    };
    let deploy = crate::kinds::find(&row.kind)
        .and_then(|k| k.deploy)
        .expect("undo is only asked of kinds that deploy");
    let spec = deploy
        .spec(&desired)
        .map_err(|e| Error::Failed(format!("{address}: {e}")))?;
    let pin = Undo {
        from: current.first().cloned().unwrap_or_default(),
        from_images: current.clone(),
        to: target.images.first().cloned().unwrap_or_default(),
        to_images: target.images.clone(),
        actor: audit.actor.clone(),
        at: crate::rollout::record::now(),
    };
    g.say(&format!(
        "{address}: undoing {} → {} through its {} rollout",
        current.join(", "),
        target.images.join(", "),
        spec.strategy.as_str()
    ));
    let req = RolloutRequest::new(
        deploy,
        address.clone(),
        row.remote_id.clone(),
        (prior, prior_outputs),
        desired,
        spec,
    )
    .undoing(pin.clone());
    super::undo::roll(g, env, store, audit, &registry, &req, &pin).await
}
