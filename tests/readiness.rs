//! Rolling deploys that prove what they deployed, against moto behind the ECS simulator
//! (`scripts/ecs_sim.py` answers DescribeServices' deployments as ECS would): success only when
//! the new deployment is COMPLETED and still PRIMARY; FAILED, the circuit breaker's rollback and
//! a deployment that never completes each exit 1 with the service back on the old revision;
//! `on_timeout: leave`, `wait: false`, and a rolling block added to a live service in place.

mod support;

use serde_json::json;
use support::{Moto, Project, Run};

/// Everything a run printed (progress and rollout events go to stderr).
fn said(run: &Run) -> String {
    format!("{}{}", run.stdout(), run.stderr())
}

struct Rolling {
    moto: Moto,
    vars: Vec<String>,
    project: Project,
    ecs: aws_sdk_ecs::Client,
}

const FILE: &str = r#"environment: rl
providers:
  aws: { region: us-east-1 }
variables:
  image_tag: v1
  subnet_a: subnet-1
  subnet_b: subnet-2
  security_group: sg-1
  vpc_id: vpc-1
resources:
  cluster:
    type: aws.ecs_cluster
    properties: { name: rl }
  api:
    type: aws.ecs_service
    properties:
      name: rl-api
      cluster: "${cluster.arn}"
      desired_count: 2
      task:
        family: rl-api
        cpu: 256
        memory: 512
        containers:
          - { name: app, image: "nginx:${var.image_tag}", port: 8000, memory: 512 }
      network:
        subnets: ["${var.subnet_a}", "${var.subnet_b}"]
        security_groups: ["${var.security_group}"]
ROLLOUT"#;

impl Rolling {
    /// A cluster and a rolling service on `nginx:v1`, applied (its first deploy followed to
    /// COMPLETED); `rollout` is the service's rollout block (or "").
    async fn new(rollout: &str) -> Rolling {
        let moto = Moto::start();
        let vars = moto.network();
        let project = Project::empty().with_moto(&moto);
        project.write("environments/rl.yaml", &FILE.replace("ROLLOUT", rollout));
        let sdk = moto.sdk().await;
        let r = Rolling {
            ecs: aws_sdk_ecs::Client::new(&sdk),
            moto,
            vars,
            project,
        };
        let first = r.apply("v1").expect(0);
        if !rollout.contains("wait: false") {
            assert!(
                said(&first).contains("rollout ready: ECS deployment"),
                "the first deploy is followed too: {}",
                said(&first)
            );
        }
        r
    }

    fn run(&self, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["-e", "rl"];
        args.extend(self.vars.iter().map(String::as_str));
        args.extend(extra);
        self.project.converge(&args)
    }

    fn apply(&self, tag: &str) -> Run {
        let var = format!("image_tag={tag}");
        self.run(&["--var", &var, "apply", "--auto-approve"])
    }

    fn plan_code(&self, tag: &str) -> Run {
        let var = format!("image_tag={tag}");
        self.run(&["--var", &var, "plan", "--detailed-exitcode"])
    }

