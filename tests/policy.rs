//! Policy as code (issue 25 §5) through the real binary against moto, with the project's own
//! example policies (`policies/*.rego`, the README's): `deny` fails plan and apply naming the
//! policy file, rule and resource; `warn` prints and goes on; both are in the JSON and Markdown
//! plans, in GitHub annotations at the resource's file:line, and in the audit trail; `--policy-ref`
//! judges by the policy as committed; `policy test` runs the `_test.rego` files; bad Rego is a
//! located error.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Moto, Project, Run, copy_dir};

/// A prod environment the example policies judge: a listener on 22, a canary with a 50% step.
const PROD: &str = r#"environment: prod
providers:
  aws: { region: us-east-1 }
variables:
  count: 2
  step: 50
  listener_port: 22
resources:
  cluster:
    type: aws.ecs_cluster
    properties: { name: pol }
  role:
    type: aws.iam_role
    properties:
      name: pol-execution
      assume_role_policy:
        Version: "2012-10-17"
        Statement:
          - { Effect: Allow, Principal: { Service: ecs-tasks.amazonaws.com }, Action: "sts:AssumeRole" }
  alb:
    type: aws.lb
    properties: { name: pol-alb, subnets: [subnet-1, subnet-2] }
  blue:
    type: aws.lb_target_group
    properties: { name: pol-blue, port: 8000, vpc_id: vpc-1 }
  green:
    type: aws.lb_target_group
    properties: { name: pol-green, port: 8000, vpc_id: vpc-1 }
  listener:
    type: aws.lb_listener
    properties:
      load_balancer_arn: "${alb.arn}"
      port: "${var.listener_port}"
      target_group_arns: ["${blue.arn}", "${green.arn}"]
  api:
    type: aws.ecs_service
    properties:
      name: pol-api
      cluster: "${cluster.arn}"
      desired_count: "${var.count}"
      task:
        family: pol-api
        cpu: 256
        memory: 512
        execution_role_arn: "${role.arn}"
        containers:
          - { name: app, image: "nginx:1", port: 8000, memory: 512 }
      network: { subnets: [subnet-1, subnet-2], security_groups: [sg-1] }
      load_balancer: { container: app, port: 8000 }
      rollout:
        strategy: canary
        steps: [10, "${var.step}", 100]
        traffic: { listener_arn: "${listener.arn}", target_groups: ["${blue.arn}", "${green.arn}"] }
"#;

fn project(moto: &Moto) -> Project {
    let p = Project::empty().with_moto(moto);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &p.root().join("policies"),
    );
    p
}

fn as_actor(p: &Project, actor: &str, args: &[&str]) -> Run {
    let mut cmd = p.command(args);
    cmd.env("CONVERGE_ACTOR", actor);
    Run::from_output(cmd.output().unwrap(), args)
}

