//! Rollouts end to end against moto: canary and blue/green success with the listener weights
//! watched through the AWS SDK while they move, automatic rollback on each gate kind, the cost
//! gate, kill -9 then `rollout resume`, and promote/abort from a second process.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{Moto, Project, Run, TestHttp};

/// A project with an ALB, two target groups, a listener and one service under a rollout.
struct Fixture {
    moto: Moto,
    vars: Vec<String>,
    project: Project,
    http: TestHttp,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Fixture {
    async fn new(rollout: &str) -> Fixture {
        Fixture::build(rollout, false).await
    }

    /// With `ecr`, the service runs `${repo.uri}:TAG` from an ECR repository the files create.
    async fn build(rollout: &str, ecr: bool) -> Fixture {
        let moto = Moto::start();
        let vars = moto.network();
        let http = TestHttp::start();
        let project = Project::empty().with_moto(&moto);
        let rollout = rollout
            .replace("HEALTH_URL", &format!("{}/health", http.base))
            .replace("HOOK_URL", &format!("{}/hook", http.base));
        project.write(
            "environments/ro.yaml",
            &format!(
                r#"environment: ro
providers:
  aws: {{ region: us-east-1 }}
variables:
  image_tag: v1
  cpu: 256
  memory: 512
  subnet_a: subnet-1
  subnet_b: subnet-2
  security_group: sg-1
  vpc_id: vpc-1
resources:
  cluster:
    type: aws.ecs_cluster
    properties: {{ name: ro }}
  role:
    type: aws.iam_role
    properties:
      name: ro-execution
      assume_role_policy:
        Version: "2012-10-17"
        Statement:
          - {{ Effect: Allow, Principal: {{ Service: ecs-tasks.amazonaws.com }}, Action: "sts:AssumeRole" }}
  alb:
    type: aws.lb
    properties:
      name: ro-alb
      subnets: ["${{var.subnet_a}}", "${{var.subnet_b}}"]
      security_groups: ["${{var.security_group}}"]
  blue:
    type: aws.lb_target_group
    properties: {{ name: ro-blue, port: 8000, vpc_id: "${{var.vpc_id}}", health_check_path: /health }}
  green:
    type: aws.lb_target_group
    properties: {{ name: ro-green, port: 8000, vpc_id: "${{var.vpc_id}}", health_check_path: /health }}
  listener:
    type: aws.lb_listener
    properties:
      load_balancer_arn: "${{alb.arn}}"
      port: 80
      target_group_arns: ["${{blue.arn}}", "${{green.arn}}"]
  test_listener:
    type: aws.lb_listener
    properties:
      load_balancer_arn: "${{alb.arn}}"
      port: 8080
      target_group_arns: ["${{blue.arn}}", "${{green.arn}}"]
  api:
    type: aws.ecs_service
    properties:
      name: ro-api
      cluster: "${{cluster.arn}}"
      desired_count: 2
      task:
        family: ro-api
        cpu: "${{var.cpu}}"
        memory: "${{var.memory}}"
        execution_role_arn: "${{role.arn}}"
        containers:
          - {{ name: app, image: "nginx:${{var.image_tag}}", port: 8000, memory: "${{var.memory}}" }}
      network:
        subnets: ["${{var.subnet_a}}", "${{var.subnet_b}}"]
        security_groups: ["${{var.security_group}}"]
      load_balancer: {{ container: app, port: 8000 }}
      rollout:
{rollout}
"#
            ),
        );
        if ecr {
            project.edit(
                "environments/ro.yaml",
                "image: \"nginx:${var.image_tag}\"",
                "image: \"${repo.uri}:${var.image_tag}\"",
            );
            project.edit(
                "environments/ro.yaml",
                "resources:\n",
                "resources:\n  repo:\n    type: aws.ecr_repository\n    properties: { name: ro-api }\n",
            );
        }
        let sdk = moto.sdk().await;
        let fixture = Fixture {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            moto,
            vars,
            project,
            http,
        };
        fixture.run(&["apply", "--auto-approve"]).expect(0);
        fixture
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args: Vec<&str> = vec!["-e", "ro"];
        args.extend(self.vars.iter().map(String::as_str));
        args.extend(extra);
        args
    }

    fn run(&self, extra: &[&str]) -> Run {
        self.project.converge(&self.args(extra))
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        self.project
            .command(&self.args(extra))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start converge")
    }

    /// The ALB's listener on `port`.
    async fn listener_on(&self, port: i32) -> String {
        let lbs = self
            .elb
            .describe_load_balancers()
            .names("ro-alb")
            .send()
            .await
            .unwrap();
        let lb = lbs.load_balancers.unwrap()[0]
            .load_balancer_arn
            .clone()
            .unwrap();
        let l = self
            .elb
            .describe_listeners()
            .load_balancer_arn(lb)
            .send()
            .await
            .unwrap();
        l.listeners
            .unwrap()
            .into_iter()
            .find(|l| l.port == Some(port))
            .unwrap()
            .listener_arn
            .unwrap()
    }

    /// (blue, green) weights of the listener.
    async fn weights(&self) -> (i32, i32) {
        self.weights_on(80).await
    }

    /// (blue, green) weights of the listener on `port`.
    async fn weights_on(&self, port: i32) -> (i32, i32) {
        let listener = self.listener_on(port).await;
        let l = self
            .elb
            .describe_listeners()
            .listener_arns(listener)
            .send()
            .await
            .unwrap();
        let action = &l.listeners.unwrap()[0].default_actions.clone().unwrap()[0];
        let groups = action
            .forward_config
            .clone()
            .unwrap()
            .target_groups
            .unwrap();
        let weight = |name: &str| {
            groups
                .iter()
                .find(|g| {
                    g.target_group_arn
                        .as_deref()
                        .unwrap_or("")
                        .contains(&format!("/{name}/"))
                })
                .and_then(|g| g.weight)
                .unwrap_or(0)
        };
        (weight("ro-blue"), weight("ro-green"))
    }

    /// (status, task definition) of each task set of the service.
    async fn task_sets(&self) -> Vec<(String, String)> {
        let out = self
            .ecs
            .describe_services()
            .cluster("ro")
            .services("ro-api")
            .send()
            .await
            .unwrap();
        let service = out.services.unwrap().into_iter().next().unwrap();
        service
            .task_sets
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                (
                    t.status.unwrap_or_default(),
                    t.task_definition.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Watches the weights until `child` exits; returns them without consecutive repeats.
    async fn watch(&self, child: &mut Child) -> Vec<(i32, i32)> {
        let mut seen: Vec<(i32, i32)> = Vec::new();
        loop {
            let done = child.try_wait().unwrap().is_some();
            let w = self.weights().await;
            if seen.last() != Some(&w) {
                seen.push(w);
            }
            if done {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    fn status(&self) -> serde_json::Value {
        let s = self
            .run(&["rollout", "status", "api", "--format", "json"])
            .expect(0)
            .json();
        s["rollouts"][0].clone()
    }

    fn audit_actions(&self) -> Vec<String> {
        let log = self
            .run(&["audit", "log", "--format", "json"])
            .expect(0)
            .json();
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

fn finish(child: Child) -> Run {
    Run::from_output(child.wait_with_output().unwrap(), &["apply"])
}

const CANARY: &str = r#"        strategy: canary
        steps: [10, 50, 100]
        bake: 1s
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          http: { url: "HEALTH_URL", failures: 3, timeout: 1s }
        notify: { webhook: "HOOK_URL" }"#;

#[tokio::test(flavor = "multi_thread")]
async fn canary_moves_weights_step_by_step_then_makes_the_new_revision_primary() {
    let f = Fixture::new(CANARY).await;
    assert_eq!(
        f.weights().await,
        (100, 0),
        "the first revision starts at 100%"
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].0, "PRIMARY");

    let plan = f.run(&["--var", "image_tag=v2", "plan"]).expect(0);
    assert!(
        plan.stdout()
            .contains("~ rollout canary 10% → 50% → 100%, bake 1s"),
        "{}",
        plan.stdout()
    );
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let seen = f.watch(&mut child).await;
    let run = finish(child).expect(0);
    assert_eq!(
        seen,
        vec![(100, 0), (90, 10), (50, 50), (0, 100)],
        "{}",
        run.stderr()
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "the old task set is gone: {sets:?}");
    assert_eq!(sets[0].0, "PRIMARY");
    assert!(sets[0].1.ends_with(":2"), "{sets:?}");
    assert_eq!(f.status()["status"], "succeeded");
    f.run(&["--var", "image_tag=v2", "plan", "--detailed-exitcode"])
        .expect(0);
    let actions = f.audit_actions();
    assert_eq!(actions.iter().filter(|a| *a == "rollout step").count(), 3);
    assert!(actions.contains(&"rollout complete".to_string()));
    let hooks = f.http.hooks();
    assert!(
        hooks
            .iter()
            .any(|h| h["event"] == "rollout complete"
                && h["text"].as_str().unwrap().contains("ro api")),
        "{hooks:?}"
    );

    // Destroy takes the service with its task sets, then the listener, groups and ALB.
    f.run(&["--var", "image_tag=v2", "destroy", "--auto-approve"])
        .expect(0);
    let active = f
        .ecs
        .describe_services()
        .cluster("ro")
        .services("ro-api")
        .send()
        .await
        .ok()
        .and_then(|o| o.services)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.status.as_deref() == Some("ACTIVE"))
        .count();
    assert_eq!(active, 0);
    assert!(
        f.elb
            .describe_load_balancers()
            .names("ro-alb")
            .send()
            .await
            .is_err()
    );
    assert!(
        f.elb
            .describe_target_groups()
            .names("ro-blue")
            .send()
            .await
            .is_err()
    );
}

const CANARY_WITH_DEADLINE: &str = r#"        strategy: canary
        steps: [10, 50, 100]
        bake: 1s
        interval: 200ms
        ready_timeout: 3s
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          http: { url: "HEALTH_URL", failures: 3, timeout: 1s }"#;

/// Runs v2 to a rollback on readiness: weights never leave (100, 0), the new task set is gone.
async fn expect_not_ready(f: &Fixture, expected: &str) {
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let seen = f.watch(&mut child).await;
    let run = finish(child).expect(1);
    assert_eq!(seen, vec![(100, 0)], "no traffic moved: {}", run.stderr());
    assert!(
        run.stderr().contains("not ready after ready_timeout 3s")
            && run.stderr().contains(expected),
        "{}",
        run.stderr()
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "the new task set is removed: {sets:?}");
    assert!(sets[0].1.ends_with(":1"), "{sets:?}");
    assert_eq!(f.status()["status"], "rolled_back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_moves_no_traffic_while_its_task_set_is_not_steady() {
    let f = Fixture::new(CANARY_WITH_DEADLINE).await;
    f.moto
        .simulate(serde_json::json!({ "rules": [{ "image": ":v2", "task_set": "never" }] }));
    expect_not_ready(&f, "new task set STABILIZING: 0 of 2 tasks running").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_moves_no_traffic_while_a_target_of_the_new_revision_is_unhealthy() {
    let f = Fixture::new(CANARY_WITH_DEADLINE).await;
    f.moto
        .simulate(serde_json::json!({ "rules": [{ "image": ":v2", "targets": "unhealthy" }] }));
    expect_not_ready(&f, "0 of 2 registered targets healthy in targetgroup/ro-").await;
    // A steady task set with no targets registered at all is not ready either.
    f.moto
        .simulate(serde_json::json!({ "rules": [{ "image": ":v2", "targets": "none" }] }));
    expect_not_ready(&f, "0 of 0 registered targets healthy").await;
    // Once ECS says steady and the targets are healthy, the same revision goes through.
    f.moto
        .simulate(serde_json::json!({ "rules": [{ "image": ":v2", "after": 1 }] }));
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let seen = f.watch(&mut child).await;
    let run = finish(child).expect(0);
    assert_eq!(
        seen,
        vec![(100, 0), (90, 10), (50, 50), (0, 100)],
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains(
            "rollout ready: new task set steady: 2 of 2 tasks running; 2 targets healthy"
        ),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn blue_green_switches_at_once_and_keeps_the_old_revision_for_termination_wait() {
    let f = Fixture::new(
        r#"        strategy: blue_green
        bake: 1s
        interval: 200ms
        termination_wait: 3s
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          http: { url: "HEALTH_URL" }"#,
    )
    .await;
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let mut seen: Vec<(i32, i32)> = Vec::new();
    let mut switched_at: Option<Instant> = None;
    let mut old_gone_at: Option<Instant> = None;
    loop {
        let done = child.try_wait().unwrap().is_some();
        let w = f.weights().await;
        if seen.last() != Some(&w) {
            seen.push(w);
        }
        if w == (0, 100) && switched_at.is_none() {
            switched_at = Some(Instant::now());
            assert_eq!(
                f.task_sets().await.len(),
                2,
                "the old task set stays after the switch"
            );
        }
        if switched_at.is_some() && old_gone_at.is_none() && f.task_sets().await.len() == 1 {
            old_gone_at = Some(Instant::now());
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    finish(child).expect(0);
    assert_eq!(seen, vec![(100, 0), (0, 100)], "nothing in between");
    let kept = old_gone_at.unwrap() - switched_at.unwrap();
    assert!(
        kept >= Duration::from_millis(2500),
        "old task set kept {kept:?}, termination_wait is 3s"
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1);
    assert!(sets[0].1.ends_with(":2"));
}

/// Applies v2 expecting a rollback; checks traffic, task sets, status and audit; returns the
/// reason recorded.
async fn expect_rollback(f: &Fixture, expected: &str) -> String {
    let run = f
        .run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(1);
    assert!(run.stderr().contains(expected), "{}", run.stderr());
    assert_eq!(
        f.weights().await,
        (100, 0),
        "all traffic back on the old revision"
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "the new task set is removed: {sets:?}");
    assert_eq!(sets[0].0, "PRIMARY");
    assert!(
        sets[0].1.ends_with(":1"),
        "the old revision is primary: {sets:?}"
    );
    let status = f.status();
    assert_eq!(status["status"], "rolled_back");
    let reason = status["reason"].as_str().unwrap().to_string();
    assert!(reason.contains(expected), "{reason}");
    let seconds = status["rollback_seconds"].as_f64().unwrap();
    println!("gate failed → traffic restored in {seconds:.3}s ({expected})");
    assert!(seconds < 5.0);
    let log = f
        .run(&["audit", "log", "--format", "json"])
        .expect(0)
        .json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rollback"
                && e["detail"].as_str().unwrap_or("").contains(expected)),
        "the reason is in the audit trail"
    );
    reason
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_http_probe_rolls_back_after_exactly_the_configured_failures() {
    let f = Fixture::new(CANARY).await;
    f.http.set_status(500);
    let before = f.http.probes();
    let reason = expect_rollback(&f, "health.http: 3 consecutive failures, last: 500 from").await;
    assert_eq!(
        f.http.probes() - before,
        3,
        "rolled back at the 3rd failure, not before or after: {reason}"
    );
}

const ALARM_CANARY: &str = r#"        strategy: canary
        steps: [25, 100]
        bake: 4s
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          alarms: [ro-5xx]"#;

impl Fixture {
    async fn alarm(&self, state: aws_sdk_cloudwatch::types::StateValue) {
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name("ro-5xx")
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(5.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
        self.cloudwatch
            .set_alarm_state()
            .alarm_name("ro-5xx")
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_that_goes_into_alarm_after_traffic_moved_rolls_back() {
    let f = Fixture::new(ALARM_CANARY).await;
    f.alarm(aws_sdk_cloudwatch::types::StateValue::Ok).await;
    let child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.weights().await != (75, 25) {
        assert!(Instant::now() < deadline, "the canary never reached 25%");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f.alarm(aws_sdk_cloudwatch::types::StateValue::Alarm).await;
    let run = finish(child).expect(1);
    assert!(
        run.stderr()
            .contains("health.alarms: alarm ro-5xx is in ALARM"),
        "{}",
        run.stderr()
    );
    assert_eq!(f.weights().await, (100, 0));
    assert_eq!(f.status()["status"], "rolled_back");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_already_in_alarm_refuses_the_rollout_before_traffic_moves() {
    let f = Fixture::new(ALARM_CANARY).await;
    f.alarm(aws_sdk_cloudwatch::types::StateValue::Alarm).await;
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let seen = f.watch(&mut child).await;
    let run = finish(child).expect(1);
    assert_eq!(seen, vec![(100, 0)], "no traffic moved");
    assert!(
        run.stderr().contains(
            "rollout refused by the alarm check before any traffic moved: alarm ro-5xx is already in ALARM"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(f.task_sets().await.len(), 1, "no new task set was started");
    assert!(f.audit_actions().contains(&"rollout refused".to_string()));
}

const ERROR_RATE_CANARY: &str = r#"        strategy: canary
        steps: [20, 100]
        bake: BAKE
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          metrics:
            - { name: error_rate, max: 0.05, for: 3m, no_data: wait }"#;

impl Fixture {
    /// Puts 30 errors in 100 requests on the green group (where v2 lands) at `at`.
    async fn green_errors(&self, at: std::time::SystemTime) {
        let tgs = self
            .elb
            .describe_target_groups()
            .names("ro-green")
            .send()
            .await
            .unwrap();
        let green = tgs.target_groups.unwrap()[0]
            .target_group_arn
            .clone()
            .unwrap();
        let lbs = self
            .elb
            .describe_load_balancers()
            .names("ro-alb")
            .send()
            .await
            .unwrap();
        let lb = lbs.load_balancers.unwrap()[0]
            .load_balancer_arn
            .clone()
            .unwrap();
        let suffix =
            |arn: &str, marker: &str| arn.split_once(marker).map(|(_, s)| s.to_string()).unwrap();
        let dims = [
            ("LoadBalancer", suffix(&lb, ":loadbalancer/")),
            (
                "TargetGroup",
                format!("targetgroup/{}", suffix(&green, ":targetgroup/")),
            ),
        ];
        for (metric, value) in [("HTTPCode_Target_5XX_Count", 30.0), ("RequestCount", 100.0)] {
            let mut datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name(metric)
                .value(value)
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(at));
            for (k, v) in &dims {
                datum = datum.dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name(*k)
                        .value(v)
                        .build(),
                );
            }
            self.cloudwatch
                .put_metric_data()
                .namespace("AWS/ApplicationELB")
                .metric_data(datum.build())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_a_previous_revision_left_on_the_group_do_not_judge_the_new_one() {
    // A failed revision left 30% errors on the green group a moment ago; v2 lands on green.
    let f = Fixture::new(&ERROR_RATE_CANARY.replace("BAKE", "2s")).await;
    f.green_errors(std::time::SystemTime::now()).await;
    let run = f
        .run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(0);
    let status = f.status();
    assert_eq!(status["status"], "succeeded", "{}", run.stderr());
    let gates = status["gates"].as_array().unwrap();
    assert!(
        gates.iter().any(|g| g["outcome"] == "no_data"
            && g["detail"]
                .as_str()
                .unwrap_or("")
                .contains("the first whole minute after the new revision took traffic")),
        "{gates:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_rate_above_max_after_traffic_moved_rolls_back() {
    let f = Fixture::new(&ERROR_RATE_CANARY.replace("BAKE", "90s")).await;
    let child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.weights().await != (80, 20) {
        assert!(Instant::now() < deadline, "the canary never reached 20%");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Metrics count from the first whole minute after the weight change: errors inside it.
    let moved = chrono::Utc::now();
    let boundary = moved.timestamp() - moved.timestamp().rem_euclid(60) + 60;
    let inside = std::time::UNIX_EPOCH + Duration::from_secs(boundary as u64 + 1);
    while std::time::SystemTime::now() < inside + Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f.green_errors(inside).await;
    let run = finish(child).expect(1);
    assert!(
        run.stderr()
            .contains("health.metrics.error_rate: error rate 30.0%"),
        "{}",
        run.stderr()
    );
    assert_eq!(f.weights().await, (100, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_test_listener_reaches_only_the_new_revision_during_a_canary() {
    let f = Fixture::new(
        r#"        strategy: canary
        steps: [10, 50, 100]
        bake: 5s
        interval: 300ms
        traffic: { listener_arn: "${listener.arn}", test_listener_arn: "${test_listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          http: { url: "HEALTH_URL", failures: 4, timeout: 1s }"#,
    )
    .await;
    assert_eq!(f.weights_on(8080).await, (100, 0));
    // The endpoint behind the test listener fails: only the new revision answers there.
    f.http.set_status(503);
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        let w = (f.weights().await, f.weights_on(8080).await);
        if seen.last() != Some(&w) {
            seen.push(w);
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let run = finish(child).expect(1);
    assert!(
        run.stderr()
            .contains("health.http: 4 consecutive failures, last: 503"),
        "{}",
        run.stderr()
    );
    // (The two listeners are read one after the other, so a sample can straddle a change; four
    // failures 300 ms apart keep the test listener on the new group for about a second, long
    // enough to be sampled on a loaded machine.)
    assert!(
        seen.iter().any(|(_, test)| *test == (0, 100)),
        "during the rollout the test listener forwards to the new group only: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, test)| *test == (0, 100) || *test == (100, 0)),
        "the test listener never splits traffic between the revisions: {seen:?}"
    );
    assert_eq!(
        (f.weights().await, f.weights_on(8080).await),
        ((100, 0), (100, 0)),
        "both listeners back on the old revision"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_post_traffic_hook_rolls_back_after_100_percent() {
    let f = Fixture::new(
        r#"        strategy: canary
        steps: [50, 100]
        bake: 1s
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        hooks:
          post_traffic: [{ run: ["./smoke.sh"], container: app, timeout: 30s }]"#,
    )
    .await;
    f.moto.simulate(
        serde_json::json!({ "rules": [{ "command": "smoke.sh", "exit_code": 3, "after": 1 }] }),
    );
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let seen = f.watch(&mut child).await;
    let run = finish(child).expect(1);
    assert_eq!(
        seen,
        vec![(100, 0), (50, 50), (0, 100), (100, 0)],
        "the hook ran at 100%, then traffic went back: {}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("post_traffic hook 1 failed: task arn:aws:ecs:")
            && run.stderr().contains("stopped with exit code 3 (app)"),
        "{}",
        run.stderr()
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert!(
        sets[0].1.ends_with(":1"),
        "the old revision was never removed: {sets:?}"
    );
}

#[test]
fn a_canary_http_gate_without_a_test_listener_is_warned_about() {
    let p = Project::empty();
    p.write(
        "environments/w.yaml",
        r#"environment: w
providers:
  aws: { region: us-east-1 }
resources:
  api:
    type: aws.ecs_service
    properties:
      name: w-api
      cluster: w
      task:
        family: w-api
        cpu: 256
        memory: 512
        containers: [{ name: app, image: "nginx:1" }]
      network: { subnets: [subnet-1] }
      rollout:
        strategy: canary
        traffic: { listener_arn: arn:l, target_groups: [arn:a, arn:b] }
        health:
          http: { url: "https://api.example.com/health" }
"#,
    );
    let run = p.converge(&["validate"]).expect(0);
    assert!(
        run.stderr()
            .contains("warning: environments/w.yaml:20:17: ")
            && run.stderr().contains(
                "api: at a 10% step nine probes in ten of health.http reach the old revision"
            )
            && run.stderr().contains("add `traffic.test_listener_arn`"),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cost_gate_refuses_a_revision_that_quadruples_cpu_and_memory() {
    let f = Fixture::new(
        r#"        strategy: canary
        steps: [50, 100]
        bake: 1s
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        cost: { max_run_rate_increase: 50% }"#,
    )
    .await;
    let run = f
        .run(&[
            "--var",
            "cpu=1024",
            "--var",
            "memory=2048",
            "apply",
            "--auto-approve",
        ])
        .expect(1);
    assert!(
        run.stderr()
            .contains("rollout refused by the cost gate before any traffic moved"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("/month → $"),
        "both run rates are named: {}",
        run.stderr()
    );
    assert_eq!(f.weights().await, (100, 0));
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1);
    assert!(sets[0].1.ends_with(":1"));
    let families = f
        .ecs
        .list_task_definitions()
        .family_prefix("ro-api")
        .send()
        .await
        .unwrap();
    assert_eq!(
        families.task_definition_arns.unwrap().len(),
        1,
        "no revision was even registered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_bake_then_resume_continues_from_that_step() {
    let f = Fixture::new(
        r#"        strategy: canary
        steps: [10, 50, 100]
        bake: 2s
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }"#,
    )
    .await;
    let mut child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.weights().await != (50, 50) {
        assert!(Instant::now() < deadline, "never reached 50%");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let status = f.status();
    assert_eq!(status["status"], "running");
    assert_eq!(status["step"], 1, "stopped at the second step: {status}");
    let text = f.run(&["rollout", "status"]).expect(0);
    assert!(
        text.stdout().contains("step 2 of 3 (50% new / 50% old)"),
        "{}",
        text.stdout()
    );

    let mut resume = f.spawn(&["--var", "image_tag=v2", "rollout", "resume", "api"]);
    let seen = f.watch(&mut resume).await;
    let run = finish(resume).expect(0);
    assert!(
        run.stderr().contains("resuming the rollout at step 2 of 3"),
        "{}",
        run.stderr()
    );
    assert_eq!(seen, vec![(50, 50), (0, 100)], "never back to 0% or 10%");
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "one primary, nothing left over: {sets:?}");
    assert!(sets[0].1.ends_with(":2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_and_abort_from_a_second_process_during_a_long_bake() {
    let f = Fixture::new(
        r#"        strategy: canary
        steps: [10, 50, 100]
        bake: 10m
        interval: 200ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }"#,
    )
    .await;
    let wait_for = |w: (i32, i32)| {
        let f = &f;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while f.weights().await != w {
                assert!(Instant::now() < deadline, "never reached {w:?}");
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    };
    let started = Instant::now();
    let child = f.spawn(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    wait_for((90, 10)).await;
    f.run(&["rollout", "promote", "api"]).expect(0);
    wait_for((50, 50)).await;
    f.run(&["rollout", "promote", "api", "--full"]).expect(0);
    finish(child).expect(0);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a 10m bake was promoted through"
    );
    assert_eq!(f.weights().await, (0, 100));

    // v2 is on green now, so v3 goes to blue.
    let child = f.spawn(&["--var", "image_tag=v3", "apply", "--auto-approve"]);
    wait_for((10, 90)).await;
    f.run(&["rollout", "abort", "api"]).expect(0);
    let run = finish(child).expect(1);
    assert!(run.stderr().contains("rollout aborted"), "{}", run.stderr());
    assert_eq!(
        f.weights().await,
        (0, 100),
        "v2's group has all traffic again"
    );
    assert_eq!(f.status()["status"], "aborted");
    let actions = f.audit_actions();
    for a in [
        "rollout promote requested",
        "rollout promote_full requested",
        "rollout abort requested",
        "rollout promote",
        "rollback",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
}

/// One day of Cost Explorer results: `api` at `usd`, some untagged cost, `Estimated` as given.
fn ce_day(day: chrono::NaiveDate, usd: f64, estimated: bool) -> serde_json::Value {
    let group = |key: &str, amount: f64| serde_json::json!({"Keys": [key], "Metrics": {"UnblendedCost": {"Amount": format!("{amount:.10}"), "Unit": "USD"}}});
    serde_json::json!({
        "TimePeriod": {"Start": day.to_string(), "End": (day + chrono::Duration::days(1)).to_string()},
        "Total": {},
        "Groups": [group("converge:address$api", usd), group("converge:address$", 0.42)],
        "Estimated": estimated,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_watch_names_the_rollout_and_commit_behind_a_spike() {
    let f = Fixture::new(
        r#"        strategy: canary
        steps: [50, 100]
        bake: 300ms
        interval: 100ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
        health:
          http: { url: "HEALTH_URL" }
        cost: { anomaly: { lookback: 7d, threshold: 60% } }"#,
    )
    .await;
    let file = f.project.read("environments/ro.yaml");
    f.project.write(
        "environments/ro.yaml",
        &file.replacen(
            "\nresources:\n",
            &format!(
                "\nnotify: {{ webhook: \"{}/hook\" }}\nresources:\n",
                f.http.base
            ),
            1,
        ),
    );
    let args = f.args(&["--var", "image_tag=v2", "apply", "--auto-approve"]);
    let output = f
        .project
        .command(&args)
        .env("CONVERGE_ACTOR", "alice")
        .env("GITHUB_SHA", "abc1234def5678")
        .output()
        .unwrap();
    Run::from_output(output, &args).expect(0);

    // Three answers queued in moto, taken in order by three differently dated queries:
    // a flat week, a spike on the day of the rollout, a week with missing days.
    let today = chrono::Utc::now().date_naive();
    let days = |end: chrono::NaiveDate, n: i64| {
        (0..=n).rev().map(move |i| end - chrono::Duration::days(i))
    };
    let flat: Vec<_> = days(today - chrono::Duration::days(1), 7)
        .map(|d| ce_day(d, 19.80, false))
        .collect();
    let spike: Vec<_> = days(today, 7)
        .map(|d| ce_day(d, if d == today { 41.20 } else { 19.80 }, d == today))
        .collect();
    let gappy: Vec<_> = days(today - chrono::Duration::days(2), 7)
        .enumerate()
        .filter(|(i, _)| ![1, 2, 4].contains(i))
        .map(|(_, d)| ce_day(d, 19.80, false))
        .collect();
    let queued = reqwest::Client::new()
        .post(format!(
            "{}/moto-api/static/ce/cost-and-usage-results",
            f.moto.endpoint
        ))
        .json(&serde_json::json!({"results": [
            {"ResultsByTime": flat, "DimensionValueAttributes": []},
            {"ResultsByTime": spike, "DimensionValueAttributes": []},
            {"ResultsByTime": gappy, "DimensionValueAttributes": []},
        ]}))
        .send()
        .await
        .unwrap();
    assert!(queued.status().is_success());

    let yesterday = (today - chrono::Duration::days(1)).to_string();
    let calm = f.run(&["cost", "watch", "--day", &yesterday]).expect(0);
    assert!(
        calm.stdout().contains("No cost anomaly."),
        "{}",
        calm.stdout()
    );
    assert!(
        calm.stdout()
            .contains("api: $19.80/day vs $19.80/day baseline (+0%)"),
        "{}",
        calm.stdout()
    );

    let spike = f
        .run(&["cost", "watch", "--day", &today.to_string()])
        .expect(2);
    let line = format!(
        "api: $41.20/day vs $19.80/day baseline (+108%) since rollout of v2 by alice on {today}"
    );
    assert!(
        spike.stdout().contains(&line),
        "{line} in {}\n{}",
        spike.stdout(),
        f.run(&["audit", "log"]).stdout()
    );
    assert!(
        spike
            .stdout()
            .contains("(commit abc1234) [estimated: not final yet]"),
        "{}",
        spike.stdout()
    );
    assert!(
        spike.stdout().contains("1 cost anomaly."),
        "{}",
        spike.stdout()
    );
    let json = f
        .run(&[
            "cost",
            "watch",
            "--day",
            &today.to_string(),
            "--format",
            "json",
        ])
        .expect(2)
        .json();
    let api = &json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["address"] == "api")
        .unwrap()
        .clone();
    assert_eq!(
        api["rule"]["threshold_percent"], 60.0,
        "the service's own threshold"
    );
    assert_eq!(api["deployments"][0]["action"], "rollout complete");
    assert_eq!(api["deployments"][0]["revision"], "v2");
    assert_eq!(api["deployments"][0]["commit"], "abc1234def5678");
    assert_eq!(json["estimated"], true);
    let hooks: Vec<serde_json::Value> = f
        .http
        .hooks()
        .into_iter()
        .filter(|h| h["event"] == "cost anomaly")
        .collect();
    assert_eq!(hooks.len(), 2, "one per anomaly per run: {hooks:?}");
    assert_eq!(hooks[0]["address"], "api");
    let log = f
        .run(&["audit", "log", "--format", "json"])
        .expect(0)
        .json();
    let anomalies: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "cost anomaly")
        .collect();
    assert_eq!(anomalies.len(), 2);
    assert!(
        anomalies[0]["detail"]
            .as_str()
            .unwrap()
            .contains("since rollout of v2 by alice")
    );
    f.run(&["audit", "verify"]).expect(0);

    let gaps = f
        .run(&[
            "cost",
            "watch",
            "--day",
            &(today - chrono::Duration::days(2)).to_string(),
        ])
        .expect(0);
    let missing: Vec<String> = [8, 7, 5]
        .iter()
        .map(|back| (today - chrono::Duration::days(*back)).to_string())
        .collect();
    let note = format!(
        "No cost data for {}: those days are left out of baselines, not counted as $0.",
        missing.join(", ")
    );
    assert!(gaps.stdout().contains(&note), "{note} in {}", gaps.stdout());
}

/// A rollout of a task whose environment holds a secret: neither the value nor its plain
/// SHA-256 reaches the rollout record or the audit trail (the record's hash is taken over the
/// stored form, in which secrets are keyed digests).
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_record_holds_no_secret_or_plain_digest_of_one() {
    use sha2::Digest;
    let f = Fixture::new(CANARY).await;
    f.project.edit(
        "environments/ro.yaml",
        "variables:\n",
        "variables:\n  token: { default: \"s3cr3t-Vx\", sensitive: true }\n",
    );
    f.project.edit(
        "environments/ro.yaml",
        "port: 8000, memory: \"${var.memory}\" }",
        "port: 8000, memory: \"${var.memory}\", environment: { TOKEN: \"${var.token}\" } }",
    );
    f.run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(f.status()["status"], "succeeded", "the change rolled out");
    let plain = hex::encode(sha2::Sha256::digest(b"\"s3cr3t-Vx\""));
    let state = f.project.state_db("ro");
    let mut all = String::new();
    for entry in std::fs::read_dir(state.parent().unwrap()).unwrap() {
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    let status = f
        .run(&["rollout", "status", "--format", "json"])
        .expect(0)
        .stdout();
    let log = f
        .run(&["audit", "export", "--format", "jsonl"])
        .expect(0)
        .stdout();
    for (what, text) in [
        ("state and rollout records", &all),
        ("rollout status", &status),
        ("audit", &log),
    ] {
        assert!(!text.contains("s3cr3t-Vx"), "{what} holds the secret");
        assert!(!text.contains(&plain), "{what} holds its plain SHA-256");
    }
}

const PAUSED: &str = r#"        strategy: canary
        steps: [10, pause, 50, 100]
        bake: 300ms
        interval: 100ms
        pause_timeout: PAUSE_TIMEOUT
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_step_exits_3_and_promote_from_another_process_finishes_the_rollout() {
    let f = Fixture::new(&PAUSED.replace("PAUSE_TIMEOUT", "24h")).await;
    let plan = f.run(&["--var", "image_tag=v2", "plan"]).expect(0);
    assert!(
        plan.stdout().contains("canary 10% → pause → 50% → 100%"),
        "{}",
        plan.stdout()
    );
    let paused = f
        .run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(3);
    assert!(
        paused.stderr().contains("paused, waiting for promote"),
        "{}",
        paused.stderr()
    );
    assert_eq!(f.weights().await, (90, 10), "traffic holds at the step");
    let status = f.status();
    assert_eq!(status["status"], "paused", "{status}");
    assert!(status["pause_until"].is_string());
    // The lock was released: another command that takes it runs at once.
    let lock = f.run(&["lock", "status"]).expect(0);
    assert!(!lock.stdout().contains("held by"), "{}", lock.stdout());
    // The same apply again stays paused (it does not move traffic).
    f.run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(3);
    assert_eq!(f.weights().await, (90, 10));
    // A record the release before typed target parts left at this pause (version 2) is
    // continued the same way.
    support::records::rewrite_as_version_2(f.project.root(), "ro", "api").await;
    assert_eq!(f.status()["status"], "paused", "a version 2 record reads");

    let promoted = f
        .run(&["--var", "image_tag=v2", "rollout", "promote", "api"])
        .expect(0);
    assert!(
        promoted
            .stderr()
            .contains("is paused: continuing its rollout here"),
        "{}",
        promoted.stderr()
    );
    assert_eq!(f.weights().await, (0, 100));
    assert_eq!(f.status()["status"], "succeeded");
    let actions = f.audit_actions();
    for a in ["rollout paused", "rollout promote", "rollout complete"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_past_pause_timeout_is_rolled_back_by_the_next_scheduled_drift() {
    let f = Fixture::new(&PAUSED.replace("PAUSE_TIMEOUT", "1s")).await;
    f.run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(3);
    assert_eq!(f.weights().await, (90, 10));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let drift = f.run(&["drift"]);
    assert!(
        drift.stderr().contains("paused past its pause_timeout"),
        "{}",
        drift.stderr()
    );
    drift.expect(0);
    assert_eq!(f.weights().await, (100, 0), "all traffic back on v1");
    let status = f.status();
    assert_eq!(status["status"], "rolled_back");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("pause_timeout 1s"),
        "{status}"
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "the new task set is gone: {sets:?}");
    assert!(
        f.audit_actions()
            .contains(&"rollout pause expired".to_string())
    );
    // A promote that comes too late finds nothing to promote.
    f.run(&["rollout", "promote", "api"]).expect(1);
}

/// Pushes `tag` to the fixture's ECR repository (moto keeps the manifest, as ECR would).
async fn push(ecr: &aws_sdk_ecr::Client, tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": format!("sha256:{:0>64}", hex::encode(tag))},
        "layers": [],
    });
    ecr.put_image()
        .repository_name("ro-api")
        .image_tag(tag)
        .image_manifest(manifest.to_string())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_goes_back_through_the_canary_pins_the_service_and_redo_rolls_forward() {
    let f = Fixture::build(
        r#"        strategy: canary
        steps: [50, 100]
        bake: 200ms
        interval: 100ms
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }"#,
        true,
    )
    .await;
    let ecr = aws_sdk_ecr::Client::new(&f.moto.sdk().await);
    push(&ecr, "v1").await;
    push(&ecr, "v2").await;
    f.run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(0);
    assert_eq!(f.weights().await, (0, 100), "v2 on green");

    // An image that is gone is refused before anything moves.
    ecr.batch_delete_image()
        .repository_name("ro-api")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let refused = f.run(&["rollout", "undo", "api"]).expect(1);
    assert!(
        refused.stderr().contains("which no longer exists in ECR"),
        "{}",
        refused.stderr()
    );
    assert_eq!(f.weights().await, (0, 100));
    push(&ecr, "v1").await;

    let undone = f.run(&["rollout", "undo", "api"]).expect(0);
    assert!(
        undone.stdout().contains("undone to rev 1 by"),
        "{}",
        undone.stdout()
    );
    assert_eq!(
        f.weights().await,
        (100, 0),
        "rev 1 took all traffic back, on blue"
    );
    let sets = f.task_sets().await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert!(sets[0].1.ends_with(":1"), "rev 1 is primary: {sets:?}");
    let history = f
        .run(&["rollout", "history", "api", "--format", "json"])
        .expect(0)
        .json();
    let revs: Vec<&str> = history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_str().unwrap())
        .collect();
    assert_eq!(revs, ["ro-api:1", "ro-api:2", "ro-api:1"], "{history}");

    // The pin: plan says so, apply refuses the files' rev 2, drift does not call it drift.
    let plan = f
        .run(&["--var", "image_tag=v2", "plan", "--detailed-exitcode"])
        .expect(2);
    assert!(
        plan.stdout().contains("undone to rev 1 by")
            && plan.stdout().contains("the files still say rev 2"),
        "{}",
        plan.stdout()
    );
    let apply = f
        .run(&["--var", "image_tag=v2", "apply", "--auto-approve"])
        .expect(1);
    assert!(
        apply.stderr().contains("apply --redo"),
        "{}",
        apply.stderr()
    );
    assert_eq!(f.weights().await, (100, 0), "refused: nothing moved");
    let drift = f.run(&["--var", "image_tag=v2", "drift"]).expect(0);
    assert!(drift.stderr().contains("not drift"), "{}", drift.stderr());

    // --redo rolls the files' revision out again, and the pin is gone.
    f.run(&["--var", "image_tag=v2", "apply", "--auto-approve", "--redo"])
        .expect(0);
    assert_eq!(f.weights().await, (0, 100));
    f.run(&["--var", "image_tag=v2", "plan", "--detailed-exitcode"])
        .expect(0);
    assert!(f.audit_actions().contains(&"undo".to_string()));
}

/// The downgrade the resume tests use writes what the release before typed target parts wrote:
/// every record captured from it comes back field for field from today's form.
#[test]
fn version_2_records_written_back_match_the_captured_ones() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let captured: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let address = converge::model::Address::root(captured["address"].as_str().unwrap());
        let today = converge::rollout::Rollout::decode(&address, &captured).unwrap();
        let mut back = support::records::as_version_2(&serde_json::to_value(&today).unwrap());
        if captured.get("target").is_some() {
            // A host app's record also named the app in `service`, which nothing read.
            back["service"] = captured["service"].clone();
        }
        assert_eq!(back, captured, "{}", path.display());
        seen += 1;
    }
    assert_eq!(seen, 4, "every captured record checked");
}
