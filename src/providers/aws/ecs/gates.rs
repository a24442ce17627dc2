//! The gates of an ECS service's rollout, evaluated once per interval: `health.http`, the
//! CloudWatch alarms, the ALB metrics of the new target group against the old one, and
//! smoke-test commands; judged by the shared rules in `rollout::gates`.

use std::time::Duration;

use crate::providers::aws::AwsProvider;
use crate::rollout::engine::{Probe, ProbeResult};
use crate::rollout::gates::{Verdict, judge_error_rate, judge_p95};
use crate::rollout::spec::{Health, MetricGate, OnFail};

/// What the gates know about the revisions.
#[derive(Debug, Clone)]
pub struct GateContext {
    /// The service's address.
    pub address: String,
    /// New task definition.
    pub task_definition: String,
    /// New target group ARN.
    pub target_group: String,
    /// New target group (`targetgroup/NAME/ID`).
    pub target_group_suffix: String,
    /// Old target group (`targetgroup/NAME/ID`).
    pub baseline_suffix: String,
    /// Load balancer (`app/NAME/ID`).
    pub load_balancer_suffix: String,
    /// 1-based step and its weight.
    pub step: usize,
    /// Weight of the new revision.
    pub weight: i32,
    /// Metrics count from here: the first whole minute after the new revision took traffic
    /// (ALB metrics come in 60 s buckets; what the group saw before was another revision's).
    pub metrics_since: Option<std::time::SystemTime>,
}

/// Evaluates gates once per call; the engine counts consecutive failures across calls.
pub struct Gates<'a> {
    health: &'a Health,
    aws: &'a AwsProvider,
    http: reqwest::Client,
}

/// The names of the alarms in `states` that are in ALARM.
pub fn in_alarm(states: &[crate::providers::aws::cloudwatch::AlarmState]) -> Vec<String> {
    states
        .iter()
        .filter(|(_, s)| *s == Some(true))
        .map(|(n, _)| n.clone())
        .collect()
}

impl<'a> Gates<'a> {
    /// Gates of `health`, reading through `aws`.
    pub fn new(health: &'a Health, aws: &'a AwsProvider) -> Gates<'a> {
        Gates {
            health,
            aws,
            http: reqwest::Client::new(),
        }
    }

    /// Evaluates every gate once.
    pub async fn evaluate(&self, ctx: &GateContext) -> Vec<Probe> {
        let mut out = Vec::new();
        if let Some(http) = &self.health.http {
            let probe = self.http.get(&http.url).timeout(http.timeout).send().await;
            let problem = match probe {
                Ok(r) if r.status().as_u16() == http.expect_status => None,
                Ok(r) => Some(format!("{} from {}", r.status().as_u16(), http.url)),
                Err(e) if e.is_timeout() => Some(format!(
                    "no answer from {} within {}",
                    http.url,
                    humantime::format_duration(http.timeout)
                )),
                Err(e) => Some(format!("{} unreachable: {e}", http.url)),
            };
            out.push(Probe {
                gate: "health.http".into(),
                result: match problem {
                    None => ProbeResult::Pass(String::new()),
                    Some(p) => ProbeResult::Fail(p),
                },
                on_fail: http.on_fail,
                threshold: Some(http.failures),
            });
        }
        if !self.health.alarms.is_empty() {
            let verdict = match self.aws.cloudwatch().alarms(&self.health.alarms).await {
                Ok(states) => {
                    let firing = in_alarm(&states);
                    let missing: Vec<String> = states
                        .iter()
                        .filter(|(_, s)| s.is_none())
                        .map(|(n, _)| n.clone())
                        .collect();
                    if !firing.is_empty() {
                        Verdict::Fail(format!("alarm {} is in ALARM", firing.join(", ")))
                    } else if !missing.is_empty() {
                        Verdict::Fail(format!("alarm {} does not exist", missing.join(", ")))
                    } else {
                        Verdict::Pass(String::new())
                    }
                }
                Err(e) => Verdict::NoData(format!("could not read alarms: {e}")),
            };
            out.push(Probe::once("health.alarms", verdict, OnFail::Rollback));
        }
        for m in &self.health.metrics {
            let verdict = self.metric(m, ctx).await;
            out.push(Probe::once(
                &format!("health.metrics.{}", m.name),
                verdict,
                m.on_fail,
            ));
        }
        if let Some(c) = &self.health.command {
            let verdict = run_command(&c.run, c.timeout, ctx).await;
            out.push(Probe::once("health.command", verdict, c.on_fail));
        }
        out
    }

    async fn metric(&self, m: &MetricGate, ctx: &GateContext) -> Verdict {
        if let Some(since) = ctx.metrics_since
            && since > std::time::SystemTime::now()
        {
            let at = chrono::DateTime::<chrono::Utc>::from(since).format("%H:%M:%S UTC");
            return Verdict::NoData(format!(
                "metrics count from {at}, the first whole minute after the new revision took traffic"
            ));
        }
        let cw = self.aws.cloudwatch();
        let lb = &ctx.load_balancer_suffix;
        let since = ctx.metrics_since;
        let read = |metric: &'static str, stat: &'static str, tg: String| async move {
            cw.elb_metric(metric, stat, lb, &tg, m.window, since).await
        };
        match m.name.as_str() {
            "error_rate" => {
                let errors = read(
                    "HTTPCode_Target_5XX_Count",
                    "Sum",
                    ctx.target_group_suffix.clone(),
                )
                .await;
                let requests = read("RequestCount", "Sum", ctx.target_group_suffix.clone()).await;
                match (errors, requests) {
                    (Ok(e), Ok(r)) => judge_error_rate(e, r, m),
                    (Err(e), _) | (_, Err(e)) => {
                        Verdict::NoData(format!("could not read metrics: {e}"))
                    }
                }
            }
            "p95_latency" => {
                let new = read("TargetResponseTime", "p95", ctx.target_group_suffix.clone()).await;
                let old = read("TargetResponseTime", "p95", ctx.baseline_suffix.clone()).await;
                match (new, old) {
                    (Ok(n), Ok(o)) => judge_p95(n, o, m),
                    (Err(e), _) | (_, Err(e)) => {
                        Verdict::NoData(format!("could not read metrics: {e}"))
                    }
                }
            }
            other => Verdict::NoData(format!("unknown metric {other}")),
        }
    }
}

