//! From a step to the call that carries it out: a provider create, update or delete, a
//! rollout through the kind's `Deploy` capability, or a refusal before anything is called
//! (a pin, promotion, rules on resolved values, properties still unknown).

use super::{ApplyContext, Inputs, Step, StepError, StepKind};
use crate::kinds;
use crate::model::{Address, Value};
use crate::providers::{Applied, CreateRequest, DeleteRequest, UpdateRequest};
use crate::rollout::{RolloutContext, RolloutRequest};

/// Why apply refuses a step before it calls anything.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// `rollout undo` pinned the resource and the files still name the images it left.
    #[error(
        "{address}: {pin}; change the images in the files, or run `converge apply --redo` to roll rev {rev} out again"
    )]
    Pinned {
        /// The resource.
        address: Address,
        /// The pin, as plan shows it.
        pin: String,
        /// The revision the files name.
        rev: String,
    },
    /// Its images did not pass the environment this one is promoted from.
    #[error(
        "{address}: refused by promotion: {why}; roll it out in {from} first, or pass --allow-unpromoted \"REASON\" (audited)"
    )]
    Unpromoted {
        /// The resource.
        address: Address,
        /// Which image and why.
        why: String,
        /// The environment promoted from.
        from: String,
    },
    /// A value, checked again as it will be used, breaks its kind's types or rules.
    #[error("{0}")]
    Rules(String),
    /// Properties still unknown after their dependencies were applied.
    #[error("{0}: some properties are still unknown after their dependencies were applied")]
    StillUnknown(Address),
    /// The step names a resource neither the files nor state describe as it needs.
    #[error("{0}")]
    Missing(String),
    /// Its rollout settings cannot be used.
    #[error("{address}: {source}")]
    Rollout {
        /// The resource.
        address: Address,
        /// Why.
        #[source]
        source: crate::rollout::deploy::DeployError,
    },
}

/// A provider call (or a rollout) ready to run.
pub(super) enum Request {
    Create(CreateRequest),
    Update(UpdateRequest),
    Rollout(Box<RolloutRequest>),
    Delete(DeleteRequest),
    /// Remove it from state only (`removed`, destroy: false): no cloud call.
    Forget,
    Refused(Refusal),
}

pub(super) async fn run_request(
    inputs: &Inputs<'_>,
    request: Request,
) -> Result<Option<Applied>, StepError> {
    let registry = inputs.registry;
    match request {
        Request::Create(r) => match first_deploy(&r) {
            Some(rollout) => run_rollout(inputs, &rollout).await,
            None => Ok(registry.for_kind(r.kind)?.create(r).await.map(Some)?),
        },
        Request::Update(r) => Ok(registry.for_kind(r.kind)?.update(r).await.map(Some)?),
        Request::Rollout(r) => run_rollout(inputs, &r).await,
        Request::Delete(r) => Ok(registry.for_kind(r.kind)?.delete(r).await.map(|_| None)?),
        Request::Forget => Ok(None),
        Request::Refused(e) => Err(e.into()),
    }
}

/// A create that the rollout engine carries (the kind's `Deploy` says which: a rolling
/// service that waits, every host app).
fn first_deploy(r: &CreateRequest) -> Option<RolloutRequest> {
    let deploy = kinds::find(r.kind.kind)?.deploy?;
    let spec = deploy.create(&r.properties)?;
    Some(RolloutRequest::new(
        deploy,
        r.address.clone(),
        String::new(),
        (Value::Null, Value::Null),
        r.properties.clone(),
        spec,
    ))
}

/// The refusal of a deploy of `properties` to `address` while `rollout undo` pins it to an
/// earlier revision and the files still name the images it went back from (unless `--redo`).
fn pinned(inputs: &Inputs<'_>, address: &Address, properties: &Value) -> Option<Request> {
    let pin = inputs.pins.get(address)?;
    if !crate::rollout::still_pinned(pin, properties) || inputs.redo {
        return None;
    }
    Some(Request::Refused(Refusal::Pinned {
        address: address.clone(),
        pin: pin.describe(),
        rev: crate::rollout::record::revision_number(&pin.from).to_string(),
    }))
}

