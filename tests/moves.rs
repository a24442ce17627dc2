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

/// `removed: [{ from, destroy: false }]` (Terraform 1.7's `removed` block): a resource taken out
/// of the files is forgotten, not deleted: the plan says so, apply removes it from state with a
/// `forget` event, the repository stays in the cloud, and the entry is a no-op afterwards. An
/// entry naming a resource still declared is a located error.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_entry_forgets_a_resource_and_keeps_it_in_the_cloud() {
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto);
    p.write("environments/dev.yaml", &ENV.replace("KEY", "repo"));
    let run = |args: &[&str]| {
        let mut a = vec!["-e", "dev"];
        a.extend(args);
        p.converge(&a)
    };
    run(&["apply", "--auto-approve"]).expect(0);

    // Still declared: refused where `from` is written.
    p.write(
        "environments/dev.yaml",
        &format!(
            "{}removed:\n  - {{ from: other, destroy: false }}\n",
            ENV.replace("KEY", "repo")
        ),
    );
    let err = run(&["validate"]).expect(1).stderr();
    assert!(
        err.contains("environments/dev.yaml:12:")
            && err.contains("`other` is still declared in the files (at environments/dev.yaml:8:"),
        "{err}"
    );

    let without_other = ENV.replace("KEY", "repo");
    let without_other = &without_other[..without_other.find("  other:").unwrap()];
    p.write(
        "environments/dev.yaml",
        &format!("{without_other}removed:\n  - {{ from: other, destroy: false }}\n"),
    );
    let text = run(&["plan"]).expect(0).stdout();
    assert!(
        text.contains(
            ". other (aws.ecr_repository) will be removed from state (kept in the cloud)"
        ) && text.contains("Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 1 to forget."),
        "{text}"
    );
    let json = run(&["plan", "--format", "json"]).expect(0).json();
    let other = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "other")
        .unwrap()
        .clone();
    assert_eq!(other["action"], "forget");
    assert_eq!(json["summary"]["forget"], 1);
    assert_eq!(json["summary"]["destroy"], 0);

    run(&["apply", "--auto-approve"]).expect(0);
    let list = run(&["state", "list", "--format", "json"]).expect(0).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk().await);
    let kept = ecr
        .describe_repositories()
        .repository_names("other-repo")
        .send()
        .await;
    assert!(kept.is_ok(), "the repository is still there: {kept:?}");
    let log = run(&["audit", "log", "--format", "json"]).expect(0).json();
    let forget = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "forget")
        .unwrap_or_else(|| panic!("no forget event in {log}"));
    assert_eq!(forget["address"], "other");
    assert!(
        forget["detail"]
            .as_str()
            .unwrap()
            .contains("aws.ecr_repository other-repo still exists in the cloud"),
        "{forget}"
    );
    // Done: the entry names nothing state holds, and the plan is empty.
    run(&["plan", "--detailed-exitcode"]).expect(0);
}
