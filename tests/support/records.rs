//! Rollout records as the release before typed target parts wrote them (version 2): a test
//! rewrites a live record into that form in state, then checks today's binary continues it.
//! `as_version_2` is checked against the records captured from that release
//! (`tests/fixtures/records/`), so it writes what that release wrote.

use std::path::Path;

use serde_json::{Value, json};

/// `record` (version 3, as stored) in version 2's form: ECS's fields back in the record, a
/// host app's part untagged under `target`, the hook's run as `task_arn`.
pub fn as_version_2(record: &Value) -> Value {
    let mut v = record.as_object().expect("a record is a mapping").clone();
    let part = v.remove("target").unwrap_or(Value::Null);
    let old_label = v.remove("old_revision").unwrap_or_else(|| "".into());
    let new_label = v.remove("new_revision").unwrap_or_else(|| "".into());
    let text = |key: &str| part.get(key).cloned().unwrap_or_else(|| "".into());
    match part.get("type").and_then(Value::as_str) {
        Some("host") => {
            let mut hosts = part.as_object().unwrap().clone();
            hosts.remove("type");
            for (which, label) in [("old", &old_label), ("new", &new_label)] {
                v.insert(
                    which.into(),
                    json!({"task_set": label, "task_definition": label, "target_group": "", "deployment": ""}),
                );
            }
            for key in [
                "listener_arn",
                "load_balancer",
                "cluster",
                "service",
                "service_arn",
            ] {
                v.insert(key.into(), "".into());
            }
            v.insert("target".into(), Value::Object(hosts));
        }
        _ => {
            for (which, label) in [("old", &old_label), ("new", &new_label)] {
                let r = part.get(which).cloned().unwrap_or(Value::Null);
                let field = |k: &str| r.get(k).cloned().unwrap_or_else(|| "".into());
                v.insert(
                    which.into(),
                    json!({"task_set": field("task_set"), "task_definition": label, "target_group": field("target_group"), "deployment": field("deployment")}),
                );
            }
            for key in [
                "listener_arn",
                "load_balancer",
                "cluster",
                "service",
                "service_arn",
            ] {
                v.insert(key.into(), text(key));
            }
        }
    }
    if let Some(Value::Object(hook)) = v.get_mut("hook")
        && let Some(run) = hook.remove("run")
    {
        hook.insert("task_arn".into(), run);
    }
    v.insert("version".into(), 2.into());
    Value::Object(v)
}

/// Rewrites the rollout record of `address` in environment `env` of the project at `root`
/// (SQLite state) into version 2's form.
pub async fn rewrite_as_version_2(root: &Path, env: &str, address: &str) {
    let backend = super::Backend::Sqlite;
    let body = backend
        .fetch_text(
            root,
            env,
            "SELECT body FROM rollouts WHERE env = ? AND address = ?",
            &[env, address],
        )
        .await;
    let record: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        record["version"], 3,
        "today's records are version 3: {record}"
    );
    let old = as_version_2(&record).to_string();
    let n = backend
        .execute(
            root,
            env,
            "UPDATE rollouts SET body = ? WHERE env = ? AND address = ?",
            &[&old, env, address],
        )
        .await;
    assert_eq!(n, 1, "one record rewritten");
}

/// [`rewrite_as_version_2`] from a test without a runtime.
pub fn rewrite_as_version_2_blocking(root: &Path, env: &str, address: &str) {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(rewrite_as_version_2(root, env, address));
}
