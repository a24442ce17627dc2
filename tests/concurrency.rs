//! One writer per environment, on both state backends: eight applies started at once (fail
//! fast naming the holder, or queue with --lock-timeout), and saved plans refused once state
//! moved on.

mod support;

use std::process::Stdio;

use support::{Backend, Moto, Project, Run};

/// Starts 8 `converge apply` at once on the dev environment and waits for all of them.
fn eight_applies(project: &Project, vars: &[String], extra: &[&str]) -> Vec<Run> {
    let mut args: Vec<&str> = vec!["-e", "dev"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(extra);
    args.extend(["apply", "--auto-approve"]);
    let children: Vec<_> = (0..8)
        .map(|_| {
            project
                .command(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start converge apply")
        })
        .collect();
    children
        .into_iter()
        .map(|c| Run::from_output(c.wait_with_output().unwrap(), &args))
        .collect()
}

/// Counts ACTIVE services in the dev cluster, ECR repositories, and the IAM role, via the SDK.
async fn live_counts(moto: &Moto) -> (usize, usize, bool) {
    let sdk = moto.sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let arns = ecs
        .list_services()
        .cluster("dev")
        .send()
        .await
        .unwrap()
        .service_arns
        .unwrap_or_default();
    let services = ecs
        .describe_services()
        .cluster("dev")
        .set_services(Some(arns))
        .send()
        .await
        .unwrap()
        .services
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.status.as_deref() == Some("ACTIVE"))
        .count();
    let repos = ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories
        .unwrap_or_default()
        .len();
    let role = iam
        .get_role()
        .role_name("dev-ecs-execution")
        .send()
        .await
        .is_ok();
    (services, repos, role)
}

/// How many audit events of an action the environment recorded (as `audit log --format json`).
fn audit_count(project: &Project, vars: &[String], action: &str) -> usize {
    let mut args: Vec<&str> = vec!["-e", "dev"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(["audit", "log", "--format", "json"]);
    let log = project.converge(&args).expect(0).json();
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["outcome"] == "ok")
        .count()
}

async fn eight_at_once_one_runs(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto).with_backend(&backend);
    let runs = eight_applies(&project, &vars, &[]);
    let winners: Vec<&Run> = runs.iter().filter(|r| r.code() == 0).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one apply runs: {:?}",
        runs.iter()
            .map(|r| (r.code(), r.stderr()))
            .collect::<Vec<_>>()
    );
    for loser in runs.iter().filter(|r| r.code() != 0) {
        assert_eq!(loser.code(), 1, "{}", loser.stderr());
        assert!(
            loser
                .stderr()
                .contains("environment `dev` is locked by tester (apply, pid"),
            "a refused apply names the holder: {}",
            loser.stderr()
        );
        assert!(
            loser.stderr().contains("--lock-timeout"),
            "{}",
            loser.stderr()
        );
    }
    let mut args: Vec<&str> = vec!["-e", "dev"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(["plan", "--detailed-exitcode"]);
    project.converge(&args).expect(0);
    assert_eq!(live_counts(&moto).await, (2, 2, true));
    assert_eq!(audit_count(&project, &vars, "create"), 6);
}

async fn eight_at_once_queue_with_lock_timeout(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto).with_backend(&backend);
    let runs = eight_applies(&project, &vars, &["--lock-timeout", "2m"]);
    for r in &runs {
        assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    }
    let waited = runs
        .iter()
        .filter(|r| {
            r.stderr()
                .contains("waiting up to 2m for the lock on dev, held by tester")
        })
        .count();
    assert!(waited >= 1, "at least one apply queued behind another");
    let created = runs
        .iter()
        .filter(|r| r.stdout().contains("Apply complete: 6 done"))
        .count();
    assert_eq!(
        created, 1,
        "one apply created everything, the rest found nothing to do"
    );
    assert_eq!(live_counts(&moto).await, (2, 2, true));
    assert_eq!(audit_count(&project, &vars, "create"), 6);
}

async fn saved_plan_refused_after_state_changed(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto).with_backend(&backend);
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["-e", "dev"];
        args.extend(vars.iter().map(String::as_str));
        args.extend(extra);
        project.converge(&args)
    };
    let planfile = project.root().join("dev.plan");
    let planfile = planfile.to_str().unwrap();
    run(&["plan", "--out", planfile]).expect(0);
    // Someone else applies part of it first.
    run(&["apply", "--auto-approve", "--target", "cluster"]).expect(0);
    let refused = run(&["apply", planfile]).expect(1);
    assert!(
        refused
            .stderr()
            .contains("state changed since this plan was made (plan serial 0, state serial now 1)"),
        "{}",
        refused.stderr()
    );
    assert!(
        refused
            .stderr()
            .contains("run `converge plan --env dev --out FILE` again"),
        "{}",
        refused.stderr()
    );
    // Nothing beyond the targeted apply happened.
    assert_eq!(live_counts(&moto).await, (0, 0, false));
    // A fresh plan file applies.
    run(&["plan", "--out", planfile]).expect(0);
    run(&["apply", planfile]).expect(0);
    assert_eq!(live_counts(&moto).await, (2, 2, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_applies_at_once_one_runs_with_sqlite_state() {
    eight_at_once_one_runs(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_applies_at_once_one_runs_with_postgres_state() {
    eight_at_once_one_runs(Backend::postgres()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_applies_queue_with_lock_timeout_with_sqlite_state() {
    eight_at_once_queue_with_lock_timeout(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_applies_queue_with_lock_timeout_with_postgres_state() {
    eight_at_once_queue_with_lock_timeout(Backend::postgres()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_plan_refused_after_state_changed_with_sqlite_state() {
    saved_plan_refused_after_state_changed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_plan_refused_after_state_changed_with_postgres_state() {
    saved_plan_refused_after_state_changed(Backend::postgres()).await;
}
