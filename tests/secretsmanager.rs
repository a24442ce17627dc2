//! `aws.secretsmanager_secret` against moto (behind the ECS simulator): the value comes only
//! from a sensitive variable and appears in no output, plan file, state row or audit event (nor
//! its plain SHA-256); an ECS container's `secrets` name the exact version converge put
//! (`ARN:::VERSION_ID`), so a rotation is a new task definition rolled out; a version put by
//! hand is drift that apply puts back; delete schedules deletion and a re-create restores.

mod support;

use sha2::{Digest, Sha256};
use support::{Moto, Project, Run};

const FIRST: &str = "postgres://app:Pw-s3cr3t-42@db/app";
const SECOND: &str = "postgres://app:Rot4ted-99@db/app";

const FILE: &str = r#"environment: sm
providers:
  aws: { region: us-east-1 }
variables:
  db_url: { default: "FIRST", sensitive: true }
  subnet_a: subnet-1
  subnet_b: subnet-2
  security_group: sg-1
  vpc_id: vpc-1
resources:
  db_url:
    type: aws.secretsmanager_secret
    properties:
      name: sm/db-url
      description: The API's database URL
      value: "${var.db_url}"
      recovery_window_days: 7
      tags: { team: platform }
  execution_role:
    type: aws.iam_role
    properties:
      name: sm-execution
      assume_role_policy:
        Version: "2012-10-17"
        Statement:
          - { Effect: Allow, Principal: { Service: ecs-tasks.amazonaws.com }, Action: sts:AssumeRole }
      inline_policies:
        read-secrets:
          Version: "2012-10-17"
          Statement:
            - { Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: ["${db_url.arn}"] }
  cluster:
    type: aws.ecs_cluster
    properties: { name: sm }
  api:
    type: aws.ecs_service
    properties:
      name: sm-api
      cluster: "${cluster.arn}"
      task:
        family: sm-api
        cpu: 256
        memory: 512
        execution_role_arn: "${execution_role.arn}"
        containers:
          - name: app
            image: nginx:v1
            port: 8000
            secrets: { DATABASE_URL: "${db_url.arn}" }
      network:
        subnets: ["${var.subnet_a}", "${var.subnet_b}"]
        security_groups: ["${var.security_group}"]
"#;

fn plain_sha256(value: &str) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_string(value).unwrap().as_bytes(),
    ))
}

struct Secrets {
    _moto: Moto,
    vars: Vec<String>,
    project: Project,
    sm: aws_sdk_secretsmanager::Client,
    ecs: aws_sdk_ecs::Client,
}

impl Secrets {
    async fn new() -> Secrets {
        let moto = Moto::start();
        let vars = moto.network();
        let project = Project::empty().with_moto(&moto);
        project.write("environments/sm.yaml", &FILE.replace("FIRST", FIRST));
        let sdk = moto.sdk().await;
        Secrets {
            sm: aws_sdk_secretsmanager::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            _moto: moto,
            vars,
            project,
        }
    }

    fn run(&self, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["-e", "sm"];
        args.extend(self.vars.iter().map(String::as_str));
        args.extend(extra);
        self.project.converge(&args)
    }

