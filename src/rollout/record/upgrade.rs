//! Records written by earlier releases, rewritten into today's format before they decode.
//! Version 1 (before the engine) and version 2 kept ECS's details in the record itself (`old`
//! and `new` task sets, `listener_arn`, `load_balancer`, `cluster`, `service`,
//! `service_arn`) and a host app's colours as untagged JSON in `target`; version 3 keeps the
//! revision labels in the record and each target's details in its tagged part.

use serde_json::{Map, Value};

/// The ECS target's tag: version 1 and 2 records without a `target` were ECS rollouts.
const ECS: &str = "ecs";
/// The host target's tag: version 2 records with a `target` were host app rollouts.
const HOST: &str = "host";

/// Rewrites a version 1 or 2 record (`record`) into version 3; a version 3 one is unchanged.
pub fn upgrade(record: &mut Map<String, Value>, version: u32) {
    if version >= 3 {
        return;
    }
    let mut take = |key: &str| record.remove(key).unwrap_or(Value::Null);
    let old = take("old");
    let new = take("new");
    let host = take("target");
    let listener_arn = take("listener_arn");
    let load_balancer = take("load_balancer");
    let cluster = take("cluster");
    let service = take("service");
    let service_arn = take("service_arn");
    let label = |revision: &Value| revision.get("task_definition").cloned().unwrap_or_default();
    record.insert("old_revision".into(), text(label(&old)));
    record.insert("new_revision".into(), text(label(&new)));
    let part = match host {
        Value::Object(mut fields) => {
            fields.insert("type".into(), HOST.into());
            Value::Object(fields)
        }
        _ => {
            let ecs_revision = |revision: &Value| {
                let field = |key: &str| text(revision.get(key).cloned().unwrap_or_default());
                serde_json::json!({
                    "task_set": field("task_set"),
                    "target_group": field("target_group"),
                    "deployment": field("deployment"),
                })
            };
            serde_json::json!({
                "type": ECS,
                "old": ecs_revision(&old),
                "new": ecs_revision(&new),
                "listener_arn": text(listener_arn),
                "load_balancer": text(load_balancer),
                "cluster": text(cluster),
                "service": text(service),
                "service_arn": text(service_arn),
            })
        }
    };
    record.insert("target".into(), part);
    if let Some(Value::Object(hook)) = record.get_mut("hook")
        && let Some(run) = hook.remove("task_arn")
    {
        hook.insert("run".into(), run);
    }
    record.insert("version".into(), Value::from(super::RECORD_VERSION));
}

/// A string field as stored: its text, "" when absent.
fn text(v: Value) -> Value {
    match v {
        Value::String(_) => v,
        _ => Value::from(""),
    }
}
