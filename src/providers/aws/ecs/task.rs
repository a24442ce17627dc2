//! One-off ECS tasks (a rollout's lifecycle hooks): RunTask with the command overridden,
//! DescribeTasks until it stops, StopTask at its timeout.

use aws_sdk_ecs::types::{ContainerOverride, TaskOverride};

use super::*;

/// Where a one-off task stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    /// Not stopped yet (`lastStatus`).
    Running(String),
    /// Stopped: the container's exit code (if it ran) and ECS's stopped reason.
    Stopped {
        /// The overridden container's exit code.
        exit_code: Option<i32>,
        /// `stoppedReason`.
        reason: String,
    },
}

impl Ecs {
    /// RunTask of `td_arn` with `container`'s command replaced by `command`, on the network of
    /// the service properties `p`; `token` makes a retried call start nothing new. Returns the
    /// task's ARN.
    pub async fn run_task(
        &self,
        p: &Value,
        td_arn: &str,
        container: &str,
        command: &[String],
        token: &str,
    ) -> Result<String, ProviderError> {
        let out = self
            .client
            .run_task()
            .cluster(text(p, "cluster"))
            .task_definition(td_arn)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network_config(p.get("network"))?)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(container)
                            .set_command(Some(command.to_vec()))
                            .build(),
                    )
                    .build(),
            )
            .started_by("converge")
            .client_token(token)
            .send()
            .await
            .map_err(|e| api_error("ecs:RunTask", e))?;
        if let Some(f) = out.failures.as_deref().and_then(|f| f.first()) {
            return Err(ProviderError::Invalid(format!(
                "RunTask of {td_arn} failed: {} {}",
                f.reason.as_deref().unwrap_or(""),
                f.detail.as_deref().unwrap_or("")
            )));
        }
        out.tasks
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|t| t.task_arn)
            .ok_or_else(|| ProviderError::Invalid("RunTask started no task".into()))
    }

    /// DescribeTasks of one task: running, or stopped with `container`'s exit code.
    pub async fn task_state(
        &self,
        cluster: &str,
        task_arn: &str,
        container: &str,
    ) -> Result<TaskState, ProviderError> {
        let out = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(|e| api_error("ecs:DescribeTasks", e))?;
        let Some(task) = out.tasks.unwrap_or_default().into_iter().next() else {
            return Err(ProviderError::NotFound(format!("task {task_arn}")));
        };
        let status = task.last_status.clone().unwrap_or_default();
        if status != "STOPPED" {
            return Ok(TaskState::Running(status));
        }
        let exit_code = task
            .containers
            .unwrap_or_default()
            .iter()
            .find(|c| c.name.as_deref() == Some(container))
            .and_then(|c| c.exit_code);
        Ok(TaskState::Stopped {
            exit_code,
            reason: task.stopped_reason.unwrap_or_default(),
        })
    }

    /// StopTask; one already stopped succeeds.
    pub async fn stop_task(
        &self,
        cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> Result<(), ProviderError> {
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| api_error("ecs:StopTask", e))?;
        Ok(())
    }
}
