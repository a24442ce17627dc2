//! Cost in plans: a plan that doubles a service's tasks shows exactly the added cost, per
//! resource and in the environment's total, against live state in moto.

mod support;

use support::{Moto, Project, Run};

/// Runs converge on the example's `dev` environment with moto's network variables.
fn dev(project: &Project, vars: &[String], extra: &[&str]) -> Run {
    let mut args: Vec<&str> = vec!["-e", "dev"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(extra);
    project.converge(&args)
}

#[test]
fn doubling_a_services_tasks_adds_exactly_one_more_of_its_cost() {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto);
    let run = |extra: &[&str]| dev(&project, &vars, extra);
    run(&["apply", "--auto-approve"]).expect(0);
    project.edit(
        "environments/dev.yaml",
        "      desired_count: 1\n      port: 8000",
        "      desired_count: 2\n      port: 8000",
    );
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    let api = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "api.service")
        .unwrap()
        .clone();
    // One Fargate task of 256 CPU units and 512 MiB in us-east-1:
    // (0.25 × 0.04048 + 0.5 × 0.004445) × 730 = 9.010025 a month.
    let one_task = 9.010025;
    let before = api["cost"]["before_monthly"].as_f64().unwrap();
    let after = api["cost"]["after_monthly"].as_f64().unwrap();
    assert!((before - one_task).abs() < 1e-6, "{api}");
    assert!((after - 2.0 * one_task).abs() < 1e-6, "{api}");
    assert!(
        (plan["cost"]["difference"].as_f64().unwrap() - one_task).abs() < 1e-6,
        "{}",
        plan["cost"]
    );
    let text = run(&["plan"]).expect(0);
    assert!(
        text.stdout().contains("$9.01/mo → $18.02/mo (+$9.01)"),
        "{}",
        text.stdout()
    );
    assert!(
        text.stdout()
            .contains("Cost: $18.02/mo → $27.03/mo (+$9.01, +50.0%)"),
        "{}",
        text.stdout()
    );
    assert!(
        text.stdout().contains("not in the totals: "),
        "ECR is usage-based and said so"
    );
}

#[test]
fn a_plan_over_budget_fails_with_both_figures_unless_allowed_with_a_reason() {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto);
    let run = |extra: &[&str]| dev(&project, &vars, extra);
    run(&["apply", "--auto-approve"]).expect(0);
    let file = project.read("environments/dev.yaml");
    project.write(
        "environments/dev.yaml",
        &file.replace(
            "\nmodules:\n",
            "\nbudget: { monthly: 20, max_increase: 5 }\n\nmodules:\n",
        ),
    );
    project.edit(
        "environments/dev.yaml",
        "      desired_count: 1\n      port: 8000",
        "      desired_count: 2\n      port: 8000",
    );
    let plan = run(&["plan"]).expect(1);
    for needle in [
        "the monthly total after this plan, $27.03, is above budget.monthly $20.00",
        "this plan adds $9.01/month, above budget.max_increase $5.00",
        "Change the files, or pass",
    ] {
        assert!(
            plan.stderr().contains(needle),
            "{needle} in {}",
            plan.stderr()
        );
    }
    // CI reads why from the JSON: the whole plan is printed, with the verdict, then exit 1.
    let json = run(&["plan", "--format", "json"]).expect(1);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(plan["budget"]["within"], false, "{}", plan["budget"]);
    assert_eq!(plan["budget"]["monthly"], 20.0);
    assert_eq!(plan["budget"]["problems"].as_array().unwrap().len(), 2);
    assert!(
        plan["changes"].as_array().unwrap().len() > 1,
        "the whole plan"
    );
    run(&["apply", "--auto-approve"]).expect(1);
    run(&[
        "apply",
        "--auto-approve",
        "--allow-over-budget",
        "launch week traffic",
    ])
    .expect(0);
    let log = run(&["audit", "log", "--format", "json"]).expect(0).json();
    let overrides: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "budget override")
        .collect();
    assert_eq!(overrides.len(), 1, "{log}");
    assert!(
        overrides[0]["detail"]
            .as_str()
            .unwrap()
            .contains("reason: launch week traffic")
    );
}

#[test]
fn managed_resources_carry_their_environment_and_address_tags() {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto);
    let run = |extra: &[&str]| dev(&project, &vars, extra);
    // A repository made by hand, before converge managed it: it has no converge tags.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sdk = rt.block_on(moto.sdk());
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    rt.block_on(ecr.create_repository().repository_name("legacy").send())
        .unwrap();
    project.write(
        "environments/dev.yaml",
        &(project.read("environments/dev.yaml")
            + "\n  legacy:\n    type: aws.ecr_repository\n    properties: { name: legacy, image_tag_mutability: MUTABLE }\n    usage: { storage_gb: 50 }\n"),
    );
    run(&["import", "legacy", "legacy"]).expect(0);
    let plan = run(&["plan", "--target", "legacy"]).expect(0).stdout();
    assert!(plan.contains("~ legacy"), "{plan}");
    // 50 GB at $0.10 per GB-month, from its `usage:` figures.
    let json = run(&["plan", "--target", "legacy", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(json["changes"][0]["cost"]["after_monthly"], 5.0, "{json}");
    assert!(
        plan.contains("converge:address"),
        "the tag change is shown: {plan}"
    );
    run(&["apply", "--auto-approve"]).expect(0);

    let tags_of_repo = |name: &str| {
        let arn = rt
            .block_on(ecr.describe_repositories().repository_names(name).send())
            .unwrap()
            .repositories()[0]
            .repository_arn()
            .unwrap()
            .to_string();
        rt.block_on(ecr.list_tags_for_resource().resource_arn(arn).send())
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    for (name, address) in [("legacy", "legacy"), ("dev-api", "api.repo")] {
        let tags = tags_of_repo(name);
        assert_eq!(
            tags.get("converge:environment").map(String::as_str),
            Some("dev"),
            "{name}: {tags:?}"
        );
        assert_eq!(
            tags.get("converge:address").map(String::as_str),
            Some(address),
            "{name}: {tags:?}"
        );
    }
    let services = rt
        .block_on(
            ecs.describe_services()
                .cluster("dev")
                .services("dev-api")
                .include(aws_sdk_ecs::types::ServiceField::Tags)
                .send(),
        )
        .unwrap();
    let service_tags: std::collections::BTreeMap<_, _> = services.services()[0]
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        service_tags.get("converge:address").map(String::as_str),
        Some("api.service"),
        "{service_tags:?}"
    );
    assert_eq!(
        service_tags.get("team").map(String::as_str),
        Some("platform"),
        "the files' own tags stay: {service_tags:?}"
    );
    let role = rt
        .block_on(iam.list_role_tags().role_name("dev-ecs-execution").send())
        .unwrap();
    assert!(
        role.tags()
            .iter()
            .any(|t| t.key() == "converge:address" && t.value() == "execution_role"),
        "{:?}",
        role.tags()
    );
    run(&["plan", "--detailed-exitcode"]).expect(0);
}