#[test]
fn deny_fails_the_plan_naming_policy_rule_and_resource_and_warn_goes_on() {
    let moto = Moto::start();
    let p = project(&moto);
    p.write("environments/prod.yaml", PROD);

    // Two denials: the listener on 22 and the 50% canary step, each at its resource.
    let plan = p.converge(&["-e", "prod", "plan"]).expect(1);
    let (out, err) = (plan.stdout(), plan.stderr());
    assert!(
        out.contains("Policy: 2 denied, 0 warned (4 policies, namespace main)")
            && out.contains("DENY policies/canary.rego: deny_large_canary_step: canary step 50% is above 25% in prod (api)")
            && out.contains("DENY policies/ingress.rego: deny_public_ssh: no public ingress on port 22 (listener)"),
        "{out}"
    );
    assert!(
        err.contains("prod: denied by policy:")
            && err.contains(
                "policies/ingress.rego: deny_public_ssh: no public ingress on port 22 (listener)"
            ),
        "{err}"
    );
    // The JSON plan carries the verdict; a denied plan is never saved.
    let json = p
        .converge(&[
            "-e",
            "prod",
            "plan",
            "--format",
            "json",
            "--out",
            "plan.json",
        ])
        .expect(1)
        .json();
    assert_eq!(json["policy"]["denials"].as_array().unwrap().len(), 2);
    assert_eq!(json["policy"]["denials"][0]["address"], "api");
    assert_eq!(
        json["policy"]["denials"][0]["rule"],
        "deny_large_canary_step"
    );
    assert!(!p.root().join("plan.json").exists());
    // Markdown (the PR comment's body): a caution block with each denial.
    let md = p
        .converge(&["-e", "prod", "plan", "--format", "markdown"])
        .expect(1)
        .stdout();
    assert!(
        md.contains("> [!CAUTION]\n> **Denied by policy** (2 message(s))")
            && md.contains("> - `policies/ingress.rego` **deny_public_ssh**: no public ingress on port 22 (`listener`)"),
        "{md}"
    );
    // In GitHub Actions: annotations at the resource's line in the environment file.
    let mut cmd = p.command(&["-e", "prod", "plan"]);
    cmd.env("GITHUB_ACTIONS", "true");
    let annotated = Run::from_output(cmd.output().unwrap(), &["plan"])
        .expect(1)
        .stdout();
    let listener_line = PROD.lines().position(|l| l == "  listener:").unwrap() + 1;
    assert!(
        annotated.contains(&format!(
            "environments/prod.yaml,line={listener_line},col=3,title=policy policies/ingress.rego (deny_public_ssh)::"
        )) && annotated.contains("::error file="),
        "{annotated}"
    );

    // Fixed: the plan passes; a costly plan only warns.
    let fixed = [
        "-e",
        "prod",
        "plan",
        "--var",
        "step=25",
        "--var",
        "listener_port=80",
    ];
    let ok = p
        .converge(&[&fixed[..], &["--var", "count=12"]].concat())
        .expect(0);
    assert!(
        ok.stdout().contains("Policy: 0 denied, 1 warned")
            && ok
                .stdout()
                .contains("WARN policies/cost.rego: warn: this plan adds $"),
        "{}",
        ok.stdout()
    );
    // A resource over $500/month: denied, naming it.
    let big = p
        .converge(&[&fixed[..], &["--var", "count=60"]].concat())
        .expect(1)
        .stdout();
    assert!(
        big.contains("DENY policies/cost.rego: deny_expensive: costs $")
            && big.contains("/month, over the $500 limit (api)"),
        "{big}"
    );

    // Every evaluation is in the audit trail, with its verdict.
    let checks = p.audit_events("prod", "policy check");
    assert!(checks.len() >= 5, "{checks:?}");
    assert_eq!(checks[0]["outcome"], "denied");
    assert_eq!(checks[0]["after"]["denials"].as_array().unwrap().len(), 2);
}

