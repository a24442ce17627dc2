//! ECS task sets of EXTERNAL services: the revisions a rollout moves traffic between.

use super::*;

impl Ecs {
    /// The task sets of an EXTERNAL service.
    pub async fn task_sets(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<TaskSetInfo>, ProviderError> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| api_error("ecs:DescribeServices", e))?;
        let service = out
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.status.as_deref() == Some("ACTIVE"))
            .ok_or_else(|| ProviderError::NotFound(format!("service {service}")))?;
        Ok(service
            .task_sets
            .unwrap_or_default()
            .iter()
            .map(TaskSetInfo::from)
            .collect())
    }

    /// CreateTaskSet: the revision on `target_group` at 100% scale, with the service's network;
    /// returns the task set's ARN.
    pub async fn create_task_set(
        &self,
        cluster: &str,
        service: &str,
        td_arn: &str,
        target_group: &str,
        p: &Value,
    ) -> Result<String, ProviderError> {
        let lb = p.get("load_balancer");
        let mut call = self
            .client
            .create_task_set()
            .cluster(cluster)
            .service(service)
            .task_definition(td_arn)
            .external_id(uuid::Uuid::new_v4().to_string())
            .launch_type(LaunchType::Fargate)
            .network_configuration(network_config(p.get("network"))?)
            .scale(
                Scale::builder()
                    .unit(ScaleUnit::Percent)
                    .value(100.0)
                    .build(),
            );
        if !target_group.is_empty() {
            call = call.load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(target_group)
                    .set_container_name(lb.get("container").as_str().map(str::to_string))
                    .set_container_port(lb.get("port").as_i64().map(|p| p as i32))
                    .build(),
            );
        }
        let set = call
            .send()
            .await
            .map_err(|e| api_error("ecs:CreateTaskSet", e))?
            .task_set
            .ok_or_else(|| ProviderError::Invalid("CreateTaskSet returned nothing".into()))?;
        Ok(set.task_set_arn.or(set.id).unwrap_or_default())
    }

    /// UpdateServicePrimaryTaskSet.
    pub async fn make_primary(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
    ) -> Result<(), ProviderError> {
        self.client
            .update_service_primary_task_set()
            .cluster(cluster)
            .service(service)
            .primary_task_set(task_set)
            .send()
            .await
            .map_err(|e| api_error("ecs:UpdateServicePrimaryTaskSet", e))?;
        Ok(())
    }

    /// DeleteTaskSet (forced); one already gone succeeds.
    pub async fn delete_task_set(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
    ) -> Result<(), ProviderError> {
        match self
            .client
            .delete_task_set()
            .cluster(cluster)
            .service(service)
            .task_set(task_set)
            .force(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_task_set_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("ecs:DeleteTaskSet", e)),
        }
    }
}

/// A task set as rollouts see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetInfo {
    /// Its ARN (the id where there is none).
    pub id: String,
    /// PRIMARY or ACTIVE (or DRAINING).
    pub status: String,
    /// Its task definition.
    pub task_definition: String,
    /// The target group it registers with.
    pub target_group: String,
    /// Tasks running.
    pub running: i32,
    /// Tasks ECS wants for it (the service's desired count times its scale).
    pub computed_desired: i32,
    /// `STEADY_STATE` or `STABILIZING`.
    pub stability: String,
}

impl From<&TaskSet> for TaskSetInfo {
    fn from(t: &TaskSet) -> Self {
        TaskSetInfo {
            id: t
                .task_set_arn
                .clone()
                .or_else(|| t.id.clone())
                .unwrap_or_default(),
            status: t.status.clone().unwrap_or_default(),
            task_definition: t.task_definition.clone().unwrap_or_default(),
            target_group: t
                .load_balancers
                .as_deref()
                .and_then(|l| l.first())
                .and_then(|l| l.target_group_arn.clone())
                .unwrap_or_default(),
            running: t.running_count,
            computed_desired: t.computed_desired_count,
            stability: t
                .stability_status
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}
