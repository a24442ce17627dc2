//! A failed step of a kind that deploys, posted to its rollout webhook (`rollout.notify`) when
//! the rollout's own events did not already say how it ended: a host out of reach, a pull
//! refused, a create that failed before or outside a rollout. Like every rollout webhook it is
//! best effort: a receiver that fails or hangs is logged and costs at most its timeout.

use std::collections::BTreeMap;

use super::{ApplyContext, Inputs, Step, StepError};
use crate::model::{Address, Value};

/// Posts `error`, the failure of `step`, to the webhook of the resource's rollout settings.
pub(super) async fn step_failed(
    inputs: &Inputs<'_>,
    outputs: &BTreeMap<Address, Value>,
    step: &Step,
    error: &StepError,
) {
    if let StepError::Rollout(e) = error
        && e.already_notified()
    {
        return;
    }
    let Some(resource) = inputs.env.resources.get(&step.address) else {
        return;
    };
    let Some(deploy) = crate::kinds::find(resource.kind.kind).and_then(|k| k.deploy) else {
        return;
    };
    let lookup = ApplyContext {
        env: inputs.env,
        outputs,
    };
    let desired = resource.desired(&lookup, &inputs.env.name);
    let Some(url) = deploy.spec(&desired).ok().and_then(|s| s.webhook) else {
        return;
    };
    let payload = serde_json::json!({
        "text": format!(
            "converge {} {}: apply failed while {} — {error}",
            inputs.env.name,
            step.address,
            step.verb()
        ),
        "event": "apply failed",
        "outcome": "failed",
        "environment": inputs.env.name,
        "address": step.address.to_string(),
        "step": step.verb(),
        "reason": error.to_string(),
        "actor": inputs.audit.actor,
        "commit": inputs.audit.commit,
    });
    crate::rollout::notify::webhook(&reqwest::Client::new(), &url, &payload).await;
}
