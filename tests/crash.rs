//! Crash safety on both state backends: applies of a 30-resource environment killed with
//! SIGKILL at several points, and interrupted with Ctrl-C; after each, the next plan lists
//! exactly what is missing and the next apply converges with nothing duplicated or lost.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{Backend, Moto, Project, Run, count_fleet, full_fleet, write_fleet};

/// Services in the fleet: 2 + 2 × 14 = 30 resources.
const SERVICES: usize = 14;

/// Starts `converge apply` and returns it with a channel of its stderr lines.
fn start_apply(project: &Project, vars: &[String]) -> (Child, mpsc::Receiver<String>) {
    let mut args: Vec<&str> = vec!["-e", "fleet", "--parallelism", "3"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(["apply", "--auto-approve"]);
    let mut child = project
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start converge apply");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits until `done` steps reported completion (lines ending in "done (N.Ns)").
fn wait_for_done(rx: &mpsc::Receiver<String>, done: usize) {
    let mut seen = 0;
    while seen < done {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("apply stopped reporting progress");
        if line.contains(" done (") {
            seen += 1;
        }
    }
}

/// Addresses with the given action in a JSON plan.
fn planned(plan: &serde_json::Value, action: &str) -> BTreeSet<String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == action)
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect()
}

async fn sigkill_at_several_points(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto).with_backend(&backend);
    write_fleet(&project, "fleet", SERVICES);
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["-e", "fleet"];
        args.extend(vars.iter().map(String::as_str));
        args.extend(extra);
        project.converge(&args)
    };
    let first = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(planned(&first, "create").len(), 30);

    // Kill right after the first step completes, then deeper into the apply each time.
    let mut left_in_flight = 0;
    for kill_after in [1, 6, 11] {
        let (mut child, rx) = start_apply(&project, &vars);
        wait_for_done(&rx, kill_after);
        child.kill().expect("SIGKILL converge");
        child.wait().unwrap();

        let live = count_fleet(&moto, "fleet").await;
        assert!(live.service_names_unique, "duplicate service: {live:?}");
        let listed = run(&["state", "list", "--format", "json"]).expect(0).json();
        left_in_flight += listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "applied")
            .count();
        let plan = run(&["plan", "--format", "json"]).expect(0).json();
        let creates = planned(&plan, "create");
        assert!(
            planned(&plan, "delete").is_empty() && planned(&plan, "replace").is_empty(),
            "after a kill the plan only adds or finishes: {plan}"
        );
        // Exactly what is missing in the cloud is planned as a create.
        let missing_repos = SERVICES - live.repositories;
        let missing_services = SERVICES - live.services;
        let creates_of = |suffix: &str| creates.iter().filter(|a| a.ends_with(suffix)).count();
        assert_eq!(
            creates_of(".repo"),
            missing_repos,
            "{creates:?} vs {live:?}"
        );
        assert_eq!(
            creates_of(".service"),
            missing_services,
            "{creates:?} vs {live:?}"
        );
        assert_eq!(creates.contains("cluster"), live.clusters == 0);
        assert_eq!(creates.contains("execution_role"), live.roles == 0);
    }

    assert!(
        left_in_flight > 0,
        "the kills should have caught operations in flight (parallelism 3)"
    );

    // The killed holder's lock is reported as stale, naming why.
    let lock = run(&["lock", "status"]).expect(0);
    assert!(
        lock.stdout()
            .contains("fleet is locked by tester (apply, pid")
            && lock.stdout().contains("It looks stale"),
        "{}",
        lock.stdout()
    );

    // The next apply converges: the stale lock of the killed process is taken over.
    let apply = run(&["apply", "--auto-approve"]).expect(0);
    assert!(
        apply.stderr().contains("took over a stale lock"),
        "{}",
        apply.stderr()
    );
    run(&["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(count_fleet(&moto, "fleet").await, full_fleet(SERVICES));
    let listed = run(&["state", "list", "--format", "json"]).expect(0).json();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 30, "{listed}");
    assert!(
        rows.iter().all(|r| r["status"] == "applied"),
        "every row settled: {listed}"
    );
    run(&["audit", "verify"]).expect(0);
}

async fn ctrl_c_finishes_in_flight_steps(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto).with_backend(&backend);
    write_fleet(&project, "fleet", SERVICES);
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["-e", "fleet"];
        args.extend(vars.iter().map(String::as_str));
        args.extend(extra);
        project.converge(&args)
    };
    let (child, rx) = start_apply(&project, &vars);
    wait_for_done(&rx, 4);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    let interrupted = Run::from_output(output, &["apply"]).expect(130);
    assert!(
        interrupted.stdout().contains("Interrupted:"),
        "{}",
        interrupted.stdout()
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("Interrupted: starting nothing new")),
        "{rest:?}"
    );

    // The lock is released and every step that ran is settled in state.
    let lock = run(&["lock", "status"]).expect(0);
    assert!(lock.stdout().contains("not locked"), "{}", lock.stdout());
    let listed = run(&["state", "list", "--format", "json"]).expect(0).json();
    let rows = listed.as_array().unwrap();
    assert!(
        rows.iter().all(|r| r["status"] == "applied"),
        "Ctrl-C waits for operations in flight: {listed}"
    );
    let live = count_fleet(&moto, "fleet").await;
    assert_eq!(
        rows.len(),
        live.repositories + live.services + live.clusters + live.roles,
        "state holds exactly what exists: {listed} vs {live:?}"
    );
    assert!(rows.len() < 30, "the interrupt stopped the apply early");
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(planned(&plan, "create").len(), 30 - rows.len());
    run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(count_fleet(&moto, "fleet").await, full_fleet(SERVICES));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_apply_loses_nothing_with_sqlite_state() {
    sigkill_at_several_points(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_apply_loses_nothing_with_postgres_state() {
    sigkill_at_several_points(Backend::postgres()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_in_flight_steps_then_exits_130_with_sqlite_state() {
    ctrl_c_finishes_in_flight_steps(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_in_flight_steps_then_exits_130_with_postgres_state() {
    ctrl_c_finishes_in_flight_steps(Backend::postgres()).await;
}
