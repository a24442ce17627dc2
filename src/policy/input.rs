//! The input document policies judge: the plan's JSON document itself (`plan --format json`),
//! plus who applies (`actor`) and from which commit (`commit`); and its published JSON Schema
//! (`converge schema --policy-input`).

use serde_json::{Value, json};

use crate::plan::Plan;

/// The input of a policy evaluation: `plan` as JSON, with `actor`, `commit` and the
/// `operation` (`plan`, `apply` or `destroy`).
pub fn document(plan: &Plan, actor: &str, commit: &str, operation: &str) -> Value {
    let mut doc = serde_json::to_value(plan).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut doc {
        map.remove("policy");
        map.insert("actor".into(), actor.into());
        map.insert("commit".into(), commit.into());
        map.insert("operation".into(), operation.into());
    }
    doc
}

/// The JSON Schema (draft 2020-12) of [`document`].
pub fn schema() -> Value {
    let money = json!({"type": ["number", "null"]});
    let value = json!({"description": "Properties in their display form: secrets as \"(sensitive)\", values not known yet as \"(known after apply)\"; null for the missing side."});
    let action = json!({"enum": ["no_op", "create", "update", "replace", "delete", "forget"]});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://converge.dev/schemas/policy-input.json",
        "title": "converge policy input",
        "description": "What Rego policies see as `input`: the plan's JSON document (`converge plan --format json`) with actor, commit and operation.",
        "type": "object",
        "required": ["format_version", "environment", "serial", "files_hash", "changes", "summary", "cost", "actor", "commit", "operation"],
        "properties": {
            "format_version": {"type": "integer"},
            "environment": {"type": "string", "description": "The environment planned."},
            "serial": {"type": "integer", "description": "The state serial planned against."},
            "files_hash": {"type": "string"},
            "actor": {"type": "string", "description": "Who runs converge: CONVERGE_ACTOR, else GITHUB_ACTOR (as `github:NAME`), else the OS user."},
            "commit": {"type": "string", "description": "The git commit of the files (GITHUB_SHA or `git rev-parse HEAD`), empty when unknown."},
            "operation": {"enum": ["plan", "apply", "destroy"]},
            "changes": {
                "type": "array",
                "description": "Every resource, in the order apply takes them (no-ops included).",
                "items": {
                    "type": "object",
                    "required": ["address", "kind", "action", "before", "after", "changed", "replace_because", "cost"],
                    "properties": {
                        "address": {"type": "string", "description": "KEY or INSTANCE.KEY."},
                        "kind": {"type": "string", "description": "aws.ecs_service, host.app, ..."},
                        "action": action,
                        "before": value,
                        "after": value,
                        "changed": {"type": "array", "items": {"type": "string"}},
                        "replace_because": {"type": "array", "items": {"type": "string"}},
                        "note": {"type": "string"},
                        "rollout": {"type": "string", "description": "How an update rolls out: `canary 10% → 50% → 100%, bake 5m`."},
                        "moved_from": {"type": "string"},
                        "cost": {
                            "type": "object",
                            "properties": {"before_monthly": money, "after_monthly": money, "currency": {"const": "USD"}, "note": {"type": "string"}},
                        },
                    },
                },
            },
            "summary": {
                "type": "object",
                "properties": {
                    "add": {"type": "integer"}, "change": {"type": "integer"}, "replace": {"type": "integer"},
                    "destroy": {"type": "integer"}, "forget": {"type": "integer"}, "moved": {"type": "integer"},
                },
            },
            "moved": {"type": "array", "items": {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}},
            "output_changes": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "action": action, "before": {}, "after": {}, "sensitive": {"type": "boolean"},
            }}},
            "cost": {
                "type": "object",
                "description": "Monthly USD for the whole environment before and after the plan.",
                "properties": {
                    "before_monthly": {"type": "number"}, "after_monthly": {"type": "number"}, "difference": {"type": "number"},
                    "percent": money, "currency": {"const": "USD"}, "unpriced": {"type": "array", "items": {"type": "string"}},
                },
            },
            "budget": {
                "type": "object",
                "description": "Only when the environment sets a budget.",
                "properties": {
                    "monthly": money, "max_increase": money, "within": {"type": "boolean"},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key a real input document has is described by the schema (top level and in a
    /// change), so the published schema cannot fall behind the plan's JSON.
    #[test]
    fn the_schema_describes_every_key_of_a_real_document() {
        let env_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(env_dir.path().join("environments")).unwrap();
        std::fs::write(
            env_dir.path().join("environments/dev.yaml"),
            "environment: dev\nproviders: { aws: { region: us-east-1 } }\nbudget: { monthly: 10 }\nresources:\n  repo: { type: aws.ecr_repository, properties: { name: r } }\noutputs:\n  url: { value: \"${repo.uri}\" }\n",
        )
        .unwrap();
        let env = crate::config::load(env_dir.path(), "dev", &Default::default()).unwrap();
        let mut plan = crate::plan::compute(&env, &[], &Default::default(), 0, &Default::default());
        plan.changes[0].note = Some("n".into());
        plan.changes[0].rollout = Some("r".into());
        plan.changes[0].moved_from = Some(crate::model::Address::root("old"));
        let doc = document(&plan, "alice", "abc", "plan");
        let schema = schema();
        let described = |props: &Value, doc: &Value| {
            for key in doc.as_object().unwrap().keys() {
                assert!(props.get(key).is_some(), "the schema lacks `{key}`");
            }
        };
        described(&schema["properties"], &doc);
        described(
            &schema["properties"]["changes"]["items"]["properties"],
            &doc["changes"][0],
        );
        described(
            &schema["properties"]["summary"]["properties"],
            &doc["summary"],
        );
        assert!(doc.get("budget").is_some() && doc.get("output_changes").is_some());
    }
}
