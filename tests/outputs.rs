//! `outputs:` and `converge output` (issue 25 §2) against moto: plans show output changes,
//! apply records the outputs in state with an `outputs` event, `output` prints them from state
//! as `terraform output` does (text, `--format json`, `--format raw`), a sensitive one only with
//! `--show-sensitive` and only when state can give its value again.

mod support;

use support::{Backend, Moto, Project};

const SECRET: &str = "postgres://app:Out-s3cr3t-7@db/app";

const ENV: &str = r#"environment: dev
providers:
  aws: { region: us-east-1 }
variables:
  db_url: { default: "SECRET", sensitive: true }
resources:
  repo:
    type: aws.ecr_repository
    properties: { name: outputs-repo }
  db_url:
    type: aws.secretsmanager_secret
    properties: { name: dev/db-url, value: "${var.db_url}", recovery_window_days: 7 }
outputs:
  repo_url:
    value: "${repo.uri}"
    description: Where CI pushes images
  repo_arn: { value: "${repo.arn}", sensitive: true }
  names: { value: ["${repo.name}", "fixed"] }
  database: { value: "${db_url.value}", sensitive: true }
"#;

#[test]
fn outputs_are_planned_recorded_by_apply_and_printed_from_sqlite_state() {
    outputs(Backend::Sqlite);
}

#[test]
fn outputs_are_planned_recorded_by_apply_and_printed_from_postgres_state() {
    outputs(Backend::postgres());
}

fn outputs(backend: Backend) {
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto).with_backend(&backend);
    p.write("environments/dev.yaml", &ENV.replace("SECRET", SECRET));
    let run = |args: &[&str]| {
        let mut a = vec!["-e", "dev"];
        a.extend(args);
        p.converge(&a)
    };

    // Before the first apply: nothing recorded, and the plan shows the new outputs.
    let none = run(&["output", "repo_url"]).expect(1).stderr();
    assert!(
        none.contains("no output `repo_url` in the state of dev"),
        "{none}"
    );
    let text = run(&["plan"]).expect(0).stdout();
    assert!(
        text.contains("Changes to outputs:")
            && text.contains("+ repo_url = \"(known after apply)\"")
            && text.contains("+ names = [\"outputs-repo\",\"fixed\"]")
            && text.contains("+ database = \"(sensitive)\""),
        "{text}"
    );
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    let created: Vec<&str> = plan["output_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["database", "names", "repo_arn", "repo_url"]);
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // Text, as `terraform output`: sensitive ones hidden.
    let url = format!(
        "{}.dkr.ecr.us-east-1.amazonaws.com/outputs-repo",
        "123456789012"
    );
    let all = run(&["output"]).expect(0).stdout();
    assert!(
        all.contains(&format!("repo_url = \"{url}\""))
            && all.contains("repo_arn = (sensitive)")
            && all.contains("database = (sensitive)")
            && !all.contains("arn:aws:ecr"),
        "{all}"
    );
    let raw = run(&["output", "repo_url", "--format", "raw"])
        .expect(0)
        .stdout();
    assert_eq!(raw, url, "raw prints the bare value, no newline");
    let json = run(&["output", "--format", "json"]).expect(0).json();
    assert_eq!(json["repo_url"]["value"], url.as_str());
    assert_eq!(json["repo_url"]["sensitive"], false);
    assert_eq!(json["repo_url"]["description"], "Where CI pushes images");
    assert_eq!(json["repo_arn"]["value"], serde_json::Value::Null);
    assert_eq!(json["repo_arn"]["sensitive"], true);
    assert_eq!(
        json["names"]["value"],
        serde_json::json!(["outputs-repo", "fixed"])
    );
    let one = run(&["output", "names", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(one, serde_json::json!(["outputs-repo", "fixed"]));

    // --show-sensitive: the ARN is recomputed from state; the secret's value is not there.
    let arn = run(&["output", "repo_arn", "--show-sensitive", "--format", "raw"])
        .expect(0)
        .stdout();
    assert!(arn.starts_with("arn:aws:ecr:us-east-1:"), "{arn}");
    let hidden = run(&["output", "repo_arn", "--format", "raw"])
        .expect(1)
        .stderr();
    assert!(hidden.contains("add --show-sensitive"), "{hidden}");
    let secret = run(&["output", "database", "--show-sensitive"]).expect(1);
    assert!(
        secret.stderr().contains("cannot be recomputed from state")
            && !secret.stderr().contains(SECRET)
            && !secret.stdout().contains(SECRET),
        "{}",
        secret.stderr()
    );
    let raw_list = run(&["output", "names", "--format", "raw"])
        .expect(1)
        .stderr();
    assert!(
        raw_list.contains("not a string, number or boolean"),
        "{raw_list}"
    );
    run(&["output", "--format", "raw"]).expect(1);
    run(&["state", "list", "--format", "raw"]).expect(1);

    // Recorded with an `outputs` event; no secret in the trail.
    let log = run(&["audit", "log", "--format", "json"]).expect(0).json();
    let event = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "outputs")
        .unwrap_or_else(|| panic!("no outputs event in {log}"));
    assert_eq!(event["after"]["repo_url"], url.as_str());
    assert_eq!(event["after"]["database"], "(sensitive)");
    assert!(!log.to_string().contains(SECRET));

    // A changed and a removed output: the plan says so, apply records it.
    p.edit(
        "environments/dev.yaml",
        "value: \"${repo.uri}\"",
        "value: \"${repo.name}\"",
    );
    p.edit(
        "environments/dev.yaml",
        "  names: { value: [\"${repo.name}\", \"fixed\"] }\n",
        "",
    );
    let text = run(&["plan"]).expect(0).stdout();
    assert!(
        text.contains("No changes to resources in dev; only outputs change.")
            && text.contains(&format!("~ repo_url = \"{url}\" → \"outputs-repo\""))
            && text.contains("- names"),
        "{text}"
    );
    run(&["plan", "--detailed-exitcode"]).expect(2);
    run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        run(&["output", "repo_url", "--format", "raw"])
            .expect(0)
            .stdout(),
        "outputs-repo"
    );
    run(&["output", "names"]).expect(1);

    // A secret in an output not marked sensitive: a located error.
    p.edit(
        "environments/dev.yaml",
        "database: { value: \"${db_url.value}\", sensitive: true }",
        "database: { value: \"${db_url.value}\" }",
    );
    let err = run(&["validate"]).expect(1).stderr();
    assert!(
        err.contains("environments/dev.yaml:")
            && err.contains("output `database` holds a sensitive value: mark it `sensitive: true`"),
        "{err}"
    );

    // destroy removes them.
    p.edit(
        "environments/dev.yaml",
        "database: { value: \"${db_url.value}\" }",
        "database: { value: \"${db_url.value}\", sensitive: true }",
    );
    run(&["destroy", "--auto-approve"]).expect(0);
    run(&["output", "repo_url"]).expect(1);
}
