//! `converge state mv` (issue 25 §1) against moto, with SQLite and PostgreSQL state: the
//! resource's row moves under the write lock with no cloud call and an audited `move` event;
//! the next plan updates only its `converge:address` tag, in place; a move onto a taken
//! address, or of an address state does not hold, is refused and changes nothing.

mod support;

use support::{Backend, Moto, Project};

const ENV: &str = r#"environment: dev
providers:
  aws: { region: us-east-1 }
resources:
  KEY:
    type: aws.ecr_repository
    properties: { name: moved-repo }
  other:
    type: aws.ecr_repository
    properties: { name: other-repo }
"#;

#[test]
fn state_mv_moves_a_resource_without_a_cloud_call_with_sqlite_state() {
    state_mv(Backend::Sqlite);
}

#[test]
fn state_mv_moves_a_resource_without_a_cloud_call_with_postgres_state() {
    state_mv(Backend::postgres());
}

fn state_mv(backend: Backend) {
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto).with_backend(&backend);
    p.write("environments/dev.yaml", &ENV.replace("KEY", "repo"));
    let run = |args: &[&str]| {
        let mut a = vec!["-e", "dev"];
        a.extend(args);
        p.converge(&a)
    };
    run(&["apply", "--auto-approve"]).expect(0);

    // The file renames `repo` to `images`: without a move, a delete and a create.
    p.write("environments/dev.yaml", &ENV.replace("KEY", "images"));
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    let actions: Vec<(String, String)> = plan["changes"]
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
    assert!(
        actions.contains(&("repo".into(), "delete".into())),
        "{actions:?}"
    );

    // Refused: onto an address state holds, and of one it does not; nothing changes.
    let addresses = || {
        run(&["state", "list", "--format", "json"])
            .expect(0)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["address"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let taken = run(&["state", "mv", "repo", "other"]).expect(1);
    assert!(
        taken
            .stderr()
            .contains("other is already in the state of dev"),
        "{}",
        taken.stderr()
    );
    let missing = run(&["state", "mv", "nothing", "images"]).expect(1);
    assert!(
        missing
            .stderr()
            .contains("no resource nothing in the state of dev"),
        "{}",
        missing.stderr()
    );
    assert_eq!(addresses(), ["other", "repo"]);

    let moved = run(&["state", "mv", "repo", "images"]).expect(0);
    assert!(
        moved
            .stdout()
            .contains("Moved repo to images in the state of dev"),
        "{}",
        moved.stdout()
    );
    assert_eq!(addresses(), ["images", "other"]);

    // The next plan: only the address tag, in place.
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    let changes: Vec<&serde_json::Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["address"], "images");
    assert_eq!(changes[0]["action"], "update");
    assert_eq!(changes[0]["changed"], serde_json::json!(["tags"]));
    assert_eq!(changes[0]["after"]["tags"]["converge:address"], "images");
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // Audited, with both addresses; the trail still verifies.
    let log = run(&["audit", "log", "--format", "json"]).expect(0).json();
    let event = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "moved")
        .unwrap_or_else(|| panic!("no moved event in {log}"));
    assert_eq!(event["address"], "images");
    assert_eq!(event["before"]["address"], "repo");
    assert_eq!(event["after"]["address"], "images");
    run(&["audit", "verify"]).expect(0);
}
