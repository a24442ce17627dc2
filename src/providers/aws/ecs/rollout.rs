//! The ECS rollout target. Canary and blue/green: one task set per revision under the EXTERNAL
//! deployment controller, traffic moved by the ALB listener's forward weights between the two
//! target groups (the idle one receives the new revision), gates read through CloudWatch.
//! Rolling: ECS's own deployment, followed until it is COMPLETED (or failed, or rolled back by
//! the circuit breaker). How readiness is judged is in `rollout/readiness.rs`.

use async_trait::async_trait;

use super::gates::{GateContext, Gates};
use crate::model::{Address, Value};
use crate::providers::aws::AwsProvider;
use crate::providers::aws::ecs::TaskState;
use crate::providers::aws::elb::arn_suffix;
use crate::providers::{Applied, ProviderError};
use crate::rollout::engine::Probe;
use crate::rollout::record::Rollout;
use crate::rollout::spec::RolloutSpec;
use crate::rollout::spec::{Hook, Strategy};
use crate::rollout::target::{Readiness, Target, TargetError};

/// A service's rollout on ECS.
pub struct EcsTarget<'a> {
    aws: &'a AwsProvider,
    gates: Gates<'a>,
    spec: &'a RolloutSpec,
    address: &'a Address,
    remote_id: &'a str,
    prior: &'a Value,
    prior_outputs: &'a Value,
    desired: &'a Value,
    /// Region and table of the Fargate prices the cost gate uses.
    region: &'a str,
    prices: &'a crate::cost::PriceTable,
}

/// What an ECS rollout is about: the service as it is and as it should be.
pub struct EcsService<'a> {
    /// Its address.
    pub address: &'a Address,
    /// Its ARN.
    pub remote_id: &'a str,
    /// Live properties now.
    pub prior: &'a Value,
    /// Outputs now.
    pub prior_outputs: &'a Value,
    /// Desired properties.
    pub desired: &'a Value,
}

/// Lines of a failed hook's log shown in its error and audit event.
const HOOK_LOG_LINES: i32 = 50;

