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

/// The rollout a host app's update runs, as the plan shows it: every change of what runs, and
/// each accessory replaced in place with the downtime it costs.
pub fn plan_summary(before: &Value, after: &Value) -> Option<String> {
    let summary = needs_deploy(before, after)
        .then(|| rollout_spec(after).ok())
        .flatten()
        .map(|spec| spec.summary())?;
    let mut out = vec![summary];
    out.extend(replaced_accessories(before, after));
    Some(out.join("; "))
}

/// What happens to the accessories that run now: one removed from the files is removed after
/// the rollout; one whose definition changes says `db: restart, about N s of downtime` (it is
/// stopped, its grace period at most, and down until healthy again, its health timeout at most).
fn replaced_accessories(before: &Value, after: &Value) -> Vec<String> {
    let old = before.get("accessories");
    let new = after.get("accessories");
    let mut out = Vec::new();
    for name in old
        .as_map()
        .map(|m| m.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if new.get(&name).is_null() {
            out.push(format!(
                "{name}: removed once the rollout succeeds (its named volumes are kept)"
            ));
        }
    }
    for (name, new) in after
        .get("accessories")
        .as_map()
        .cloned()
        .unwrap_or_default()
    {
        let prior = old.get(&name);
        if prior.is_null() || prior.same_as(&new) {
            continue;
        }
        let seconds = |v: &Value, default: &str| {
            crate::model::parse_duration(v.as_str().unwrap_or(default))
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let grace = seconds(prior.get("runtime").get("stop_grace_period"), "10s");
        let healthy = match new.get("health") {
            Value::Null => 0,
            h => seconds(h.get("timeout"), "30s"),
        };
        out.push(format!(
            "{name}: restart, about {} s of downtime (stopped within {grace} s{})",
            grace + healthy,
            if healthy > 0 {
                format!(", healthy within {healthy} s")
            } else {
                String::new()
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::replaced_accessories;
    use crate::model::Value;

    #[test]
    fn an_accessory_changed_in_place_is_announced_with_its_downtime() {
        let app = |memory: i64| {
            Value::from_json(&serde_json::json!({
                "accessories": {
                    "db": { "image": "pg:16", "runtime": { "stop_grace_period": "20s", "memory": memory },
                            "health": { "command": ["pg_isready"], "timeout": "40s" } },
                    "cache": { "image": "redis:7" }
                }
            }))
        };
        assert!(replaced_accessories(&app(1), &app(1)).is_empty());
        assert_eq!(
            replaced_accessories(&app(1), &app(2)),
            ["db: restart, about 60 s of downtime (stopped within 20 s, healthy within 40 s)"]
        );
        // A new accessory is started, not restarted; a removed one is said.
        assert!(replaced_accessories(&Value::Null, &app(1)).is_empty());
        let without_cache = Value::from_json(&serde_json::json!({
            "accessories": { "db": { "image": "pg:16", "runtime": { "stop_grace_period": "20s", "memory": 1 },
                    "health": { "command": ["pg_isready"], "timeout": "40s" } } }
        }));
        assert_eq!(
            replaced_accessories(&app(1), &without_cache),
            ["cache: removed once the rollout succeeds (its named volumes are kept)"]
        );
    }
}
