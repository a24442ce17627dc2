//! Promotion against moto: prod (`promotion: { from: staging }`) refuses an image before
//! staging completed a rollout of it, accepts it after (compared by manifest digest across the
//! two environments' own ECR repositories), refuses again once one of staging's audit rows is
//! edited, and `--allow-unpromoted "REASON"` overrides, audited.

mod support;

use support::{Backend, Moto, Project, Run};

const ENV: &str = r#"environment: ENV
providers:
  aws: { region: us-east-1 }
PROMOTION
variables:
  image_tag: v1
  subnet_a: subnet-1
  subnet_b: subnet-2
resources:
  repo:
    type: aws.ecr_repository
    properties: { name: ENV-api }
  cluster:
    type: aws.ecs_cluster
    properties: { name: ENV }
  api:
    type: aws.ecs_service
    properties:
      name: api
      cluster: "${cluster.arn}"
      task:
        family: ENV-api
        cpu: 256
        memory: 512
        containers:
          - { name: app, image: "${repo.uri}:${var.image_tag}", port: 8000 }
      network:
        subnets: ["${var.subnet_a}", "${var.subnet_b}"]
"#;

struct Envs {
    moto: Moto,
    vars: Vec<String>,
    project: Project,
    ecr: aws_sdk_ecr::Client,
    ecs: aws_sdk_ecs::Client,
}

impl Envs {
    async fn new() -> Envs {
        let moto = Moto::start();
        let vars: Vec<String> = moto
            .network()
            .into_iter()
            .filter(|v| v.contains("subnet"))
            .collect();
        let project = Project::empty().with_moto(&moto);
        for (env, promotion) in [("staging", ""), ("prod", "promotion: { from: staging }")] {
            project.write(
                &format!("environments/{env}.yaml"),
                &ENV.replace("ENV", env).replace("PROMOTION", promotion),
            );
        }
        let sdk = moto.sdk().await;
        let envs = Envs {
            ecr: aws_sdk_ecr::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            moto,
            vars,
            project,
        };
        // The repositories first, so the builds can be pushed before the services run them.
        for env in ["staging", "prod"] {
            envs.run(env, &["apply", "--auto-approve", "--target", "repo"])
                .expect(0);
        }
        for tag in ["v1", "v2", "v3"] {
            envs.push_both(tag).await;
        }
        envs
    }

    fn run(&self, env: &str, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["-e", env];
        args.extend(self.vars.iter().map(String::as_str));
        args.extend(extra);
        self.project.converge(&args)
    }

    fn apply(&self, env: &str, tag: &str, extra: &[&str]) -> Run {
        let var = format!("image_tag={tag}");
        let mut args = vec!["--var", var.as_str(), "apply", "--auto-approve"];
        args.extend(extra);
        self.run(env, &args)
    }

    /// One build pushed to both environments' repositories: the same manifest, so the same
    /// digest under two references.
    async fn push_both(&self, tag: &str) {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": format!("sha256:{:0>64}", hex::encode(tag))},
            // moto's digest is taken over the layer digests: one layer per build.
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": format!("sha256:{:1>64}", hex::encode(tag))}],
        });
        for repo in ["staging-api", "prod-api"] {
            self.ecr
                .put_image()
                .repository_name(repo)
                .image_tag(tag)
                .image_manifest(manifest.to_string())
                .send()
                .await
                .unwrap();
        }
    }

    /// The image prod's service runs.
    async fn prod_image(&self) -> String {
        let service = self
            .ecs
            .describe_services()
            .cluster("prod")
            .services("api")
            .send()
            .await
            .unwrap()
            .services
            .unwrap()
            .remove(0);
        let td = self
            .ecs
            .describe_task_definition()
            .task_definition(service.task_definition.unwrap())
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap();
        td.container_definitions.unwrap()[0].image.clone().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prod_runs_only_what_completed_a_rollout_in_staging() {
    let e = Envs::new().await;
    let _ = &e.moto;
    e.apply("staging", "v1", &[]).expect(0);
    // prod's first deploy: v1 passed staging, by digest (another repository, the same build).
    e.apply("prod", "v1", &[]).expect(0);
    assert!(e.prod_image().await.ends_with("/prod-api:v1"));

    // v2 has not run in staging: plan says so, apply refuses and changes nothing.
    let plan = e.run("prod", &["--var", "image_tag=v2", "plan"]).expect(0);
    assert!(
        plan.stdout()
            .contains("prod-api:v2 is not promoted from staging")
            && plan.stdout().contains("--allow-unpromoted"),
        "{}",
        plan.stdout()
    );
    let refused = e.apply("prod", "v2", &[]).expect(1);
    assert!(
        refused.stderr().contains("refused by promotion") && refused.stderr().contains("api"),
        "{}",
        refused.stderr()
    );
    assert!(
        e.prod_image().await.ends_with("/prod-api:v1"),
        "nothing moved"
    );

    // Once staging completed it, prod takes it.
    e.apply("staging", "v2", &[]).expect(0);
    let plan = e.run("prod", &["--var", "image_tag=v2", "plan"]).expect(0);
    assert!(
        plan.stdout().contains("completed a rollout in staging"),
        "{}",
        plan.stdout()
    );
    e.apply("prod", "v2", &[]).expect(0);
    assert!(e.prod_image().await.ends_with("/prod-api:v2"));

    // An edited row in staging's trail proves nothing, even for an image staging ran.
    e.apply("staging", "v3", &[]).expect(0);
    let backend = Backend::Sqlite;
    let body = backend
        .fetch_text(
            e.project.root(),
            "staging",
            "SELECT body FROM audit_events WHERE seq = 2",
            &[],
        )
        .await;
    let edited = body.replace("\"outcome\":\"ok\"", "\"outcome\":\"ok \"");
    assert_ne!(body, edited);
    backend
        .execute(
            e.project.root(),
            "staging",
            "UPDATE audit_events SET body = ? WHERE seq = 2",
            &[&edited],
        )
        .await;
    let refused = e.apply("prod", "v3", &[]).expect(1);
    assert!(
        refused
            .stderr()
            .contains("staging's audit trail does not verify"),
        "{}",
        refused.stderr()
    );
    assert!(e.prod_image().await.ends_with("/prod-api:v2"));

    // The override goes through, with its reason in prod's trail.
    e.run(
        "prod",
        &[
            "--var",
            "image_tag=v3",
            "--allow-unpromoted",
            "INC-42 hotfix",
            "apply",
            "--auto-approve",
        ],
    )
    .expect(0);
    assert!(e.prod_image().await.ends_with("/prod-api:v3"));
    let log = e
        .run("prod", &["audit", "log", "--format", "json"])
        .expect(0)
        .json();
    let overrides: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["action"] == "promotion override")
        .collect();
    assert_eq!(overrides.len(), 1, "{log}");
    assert!(
        overrides[0]["detail"]
            .as_str()
            .unwrap()
            .contains("reason: INC-42 hotfix")
    );
}

#[test]
fn a_promotion_block_is_checked_where_it_is_written() {
    let p = Project::empty();
    p.write(
        "environments/prod.yaml",
        "environment: prod\nproviders:\n  aws: { region: us-east-1 }\npromotion: { from: prod, after: 1h }\n",
    );
    let run = p.converge(&["-e", "prod", "validate"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("names this environment"), "{err}");
    assert!(err.contains("after"), "the unknown key is named: {err}");
}
