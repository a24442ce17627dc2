//! The `Deploy` capability of `aws.ecs_service`: a change of its revision (task, network or
//! load balancer) is a rollout through task sets behind ALB weights, or ECS's own rolling
//! deployment followed until it is COMPLETED.

use super::rollout::{EcsService, EcsTarget};
use crate::model::Value;
use crate::providers::ProviderError;
use crate::providers::Registry;
use crate::providers::aws::ecr_images::ImageLookup;
use crate::rollout::deploy::{Deploy, DeployError, Revisions, UndoCheck};
use crate::rollout::target::{Target, TargetError};
use crate::rollout::{RolloutContext, RolloutError, RolloutRequest, RolloutSpec};

/// How ECS services are deployed.
#[derive(Debug)]
pub struct EcsDeploy;

/// The output that holds a service's current task definition.
pub(super) const TASK_DEFINITION: &str = "task_definition_arn";

#[async_trait::async_trait]
impl Deploy for EcsDeploy {
    fn spec(&self, properties: &Value) -> Result<RolloutSpec, DeployError> {
        super::spec::rollout_spec(properties).map_err(|e| DeployError(Box::new(e)))
    }

    fn update(&self, prior: &Value, desired: &Value) -> Result<Option<RolloutSpec>, DeployError> {
        if !super::spec::needs_new_revision(prior, desired) {
            return Ok(None);
        }
        let spec = self.spec(desired)?;
        // A rolling deploy with `wait: false` is an update left to ECS.
        Ok((spec.shifts_traffic() || spec.wait).then_some(spec))
    }

    fn create(&self, desired: &Value) -> Option<RolloutSpec> {
        // A canary or blue/green service's first task set takes all traffic at once (the
        // kind's create); a rolling one is followed until its deployment completes.
        let spec = self.spec(desired).ok()?;
        (!spec.shifts_traffic() && spec.wait).then_some(spec)
    }

    fn target<'a>(
        &self,
        ctx: &'a RolloutContext<'a>,
        req: &'a RolloutRequest,
    ) -> Result<Box<dyn Target + 'a>, RolloutError> {
        let aws = ctx.registry.aws().ok_or_else(|| RolloutError::Target {
            address: req.address.to_string(),
            source: TargetError::Call(ProviderError::NotConfigured("aws".into())),
        })?;
        let service = EcsService {
            address: &req.address,
            remote_id: &req.remote_id,
            prior: &req.prior,
            prior_outputs: &req.prior_outputs,
            desired: &req.desired,
        };
        Ok(Box::new(EcsTarget::new(
            aws,
            &req.spec,
            service,
            &ctx.region,
            ctx.prices,
        )))
    }

    fn first_revision(&self, properties: &Value, outputs: &Value) -> Option<String> {
        let spec = self.spec(properties).ok()?;
        spec.shifts_traffic().then_some(())?;
        outputs.get(TASK_DEFINITION).as_str().map(str::to_string)
    }

    fn revisions(&self) -> Revisions {
        Revisions::Registered {
            output: TASK_DEFINITION,
        }
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

    async fn check_undo(
        &self,
        registry: &Registry,
        revision: &str,
        images: &[String],
    ) -> Result<Vec<String>, UndoCheck> {
        let aws = registry
            .aws()
            .ok_or_else(|| UndoCheck::Refused("the environment has no aws provider".into()))?;
        if !aws.ecs().task_definition_active(revision).await? {
            return Err(UndoCheck::Refused(format!(
                "{revision} is no longer ACTIVE in ECS (deregistered); nothing to go back to"
            )));
        }
        let mut warnings = Vec::new();
        for image in images {
            match aws.ecr().lookup(image).await? {
                ImageLookup::Found(_) => {}
                ImageLookup::Missing => {
                    return Err(UndoCheck::Refused(format!(
                        "rev {} runs {image}, which no longer exists in ECR (a lifecycle policy may have expired it); push it again or undo to another revision",
                        crate::rollout::record::revision_number(revision)
                    )));
                }
                ImageLookup::NotEcr => warnings.push(format!(
                    "{image} is not in ECR; converge cannot check that it still exists"
                )),
            }
        }
        Ok(warnings)
    }
}

/// The rollout a service's update runs, as the plan shows it: a change of its revision, under
/// any strategy (a rolling deploy nobody waits for says so).
pub fn plan_summary(before: &Value, after: &Value) -> Option<String> {
    super::spec::needs_new_revision(before, after)
        .then(|| super::spec::rollout_spec(after).ok())
        .flatten()
        .map(|spec| spec.summary())
}
