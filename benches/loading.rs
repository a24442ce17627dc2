//! Loading benchmark (not a timed test): `validate` (load, resolve, type-check) and a
//! no-change plan (desired against state and live state equal to it, no cloud) of the benchmark
//! environment — ECR repositories plus instances of the example's `web-service` module (a
//! repository and an ECS service each) — at two sizes, with the ratio of their times: loading
//! should grow linearly (10x the resources at most 12x the time).
//!
//! Each size is measured in three fresh processes (the median is printed), as a user's
//! `converge validate` or `plan` runs: a warm process reusing the memory of a smaller run
//! would flatter the small size.
//!
//! Run with `cargo bench --bench loading` (sizes in resources: `-- 1000 10000`, the default).

use std::path::Path;
use std::time::{Duration, Instant};

use converge::config::{self, VarOverrides};
use converge::model::{Live, LiveMap, ResourceState, ResourceStatus, Value};
use converge::plan;

/// An environment of about `resources` resources: a cluster and a role, then per step one
/// plain ECR repository and one `web-service` instance (three resources a step).
fn environment(resources: usize) -> String {
    let steps = resources.saturating_sub(2) / 3;
    let mut yaml = String::from(
        "environment: bench
providers:
  aws: { region: us-east-1 }
variables:
  image_tag: v1.0.0
  subnet_a: subnet-00000000000000001
  security_group: sg-00000000000000001
modules:
",
    );
    for i in 0..steps {
        yaml.push_str(&format!(
            "  svc{i:05}:
    source: web-service
    inputs:
      name: bench-svc{i:05}
      image_tag: \"${{var.image_tag}}\"
      cluster_arn: \"${{cluster.arn}}\"
      execution_role_arn: \"${{role.arn}}\"
      subnets: [\"${{var.subnet_a}}\"]
      security_groups: [\"${{var.security_group}}\"]
"
        ));
    }
    yaml.push_str(
        "resources:
  cluster:
    type: aws.ecs_cluster
    properties: { name: bench }
  role:
    type: aws.iam_role
    properties:
      name: bench-execution
      assume_role_policy:
        Version: \"2012-10-17\"
        Statement:
          - { Effect: Allow, Principal: { Service: ecs-tasks.amazonaws.com }, Action: \"sts:AssumeRole\" }
",
    );
    for i in 0..steps {
        yaml.push_str(&format!(
            "  repo{i:05}:
    type: aws.ecr_repository
    properties: {{ name: bench-repo-{i:05}, image_tag_mutability: IMMUTABLE, tags: {{ team: bench }} }}
"
        ));
    }
    yaml
}

/// State and live state equal to what the files ask for: the plan has nothing to do.
fn applied(created: &plan::Plan) -> (Vec<ResourceState>, LiveMap) {
    let mut state = Vec::new();
    let mut live = LiveMap::new();
    for change in &created.changes {
        let after = change.after.clone().unwrap_or_default();
        let outputs: Value = Value::from_json(&serde_json::json!({
            "arn": format!("arn:aws:bench:{}", change.address),
            "uri": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{}", change.address),
        }));
        state.push(ResourceState {
            address: change.address.clone(),
            kind: change.kind.clone(),
            remote_id: change.address.to_string(),
            properties: after.clone(),
            outputs: outputs.clone(),
            dependencies: Vec::new(),
            status: ResourceStatus::Applied,
        });
        live.insert(
            change.address.clone(),
            Some(Live {
                properties: after,
                outputs,
            }),
        );
    }
    (state, live)
}

/// Validate and a no-change plan of `n` resources, each timed once, in this process: what a
/// user's `converge validate` and `converge plan` pay (a cold process, its memory fresh).
fn measure_once(n: usize) -> (usize, Duration, Duration) {
    let root = tempfile::tempdir().unwrap();
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/web-service");
    std::fs::create_dir_all(root.path().join("modules/web-service")).unwrap();
    std::fs::copy(
        modules.join("module.yaml"),
        root.path().join("modules/web-service/module.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("environments")).unwrap();
    std::fs::write(root.path().join("environments/bench.yaml"), environment(n)).unwrap();
    let overrides = VarOverrides::default();
    let started = Instant::now();
    let env = config::load(root.path(), "bench", &overrides).expect("the bench environment loads");
    let validate = started.elapsed();
    let options = plan::PlanOptions::default();
    // Applied once, then again with the outputs (references resolved): nothing left.
    let first = plan::compute(&env, &[], &LiveMap::new(), 0, &options);
    let (state, live) = applied(&first);
    let second = plan::compute(&env, &state, &live, 1, &options);
    let (state, live) = applied(&second);
    drop((first, second));
    let started = Instant::now();
    let check = plan::compute(&env, &state, &live, 1, &options);
    let no_change = started.elapsed();
    assert!(
        !check.has_changes(),
        "the no-change plan has changes: {:?}",
        check
            .changes
            .iter()
            .find(|c| c.action.is_change())
            .map(|c| &c.address)
    );
    (env.resources.len(), validate, no_change)
}

/// The median of three fresh processes measuring `n` resources.
fn measure(n: usize) -> (usize, Duration, Duration) {
    let mut runs: Vec<(usize, Duration, Duration)> = (0..3)
        .map(|_| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--one", &n.to_string()])
                .output()
                .expect("run the bench once");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<f64> = text
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (
                f[0] as usize,
                Duration::from_secs_f64(f[1]),
                Duration::from_secs_f64(f[2]),
            )
        })
        .collect();
    let count = runs[0].0;
    runs.sort_by_key(|r| r.1);
    let validate = runs[1].1;
    runs.sort_by_key(|r| r.2);
    (count, validate, runs[1].2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = args.as_slice()
        && flag == "--one"
    {
        let (count, validate, no_change) = measure_once(n.parse().expect("a size"));
        println!(
            "{count} {} {}",
            validate.as_secs_f64(),
            no_change.as_secs_f64()
        );
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let mut figures = Vec::new();
    for &n in &sizes {
        let (count, validate, no_change) = measure(n);
        println!(
            "{count:>6} resources: validate {:>8.1} ms, no-change plan {:>8.1} ms",
            validate.as_secs_f64() * 1e3,
            no_change.as_secs_f64() * 1e3
        );
        figures.push((count, validate, no_change));
    }
    if let [(n0, v0, p0), .., (n1, v1, p1)] = figures.as_slice() {
        println!(
            "{}x the resources: validate {:.1}x the time, no-change plan {:.1}x (median of 3 fresh processes each)",
            n1 / n0.max(&1),
            v1.as_secs_f64() / v0.as_secs_f64(),
            p1.as_secs_f64() / p0.as_secs_f64()
        );
    }
}
