//! An ECS service's `rollout` block, read from its normalized properties into the shared
//! [`RolloutSpec`], and the block's own rules (`validate` and `plan` check them).

use std::time::Duration;

use crate::model::{Value, parse_duration, parse_percent};
use crate::rollout::spec::{
    CommandGate, Health, Hook, Hooks, HttpGate, MetricGate, NoData, OnFail, OnTimeout, PAUSE_FIRST,
    RolloutSpec, SpecError, Strategy, canary_steps,
};

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).reveal().as_str().map(str::to_string)
}

fn duration(v: &Value, key: &str, default: &str) -> Result<Duration, SpecError> {
    let raw = text(v, key).unwrap_or_else(|| default.to_string());
    parse_duration(&raw).map_err(|e| SpecError(format!("{key}: `{raw}` {e}")))
}

fn hooks(r: &Value, stage: &str) -> Result<Vec<Hook>, SpecError> {
    r.get("hooks")
        .get(stage)
        .as_list()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            Ok(Hook {
                run: h
                    .get("run")
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|a| a.reveal().as_str().map(str::to_string))
                    .collect(),
                container: text(h, "container"),
                timeout: duration(h, "timeout", "5m")?,
                per_host: false,
            })
        })
        .collect()
}

fn on_fail(v: &Value) -> OnFail {
    if text(v, "on_fail").as_deref() == Some("alert") {
        OnFail::Alert
    } else {
        OnFail::Rollback
    }
}

/// The rollout of a service's properties (`{ strategy: rolling }` without a block), or an
/// error naming what is wrong.
pub fn rollout_spec(p: &Value) -> Result<RolloutSpec, SpecError> {
    let r = p.get("rollout");
    let strategy = match text(r, "strategy").as_deref() {
        _ if r.is_null() => Strategy::Rolling,
        Some("rolling") => Strategy::Rolling,
        Some("blue_green") => Strategy::BlueGreen,
        _ => Strategy::Canary,
    };
    parse(r, strategy)
}

fn parse(r: &Value, strategy: Strategy) -> Result<RolloutSpec, SpecError> {
    let listed = r.get("steps").as_list().unwrap_or_default();
    let (steps, pauses) = if strategy == Strategy::Canary || !listed.is_empty() {
        canary_steps(listed)?
    } else {
        (vec![100], Vec::new())
    };
    let traffic = r.get("traffic");
    let target_groups: Vec<String> = traffic
        .get("target_groups")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.reveal().as_str().map(str::to_string))
        .collect();
    let listener_arn = text(traffic, "listener_arn").unwrap_or_default();
    if strategy != Strategy::Rolling && (listener_arn.is_empty() || target_groups.len() != 2) {
        return Err(
            "a canary or blue_green rollout needs traffic.listener_arn and two traffic.target_groups"
                .into(),
        );
    }
    let health = r.get("health");
    let http = match health.get("http") {
        Value::Null => None,
        h => Some(HttpGate {
            url: text(h, "url").unwrap_or_default(),
            expect_status: h.get("expect_status").as_i64().unwrap_or(200) as u16,
            timeout: duration(h, "timeout", "2s")?,
            failures: h.get("failures").as_i64().unwrap_or(2).max(1) as u32,
            on_fail: on_fail(h),
        }),
    };
    let metrics = health
        .get("metrics")
        .as_list()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            Ok(MetricGate {
                name: text(m, "name").unwrap_or_default(),
                max: m.get("max").as_f64(),
                max_ratio_to_baseline: m.get("max_ratio_to_baseline").as_f64(),
                window: duration(m, "for", "1m")?,
                min_requests: 0,
                no_data: match text(m, "no_data").as_deref() {
                    Some("fail") => NoData::Fail,
                    Some("pass") => NoData::Pass,
                    _ => NoData::Wait,
                },
                on_fail: on_fail(m),
            })
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    for m in &metrics {
        match m.name.as_str() {
            "error_rate" if m.max.is_none() => {
                return Err("health.metrics error_rate needs `max`".into());
            }
            "p95_latency" if m.max_ratio_to_baseline.is_none() => {
                return Err("health.metrics p95_latency needs `max_ratio_to_baseline`".into());
            }
            _ => {}
        }
    }
    let command = match health.get("command") {
        Value::Null => None,
        c => Some(CommandGate {
            run: text(c, "run").unwrap_or_default(),
            timeout: duration(c, "timeout", "5m")?,
            on_fail: on_fail(c),
        }),
    };
    Ok(RolloutSpec {
        strategy,
        ready_timeout: duration(r, "ready_timeout", "10m")?,
        on_timeout: match text(r, "on_timeout").as_deref() {
            Some("leave") => OnTimeout::Leave,
            _ => OnTimeout::Rollback,
        },
        wait: r.get("wait").as_bool().unwrap_or(true),
        // Blue/green on ECS is one switch (its steps are a host app's batches).
        steps: if strategy == Strategy::Canary {
            steps
        } else {
            vec![100]
        },
        pauses: if strategy == Strategy::Canary {
            pauses
        } else {
            Vec::new()
        },
        pause_timeout: duration(r, "pause_timeout", "24h")?,
        bake: duration(r, "bake", "5m")?,
        interval: duration(r, "interval", "10s")?.max(Duration::from_millis(100)),
        termination_wait: duration(r, "termination_wait", "5m")?,
        listener_arn,
        target_groups,
        test_listener_arn: text(traffic, "test_listener_arn"),
        health: Health {
            http,
            alarms: health
                .get("alarms")
                .as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.reveal().as_str().map(str::to_string))
                .collect(),
            metrics,
            command,
        },
        max_run_rate_increase: r
            .get("cost")
            .get("max_run_rate_increase")
            .reveal()
            .as_str()
            .and_then(parse_percent)
            .or_else(|| r.get("cost").get("max_run_rate_increase").as_f64()),
        webhook: text(r.get("notify"), "webhook"),
        hooks: Hooks {
            pre_traffic: hooks(r, "pre_traffic")?,
            post_traffic: hooks(r, "post_traffic")?,
            on_rollback: hooks(r, "on_rollback")?,
        },
        backup: false,
    })
}