/// "Only CI may apply prod": a person's apply is refused before anything changes and the
/// refusal is audited; CI's goes through, its evaluation recorded with the apply.
#[test]
fn only_ci_may_apply_prod() {
    let moto = Moto::start();
    let p = project(&moto);
    p.write(
        "environments/prod.yaml",
        "environment: prod\nproviders:\n  aws: { region: us-east-1 }\nresources:\n  repo:\n    type: aws.ecr_repository\n    properties: { name: pol-repo }\n",
    );
    as_actor(&p, "alice", &["-e", "prod", "plan"]).expect(0);
    let refused = as_actor(&p, "alice", &["-e", "prod", "apply", "--auto-approve"]).expect(1);
    assert!(
        refused
            .stderr()
            .contains("policies/ci_only_prod.rego: deny: only CI may apply prod (actor alice)"),
        "{}",
        refused.stderr()
    );
    let state = p
        .converge(&["-e", "prod", "state", "list", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(state, serde_json::json!([]), "nothing was applied");
    as_actor(&p, "ci:alice", &["-e", "prod", "apply", "--auto-approve"]).expect(0);
    // destroy is judged too (operation `destroy`).
    let kept = as_actor(&p, "alice", &["-e", "prod", "destroy", "--auto-approve"]).expect(1);
    assert!(
        kept.stderr()
            .contains("only CI may destroy prod (actor alice)"),
        "{}",
        kept.stderr()
    );
    let state = p
        .converge(&["-e", "prod", "state", "list", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(state.as_array().unwrap().len(), 1, "nothing was destroyed");
    let applies: Vec<(String, String, String)> = p
        .audit_events("prod", "policy check")
        .iter()
        .filter(|e| e["operation"] == "apply")
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
                e["after"]["policies"].as_array().unwrap().len().to_string(),
            )
        })
        .collect();
    assert_eq!(
        applies,
        [
            ("alice".into(), "denied".into(), "4".into()),
            ("ci:alice".into(), "ok".into(), "4".into())
        ]
    );
}

/// `--policy-ref`: a pull request that deletes the rule that judges it is still judged by the
/// policy as committed on the base branch.
#[test]
fn policy_ref_reads_the_policy_as_committed() {
    let moto = Moto::start();
    let p = project(&moto);
    p.write("environments/prod.yaml", PROD);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(p.root())
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "policies"]);
    // The pull request's working tree loosens the policy.
    std::fs::remove_file(p.root().join("policies/ingress.rego")).unwrap();
    std::fs::remove_file(p.root().join("policies/canary.rego")).unwrap();
    p.converge(&["-e", "prod", "plan"]).expect(0);
    let judged = p
        .converge(&["-e", "prod", "plan", "--policy-ref", "main"])
        .expect(1)
        .stdout();
    assert!(
        judged.contains("DENY main:policies/ingress.rego: deny_public_ssh")
            && judged.contains("DENY main:policies/canary.rego: deny_large_canary_step"),
        "{judged}"
    );
    let unknown = p
        .converge(&["-e", "prod", "plan", "--policy-ref", "no-such-branch"])
        .expect(1)
        .stderr();
    assert!(
        unknown.contains("--policy-ref no-such-branch: no such commit"),
        "{unknown}"
    );
}

#[test]
fn policy_test_runs_the_test_files_and_bad_rego_is_located() {
    let moto = Moto::start();
    let p = project(&moto);
    p.write("environments/prod.yaml", PROD);
    let ok = p.converge(&["policy", "test"]).expect(0).stdout();
    assert!(ok.contains("PASS: 7/7"), "{ok}");
    p.write(
        "policies/wrong_test.rego",
        "package main\nimport rego.v1\ntest_nobody_is_denied if {\n  count(deny) == 0 with input as {\"environment\": \"prod\", \"operation\": \"apply\", \"actor\": \"bob\"}\n}\n",
    );
    let failed = p.converge(&["policy", "test"]).expect(1).stdout();
    assert!(
        failed.contains("FAIL data.main.test_nobody_is_denied (policies/wrong_test.rego)")
            && failed.contains("PASS: 7/8"),
        "{failed}"
    );
    std::fs::remove_file(p.root().join("policies/wrong_test.rego")).unwrap();

    // The input's JSON Schema.
    let schema = p.converge(&["schema", "--policy-input"]).expect(0).json();
    assert_eq!(schema["title"], "converge policy input");
    assert!(schema["properties"]["changes"]["items"]["properties"]["address"].is_object());

    // Bad Rego: a located error at validate and plan, before any cloud call.
    p.write(
        "policies/broken.rego",
        "package main\n\ndeny contains msg if {\n  msg := \n}\n",
    );
    for args in [&["-e", "prod", "validate"][..], &["-e", "prod", "plan"][..]] {
        let err = p.converge(args).expect(1).stderr();
        assert!(err.contains("policies/broken.rego:4:"), "{err}");
    }
}