    /// The secret's ARN and AWSCURRENT version, read through the SDK.
    async fn current(&self) -> (String, String) {
        let d = self
            .sm
            .describe_secret()
            .secret_id("sm/db-url")
            .send()
            .await
            .unwrap();
        let version = d
            .version_ids_to_stages
            .unwrap_or_default()
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(v, _)| v)
            .unwrap();
        (d.arn.unwrap(), version)
    }

    async fn value(&self) -> String {
        self.sm
            .get_secret_value()
            .secret_id("sm/db-url")
            .send()
            .await
            .unwrap()
            .secret_string
            .unwrap()
    }

    /// The service's task definition (`family:N`) and its container's DATABASE_URL valueFrom.
    async fn task(&self) -> (String, String) {
        let service = self
            .ecs
            .describe_services()
            .cluster("sm")
            .services("sm-api")
            .send()
            .await
            .unwrap()
            .services
            .unwrap()
            .remove(0);
        let td = service.task_definition.unwrap();
        let def = self
            .ecs
            .describe_task_definition()
            .task_definition(&td)
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap();
        let secret = def.container_definitions.unwrap()[0]
            .secrets
            .clone()
            .unwrap()
            .remove(0);
        assert_eq!(secret.name, "DATABASE_URL");
        (
            td.rsplit('/').next().unwrap().to_string(),
            secret.value_from,
        )
    }

    /// Everything converge keeps or prints that could leak a value: state files (db and WAL),
    /// the audit export, and the given runs' output.
    fn assert_nowhere(&self, value: &str, runs: &[&Run]) {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.project.root().join("state")).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
        let export = self
            .run(&["audit", "export", "--format", "jsonl"])
            .expect(0);
        all.push_str(&export.stdout());
        for r in runs {
            all.push_str(&r.stdout());
            all.push_str(&r.stderr());
        }
        assert!(!all.contains(value), "the value leaked");
        assert!(
            !all.contains(&plain_sha256(value)),
            "the value's plain SHA-256 leaked"
        );
        assert!(all.contains("hmac-sha256:"), "state keeps a keyed digest");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_is_written_never_shown_and_its_rotation_rolls_out_a_pinned_revision() {
    let s = Secrets::new().await;
    let plan_file = s.project.root().join("sm.plan.json");
    let planned = s
        .run(&["plan", "--out", plan_file.to_str().unwrap()])
        .expect(0);
    let applied = s.run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(s.value().await, FIRST, "the value reached Secrets Manager");
    let (arn, v1) = s.current().await;
    let (td1, value_from) = s.task().await;
    assert_eq!(
        value_from,
        format!("{arn}:::{v1}"),
        "the task reads exactly the version converge put"
    );
    let plan_json = s.run(&["plan", "--format", "json"]).expect(0);
    assert!(
        std::fs::read_to_string(&plan_file)
            .unwrap()
            .contains("(sensitive)")
    );
    s.assert_nowhere(FIRST, &[&planned, &applied, &plan_json]);
    let file_text = std::fs::read_to_string(&plan_file).unwrap();
    assert!(!file_text.contains(FIRST) && !file_text.contains(&plain_sha256(FIRST)));
    s.run(&["plan", "--detailed-exitcode"]).expect(0);

    // Rotation: a new version, and a new task definition naming it, rolled out.
    let var = format!("db_url={SECOND}");
    let plan = s
        .run(&["--var", &var, "plan", "--detailed-exitcode"])
        .expect(2);
    let text = plan.stdout();
    assert!(text.contains("(sensitive, changed)"), "{text}");
    assert!(
        text.contains("~ api") && text.contains("~ db_url"),
        "the secret and the service change together: {text}"
    );
    let rotated = s.run(&["--var", &var, "apply", "--auto-approve"]).expect(0);
    assert_eq!(s.value().await, SECOND);
    let (_, v2) = s.current().await;
    assert_ne!(v1, v2, "a new version");
    let (td2, value_from) = s.task().await;
    assert_ne!(td1, td2, "a new task definition revision");
    assert_eq!(value_from, format!("{arn}:::{v2}"));
    assert!(
        format!("{}{}", rotated.stdout(), rotated.stderr()).contains("rollout ready"),
        "the new revision was rolled out and followed: {}",
        rotated.stderr()
    );
    s.assert_nowhere(SECOND, &[&plan, &rotated]);
    s.run(&["--var", &var, "plan", "--detailed-exitcode"])
        .expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_put_by_hand_is_drift_and_apply_puts_the_files_value_back() {
    let s = Secrets::new().await;
    s.run(&["apply", "--auto-approve"]).expect(0);
    let (_, ours) = s.current().await;
    s.sm.put_secret_value()
        .secret_id("sm/db-url")
        .secret_string("typed-by-hand")
        .send()
        .await
        .unwrap();
    let drift = s.run(&["drift"]).expect(2);
    assert!(
        drift.stdout().contains("db_url") && drift.stdout().contains("value"),
        "{}",
        drift.stdout()
    );
    assert!(!drift.stdout().contains("typed-by-hand"));
    s.run(&["plan", "--detailed-exitcode"]).expect(2);
    s.run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(s.value().await, FIRST, "the files' value is current again");
    let (_, now) = s.current().await;
    assert_ne!(now, ours, "put as a new version");
    s.run(&["plan", "--detailed-exitcode"]).expect(0);
    s.run(&["drift"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_secret_waits_out_its_recovery_window_and_a_recreate_restores_it() {
    let s = Secrets::new().await;
    s.run(&["apply", "--auto-approve"]).expect(0);
    let (arn, _) = s.current().await;
    s.run(&["destroy", "--auto-approve"]).expect(0);
    let d =
        s.sm.describe_secret()
            .secret_id("sm/db-url")
            .send()
            .await
            .unwrap();
    assert!(d.deleted_date.is_some(), "scheduled for deletion, not gone");
    s.run(&["apply", "--auto-approve"]).expect(0);
    let d =
        s.sm.describe_secret()
            .secret_id("sm/db-url")
            .send()
            .await
            .unwrap();
    assert!(d.deleted_date.is_none(), "restored");
    assert_eq!(d.arn.unwrap(), arn, "the same secret, restored");
    assert_eq!(s.value().await, FIRST);
    s.run(&["plan", "--detailed-exitcode"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_literal_secret_value_is_a_located_error() {
    let p = Project::empty();
    p.write(
        "environments/sm.yaml",
        "environment: sm\nproviders:\n  aws: { region: us-east-1 }\nresources:\n  s:\n    type: aws.secretsmanager_secret\n    properties:\n      name: x\n      value: hunter2\n",
    );
    let run = p.converge(&["-e", "sm", "validate"]).expect(1);
    let err = run.stderr();
    assert!(
        err.contains("environments/sm.yaml:9:14")
            && err.contains("must come from a sensitive variable"),
        "{err}"
    );
}
