//! Policy benchmark (not a timed test): ten Rego policies (the project's four and six more that
//! each walk every change) judging the input of a 1,000-resource plan, as `plan` and `apply`
//! do. Prints the time to load the policies and the median of 20 evaluations; the target is at
//! most 100 ms per evaluation.
//!
//! Run with `cargo bench --bench policy`.

use std::time::{Duration, Instant};

use converge::policy::{Policies, PolicyFile};

fn input(resources: usize) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = (0..resources)
        .map(|i| {
            let (kind, after) = match i % 4 {
                0 => ("aws.ecr_repository", serde_json::json!({"name": format!("repo-{i}"), "tags": {"team": "platform"}})),
                1 => ("aws.lb_listener", serde_json::json!({"port": 80 + (i % 7), "protocol": "HTTP"})),
                2 => ("aws.ecs_service", serde_json::json!({"name": format!("svc-{i}"), "desired_count": 2,
                        "rollout": {"strategy": "canary", "steps": [10, 25, 100]}})),
                _ => ("aws.iam_role", serde_json::json!({"name": format!("role-{i}")})),
            };
            serde_json::json!({
                "address": format!("m{}.r{i}", i / 10),
                "kind": kind,
                "action": if i % 3 == 0 { "update" } else { "create" },
                "before": null,
                "after": after,
                "changed": ["tags"],
                "replace_because": [],
                "cost": {"before_monthly": 0.0, "after_monthly": (i % 50) as f64, "currency": "USD"},
            })
        })
        .collect();
    serde_json::json!({
        "format_version": 1, "environment": "prod", "serial": 7, "files_hash": "x",
        "changes": changes,
        "summary": {"add": resources, "change": 0, "replace": 0, "destroy": 0, "forget": 0, "moved": 0},
        "cost": {"before_monthly": 0.0, "after_monthly": 25000.0, "difference": 25000.0, "currency": "USD", "unpriced": []},
        "actor": "ci:bench", "commit": "abc", "operation": "plan",
    })
}

fn policies() -> Vec<PolicyFile> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<PolicyFile> = ["ci_only_prod", "canary", "ingress", "cost"]
        .iter()
        .map(|name| PolicyFile {
            shown: format!("policies/{name}.rego"),
            text: std::fs::read_to_string(dir.join(format!("{name}.rego"))).unwrap(),
        })
        .collect();
    for n in 0..6 {
        files.push(PolicyFile {
            shown: format!("policies/extra_{n}.rego"),
            text: format!(
                r#"package main
import rego.v1

deny_untagged_{n} contains {{"msg": "untagged repository", "address": c.address}} if {{
    some c in input.changes
    c.kind == "aws.ecr_repository"
    not c.after.tags.owner_{n}
    c.action == "replace"
}}

warn_{n} contains msg if {{
    some c in input.changes
    c.kind == "aws.iam_role"
    endswith(c.after.name, "-admin-{n}")
    msg := sprintf("%s looks like an admin role", [c.address])
}}
"#
            ),
        });
    }
    files
}

fn main() {
    let files = policies();
    let doc = input(1000);
    let started = Instant::now();
    let loaded = Policies::load(&files, &[], "main").expect("the policies load");
    let load_time = started.elapsed();
    let mut times: Vec<Duration> = Vec::new();
    let mut denials = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let verdict = loaded.evaluate(&doc).expect("the policies evaluate");
        times.push(started.elapsed());
        denials = verdict.denials.len() + verdict.warnings.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "policy: {} policies, 1000 resources: load {:.1} ms, evaluate median {:.1} ms (min {:.1}, max {:.1}) over 20 runs; {} messages (target: at most 100 ms)",
        files.len(),
        load_time.as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        denials
    );
}
