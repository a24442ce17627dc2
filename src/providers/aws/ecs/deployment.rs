//! ECS's own (rolling) deployments of a service: starting one on a new revision and reading
//! where each stands, for rollouts that wait until the new revision is ready.

use aws_sdk_ecs::types::Deployment;

use super::*;

/// One of a service's deployments as rollouts see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentInfo {
    /// `ecs-svc/…`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Its task definition.
    pub task_definition: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub rollout_state: String,
    /// ECS's `rolloutStateReason`.
    pub reason: String,
    /// Tasks running.
    pub running: i32,
    /// Tasks wanted.
    pub desired: i32,
    /// Tasks that failed to start.
    pub failed: i32,
}

impl From<&Deployment> for DeploymentInfo {
    fn from(d: &Deployment) -> Self {
        DeploymentInfo {
            id: d.id.clone().unwrap_or_default(),
            status: d.status.clone().unwrap_or_default(),
            task_definition: d.task_definition.clone().unwrap_or_default(),
            rollout_state: d
                .rollout_state
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: d.rollout_state_reason.clone().unwrap_or_default(),
            running: d.running_count,
            desired: d.desired_count,
            failed: d.failed_tasks,
        }
    }
}

/// The id of `service`'s PRIMARY deployment of `td_arn`, as a create or update returned it.
pub(super) fn primary_deployment_of(service: &Service, td_arn: &str) -> Option<String> {
    service
        .deployments
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|d| {
            d.status.as_deref() == Some("PRIMARY") && d.task_definition.as_deref() == Some(td_arn)
        })
        .and_then(|d| d.id.clone())
}

impl Ecs {
    /// The deployments of an ECS-controlled service; `None` when the service is gone.
    pub async fn deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<Vec<DeploymentInfo>>, ProviderError> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| api_error("ecs:DescribeServices", e))?;
        Ok(out
            .services
            .unwrap_or_default()
            .iter()
            .find(|s| s.status.as_deref() == Some("ACTIVE"))
            .map(|s| {
                s.deployments
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(DeploymentInfo::from)
                    .collect()
            }))
    }

    /// Creates the ECS-controlled service `p` on the registered revision `td_arn`; returns it
    /// as applied and the id of the deployment to follow.
    pub async fn create_rolling(
        &self,
        address: &Address,
        p: &Value,
        td_arn: &str,
    ) -> Result<(Applied, Option<String>), ProviderError> {
        let service = self.create_rolling_service(address, p, td_arn).await?;
        let deployment = primary_deployment_of(&service, td_arn);
        let mut outputs = service::service_outputs(&service);
        if let Value::Map(m) = &mut outputs {
            m.insert("task_definition_arn".into(), Value::str(td_arn));
        }
        Ok((
            Applied {
                remote_id: service.service_arn.clone().unwrap_or_default(),
                outputs,
            },
            deployment,
        ))
    }

    /// UpdateService onto the registered revision `td_arn` (with the count, network and load
    /// balancer of `p`); returns the id of the new PRIMARY deployment to follow.
    pub async fn deploy_revision(
        &self,
        prior: &Value,
        p: &Value,
        td_arn: &str,
    ) -> Result<Option<String>, ProviderError> {
        let service = self.update_rolling_service(prior, p, td_arn).await?;
        Ok(primary_deployment_of(&service, td_arn))
    }
}
