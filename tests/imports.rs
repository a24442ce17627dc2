//! `converge import ADDR ID --generate FILE` and `import --all KIND --generate FILE` (issue 25
//! §4) against moto: resources made outside converge are adopted into state and written as
//! desired-state YAML; pasted under `resources:`, the next plan adds only converge's tags in
//! place, and after one apply there is no change at all. Nothing is replaced.

mod support;

use support::{Moto, Project};

const HEAD: &str = "environment: dev\nproviders:\n  aws: { region: us-east-1 }\n";

/// The environment file with `generated` (a file `--generate` wrote) pasted under `resources:`.
fn pasted(generated: &[String]) -> String {
    let mut out = format!("{HEAD}resources:\n");
    for g in generated {
        for line in g.lines().filter(|l| !l.starts_with('#')) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// The non-no-op changes of a JSON plan: (address, action, changed).
fn changes(plan: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["changed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_configuration_round_trips_to_no_change() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    for (name, tags) in [
        (
            "legacy-api",
            vec![("team", "platform"), ("cost", "${var.not_a_reference}")],
        ),
        ("legacy-web", vec![("team", "web")]),
        ("prod-owned", vec![("converge:environment", "prod")]),
    ] {
        let mut req = ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable);
        for (k, v) in tags {
            req = req.tags(
                aws_sdk_ecr::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .unwrap(),
            );
        }
        req.send().await.unwrap();
    }
    iam.create_role()
        .role_name("legacy-role")
        .description("made by hand")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();

    let ecs = aws_sdk_ecs::Client::new(&sdk);
    ecs.create_cluster()
        .cluster_name("legacy-cluster")
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("platform")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let p = Project::empty().with_moto(&moto);
    p.write("environments/dev.yaml", &format!("{HEAD}resources: {{}}\n"));
    let run = |args: &[&str]| {
        let mut a = vec!["-e", "dev"];
        a.extend(args);
        p.converge(&a)
    };
    // Errors first; none changes anything.
    let undeclared = run(&["import", "api", "legacy-api", "--generate", "api.yaml"]).expect(1);
    assert!(
        undeclared
            .stderr()
            .contains("say its kind with --kind KIND"),
        "{}",
        undeclared.stderr()
    );
    let unknown = run(&[
        "import",
        "api",
        "legacy-api",
        "--generate",
        "api.yaml",
        "--kind",
        "aws.nope",
    ])
    .expect(1);
    assert!(
        unknown.stderr().contains("unknown kind `aws.nope`"),
        "{}",
        unknown.stderr()
    );
    run(&["import", "--all", "aws.ecr_repository"]).expect(1);
    assert_eq!(
        run(&["state", "list", "--format", "json"]).expect(0).json(),
        serde_json::json!([])
    );

    // One by one: a repository and a role.
    let api = p.root().join("api.yaml");
    let role = p.root().join("role.yaml");
    let out = run(&[
        "import",
        "api",
        "legacy-api",
        "--kind",
        "aws.ecr_repository",
        "--generate",
        api.to_str().unwrap(),
    ])
    .expect(0)
    .stdout();
    assert!(
        out.contains("Imported legacy-api as api (aws.ecr_repository)."),
        "{out}"
    );
    run(&[
        "import",
        "role",
        "legacy-role",
        "--kind",
        "aws.iam_role",
        "--generate",
        role.to_str().unwrap(),
    ])
    .expect(0);
    let api_yaml = std::fs::read_to_string(&api).unwrap();
    assert!(
        api_yaml
            .contains("api:\n  type: aws.ecr_repository\n  properties:\n    name: legacy-api\n")
            && api_yaml.contains("image_tag_mutability: IMMUTABLE")
            && !api_yaml.contains("converge:"),
        "{api_yaml}"
    );
    // A `${` from the cloud stays text.
    assert!(api_yaml.contains("$${var.not_a_reference}"), "{api_yaml}");
    let again = run(&[
        "import",
        "x",
        "legacy-web",
        "--kind",
        "aws.ecr_repository",
        "--generate",
        api.to_str().unwrap(),
    ])
    .expect(1);
    assert!(
        again
            .stderr()
            .contains("exists: --generate writes a new file"),
        "{}",
        again.stderr()
    );

    let generated = vec![api_yaml, std::fs::read_to_string(&role).unwrap()];
    p.write("environments/dev.yaml", &pasted(&generated));
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(
        changes(&plan),
        [
            ("api".into(), "update".into(), vec!["tags".to_string()]),
            ("role".into(), "update".into(), vec!["tags".to_string()]),
        ],
        "only converge's tags, in place"
    );
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // Every other repository at once; the one another environment manages is left out.
    let all = p.root().join("all.yaml");
    let out = run(&[
        "import",
        "--all",
        "aws.ecr_repository",
        "--generate",
        all.to_str().unwrap(),
    ])
    .expect(0)
    .stdout();
    assert!(
        out.contains("Imported legacy-web as legacy-web (aws.ecr_repository).")
            && out.contains("Left out prod-owned (managed by environment prod).")
            && !out.contains("legacy-api as"),
        "{out}"
    );
    let mut generated = generated;
    generated.push(std::fs::read_to_string(&all).unwrap());
    p.write("environments/dev.yaml", &pasted(&generated));
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(
        changes(&plan),
        [(
            "legacy-web".into(),
            "update".into(),
            vec!["tags".to_string()]
        )]
    );
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);
    // Never replaced: the repositories are the ones made by hand.
    let repos = ecr.describe_repositories().send().await.unwrap();
    assert_eq!(repos.repositories().len(), 3);

    // Clusters are listed by ARN; the address comes from the name.
    let clusters = p.root().join("clusters.yaml");
    let out = run(&[
        "import",
        "--all",
        "aws.ecs_cluster",
        "--generate",
        clusters.to_str().unwrap(),
    ])
    .expect(0)
    .stdout();
    assert!(
        out.contains("as legacy-cluster (aws.ecs_cluster)."),
        "{out}"
    );
    generated.push(std::fs::read_to_string(&clusters).unwrap());
    p.write("environments/dev.yaml", &pasted(&generated));
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(
        changes(&plan),
        [(
            "legacy-cluster".into(),
            "update".into(),
            vec!["tags".to_string()]
        )]
    );
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(p.audit_events("dev", "import").len(), 4);
}
