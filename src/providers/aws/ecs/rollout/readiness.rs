//! How the ECS target judges that a new revision is ready: a rolling deployment COMPLETED and
//! still PRIMARY (FAILED, or replaced by the circuit breaker's rollback, is a failure), or a
//! task set steady with every target of its group healthy; and how a rolling rollback waits
//! for the old revision again.

use super::*;
use crate::providers::aws::ecs::DeploymentInfo;

impl EcsTarget<'_> {
    /// Rolling: the service's deployments; an error when the service is gone.
    pub(super) async fn deployments(&self) -> Result<Vec<DeploymentInfo>, TargetError> {
        let (cluster, service) = self.names();
        self.aws
            .ecs()
            .deployments(&cluster, &service)
            .await?
            .ok_or_else(|| {
                TargetError::Call(ProviderError::NotFound(format!(
                    "{}: the ECS service {service} is gone",
                    self.address
                )))
            })
    }

    /// Rolling: one look at the deployment that carries `rec.new`.
    pub(super) async fn rolling_readiness(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        let deployment = part(rec)?.new.deployment;
        Ok(judge_deployments(
            &rec.new_revision,
            &deployment,
            &self.deployments().await?,
        ))
    }

    /// Canary / blue-green: one look at the new task set and its target group's health.
    pub(super) async fn task_set_readiness(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        let (cluster, service) = self.names();
        let new = part(rec)?.new;
        let sets = self.aws.ecs().task_sets(&cluster, &service).await?;
        let Some(set) = sets.iter().find(|s| s.id == new.task_set) else {
            return Ok(Readiness::Failed(format!(
                "the new task set {} is gone",
                last_segment(&new.task_set)
            )));
        };
        let wanted = set.computed_desired;
        if wanted <= 0 || set.running != wanted || set.stability != "STEADY_STATE" {
            return Ok(Readiness::Pending(format!(
                "new task set {}: {} of {wanted} tasks running",
                if set.stability.is_empty() {
                    "STABILIZING"
                } else {
                    &set.stability
                },
                set.running
            )));
        }
        let targets = self.aws.elb().target_health(&new.target_group).await?;
        Ok(judge_targets(
            wanted,
            &arn_suffix(&new.target_group),
            &targets,
        ))
    }

    /// Rolling rollback: the service back on the old revision (unless ECS's circuit breaker
    /// already put it there), then waits, up to `ready_timeout`, for that deployment.
    pub(super) async fn restore_rolling(&self, rec: &Rollout) -> Result<(), TargetError> {
        let old = &rec.old_revision;
        if old.is_empty() {
            return Ok(());
        }
        let on_old = |ds: &[DeploymentInfo]| {
            ds.iter()
                .find(|d| d.status == "PRIMARY")
                .filter(|d| &d.task_definition == old)
                .cloned()
        };
        if on_old(&self.deployments().await?).is_none() {
            self.aws
                .ecs()
                .deploy_revision(self.desired, self.prior, old)
                .await?;
        }
        let deadline = std::time::Instant::now() + self.spec.ready_timeout;
        loop {
            match on_old(&self.deployments().await?) {
                Some(d) if d.rollout_state == "COMPLETED" => return Ok(()),
                Some(d) if d.rollout_state == "FAILED" => {
                    return Err(TargetError::Call(ProviderError::Invalid(format!(
                        "{}: going back to {} failed too: {}",
                        self.address,
                        last_segment(old),
                        d.reason
                    ))));
                }
                _ => {}
            }
            if std::time::Instant::now() >= deadline {
                return Err(TargetError::Call(ProviderError::Invalid(format!(
                    "{}: the service was updated back to {}, but ECS has not completed that deployment within ready_timeout {}",
                    self.address,
                    last_segment(old),
                    humantime::format_duration(self.spec.ready_timeout)
                ))));
            }
            tokio::time::sleep(self.spec.interval).await;
        }
    }
}

/// Where the deployment (`deployment`, "" when not recorded) of the new revision
/// (`revision`, a task definition ARN) stands among `deployments`.
fn judge_deployments(
    revision: &str,
    deployment: &str,
    deployments: &[DeploymentInfo],
) -> Readiness {
    let primary = deployments.iter().find(|d| d.status == "PRIMARY");
    let ours = deployments
        .iter()
        .find(|d| !deployment.is_empty() && d.id == deployment)
        .or_else(|| primary.filter(|d| d.task_definition == revision));
    let new = last_segment(revision);
    let went_back = primary
        .filter(|p| p.task_definition != revision)
        .map(|p| last_segment(&p.task_definition).to_string());
    if let Some(d) = ours
        && d.rollout_state == "FAILED"
    {
        return Readiness::Failed(format!(
            "ECS deployment {} of {new} FAILED: {}{}",
            d.id,
            d.reason,
            went_back
                .map(|td| format!("; ECS went back to {td}"))
                .unwrap_or_default()
        ));
    }
    if let (Some(td), Some(_)) = (&went_back, ours) {
        let reason = primary.map(|p| p.reason.clone()).unwrap_or_default();
        return Readiness::Failed(format!(
            "ECS replaced the deployment of {new} with one of {td} (the circuit breaker rolled it back): {reason}"
        ));
    }
    match ours {
        Some(d) if d.rollout_state == "COMPLETED" => Readiness::Ready(format!(
            "ECS deployment {} COMPLETED: {} of {} tasks of {new} running",
            d.id, d.running, d.desired
        )),
        Some(d) => Readiness::Pending(format!(
            "ECS deployment {} {}: {} of {} tasks of {new} running{}",
            d.id,
            if d.rollout_state.is_empty() {
                "IN_PROGRESS"
            } else {
                &d.rollout_state
            },
            d.running,
            d.desired,
            if d.failed > 0 {
                format!(", {} failed to start", d.failed)
            } else {
                String::new()
            }
        )),
        None if went_back.is_some() => Readiness::Failed(format!(
            "ECS no longer deploys {new}: the service runs {} (the circuit breaker rolled it back)",
            went_back.unwrap_or_default()
        )),
        None => Readiness::Pending(format!("ECS shows no deployment of {new} yet")),
    }
}

