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
    let moved = p.audit_events("dev", "moved");
    let event = moved.first().expect("a moved event");
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
    let forgotten = p.audit_events("dev", "forget");
    let forget = forgotten.first().expect("a forget event");
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

const STORE_MODULE: &str = r#"inputs:
  name: { type: string }
resources:
  KEY:
    type: aws.ecr_repository
    properties: { name: "${input.name}" }
"#;

/// The changes of a JSON plan that do something (a move included), as (address, action,
/// moved_from).
fn shown(plan: &serde_json::Value) -> Vec<(String, String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op" || c.get("moved_from").is_some())
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["moved_from"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `moved: [{ from, to }]` (Terraform's moved blocks): a root resource moved into a module
/// instance, then the instance renamed (`module.A` → `module.B`, the old entry kept: a chain),
/// then a key renamed inside the module file. Each plan shows the move and only the address
/// tag's in-place update, never a delete and a create; apply moves the row with a `moved`
/// event and retags the repository; Terraform's errors are located at the entry.
#[tokio::test(flavor = "multi_thread")]
async fn moved_entries_carry_resources_to_new_addresses_without_replacing_them() {
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto);
    p.write("environments/dev.yaml", &ENV.replace("KEY", "repo"));
    p.write(
        "modules/store/module.yaml",
        &STORE_MODULE.replace("KEY", "repo"),
    );
    let run = |args: &[&str]| {
        let mut a = vec!["-e", "dev"];
        a.extend(args);
        p.converge(&a)
    };
    run(&["apply", "--auto-approve"]).expect(0);
    let head = "environment: dev\nproviders:\n  aws: { region: us-east-1 }\n";
    let other = "resources:\n  other:\n    type: aws.ecr_repository\n    properties: { name: other-repo }\n";
    let instance = |name: &str| {
        format!("modules:\n  {name}:\n    source: store\n    inputs: {{ name: moved-repo }}\n")
    };

    // Errors at validate, located at the entry: from == to, and a `from` still declared.
    p.write(
        "environments/dev.yaml",
        &format!("{head}{other}moved:\n  - {{ from: other, to: other }}\n"),
    );
    let err = run(&["validate"]).expect(1).stderr();
    assert!(
        err.contains("environments/dev.yaml:9:") && err.contains("to itself moves nothing"),
        "{err}"
    );
    p.write(
        "environments/dev.yaml",
        &format!("{head}{other}moved:\n  - {{ from: other, to: elsewhere }}\n"),
    );
    let err = run(&["validate"]).expect(1).stderr();
    assert!(
        err.contains("environments/dev.yaml:9:") && err.contains("`other` is still declared"),
        "{err}"
    );

    // 1. `repo` moves into the module instance `backend`.
    let moved = "moved:\n  - { from: repo, to: backend.repo }\n";
    p.write(
        "environments/dev.yaml",
        &format!("{head}{}{other}{moved}", instance("backend")),
    );
    let text = run(&["plan"]).expect(0).stdout();
    assert!(
        text.contains(
            "~ repo → backend.repo (moved) (aws.ecr_repository) will be updated in place"
        ) && text.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy, 1 to move."),
        "{text}"
    );
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(
        shown(&plan),
        [("backend.repo".into(), "update".into(), "repo".into())]
    );
    assert_eq!(plan["summary"]["moved"], 1);
    assert_eq!(plan["moved"][0]["from"], "repo");
    let md = run(&["plan", "--format", "markdown"]).expect(0).stdout();
    assert!(md.contains("update, moved from `repo`"), "{md}");
    let applied = run(&["apply", "--auto-approve"]).expect(0).stderr();
    assert!(applied.contains("Moved 1 resource in state"), "{applied}");
    run(&["plan", "--detailed-exitcode"]).expect(0);
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk().await);
    let tag = |arn: String| {
        let ecr = ecr.clone();
        async move {
            ecr.list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .unwrap()
                .tags()
                .iter()
                .find(|t| t.key() == "converge:address")
                .map(|t| t.value().to_string())
        }
    };
    let repo = ecr
        .describe_repositories()
        .repository_names("moved-repo")
        .send()
        .await
        .unwrap();
    let arn = repo.repositories()[0].repository_arn().unwrap().to_string();
    let created_at = repo.repositories()[0].created_at().cloned();
    assert_eq!(tag(arn.clone()).await.as_deref(), Some("backend.repo"));

    // 2. The instance is renamed; the old entry stays (repo → backend.repo → core.repo).
    p.write(
        "environments/dev.yaml",
        &format!(
            "{head}{}{other}{moved}  - {{ from: module.backend, to: module.core }}\n",
            instance("core")
        ),
    );
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(
        shown(&plan),
        [("core.repo".into(), "update".into(), "backend.repo".into())]
    );
    run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(tag(arn.clone()).await.as_deref(), Some("core.repo"));

    // A move onto an address state holds: a located error at plan; nothing changes.
    let onto = format!("{head}{other}moved:\n  - {{ from: core.repo, to: other }}\n");
    p.write("environments/dev.yaml", &onto);
    run(&["validate"]).expect(0);
    let err = run(&["plan"]).expect(1).stderr();
    assert!(
        err.contains("environments/dev.yaml:9:")
            && err.contains("cannot move core.repo to other: state already holds other"),
        "{err}"
    );

    // 3. A key renamed inside the module file: each instance moves its own.
    p.write(
        "modules/store/module.yaml",
        &format!(
            "{}moved:\n  - {{ from: repo, to: images }}\n",
            STORE_MODULE.replace("KEY", "images")
        ),
    );
    p.write(
        "environments/dev.yaml",
        &format!("{head}{}{other}", instance("core")),
    );
    let text = run(&["plan"]).expect(0).stdout();
    assert!(
        text.contains("core.repo → core.images (moved)")
            && text.contains("0 to add, 1 to change, 0 to replace, 0 to destroy, 1 to move."),
        "{text}"
    );
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);
    let list = run(&["state", "list", "--format", "json"]).expect(0).json();
    let addresses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["core.images", "other"]);
    // Never replaced: the same repository, created once.
    let again = ecr
        .describe_repositories()
        .repository_names("moved-repo")
        .send()
        .await
        .unwrap();
    assert_eq!(again.repositories()[0].created_at().cloned(), created_at);
    assert_eq!(tag(arn).await.as_deref(), Some("core.images"));

    // Audited: one `moved` event per apply, with both addresses; the trail verifies.
    let moves: Vec<(String, String)> = p
        .audit_events("dev", "moved")
        .iter()
        .map(|e| {
            (
                e["before"]["address"].as_str().unwrap().to_string(),
                e["after"]["address"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("repo".into(), "backend.repo".into()),
            ("backend.repo".into(), "core.repo".into()),
            ("core.repo".into(), "core.images".into())
        ]
    );
    run(&["audit", "verify"]).expect(0);
}