/// The rollout block's own rules, checked by `validate` and `plan` (so a bad block never gets
/// halfway through an apply): steps that do not increase, a bake shorter than its gate
/// interval, a canary or blue/green rollout without its listener and two target groups, and
/// metric gates without their threshold. Each problem names its path below the service's
/// properties. Values known only after apply are skipped. (Ranges, whole numbers and gate
/// names are the schema's: `steps` are whole percentages 1-100, `failures` at least 1.)
pub fn problems(p: &Value) -> Vec<(Vec<String>, String)> {
    let r = p.get("rollout");
    let mut out = Vec::new();
    if r.is_null() {
        return out;
    }
    let at = |keys: &[&str]| -> Vec<String> {
        std::iter::once("rollout")
            .chain(keys.iter().copied())
            .map(str::to_string)
            .collect()
    };
    let strategy = text(r, "strategy");
    let shifts_traffic = matches!(strategy.as_deref(), Some("canary" | "blue_green"));
    if let Some(steps) = r.get("steps").as_list() {
        if steps.first().and_then(|s| s.reveal().as_str()) == Some("pause") {
            out.push((at(&["steps", "0"]), PAUSE_FIRST.into()));
        }
        if steps.iter().any(|s| s.reveal().as_str() == Some("pause"))
            && !matches!(strategy.as_deref(), Some("canary") | None)
        {
            out.push((
                at(&["steps"]),
                "`pause` steps are for canary rollouts; blue_green and rolling have no steps"
                    .into(),
            ));
        }
        let mut highest: Option<i64> = None;
        for (i, step) in steps.iter().enumerate() {
            let Some(n) = step.as_i64() else { continue };
            match highest {
                Some(h) if n == h => out.push((
                    at(&["steps", &i.to_string()]),
                    format!("step {n} repeats the step before it: steps must increase, e.g. [10, 50, 100]"),
                )),
                Some(h) if n < h => out.push((
                    at(&["steps", &i.to_string()]),
                    format!("step {n} comes after {h}: steps must increase, e.g. [10, 50, 100]"),
                )),
                _ => highest = Some(n),
            }
        }
    }
    let known = |key: &str| text(r, key).and_then(|t| parse_duration(&t).ok());
    if let (Some(bake), Some(interval)) = (known("bake"), known("interval"))
        && bake < interval
    {
        out.push((
            at(&["bake"]),
            format!(
                "bake {} is shorter than interval {}: no gate would be evaluated during a step",
                humantime::format_duration(bake),
                humantime::format_duration(interval)
            ),
        ));
    }
    if shifts_traffic {
        let traffic = r.get("traffic");
        if traffic.is_null() {
            out.push((
                at(&["strategy"]),
                format!(
                    "a {} rollout needs `traffic: {{ listener_arn, target_groups: [two target groups] }}`",
                    strategy.as_deref().unwrap_or_default()
                ),
            ));
        } else if let Some(groups) = traffic.get("target_groups").as_list()
            && groups.len() != 2
        {
            out.push((
                at(&["traffic", "target_groups"]),
                format!(
                    "traffic.target_groups names {} target groups; the two revisions alternate on exactly two",
                    groups.len()
                ),
            ));
        }
    }
    let test_listener = r.get("traffic").get("test_listener_arn");
    if strategy.as_deref() == Some("canary")
        && !r.get("health").get("http").is_null()
        && test_listener.is_null()
        && !r.get("traffic").contains_unknown()
    {
        out.push((
            at(&["health", "http"]),
            format!(
                "{}at a 10% step nine probes in ten of health.http reach the old revision, so the gate mostly measures what already works: add `traffic.test_listener_arn` (a listener that converge points at the new revision only, for the whole rollout) and point health.http.url at it",
                crate::model::schema::WARNING
            ),
        ));
    }
    if let Some(metrics) = r.get("health").get("metrics").as_list() {
        for (i, m) in metrics.iter().enumerate() {
            let path = at(&["health", "metrics", &i.to_string()]);
            match text(m, "name").as_deref() {
                Some("error_rate") if m.get("max").is_null() => out.push((
                    path,
                    "the error_rate gate needs `max` (e.g. 0.05 for 5%)".into(),
                )),
                Some("p95_latency") if m.get("max_ratio_to_baseline").is_null() => out.push((
                    path,
                    "the p95_latency gate needs `max_ratio_to_baseline` (e.g. 2.0)".into(),
                )),
                _ => {}
            }
        }
    }
    out
}