    /// The service's task definition revision (`rl-api:N`) and its deployments' states.
    async fn service(&self) -> (String, Vec<(String, String)>) {
        let s = self
            .ecs
            .describe_services()
            .cluster("rl")
            .services("rl-api")
            .send()
            .await
            .unwrap()
            .services
            .unwrap()
            .remove(0);
        let short = |td: &str| td.rsplit('/').next().unwrap_or(td).to_string();
        (
            short(s.task_definition.as_deref().unwrap_or("")),
            s.deployments
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    (
                        short(d.task_definition.as_deref().unwrap_or("")),
                        d.rollout_state
                            .as_ref()
                            .map(|r| r.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        )
    }

    fn audit(&self) -> Vec<(String, String)> {
        let log = self
            .run(&["audit", "log", "--format", "json"])
            .expect(0)
            .json();
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap_or("").to_string(),
                    e["detail"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

const TIMEOUTS: &str =
    "      rollout: { strategy: rolling, ready_timeout: 4s, interval: 500ms, bake: 1s }";

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_deploy_succeeds_only_once_ecs_says_completed() {
    let r = Rolling::new(TIMEOUTS).await;
    // The new deployment takes 2 s to complete: apply waits for it.
    r.moto
        .simulate(json!({ "rules": [{ "image": ":v2", "after": 2 }] }));
    let started = std::time::Instant::now();
    let run = r.apply("v2").expect(0);
    assert!(
        started.elapsed().as_secs_f64() >= 2.0,
        "apply returned before ECS completed the deployment"
    );
    assert!(
        said(&run).contains("rollout ready: ECS deployment ecs-svc/"),
        "{}",
        said(&run)
    );
    assert!(said(&run).contains("COMPLETED: 2 of 2 tasks of rl-api:2 running"));
    let (td, deployments) = r.service().await;
    assert_eq!(td, "rl-api:2");
    assert_eq!(
        deployments,
        [("rl-api:2".to_string(), "COMPLETED".to_string())]
    );
    let audit = r.audit();
    assert!(audit.iter().any(|(a, _)| a == "rollout ready"), "{audit:?}");
    // Nothing left to do.
    let plan = r.plan_code("v2");
    assert_eq!(plan.code(), 0, "{}", plan.stdout());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deployment_exits_1_naming_ecs_reason_and_the_old_revision_serves_again() {
    let r = Rolling::new(TIMEOUTS).await;
    r.moto.simulate(json!({ "rules": [{
        "image": ":v2", "after": 1, "deployment": "fail",
        "reason": "ECS deployment circuit breaker: tasks failed to start (CannotPullContainerError)."
    }] }));
    let run = r.apply("v2").expect(1);
    assert!(
        run.stderr().contains("FAILED: ECS deployment circuit breaker: tasks failed to start (CannotPullContainerError)."),
        "{}",
        run.stderr()
    );
    let (td, deployments) = r.service().await;
    assert_eq!(
        td, "rl-api:1",
        "converge updated the service back: {deployments:?}"
    );
    assert_eq!(
        deployments[0],
        ("rl-api:1".to_string(), "COMPLETED".to_string())
    );
    let audit = r.audit();
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "rollback" && d.contains("runs rl-api:1 again")),
        "{audit:?}"
    );
    // The files still say v2: the next plan proposes it again (nothing was silently adopted).
    let plan = r.plan_code("v2");
    assert_eq!(plan.code(), 2, "{}", plan.stdout());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_circuit_breaker_rollback_exits_1_naming_the_revision_ecs_went_back_to() {
    let r = Rolling::new(TIMEOUTS).await;
    r.moto
        .simulate(json!({ "rules": [{ "image": ":v2", "after": 1, "deployment": "rollback" }] }));
    let run = r.apply("v2").expect(1);
    assert!(
        run.stderr().contains("ECS went back to rl-api:1")
            || run.stderr().contains("with one of rl-api:1"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("tasks failed to start"),
        "{}",
        run.stderr()
    );
    let (td, deployments) = r.service().await;
    assert_eq!(td, "rl-api:1");
    assert_eq!(deployments[0].1, "COMPLETED", "{deployments:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_that_never_completes_is_rolled_back_at_ready_timeout() {
    let r = Rolling::new(TIMEOUTS).await;
    r.moto
        .simulate(json!({ "rules": [{ "image": ":v2", "deployment": "never" }] }));
    let started = std::time::Instant::now();
    let run = r.apply("v2").expect(1);
    let took = started.elapsed().as_secs_f64();
    assert!(
        run.stderr()
            .contains("not ready after ready_timeout 4s: ECS deployment ecs-svc/"),
        "{}",
        run.stderr()
    );
    assert!(
        (4.0..30.0).contains(&took),
        "gave up at the deadline, not before: {took:.1}s"
    );
    assert_eq!(r.service().await.0, "rl-api:1");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_timeout_leave_exits_1_and_leaves_ecs_deploying() {
    let r = Rolling::new(
        "      rollout: { strategy: rolling, ready_timeout: 2s, interval: 500ms, bake: 1s, on_timeout: leave }",
    )
    .await;
    r.moto
        .simulate(json!({ "rules": [{ "image": ":v2", "deployment": "never" }] }));
    let run = r.apply("v2").expect(1);
    assert!(run.stderr().contains("left deploying"), "{}", run.stderr());
    let (td, deployments) = r.service().await;
    assert_eq!(td, "rl-api:2", "left as ECS has it: {deployments:?}");
    assert_eq!(deployments[0].1, "IN_PROGRESS");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_false_is_fire_and_forget() {
    let r = Rolling::new("      rollout: { strategy: rolling, wait: false }").await;
    r.moto
        .simulate(json!({ "rules": [{ "image": ":v2", "deployment": "never" }] }));
    let run = r.apply("v2").expect(0);
    assert!(!said(&run).contains("rollout ready"), "{}", said(&run));
    let (td, deployments) = r.service().await;
    assert_eq!(td, "rl-api:2");
    assert_eq!(deployments[0].1, "IN_PROGRESS", "converge did not wait");
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_rolling_block_to_a_live_service_is_one_in_place_update_then_none() {
    let r = Rolling::new("").await;
    let text = r.project.read("environments/rl.yaml");
    r.project.write(
        "environments/rl.yaml",
        &format!("{}\n{TIMEOUTS}\n", text.trim_end()),
    );
    let plan = r.run(&["plan", "--format", "json"]).expect(0).json();
    let changes: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("api".to_string(), "update".to_string())],
        "{plan}"
    );
    let before = r.service().await;
    r.apply("v1").expect(0);
    assert_eq!(r.service().await, before, "no ECS call changed the service");
    let again = r.plan_code("v1");
    assert_eq!(again.code(), 0, "{}", again.stdout());
}

const HOOKED: &str = "      rollout: { strategy: rolling, ready_timeout: 4s, interval: 500ms, bake: 1s, hooks: { pre_traffic: [{ run: [alembic, upgrade, head], timeout: 5s }], on_rollback: [{ run: [alembic, downgrade, '-1'] }] } }";

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_traffic_hook_runs_before_update_service_and_its_failure_rolls_back() {
    let r = Rolling::new(HOOKED).await;
    // The first deploy ran the migration as a one-off task of the new revision.
    assert!(r.audit().iter().any(|(a, d)| a == "hook ok" && d.contains("pre_traffic hook 1 (alembic upgrade head)")));
    r.moto
        .simulate(json!({ "rules": [{ "command": "alembic upgrade", "exit_code": 1 }] }));
    let run = r.apply("v2").expect(1);
    assert!(
        said(&run).contains("pre_traffic hook 1 failed: task arn:aws:ecs:")
            && said(&run)
                .contains("stopped with exit code 1 (app): Essential container in task exited"),
        "{}",
        said(&run)
    );
    let (td, deployments) = r.service().await;
    assert_eq!(
        (td.as_str(), deployments.len()),
        ("rl-api:1", 1),
        "UpdateService was never called: {deployments:?}"
    );
    let audit = r.audit();
    assert!(audit.iter().any(|(a, _)| a == "hook failed"), "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "hook ok" && d.contains("on_rollback hook 1 (alembic downgrade -1)")),
        "the on_rollback hook ran: {audit:?}"
    );
    // The hook exits 0 now: the same revision deploys.
    r.moto.simulate(json!({}));
    r.apply("v2").expect(0);
    assert_eq!(
        r.service().await.0,
        "rl-api:3",
        "a new revision of v2 is registered and deployed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_that_never_stops_is_stopped_at_its_timeout_and_rolls_back() {
    let r = Rolling::new(HOOKED).await;
    r.moto
        .simulate(json!({ "rules": [{ "command": "alembic upgrade", "task": "never" }] }));
    let run = r.apply("v2").expect(1);
    assert!(
        said(&run).contains("timed out after 5s; its task arn:aws:ecs:"),
        "{}",
        said(&run)
    );
    assert_eq!(r.service().await.0, "rl-api:1");
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_every_revision_with_images_actor_and_outcome() {
    let r = Rolling::new(TIMEOUTS).await;
    r.apply("v2").expect(0);
    r.moto
        .simulate(json!({ "rules": [{ "image": ":v3", "deployment": "fail", "reason": "boom" }] }));
    r.apply("v3").expect(1);
    let h = r
        .run(&["rollout", "history", "api", "--format", "json"])
        .expect(0)
        .json();
    let rows: Vec<(String, String, String, String)> = h["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["revision"].as_str().unwrap().to_string(),
                v["images"][0].as_str().unwrap_or("").to_string(),
                v["outcome"].as_str().unwrap().to_string(),
                v["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |rev: &str, image: &str, outcome: &str| {
        (
            rev.to_string(),
            image.to_string(),
            outcome.to_string(),
            "tester".to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row("rl-api:1", "nginx:v1", "succeeded"),
            row("rl-api:2", "nginx:v2", "succeeded"),
            row("rl-api:3", "nginx:v3", "rolled_back"),
        ],
        "{h}"
    );
    let text = r.run(&["rollout", "history", "api"]).expect(0);
    assert!(
        text.stdout().contains("rl-api:3") && text.stdout().contains("rolled_back"),
        "{}",
        text.stdout()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_deploy_that_fails_says_there_is_nothing_to_go_back_to() {
    let moto = Moto::start();
    let vars = moto.network();
    moto.simulate(json!({ "rules": [{ "image": ":v1", "deployment": "fail", "reason": "tasks failed to start" }] }));
    let project = Project::empty().with_moto(&moto);
    project.write("environments/rl.yaml", &FILE.replace("ROLLOUT", TIMEOUTS));
    let mut args: Vec<&str> = vec!["-e", "rl"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(["apply", "--auto-approve"]);
    let run = project.converge(&args).expect(1);
    assert!(
        said(&run).contains("FAILED: tasks failed to start; it was the service's first revision, so there is none to go back to"),
        "{}",
        said(&run)
    );
    assert!(
        !said(&run).contains("traffic restored to the old revision"),
        "{}",
        said(&run)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_hook_shows_the_last_lines_of_its_log_stream_with_secrets_masked() {
    let r = Rolling::new(HOOKED).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&r.moto.sdk().await);
    logs.create_log_group()
        .log_group_name("/ecs/rl-api")
        .send()
        .await
        .unwrap();
    r.project.edit(
        "environments/rl.yaml",
        "port: 8000, memory: 512 }",
        "port: 8000, memory: 512, environment: { DB_PASSWORD: \"${var.db_password}\" }, log: { group: /ecs/rl-api, stream_prefix: ecs } }",
    );
    r.project.edit(
        "environments/rl.yaml",
        "variables:\n",
        "variables:\n  db_password: { default: \"pw-Zq81\", sensitive: true }\n",
    );
    // The task runs 8 s (the hook may take 20 s): time enough to write its log on a loaded machine.
    r.project
        .edit("environments/rl.yaml", "timeout: 5s", "timeout: 20s");
    r.moto.simulate(
        json!({ "rules": [{ "command": "alembic upgrade", "exit_code": 3, "after": 8 }] }),
    );
    let before: Vec<String> = r.moto.sim_state()["tasks"]
        .as_object()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    let child = r
        .project
        .command(&{
            let mut a: Vec<&str> = vec!["-e", "rl"];
            a.extend(r.vars.iter().map(String::as_str));
            a.extend(["--var", "image_tag=v2", "apply", "--auto-approve"]);
            a
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The migration's task writes to its awslogs stream while it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let task = loop {
        let state = r.moto.sim_state();
        let running = state["tasks"].as_object().and_then(|tasks| {
            tasks
                .iter()
                .find(|(arn, t)| !before.contains(arn) && t.to_string().contains("upgrade"))
                .map(|(arn, _)| arn.clone())
        });
        if let Some(arn) = running {
            break arn;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no hook task: {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let stream = format!("ecs/app/{}", task.rsplit('/').next().unwrap());
    logs.create_log_stream()
        .log_group_name("/ecs/rl-api")
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let lines = [
        "INFO  [alembic] Running upgrade a1 -> b2",
        "connecting with password pw-Zq81",
        "ERROR relation \"users\" already exists",
    ];
    for (i, line) in lines.iter().enumerate() {
        logs.put_log_events()
            .log_group_name("/ecs/rl-api")
            .log_stream_name(&stream)
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now + i as i64)
                    .message(*line)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let run = Run::from_output(child.wait_with_output().unwrap(), &["apply"]).expect(1);
    let text = said(&run);
    assert!(
        text.contains("last 3 log lines of /ecs/rl-api:ecs/app/")
            && text.contains("ERROR relation \"users\" already exists"),
        "{text}"
    );
    assert!(!text.contains("pw-Zq81"), "the secret is masked: {text}");
    assert!(
        text.contains("connecting with password (sensitive)"),
        "{text}"
    );
    let audit = r.audit();
    assert!(
        audit.iter().any(|(a, d)| a == "hook failed"
            && d.contains("already exists")
            && !d.contains("pw-Zq81")),
        "{audit:?}"
    );
    assert_eq!(r.service().await.0, "rl-api:1", "never deployed");
}