fn text(v: &Value, key: &str) -> String {
    v.get(key).reveal().as_str().unwrap_or("").to_string()
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

impl<'a> EcsTarget<'a> {
    /// The target for `service` rolled out by `spec`, priced from `prices` in `region`.
    pub fn new(
        aws: &'a AwsProvider,
        spec: &'a RolloutSpec,
        service: EcsService<'a>,
        region: &'a str,
        prices: &'a crate::cost::PriceTable,
    ) -> EcsTarget<'a> {
        EcsTarget {
            aws,
            gates: Gates::new(&spec.health, aws),
            spec,
            address: service.address,
            remote_id: service.remote_id,
            prior: service.prior,
            prior_outputs: service.prior_outputs,
            desired: service.desired,
            region,
            prices,
        }
    }

    fn names(&self) -> (String, String) {
        (text(self.desired, "cluster"), text(self.desired, "name"))
    }

    /// The container a hook overrides: its own, else the task's first.
    fn hook_container(&self, hook: &Hook) -> String {
        hook.container.clone().unwrap_or_else(|| {
            self.desired
                .get("task")
                .get("containers")
                .as_list()
                .and_then(|c| c.first().map(|c| text(c, "name")))
                .unwrap_or_default()
        })
    }

    /// The last 50 lines of a hook task's awslogs stream (`PREFIX/CONTAINER/TASK_ID`), the
    /// service's own secrets masked; "" when the container has no `log` block.
    async fn hook_log(&self, container: &str, task_arn: &str) -> String {
        let containers = self.desired.get("task").get("containers");
        let Some(log) = containers
            .as_list()
            .unwrap_or_default()
            .iter()
            .find(|c| text(c, "name") == container)
            .map(|c| c.get("log"))
            .filter(|l| !l.is_null())
        else {
            return String::new();
        };
        let group = text(log, "group");
        let stream = format!(
            "{}/{container}/{}",
            text(log, "stream_prefix"),
            last_segment(task_arn)
        );
        match self.aws.logs().tail(&group, &stream, HOOK_LOG_LINES).await {
            Ok(lines) if lines.is_empty() => {
                format!("; its log stream {group}:{stream} has no lines")
            }
            Ok(lines) => {
                let secrets = self.desired.sensitive_texts();
                let masked: Vec<String> = lines
                    .iter()
                    .map(|l| {
                        secrets.iter().fold(l.trim_end().to_string(), |line, s| {
                            line.replace(s.as_str(), crate::model::SENSITIVE_TEXT)
                        })
                    })
                    .map(|l| format!("  | {l}"))
                    .collect();
                format!(
                    "; last {} log lines of {group}:{stream}:\n{}",
                    masked.len(),
                    masked.join("\n")
                )
            }
            Err(e) => format!("; its log stream {group}:{stream} could not be read: {e}"),
        }
    }

    fn rolling(&self) -> bool {
        self.spec.strategy == Strategy::Rolling
    }

    /// Refuses the rollout when one of its gate's alarms is already in ALARM: the new revision
    /// would be blamed for what the old one does (only a later transition fails a gate).
    async fn alarms_quiet(&self) -> Result<(), TargetError> {
        if self.spec.health.alarms.is_empty() {
            return Ok(());
        }
        let states = self
            .aws
            .cloudwatch()
            .alarms(&self.spec.health.alarms)
            .await?;
        let firing = super::gates::in_alarm(&states);
        if firing.is_empty() {
            return Ok(());
        }
        Err(TargetError::Refused {
            gate: "alarm check",
            detail: format!(
                "alarm {} is already in ALARM before any traffic moved (the old revision is what it measures); resolve it, then apply again",
                firing.join(", ")
            ),
            before: serde_json::json!({ "alarms_in_alarm": firing }),
            after: serde_json::Value::Null,
        })
    }

    /// Runs the cost gate (when set) and records its pass in `rec`.
    fn cost_checked(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        if let Some(max) = self.spec.max_run_rate_increase {
            let detail = self.cost_gate(max)?;
            rec.push_gate(crate::rollout::record::GateResult {
                time: crate::rollout::record::now(),
                gate: "cost".into(),
                outcome: "pass".into(),
                detail,
            });
        }
        Ok(())
    }

    /// The cost gate: the new revision's run rate against the old one's.
    fn cost_gate(&self, max: f64) -> Result<String, TargetError> {
        let Some(price) = self.prices.fargate(self.region) else {
            return Err(TargetError::Call(ProviderError::Invalid(format!(
                "cost gate: converge has no Fargate price for region {}, so max_run_rate_increase cannot be checked",
                self.region
            ))));
        };
        let count = |p: &Value| p.get("desired_count").as_f64().unwrap_or(1.0);
        let old = crate::cost::fargate_monthly(&price, self.prior.get("task"), count(self.prior));
        let new =
            crate::cost::fargate_monthly(&price, self.desired.get("task"), count(self.desired));
        let increase = if old > 0.0 {
            (new - old) / old * 100.0
        } else {
            0.0
        };
        let detail = format!(
            "run rate ${old:.2}/month → ${new:.2}/month ({increase:+.1}%), limit +{max}% (Fargate prices of {} as of {})",
            self.region, self.prices.aws.as_of
        );
        if increase > max {
            return Err(TargetError::Refused {
                gate: "cost gate",
                detail,
                before: serde_json::json!({ "monthly_usd": old }),
                after: serde_json::json!({ "monthly_usd": new }),
            });
        }
        Ok(detail)
    }
}