/// Runs (or continues) a rollout through the driver.
async fn run_rollout(
    inputs: &Inputs<'_>,
    r: &RolloutRequest,
) -> Result<Option<Applied>, StepError> {
    let ctx = RolloutContext::for_environment(
        inputs.env,
        inputs.store,
        inputs.audit,
        inputs.registry,
        inputs.operation,
        inputs.interrupt,
        inputs.notice,
    );
    Ok(crate::rollout::run(&ctx, r).await.map(Some)?)
}

pub(super) fn build_request(step: &Step, inputs: &Inputs<'_>, ctx: &ApplyContext<'_>) -> Request {
    let stored = inputs.state.iter().find(|s| s.address == step.address);
    match step.kind {
        StepKind::Forget => Request::Forget,
        StepKind::Delete => {
            let Some(stored) = stored else {
                return Request::Refused(Refusal::Missing(format!(
                    "{} in state does not exist",
                    step.address
                )));
            };
            let Some(kind) = kinds::lookup(&stored.kind) else {
                return Request::Refused(Refusal::Missing(format!("unknown kind {}", stored.kind)));
            };
            // What state holds was checked when it was applied; a row written by an older
            // release, or edited, is checked again before a host or cloud sees it.
            if let Some(refused) =
                crate::config::resolved_refusal(&step.address, kind, &stored.properties)
            {
                return Request::Refused(Refusal::Rules(refused));
            }
            let prior = inputs
                .live
                .get(&step.address)
                .cloned()
                .flatten()
                .map(|l| l.properties)
                .unwrap_or_else(|| stored.properties.clone());
            Request::Delete(DeleteRequest {
                address: step.address.clone(),
                kind,
                remote_id: stored.remote_id.clone(),
                prior,
            })
        }
        StepKind::Create | StepKind::Update => {
            let Some(resource) = inputs.env.resources.get(&step.address) else {
                return Request::Refused(Refusal::Missing(format!(
                    "{} is not in the files",
                    step.address
                )));
            };
            let properties = resource.desired(ctx, &inputs.env.name);
            if let Some(why) = inputs.unpromoted.get(&step.address) {
                return Request::Refused(Refusal::Unpromoted {
                    address: step.address.clone(),
                    why: why.clone(),
                    from: inputs
                        .env
                        .promotion
                        .as_ref()
                        .map(|p| p.from.clone())
                        .unwrap_or_else(|| "the environment promoted from".into()),
                });
            }
            if properties.contains_unknown() {
                return Request::Refused(Refusal::StillUnknown(step.address.clone()));
            }
            // Values that came through other resources' outputs were unknown at load: the
            // kind's types and rules run again on what will be used.
            if let Some(refused) =
                crate::config::resolved_refusal(&step.address, resource.kind, &properties)
            {
                return Request::Refused(Refusal::Rules(refused));
            }
            if step.kind == StepKind::Create {
                return Request::Create(CreateRequest {
                    address: step.address.clone(),
                    kind: resource.kind,
                    properties,
                    previous_outputs: stored.map(|s| s.outputs.clone()).unwrap_or(Value::Null),
                });
            }
            let live = inputs.live.get(&step.address).cloned().flatten();
            let (prior, prior_outputs) = match (live, stored) {
                (Some(l), _) => (resource.kind.normalize(&l.properties), l.outputs),
                (None, Some(s)) => (s.properties.clone(), s.outputs.clone()),
                (None, None) => (Value::Null, Value::Null),
            };
            let remote_id = stored.map(|s| s.remote_id.clone()).unwrap_or_default();
            // A kind that deploys decides which updates are rollouts (a new revision of a
            // service, any change of what a host app runs).
            if let Some(deploy) = kinds::find(resource.kind.kind).and_then(|k| k.deploy) {
                match deploy.update(&prior, &properties) {
                    Ok(Some(spec)) => {
                        if let Some(refused) = pinned(inputs, &step.address, &properties) {
                            return refused;
                        }
                        return Request::Rollout(Box::new(RolloutRequest::new(
                            deploy,
                            step.address.clone(),
                            remote_id,
                            (prior, prior_outputs),
                            properties,
                            spec,
                        )));
                    }
                    Ok(None) => {}
                    Err(source) => {
                        return Request::Refused(Refusal::Rollout {
                            address: step.address.clone(),
                            source,
                        });
                    }
                }
            }
            Request::Update(UpdateRequest {
                address: step.address.clone(),
                kind: resource.kind,
                remote_id,
                prior,
                prior_outputs,
                properties,
            })
        }
    }
}
