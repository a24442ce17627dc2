//! The rollout settings every target shares (DESIGN §5): strategy, steps, pauses, bake, gates,
//! hooks. Each kind reads its own `rollout` block into a [`RolloutSpec`] (ECS services in
//! `providers/aws/ecs/spec.rs`, host apps in `hosts/app/spec.rs`).

use std::time::Duration;

/// How the new revision takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Weight steps with a bake after each.
    Canary,
    /// Pre-traffic checks at 0%, then one switch, old task set kept for `termination_wait`.
    BlueGreen,
    /// The target's own in-place deployment (ECS's rolling update), no weights.
    Rolling,
}

impl Strategy {
    /// `canary`, `blue_green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Canary => "canary",
            Strategy::BlueGreen => "blue_green",
            Strategy::Rolling => "rolling",
        }
    }
}

/// What a failing gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFail {
    /// Roll back (the default).
    Rollback,
    /// Record and notify; the rollout goes on.
    Alert,
}

/// What a metric with no datapoints means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoData {
    /// The gate fails.
    Fail,
    /// The gate passes.
    Pass,
    /// Neither: the bake goes on and the metric is read again.
    Wait,
}

/// `health.http`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpGate {
    /// URL probed with GET.
    pub url: String,
    /// Status that passes.
    pub expect_status: u16,
    /// Probe timeout.
    pub timeout: Duration,
    /// Consecutive failures that fail the gate.
    pub failures: u32,
    /// What failing does.
    pub on_fail: OnFail,
}

/// One of `health.metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricGate {
    /// `error_rate` or `p95_latency`.
    pub name: String,
    /// error_rate: highest passing rate; p95_latency on hosts: highest passing p95, ms.
    pub max: Option<f64>,
    /// p95_latency: highest passing ratio to the old revision.
    pub max_ratio_to_baseline: Option<f64>,
    /// Window read.
    pub window: Duration,
    /// Fewer requests of the new revision in the window are no data (hosts; ECS: 0).
    pub min_requests: u64,
    /// What no data means.
    pub no_data: NoData,
    /// What failing does.
    pub on_fail: OnFail,
}

/// `health.command`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandGate {
    /// Shell command.
    pub run: String,
    /// Time limit.
    pub timeout: Duration,
    /// What failing does.
    pub on_fail: OnFail,
}

/// All gates of a rollout.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    /// HTTP probe.
    pub http: Option<HttpGate>,
    /// Alarms that must not be in ALARM.
    pub alarms: Vec<String>,
    /// ALB metric gates.
    pub metrics: Vec<MetricGate>,
    /// Smoke test command.
    pub command: Option<CommandGate>,
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStage {
    /// Before any traffic moves.
    PreTraffic,
    /// After 100%, before the old revision is removed.
    PostTraffic,
    /// After a rollback restored the old revision.
    OnRollback,
}

impl HookStage {
    /// `pre_traffic`, `post_traffic`, `on_rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookStage::PreTraffic => "pre_traffic",
            HookStage::PostTraffic => "post_traffic",
            HookStage::OnRollback => "on_rollback",
        }
    }
}

/// One lifecycle hook: a one-off task of the new revision that must exit 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The command.
    pub run: Vec<String>,
    /// The container it overrides (`None`: the task's first).
    pub container: Option<String>,
    /// Time limit.
    pub timeout: Duration,
    /// Host apps: runs on every host (a later batch's pre_traffic before its switch), not
    /// once on the first.
    pub per_host: bool,
}

/// A rollout's hooks by stage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hooks {
    /// Before traffic.
    pub pre_traffic: Vec<Hook>,
    /// After 100%.
    pub post_traffic: Vec<Hook>,
    /// After a rollback.
    pub on_rollback: Vec<Hook>,
}

impl Hooks {
    /// The hooks of `stage`.
    pub fn of(&self, stage: HookStage) -> &[Hook] {
        match stage {
            HookStage::PreTraffic => &self.pre_traffic,
            HookStage::PostTraffic => &self.post_traffic,
            HookStage::OnRollback => &self.on_rollback,
        }
    }
}

/// What happens when the new revision is not ready by `ready_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Go back to the old revision (the default).
    Rollback,
    /// Leave the deployment to ECS and say so (exit 1).
    Leave,
}

