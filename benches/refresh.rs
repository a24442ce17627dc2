//! Refresh benchmark (not a timed test): N ECR repositories and N ECS services in moto, then a
//! no-change `converge plan` timed and its cloud API calls counted (converge counts them and
//! prints them under `-v`), next to a naive one-call-per-resource read of the same resources
//! with the same SDK and the same parallelism, in the same run.
//!
//! Run with `bench/refresh.sh` (or `cargo bench --bench refresh -- 100 500`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use futures::{StreamExt, stream};
use support::{Moto, Project};

/// Reads in flight at once, for converge (its default) and for the naive read.
const PARALLELISM: usize = 10;

fn environment(n: usize) -> String {
    let mut yaml = String::from(
        "environment: bench
providers:
  aws: { region: us-east-1 }
variables:
  subnet_a: subnet-00000000000000001
  subnet_b: subnet-00000000000000002
  security_group: sg-00000000000000001
  vpc_id: vpc-00000000000000001
resources:
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
    for i in 0..n {
        yaml.push_str(&format!(
            "  repo{i:04}:
    type: aws.ecr_repository
    properties: {{ name: bench-{i:04}, image_tag_mutability: IMMUTABLE }}
  service{i:04}:
    type: aws.ecs_service
    properties:
      name: bench-{i:04}
      cluster: \"${{cluster.arn}}\"
      desired_count: 1
      task:
        family: bench-{i:04}
        cpu: 256
        memory: 512
        execution_role_arn: \"${{role.arn}}\"
        containers:
          - {{ name: app, image: \"${{repo{i:04}.uri}}:v1\", memory: 512 }}
      network:
        subnets: [\"${{var.subnet_a}}\", \"${{var.subnet_b}}\"]
        security_groups: [\"${{var.security_group}}\"]
      tags: {{ team: bench, index: \"{i}\" }}
"
        ));
    }
    yaml
}

/// The figures of the `refresh:` line converge logs under -v: (calls, seconds).
fn refresh_line(stderr: &str) -> (u64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("refresh:") && l.contains("cloud API calls"))
        .unwrap_or_else(|| panic!("no refresh line under -v:\n{stderr}"));
    let calls = line
        .split("cloud API calls: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let secs = line
        .split(" resources in ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    (calls, secs)
}

async fn naive_read(moto: &Moto, n: usize) -> (usize, f64) {
    let sdk = moto.sdk().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let started = Instant::now();
    let repos = stream::iter(0..n)
        .map(|i| {
            let ecr = ecr.clone();
            async move {
                ecr.describe_repositories()
                    .repository_names(format!("bench-{i:04}"))
                    .send()
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(PARALLELISM)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let services = stream::iter(0..n)
        .map(|i| {
            let ecs = ecs.clone();
            async move {
                ecs.describe_services()
                    .cluster("bench")
                    .services(format!("bench-{i:04}"))
                    .include(aws_sdk_ecs::types::ServiceField::Tags)
                    .send()
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(PARALLELISM)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    assert_eq!(repos + services, 2 * n, "the naive read found everything");
    (2 * n, started.elapsed().as_secs_f64())
}

fn main() {
    // Test runners list targets with `--list`: this benchmark has no tests to list.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 500]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "{:>5} {:>9} | {:>12} {:>9} {:>9} {:>10} | {:>12} {:>9} {:>10}",
        "N",
        "resources",
        "converge",
        "calls",
        "per res.",
        "refresh s",
        "naive",
        "calls",
        "per res."
    );
    for n in sizes {
        let moto = Moto::start();
        let vars = moto.network();
        let project = Project::empty().with_moto(&moto);
        project.write("environments/bench.yaml", &environment(n));
        let with_vars = |extra: &[&str]| {
            let mut args: Vec<&str> = vec!["-e", "bench"];
            args.extend(vars.iter().map(String::as_str));
            args.extend(extra);
            project.converge(&args)
        };
        let started = Instant::now();
        with_vars(&["apply", "--auto-approve", "--parallelism", "32"]).expect(0);
        eprintln!(
            "N={n}: created {} resources in {:.1}s",
            2 * n + 2,
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let plan = with_vars(&["plan", "--detailed-exitcode", "-v"]).expect(0);
        let plan_secs = started.elapsed().as_secs_f64();
        let (calls, refresh_secs) = refresh_line(&plan.stderr());
        let resources = 2 * n + 2;
        let (naive_calls, naive_secs) = runtime.block_on(naive_read(&moto, n));
        println!(
            "{n:>5} {resources:>9} | {:>11.2}s {calls:>9} {:>9.3} {refresh_secs:>10.2} | {:>11.2}s {naive_calls:>9} {:>10.3}",
            plan_secs,
            calls as f64 / resources as f64,
            naive_secs,
            naive_calls as f64 / (2 * n) as f64,
        );
    }
    println!(
        "converge: wall time of a whole no-change `converge plan` (process, files, state, refresh, diff); \
         refresh s: its cloud reads alone. naive: one DescribeRepositories / DescribeServices per \
         resource, {PARALLELISM} in flight, same SDK, same moto."
    );
}