/// Runs a smoke-test command with the revision in `CONVERGE_ROLLOUT_*` variables.
pub async fn run_command(run: &str, timeout: Duration, ctx: &GateContext) -> Verdict {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(run)
        .env("CONVERGE_ROLLOUT_ADDRESS", &ctx.address)
        .env("CONVERGE_ROLLOUT_TASK_DEFINITION", &ctx.task_definition)
        .env("CONVERGE_ROLLOUT_TARGET_GROUP", &ctx.target_group)
        .env("CONVERGE_ROLLOUT_STEP", ctx.step.to_string())
        .env("CONVERGE_ROLLOUT_WEIGHT", ctx.weight.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return Verdict::Fail(format!("could not start `{run}`: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Verdict::Fail(format!(
            "`{run}` did not finish within {}",
            humantime::format_duration(timeout)
        )),
        Ok(Err(e)) => Verdict::Fail(format!("`{run}`: {e}")),
        Ok(Ok(out)) if out.status.success() => Verdict::Pass(String::new()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Verdict::Fail(format!(
                "`{run}` exited {}{}",
                out.status
                    .code()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "by a signal".into()),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_get_the_revision_and_fail_on_exit_status_or_timeout() {
        let ctx = GateContext {
            address: "api.service".into(),
            task_definition: "arn:td:7".into(),
            target_group: "arn:tg/green".into(),
            target_group_suffix: String::new(),
            baseline_suffix: String::new(),
            load_balancer_suffix: String::new(),
            step: 2,
            weight: 50,
            metrics_since: None,
        };
        let ok = run_command(
            "test \"$CONVERGE_ROLLOUT_TASK_DEFINITION\" = arn:td:7 && test \"$CONVERGE_ROLLOUT_WEIGHT\" = 50",
            Duration::from_secs(5),
            &ctx,
        )
        .await;
        assert_eq!(ok, Verdict::Pass(String::new()));
        let failed =
            run_command("echo smoke broke >&2; exit 3", Duration::from_secs(5), &ctx).await;
        assert!(matches!(failed, Verdict::Fail(t) if t.contains("exited 3: smoke broke")));
        let slow = run_command("sleep 5", Duration::from_millis(200), &ctx).await;
        assert!(matches!(slow, Verdict::Fail(t) if t.contains("did not finish")));
    }
}
