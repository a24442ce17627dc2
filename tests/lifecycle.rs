//! The engine end to end against moto: plan → apply → no-op plan → in-place update → new task
//! revision → out-of-band change → drift → repair → removal → destroy, checked through the
//! AWS SDK after each step, with the audit trail verified and then tampered with.

mod support;

use support::{Backend, Moto, Project};

async fn service(ecs: &aws_sdk_ecs::Client, name: &str) -> Option<aws_sdk_ecs::types::Service> {
    let out = ecs
        .describe_services()
        .cluster("dev")
        .services(name)
        .send()
        .await
        .ok()?;
    out.services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() == Some("ACTIVE"))
}

async fn image_of(ecs: &aws_sdk_ecs::Client, service: &aws_sdk_ecs::types::Service) -> String {
    let td = ecs
        .describe_task_definition()
        .task_definition(service.task_definition.clone().unwrap())
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    td.container_definitions.unwrap()[0].image.clone().unwrap()
}

async fn repo_exists(ecr: &aws_sdk_ecr::Client, name: &str) -> bool {
    ecr.describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_against_moto_with_sqlite_state() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_against_moto_with_postgres_state() {
    lifecycle(Backend::postgres()).await;
}

async fn lifecycle(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let project = Project::example().with_moto(&moto).with_backend(&backend);
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["-e", "dev"];
        args.extend(vars.iter().map(String::as_str));
        args.extend(extra);
        project.converge(&args)
    };
    let sdk = moto.sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);

    // 1. First plan: everything to add.
    let plan = run(&["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout()
            .contains("Plan: 6 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.stdout()
    );
    assert!(plan.stdout().contains("(known after apply)"));

    // 2. Apply creates it all, in dependency order.
    run(&["apply", "--auto-approve"]).expect(0);
    let repo = &ecr
        .describe_repositories()
        .repository_names("dev-api")
        .send()
        .await
        .unwrap()
        .repositories
        .unwrap()[0];
    assert_eq!(
        repo.image_tag_mutability.as_ref().unwrap().as_str(),
        "IMMUTABLE"
    );
    assert!(
        repo.image_scanning_configuration
            .as_ref()
            .unwrap()
            .scan_on_push
    );
    let policy = ecr
        .get_lifecycle_policy()
        .repository_name("dev-api")
        .send()
        .await
        .unwrap();
    assert!(
        policy
            .lifecycle_policy_text
            .unwrap()
            .contains("imageCountMoreThan")
    );
    let role = iam
        .get_role()
        .role_name("dev-ecs-execution")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let attached = iam
        .list_attached_role_policies()
        .role_name("dev-ecs-execution")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies.unwrap().len(), 1);
    let api = service(&ecs, "dev-api").await.expect("dev-api service");
    assert_eq!(api.desired_count, 1);
    // moto neither stores nor returns deploymentConfiguration, so the circuit breaker converge
    // sends cannot be read back here.
    let first_td = api.task_definition.clone().unwrap();
    assert!(image_of(&ecs, &api).await.ends_with("/dev-api:v1.0.0"));
    let td = ecs
        .describe_task_definition()
        .task_definition(&first_td)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    assert_eq!(
        td.execution_role_arn.as_deref(),
        Some(role.arn.as_str()),
        "references resolve to real outputs"
    );

    // 3. Nothing to do now.
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // 4. desired_count: an in-place update of that one service, same task revision.
    project.edit(
        "environments/dev.yaml",
        "desired_count: 1\n      port: 8000",
        "desired_count: 3\n      port: 8000",
    );
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    let changes: Vec<&serde_json::Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .collect();
    assert_eq!(changes.len(), 1, "{plan:#}");
    assert_eq!(changes[0]["address"], "api.service");
    assert_eq!(changes[0]["action"], "update");
    assert_eq!(changes[0]["changed"], serde_json::json!(["desired_count"]));
    run(&["apply", "--auto-approve"]).expect(0);
    let api = service(&ecs, "dev-api").await.unwrap();
    assert_eq!(api.desired_count, 3);
    assert_eq!(
        api.task_definition.as_deref(),
        Some(first_td.as_str()),
        "no new revision for a count change"
    );

    // 5. A new image tag: a new task definition revision, the service updated in place.
    project.edit(
        "environments/dev.yaml",
        "image_tag: v1.0.0",
        "image_tag: v2.0.0",
    );
    let plan = run(&["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout()
            .contains("Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.stdout()
    );
    assert!(plan.stdout().contains(
        "+       image: \"123456789012.dkr.ecr.us-east-1.amazonaws.com/dev-api:v2.0.0\""
    ));
    run(&["apply", "--auto-approve"]).expect(0);
    let api = service(&ecs, "dev-api").await.unwrap();
    assert_ne!(api.task_definition.as_deref(), Some(first_td.as_str()));
    assert!(image_of(&ecs, &api).await.ends_with("/dev-api:v2.0.0"));
    assert!(
        image_of(&ecs, &service(&ecs, "dev-worker").await.unwrap())
            .await
            .ends_with("/dev-worker:v2.0.0")
    );
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // 6. Someone scales the worker by hand and deletes the API's repository tags.
    ecs.update_service()
        .cluster("dev")
        .service("dev-worker")
        .desired_count(5)
        .send()
        .await
        .unwrap();
    let drift = run(&["drift", "--format", "json"]).expect(2).json();
    assert_eq!(drift["drifted"].as_array().unwrap().len(), 1, "{drift:#}");
    assert_eq!(drift["drifted"][0]["address"], "worker.service");
    assert_eq!(drift["drifted"][0]["fields"][0]["name"], "desired_count");
    assert_eq!(drift["drifted"][0]["fields"][0]["live"], 5);
    let text = run(&["drift"]).expect(2);
    assert!(
        text.stdout().contains("desired_count: 1 -> 5"),
        "{}",
        text.stdout()
    );

    // 7. Apply repairs it.
    run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(service(&ecs, "dev-worker").await.unwrap().desired_count, 1);
    run(&["drift"]).expect(0);

    // 8. Remove the worker from the file: its service and repository are destroyed.
    let env = project.read("environments/dev.yaml");
    let start = env.find("  worker:\n").unwrap();
    let end = env.find("\nresources:").unwrap();
    project.write(
        "environments/dev.yaml",
        &format!("{}{}", &env[..start], &env[end..]),
    );
    let plan = run(&["plan"]).expect(0);
    assert!(
        plan.stdout()
            .contains("Plan: 0 to add, 0 to change, 0 to replace, 2 to destroy."),
        "{}",
        plan.stdout()
    );
    run(&["apply", "--auto-approve"]).expect(0);
    assert!(service(&ecs, "dev-worker").await.is_none());
    assert!(!repo_exists(&ecr, "dev-worker").await);
    assert!(repo_exists(&ecr, "dev-api").await);

    // 9. Destroy the rest, dependents first.
    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(service(&ecs, "dev-api").await.is_none());
    assert!(!repo_exists(&ecr, "dev-api").await);
    assert!(
        iam.get_role()
            .role_name("dev-ecs-execution")
            .send()
            .await
            .is_err()
    );
    let clusters = ecs
        .describe_clusters()
        .clusters("dev")
        .send()
        .await
        .unwrap()
        .clusters
        .unwrap_or_default();
    assert!(
        clusters
            .iter()
            .all(|c| c.status.as_deref() == Some("INACTIVE"))
    );
    assert_eq!(
        run(&["state", "list", "--format", "json"]).expect(0).json(),
        serde_json::json!([])
    );

    // 10. Every step is in the audit trail, and the chain holds.
    let events = run(&["audit", "log", "--format", "json"]).expect(0).json();
    let events = events.as_array().unwrap();
    let count = |operation: &str, action: &str| {
        events
            .iter()
            .filter(|e| {
                e["operation"] == operation && e["action"] == action && e["outcome"] != "failed"
            })
            .count()
    };
    assert_eq!(count("apply", "create"), 6);
    assert_eq!(
        count("apply", "update"),
        4,
        "count change, two new revisions, drift repair"
    );
    assert_eq!(count("apply", "delete"), 2);
    assert_eq!(count("destroy", "delete"), 4);
    assert_eq!(count("drift", "drift"), 2);
    assert!(events.iter().all(|e| e["actor"] == "tester"));
    let verify = run(&["audit", "verify"]).expect(0);
    assert!(verify.stdout().contains("intact"));

    // Editing one stored event breaks the chain at that event.
    let body = backend
        .fetch_text(
            project.root(),
            "dev",
            "SELECT body FROM audit_events WHERE seq = 3",
            &[],
        )
        .await;
    let tampered = body.replace("\"actor\":\"tester\"", "\"actor\":\"mallory\"");
    assert_ne!(body, tampered);
    let edited = backend
        .execute(
            project.root(),
            "dev",
            "UPDATE audit_events SET body = ? WHERE seq = 3",
            &[&tampered],
        )
        .await;
    assert_eq!(edited, 1);
    if let Backend::Postgres(_) = backend {
        assert!(
            !project.state_db("dev").exists(),
            "with a postgres:// state URL nothing may be written to the SQLite file"
        );
    }
    let broken = run(&["audit", "verify"]).expect(1);
    assert!(
        broken.stdout().contains("BROKEN at event 3"),
        "{}",
        broken.stdout()
    );
}

/// A sensitive `desired_count` is created with its value, as it is priced (it used to be
/// created as 1: the integer accessor did not look through the sensitive wrapper).
#[tokio::test(flavor = "multi_thread")]
async fn a_sensitive_desired_count_is_created_with_its_value() {
    let moto = Moto::start();
    let vars = moto.network();
    let p = Project::example().with_moto(&moto);
    p.edit(
        "environments/dev.yaml",
        "variables:\n",
        "variables:\n  api_count: { default: 3, sensitive: true }\n",
    );
    p.edit(
        "environments/dev.yaml",
        "      desired_count: 1\n      port: 8000",
        "      desired_count: \"${var.api_count}\"\n      port: 8000",
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["-e", "dev"];
        args.extend(vars.iter().map(String::as_str));
        args.extend(extra);
        p.converge(&args)
    };
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    let api = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "api.service")
        .unwrap()
        .clone();
    assert_eq!(api["after"]["desired_count"], "(sensitive)", "{api}");
    // Three Fargate tasks of 256 CPU units and 512 MiB: 3 × 9.010025 a month.
    let after = api["cost"]["after_monthly"].as_f64().unwrap();
    assert!((after - 3.0 * 9.010025).abs() < 1e-6, "{api}");
    run(&["apply", "--auto-approve"]).expect(0);
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk().await);
    let live = service(&ecs, "dev-api").await.expect("dev-api exists");
    assert_eq!(live.desired_count, 3);
    run(&["plan", "--detailed-exitcode"]).expect(0);
}
