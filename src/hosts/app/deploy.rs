//! The `Deploy` capability of `host.app`: every change of what runs (hosts, registry,
//! services, accessories, rollout settings) is a rollout of a new colour behind nginx, one
//! batch of hosts at a time, and so is the app's first deploy.

use super::spec::{AppSpec, needs_deploy, rollout_spec};
use super::target::HostTarget;
use crate::model::Value;
use crate::providers::Registry;
use crate::rollout::deploy::{Deploy, DeployError, Revisions};
use crate::rollout::target::{Target, TargetError};
use crate::rollout::{RolloutContext, RolloutError, RolloutRequest, RolloutSpec};

/// How host apps are deployed.
#[derive(Debug)]
pub struct HostDeploy;

#[async_trait::async_trait]
impl Deploy for HostDeploy {
    fn spec(&self, properties: &Value) -> Result<RolloutSpec, DeployError> {
        rollout_spec(properties).map_err(|e| DeployError(Box::new(e)))
    }

    fn update(&self, prior: &Value, desired: &Value) -> Result<Option<RolloutSpec>, DeployError> {
        if !needs_deploy(prior, desired) {
            return Ok(None);
        }
        self.spec(desired).map(Some)
    }

    fn create(&self, desired: &Value) -> Option<RolloutSpec> {
        let mut spec = self.spec(desired).ok()?;
        // A first deploy has no old colour to split requests with: a canary's one step is
        // all of them, with no pause.
        if spec.strategy == crate::rollout::spec::Strategy::Canary {
            spec.steps = vec![100];
            spec.pauses.clear();
        }
        Some(spec)
    }

    fn target<'a>(
        &self,
        ctx: &'a RolloutContext<'a>,
        req: &'a RolloutRequest,
    ) -> Result<Box<dyn Target + 'a>, RolloutError> {
        let options = ctx.registry.hosts().options().clone();
        let desired = ctx.registry.hosts().with_login(&req.address, &req.desired);
        let app = AppSpec::from_properties(&desired, &options.root).map_err(|e| {
            RolloutError::Target {
                address: req.address.to_string(),
                source: TargetError::Unsupported(e.to_string()),
            }
        })?;
        Ok(Box::new(HostTarget::new(
            app,
            req.spec.clone(),
            options,
            &desired,
            ctx.registry.aws(),
        )))
    }

    fn first_revision(&self, _: &Value, _: &Value) -> Option<String> {
        // Every deploy of a host app, its first included, is a rollout of its own.
        None
    }

    fn revisions(&self) -> Revisions {
        Revisions::Images
    }

    async fn digests(
        &self,
        registry: &Registry,
        images: &[String],
    ) -> Option<std::collections::BTreeMap<String, String>> {
        crate::promotion::digests(registry.aws()?, images)
            .await
            .ok()
    }
}

/// The rollout a host app's update runs, as the plan shows it: every change of what runs.
pub fn plan_summary(before: &Value, after: &Value) -> Option<String> {
    needs_deploy(before, after)
        .then(|| rollout_spec(after).ok())
        .flatten()
        .map(|spec| spec.summary())
}