#[async_trait]
impl Target for EcsTarget<'_> {
    async fn begin(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        let (cluster, service) = self.names();
        let mut part = EcsRecord {
            listener_arn: self.spec.listener_arn.clone(),
            cluster: last_segment(&cluster).to_string(),
            service: service.clone(),
            ..EcsRecord::default()
        };
        if self.rolling() {
            if !self.remote_id.is_empty() {
                let primary = self
                    .deployments()
                    .await?
                    .into_iter()
                    .find(|d| d.status == "PRIMARY");
                rec.old_revision = primary
                    .map(|d| d.task_definition)
                    .unwrap_or_else(|| text(self.prior_outputs, super::deploy::TASK_DEFINITION));
            }
            rec.set_details(&part)?;
            return self.cost_checked(rec);
        }
        let sets = self.aws.ecs().task_sets(&cluster, &service).await?;
        let primary = sets
            .iter()
            .find(|s| s.status == "PRIMARY")
            .cloned()
            .ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "{}: the service has no primary task set",
                    self.address
                ))
            })?;
        let idle = self
            .spec
            .target_groups
            .iter()
            .find(|g| **g != primary.target_group)
            .cloned()
            .unwrap_or_default();
        let load_balancer = self
            .aws
            .elb()
            .listener_load_balancer(&self.spec.listener_arn)
            .await?;
        rec.old_revision = primary.task_definition.clone();
        part.old = EcsRevision {
            task_set: primary.id.clone(),
            target_group: primary.target_group.clone(),
            deployment: String::new(),
        };
        part.new.target_group = idle;
        part.load_balancer = arn_suffix(&load_balancer);
        rec.set_details(&part)?;
        self.cost_checked(rec)?;
        self.alarms_quiet().await
    }

    async fn start_revision(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        let (cluster, service) = self.names();
        let ecs = self.aws.ecs();
        if rec.new_revision.is_empty() {
            rec.new_revision = ecs.register(self.desired.get("task")).await?;
        }
        if self.rolling() {
            return Ok(());
        }
        let mut part = part(rec)?;
        // A task set left by a run killed before it saved: reuse it if it is this revision on
        // the idle group, remove it otherwise.
        let sets = ecs.task_sets(&cluster, &service).await?;
        for other in sets.iter().filter(|s| s.status != "PRIMARY") {
            if other.task_definition == rec.new_revision
                && other.target_group == part.new.target_group
            {
                part.new.task_set = other.id.clone();
            } else if other.id != part.new.task_set {
                ecs.delete_task_set(&cluster, &service, &other.id).await?;
            }
        }
        if part.new.task_set.is_empty() {
            part.new.task_set = ecs
                .create_task_set(
                    &cluster,
                    &service,
                    &rec.new_revision,
                    &part.new.target_group,
                    self.desired,
                )
                .await?;
        }
        rec.set_details(&part)?;
        Ok(())
    }

    async fn set_weights(
        &self,
        rec: &Rollout,
        weights: [i32; 2],
    ) -> Result<Readiness, TargetError> {
        self.set_weights_now(rec, weights).await?;
        Ok(Readiness::Ready(String::new()))
    }

    async fn evaluate(&self, rec: &Rollout) -> Result<Vec<Probe>, TargetError> {
        let part = part(rec)?;
        let ctx = GateContext {
            address: self.address.to_string(),
            task_definition: rec.new_revision.clone(),
            target_group: part.new.target_group.clone(),
            target_group_suffix: arn_suffix(&part.new.target_group),
            baseline_suffix: arn_suffix(&part.old.target_group),
            load_balancer_suffix: part.load_balancer.clone(),
            step: rec.step + 1,
            weight: rec.weights[1],
            metrics_since: rec.metrics_since(),
        };
        Ok(self.gates.evaluate(&ctx).await)
    }

    async fn deploy(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        let ecs = self.aws.ecs();
        let td = rec.new_revision.clone();
        let mut part = part(rec)?;
        if self.remote_id.is_empty() && part.service_arn.is_empty() {
            let (applied, deployment) = ecs.create_rolling(self.address, self.desired, &td).await?;
            part.service_arn = applied.remote_id;
            part.new.deployment = deployment.unwrap_or_default();
        } else {
            part.new.deployment = ecs
                .deploy_revision(self.prior, self.desired, &td)
                .await?
                .unwrap_or_default();
        }
        rec.set_details(&part)?;
        Ok(())
    }

    async fn ready(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        if self.rolling() {
            self.rolling_readiness(rec).await
        } else {
            self.task_set_readiness(rec).await
        }
    }

    async fn promote(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        self.promote_now(rec).await?;
        Ok(Readiness::Ready(String::new()))
    }

    async fn restore(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        self.restore_now(rec).await?;
        Ok(Readiness::Ready(String::new()))
    }

    async fn start_hook(&self, rec: &mut Rollout, hook: &Hook) -> Result<(), TargetError> {
        let container = self.hook_container(hook);
        let Some(run) = &mut rec.hook else {
            return Ok(());
        };
        if !run.run.is_empty() {
            return Ok(());
        }
        // One token per rollout, stage and hook: a retried RunTask starts nothing new.
        let token = format!("{}-{}-{}", rec.id, run.stage.as_str(), run.index);
        run.run = self
            .aws
            .ecs()
            .run_task(
                self.desired,
                &rec.new_revision,
                &container,
                &hook.run,
                &token,
            )
            .await?;
        Ok(())
    }

    async fn hook_status(&self, rec: &Rollout, hook: &Hook) -> Result<Readiness, TargetError> {
        let Some(run) = &rec.hook else {
            return Ok(Readiness::Failed("no hook is recorded".into()));
        };
        let container = self.hook_container(hook);
        let (cluster, _) = self.names();
        Ok(
            match self
                .aws
                .ecs()
                .task_state(&cluster, &run.run, &container)
                .await?
            {
                TaskState::Running(status) => {
                    Readiness::Pending(format!("task {} is {status}", run.run))
                }
                TaskState::Stopped {
                    exit_code: Some(0), ..
                } => Readiness::Ready(format!("task {} exited 0 ({container})", run.run)),
                TaskState::Stopped { exit_code, reason } => Readiness::Failed(format!(
                    "task {} stopped with exit code {} ({container}): {reason}{}",
                    run.run,
                    exit_code.map_or("none".to_string(), |c| c.to_string()),
                    self.hook_log(&container, &run.run).await
                )),
            },
        )
    }

    async fn stop_hook(&self, rec: &Rollout) -> Result<(), TargetError> {
        let Some(run) = &rec.hook else {
            return Ok(());
        };
        if run.run.is_empty() {
            return Ok(());
        }
        let (cluster, _) = self.names();
        self.aws
            .ecs()
            .stop_task(&cluster, &run.run, "converge: the hook timed out")
            .await?;
        Ok(())
    }

    fn applied(&self, rec: &Rollout) -> Result<Applied, TargetError> {
        let remote_id = if self.remote_id.is_empty() {
            part(rec)?.service_arn
        } else {
            self.remote_id.to_string()
        };
        let mut outputs = match self.prior_outputs {
            Value::Map(_) => self.prior_outputs.clone(),
            _ => Value::map(),
        };
        if let Value::Map(m) = &mut outputs {
            m.insert("arn".into(), Value::str(&remote_id));
            m.insert(
                super::deploy::TASK_DEFINITION.into(),
                Value::str(&rec.new_revision),
            );
        }
        Ok(Applied { remote_id, outputs })
    }
}