/// Whether going from `prior` to `desired` needs a new revision (and so a rollout): the task,
/// its network or its load balancer container changed.
pub fn needs_new_revision(prior: &Value, desired: &Value) -> bool {
    ["task", "network", "load_balancer"]
        .iter()
        .any(|k| !prior.get(k).same_as(desired.get(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(rollout: serde_json::Value) -> Value {
        Value::from_json(&serde_json::json!({ "rollout": rollout }))
    }

    #[test]
    fn canary_steps_default_and_end_at_100() {
        let spec = rollout_spec(&props(serde_json::json!({
            "strategy": "canary", "steps": [10, 50], "bake": "5m", "interval": "10s",
            "traffic": {"listener_arn": "l", "target_groups": ["a", "b"]}
        })))
        .unwrap();
        assert_eq!(spec.steps, vec![10, 50, 100]);
        assert_eq!(spec.summary(), "canary 10% → 50% → 100%, bake 5m");
    }

    #[test]
    fn rules_name_the_offending_literal() {
        let bad = props(serde_json::json!({
            "strategy": "canary", "steps": [10, 50, 50, 20, 100], "bake": "5s", "interval": "10s",
            "traffic": {"listener_arn": "l", "target_groups": ["a"]},
            "health": {"metrics": [{"name": "error_rate"}, {"name": "p95_latency", "max_ratio_to_baseline": 2}]}
        }));
        let found: Vec<(String, String)> = problems(&bad)
            .into_iter()
            .map(|(p, m)| (p.join("."), m))
            .collect();
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "rollout.steps.2",
                "rollout.steps.3",
                "rollout.bake",
                "rollout.traffic.target_groups",
                "rollout.health.metrics.0"
            ],
            "{found:?}"
        );
        assert!(found[1].1.contains("step 20 comes after 50"), "{found:?}");
        assert!(found[2].1.contains("bake 5s is shorter than interval 10s"));
        let good = props(serde_json::json!({
            "strategy": "canary", "steps": [10, 50], "bake": "5m", "interval": "10s",
            "traffic": {"listener_arn": "l", "target_groups": ["a", "b"]}
        }));
        assert!(problems(&good).is_empty());
        let unknown = Value::from_json(&serde_json::json!({"rollout": {"strategy": "canary"}}));
        let unknown = match unknown {
            Value::Map(mut m) => {
                if let Some(Value::Map(r)) = m.get_mut("rollout") {
                    r.insert("traffic".into(), Value::Unknown);
                    r.insert("steps".into(), Value::Unknown);
                }
                Value::Map(m)
            }
            v => v,
        };
        assert!(problems(&unknown).is_empty(), "unknowns are not judged");
        assert_eq!(
            problems(&props(serde_json::json!({"strategy": "blue_green"})))[0]
                .0
                .join("."),
            "rollout.strategy"
        );
    }

    #[test]
    fn rolling_and_absent_are_rolling_deploys_that_wait_and_bad_blocks_say_why() {
        let rolling = rollout_spec(&props(
            serde_json::json!({"strategy": "rolling", "ready_timeout": "30s", "on_timeout": "leave"}),
        ))
        .unwrap();
        assert_eq!(
            (
                rolling.strategy,
                rolling.ready_timeout,
                rolling.on_timeout,
                rolling.wait
            ),
            (
                Strategy::Rolling,
                Duration::from_secs(30),
                OnTimeout::Leave,
                true
            )
        );
        let absent = rollout_spec(&Value::from_json(&serde_json::json!({}))).unwrap();
        assert_eq!(
            (
                absent.strategy,
                absent.ready_timeout,
                absent.wait,
                absent.steps.clone()
            ),
            (Strategy::Rolling, Duration::from_secs(600), true, vec![100])
        );
        assert!(!absent.shifts_traffic());
        let fire_and_forget = rollout_spec(&props(
            serde_json::json!({"strategy": "rolling", "wait": false}),
        ))
        .unwrap();
        assert!(!fire_and_forget.wait);
        let err = rollout_spec(&props(serde_json::json!({
            "strategy": "canary", "steps": [50, 10],
            "traffic": {"listener_arn": "l", "target_groups": ["a", "b"]}
        })))
        .unwrap_err();
        assert!(err.0.contains("must increase"), "{err}");
        let err = rollout_spec(&props(serde_json::json!({"strategy": "blue_green"}))).unwrap_err();
        assert!(err.0.contains("two traffic.target_groups"), "{err}");
    }
}