/// A service's rollout settings (a service without a `rollout` block rolls out as
/// `{ strategy: rolling }`).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// Strategy.
    pub strategy: Strategy,
    /// How long the new revision has to be running and healthy.
    pub ready_timeout: Duration,
    /// What passing `ready_timeout` does.
    pub on_timeout: OnTimeout,
    /// Whether apply waits for the new revision at all (`false`: rolling fire-and-forget).
    pub wait: bool,
    /// Canary weights of the new revision, ending at 100 (blue/green: the share of hosts
    /// switched after each batch, `[100]` for one switch).
    pub steps: Vec<i32>,
    /// Indexes into `steps` after which (and after whose bake) the rollout pauses for
    /// `rollout promote` (`steps: [10, pause, 50, 100]` pauses after step 0).
    pub pauses: Vec<usize>,
    /// How long a pause waits for `rollout promote` before it rolls back.
    pub pause_timeout: Duration,
    /// Bake per step (blue/green: pre-traffic checks).
    pub bake: Duration,
    /// Gate interval.
    pub interval: Duration,
    /// Blue/green: how long the old task set is kept after the switch.
    pub termination_wait: Duration,
    /// The listener whose weights move.
    pub listener_arn: String,
    /// The two target groups.
    pub target_groups: Vec<String>,
    /// Blue/green: a listener that reaches the new revision before the switch.
    pub test_listener_arn: Option<String>,
    /// Gates.
    pub health: Health,
    /// Cost gate: highest run-rate increase, percent.
    pub max_run_rate_increase: Option<f64>,
    /// Webhook for rollout events.
    pub webhook: Option<String>,
    /// Lifecycle hooks.
    pub hooks: Hooks,
    /// Whether the target takes backups before the pre_traffic hooks (a host app whose
    /// accessories declare `backup`).
    pub backup: bool,
}

/// A `pause` needs a step before it: there is no traffic to pause at.
pub const PAUSE_FIRST: &str = "a pause must follow a step (e.g. [10, pause, 50, 100]): there is no traffic on the new revision before the first step";

/// A canary's `steps` (`[10, pause, 50, 100]`): the percentages, ending at 100 (added when
/// missing; `[10, 50, 100]` when none are given), and the indexes after which it pauses.
pub fn canary_steps(list: &[crate::model::Value]) -> Result<(Vec<i32>, Vec<usize>), SpecError> {
    let mut steps: Vec<i32> = Vec::new();
    let mut pauses: Vec<usize> = Vec::new();
    for s in list {
        if s.reveal().as_str() == Some("pause") {
            match steps.len().checked_sub(1) {
                Some(after) if !pauses.contains(&after) => pauses.push(after),
                Some(_) => {}
                None => return Err(PAUSE_FIRST.into()),
            }
        } else if let Some(n) = s.as_i64() {
            steps.push(n as i32);
        }
    }
    if steps.iter().any(|s| !(1..=100).contains(s)) {
        return Err("rollout.steps are percentages between 1 and 100".into());
    }
    if steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err("rollout.steps must increase".into());
    }
    if steps.is_empty() {
        steps = vec![10, 50, 100];
    }
    if steps.last() != Some(&100) {
        steps.push(100);
    }
    Ok((steps, pauses))
}

/// Why a `rollout` block cannot be used (the rule it breaks, in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl From<&str> for SpecError {
    fn from(why: &str) -> SpecError {
        SpecError(why.to_string())
    }
}

impl RolloutSpec {
    /// Whether the service runs under the EXTERNAL deployment controller (task sets moved by
    /// listener weights) rather than ECS's own rolling deployments.
    pub fn shifts_traffic(&self) -> bool {
        self.strategy != Strategy::Rolling
    }

    /// `canary 10% → 50% → 100%, bake 5m` or `blue_green, checks 5m, then 100%, old kept 5m`.
    pub fn summary(&self) -> String {
        let bake = humantime::format_duration(self.bake);
        match self.strategy {
            Strategy::Canary => format!(
                "canary {}, bake {bake}",
                self.steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| if self.pauses.contains(&i) {
                        format!("{s}% → pause")
                    } else {
                        format!("{s}%")
                    })
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
            Strategy::BlueGreen if self.steps.len() > 1 => format!(
                "blue_green in {} batches of hosts ({}), old revision kept {} after the last",
                self.steps.len(),
                self.steps
                    .iter()
                    .map(|s| format!("{s}%"))
                    .collect::<Vec<_>>()
                    .join(" → "),
                humantime::format_duration(self.termination_wait)
            ),
            Strategy::BlueGreen => format!(
                "blue_green: checks for {bake} at 0%, then 100% at once, old revision kept {}",
                humantime::format_duration(self.termination_wait)
            ),
            Strategy::Rolling if self.steps.len() > 1 => format!(
                "replaced in {} batches of hosts ({}), each ready within {}",
                self.steps.len(),
                self.steps
                    .iter()
                    .map(|s| format!("{s}%"))
                    .collect::<Vec<_>>()
                    .join(" → "),
                humantime::format_duration(self.ready_timeout)
            ),
            Strategy::Rolling if !self.wait => {
                "rolling: ECS's own deployment, not waited for (wait: false)".into()
            }
            Strategy::Rolling => format!(
                "rolling: ECS's own deployment, ready within {}",
                humantime::format_duration(self.ready_timeout)
            ),
        }
    }
}