mod readiness;
mod record;

pub use record::{EcsRecord, EcsRevision};

/// The ECS part of `rec`.
fn part(rec: &Rollout) -> Result<EcsRecord, TargetError> {
    Ok(rec.details::<EcsRecord>()?)
}

impl EcsTarget<'_> {
    /// See [`Target`]'s method of the same name, without its answer.
    async fn set_weights_now(&self, rec: &Rollout, weights: [i32; 2]) -> Result<(), TargetError> {
        let part = part(rec)?;
        let elb = self.aws.elb();
        elb.set_weights(
            &part.listener_arn,
            &[
                (part.old.target_group.clone(), weights[0]),
                (part.new.target_group.clone(), weights[1]),
            ],
        )
        .await?;
        // The test listener reaches only the new revision for the whole rollout (canary and
        // blue/green alike), so probes of it judge the new revision alone.
        if let Some(test) = &self.spec.test_listener_arn {
            elb.set_weights(
                test,
                &[
                    (part.new.target_group.clone(), 100),
                    (part.old.target_group.clone(), 0),
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// See [`Target`]'s method of the same name, without its answer.
    async fn promote_now(&self, rec: &Rollout) -> Result<(), TargetError> {
        let (cluster, service) = self.names();
        let part = part(rec)?;
        let ecs = self.aws.ecs();
        self.aws
            .elb()
            .set_weights(
                &part.listener_arn,
                &[
                    (part.old.target_group.clone(), 0),
                    (part.new.target_group.clone(), 100),
                ],
            )
            .await?;
        ecs.make_primary(&cluster, &service, &part.new.task_set)
            .await?;
        if !part.old.task_set.is_empty() {
            ecs.delete_task_set(&cluster, &service, &part.old.task_set)
                .await?;
        }
        Ok(())
    }

    /// See [`Target`]'s method of the same name, without its answer.
    async fn restore_now(&self, rec: &Rollout) -> Result<(), TargetError> {
        if self.rolling() {
            return self.restore_rolling(rec).await;
        }
        let (cluster, service) = self.names();
        let part = part(rec)?;
        let ecs = self.aws.ecs();
        if !part.old.target_group.is_empty() {
            let back = [
                (part.old.target_group.clone(), 100),
                (part.new.target_group.clone(), 0),
            ];
            self.aws
                .elb()
                .set_weights(&part.listener_arn, &back)
                .await?;
            if let Some(test) = &self.spec.test_listener_arn {
                self.aws.elb().set_weights(test, &back).await?;
            }
        }
        if !part.old.task_set.is_empty() {
            ecs.make_primary(&cluster, &service, &part.old.task_set)
                .await?;
        }
        if !part.new.task_set.is_empty() {
            ecs.delete_task_set(&cluster, &service, &part.new.task_set)
                .await?;
        }
        Ok(())
    }
}