/// Whether `targets` (`ID:PORT`, state) of `group` show at least `wanted` targets, all healthy.
fn judge_targets(wanted: i32, group: &str, targets: &[(String, String)]) -> Readiness {
    let healthy = targets.iter().filter(|(_, s)| s == "healthy").count();
    if targets.len() < wanted as usize || healthy < targets.len() {
        let others: Vec<String> = targets
            .iter()
            .filter(|(_, s)| s != "healthy")
            .map(|(t, s)| format!("{t} {s}"))
            .collect();
        return Readiness::Pending(format!(
            "task set steady with {wanted} tasks, but {healthy} of {} registered targets healthy in {group} ({wanted} wanted){}",
            targets.len(),
            if others.is_empty() {
                String::new()
            } else {
                format!(": {}", others.join(", "))
            }
        ));
    }
    Readiness::Ready(format!(
        "new task set steady: {wanted} of {wanted} tasks running; {healthy} targets healthy in {group}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, status: &str, td: &str, state: &str, reason: &str) -> DeploymentInfo {
        DeploymentInfo {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: state.into(),
            reason: reason.into(),
            running: 2,
            desired: 2,
            failed: 0,
        }
    }

    /// Judges `deployments` for the new revision `api:2` recorded on deployment `ecs-svc/2`.
    fn judge(deployments: &[DeploymentInfo]) -> Readiness {
        judge_deployments("arn:td/api:2", "ecs-svc/2", deployments)
    }

    #[test]
    fn a_rolling_deployment_is_ready_only_when_completed_and_primary() {
        let completed = [deployment(
            "ecs-svc/2",
            "PRIMARY",
            "arn:td/api:2",
            "COMPLETED",
            "",
        )];
        assert!(
            matches!(judge(&completed), Readiness::Ready(d) if d.contains("COMPLETED: 2 of 2 tasks of api:2"))
        );
        let going = [
            deployment("ecs-svc/2", "PRIMARY", "arn:td/api:2", "IN_PROGRESS", ""),
            deployment("ecs-svc/1", "ACTIVE", "arn:td/api:1", "COMPLETED", ""),
        ];
        assert!(matches!(judge(&going), Readiness::Pending(_)));
        let failed = [deployment(
            "ecs-svc/2",
            "PRIMARY",
            "arn:td/api:2",
            "FAILED",
            "tasks failed to start",
        )];
        assert!(
            matches!(judge(&failed), Readiness::Failed(r) if r.contains("FAILED: tasks failed to start"))
        );
        let rolled_back = [
            deployment(
                "ecs-svc/3",
                "PRIMARY",
                "arn:td/api:1",
                "COMPLETED",
                "rolling back",
            ),
            deployment("ecs-svc/2", "ACTIVE", "arn:td/api:2", "IN_PROGRESS", ""),
        ];
        assert!(
            matches!(judge(&rolled_back), Readiness::Failed(r) if r.contains("with one of api:1"))
        );
        let gone = [deployment(
            "ecs-svc/3",
            "PRIMARY",
            "arn:td/api:1",
            "COMPLETED",
            "",
        )];
        assert!(matches!(judge(&gone), Readiness::Failed(r) if r.contains("runs api:1")));
    }

    #[test]
    fn targets_are_ready_only_when_enough_are_listed_and_all_healthy() {
        let t = |s: &str| ("10.0.0.1:8000".to_string(), s.to_string());
        assert!(
            matches!(judge_targets(2, "tg", &[]), Readiness::Pending(_)),
            "an empty list is not ready"
        );
        assert!(matches!(
            judge_targets(2, "tg", &[t("healthy")]),
            Readiness::Pending(_)
        ));
        assert!(
            matches!(judge_targets(2, "tg", &[t("healthy"), t("unhealthy (Target.Timeout)")]), Readiness::Pending(d) if d.contains("unhealthy (Target.Timeout)"))
        );
        assert!(matches!(
            judge_targets(2, "tg", &[t("healthy"), t("healthy")]),
            Readiness::Ready(_)
        ));
    }
}
