//! The seed systems as example projects (`examples/raglite`, `examples/falkordb-proxy`,
//! `examples/elspeth`): every environment validates and plans against moto (and the local Azure
//! for elspeth), with the rollouts and costs their READMEs promise.

mod support;

use support::{AzureServer, Moto, Project, TestHttp};

/// Plans `env` and returns the JSON plan.
fn plan(p: &Project, env: &str) -> serde_json::Value {
    p.converge(&["-e", env, "plan", "--format", "json"])
        .expect(0)
        .json()
}

fn change<'a>(plan: &'a serde_json::Value, address: &str) -> &'a serde_json::Value {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("{address} in the plan"))
}

#[test]
fn raglite_six_services_in_three_environments() {
    let moto = Moto::start();
    let webhook = "https://hooks.example.test/services/raglite";
    let p = Project::seed("raglite")
        .with_moto(&moto)
        .with_env(vec![("CONVERGE_VAR_SLACK_WEBHOOK".into(), webhook.into())]);
    let v = p.converge(&["validate"]).expect(0);
    for line in [
        "dev: valid (14 resources)",
        "staging: valid (27 resources)",
        "prod: valid (27 resources)",
    ] {
        assert!(v.stdout().contains(line), "{line} in {}", v.stdout());
    }
    for env in ["dev", "staging", "prod"] {
        let plan = plan(&p, env);
        let services: Vec<&str> = plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == "aws.ecs_service")
            .map(|c| c["address"].as_str().unwrap())
            .collect();
        assert_eq!(services.len(), 6, "{env}: {services:?}");
        for svc in [
            "api",
            "ingestion",
            "retrieval",
            "embeddings",
            "worker",
            "web",
        ] {
            let repo = change(&plan, &format!("{svc}.repo"));
            assert_eq!(
                repo["after"]["image_tag_mutability"], "IMMUTABLE",
                "{env} {svc}"
            );
        }
        assert!(plan["cost"]["after_monthly"].as_f64().unwrap() > 0.0);
    }
    let prod = plan(&p, "prod");
    let api = change(&prod, "api.service");
    let rollout = &api["after"]["rollout"];
    assert_eq!(rollout["strategy"], "canary");
    assert_eq!(rollout["steps"], serde_json::json!([10, 50, 100]));
    assert_eq!(rollout["health"]["metrics"][0]["name"], "error_rate");
    assert_eq!(rollout["health"]["alarms"][0], "raglite-prod-api-5xx");
    // The Slack webhook comes from a sensitive variable: never in the plan.
    assert_eq!(rollout["notify"]["webhook"], "(sensitive)");
    assert!(!serde_json::to_string(&prod).unwrap().contains(webhook));
    assert!(
        !std::fs::read_to_string(p.root().join("environments/prod.yaml"))
            .unwrap()
            .contains("hooks.slack.com"),
        "no webhook URL committed in the example"
    );
    assert_eq!(rollout["cost"]["anomaly"]["lookback"], "7d");
    assert_eq!(rollout["cost"]["anomaly"]["threshold"], "50%");
    // 3 api tasks of 0.5 vCPU / 1 GB at eu-west-1 Fargate prices:
    // 3 × (0.5 × 0.04048 + 1 × 0.004445) × 730 = 54.05...
    let cost = api["cost"]["after_monthly"].as_f64().unwrap();
    assert!(
        (cost - 3.0 * (0.5 * 0.04048 + 0.004445) * 730.0).abs() < 1e-6,
        "{cost}"
    );
}

#[test]
fn falkordb_proxy_plans_blue_green_with_immutable_sha_tags() {
    let moto = Moto::start();
    let p = Project::seed("falkordb-proxy").with_moto(&moto);
    p.converge(&["validate"]).expect(0);
    for env in ["dev", "staging", "prod"] {
        let plan = plan(&p, env);
        let proxy = change(&plan, "proxy.service");
        let r = &proxy["after"]["rollout"];
        assert_eq!(r["strategy"], "blue_green", "{env}");
        assert_eq!(
            change(&plan, "proxy.repo")["after"]["image_tag_mutability"],
            "IMMUTABLE"
        );
        // The image is `<repository uri>:<image_tag>`, the uri known after apply; the tag is the
        // immutable git sha.
        assert!(
            std::fs::read_to_string(p.root().join(format!("environments/{env}.yaml")))
                .unwrap()
                .contains("  image_tag: sha-3f2a9c1 "),
            "{env}"
        );
        assert_eq!(r["termination_wait"], "15m");
    }
}

/// falkordb-proxy's promise, run for real: staging applied against moto, then a new sha whose
/// health check fails is rolled out with the example's own gates (probe every 5 s, two failures
/// in a row) and rolled back by itself. The seconds from the start of the apply to the old
/// revision serving alone are measured and must stay under the two minutes the README promises.
#[tokio::test(flavor = "multi_thread")]
async fn falkordb_proxy_rolls_back_a_failing_revision_within_two_minutes() {
    let moto = Moto::start();
    let health = TestHttp::start();
    let p = Project::seed("falkordb-proxy").with_moto(&moto);
    let mut args: Vec<String> = vec!["-e".into(), "staging".into()];
    args.extend(moto.network_in("us-east-2"));
    args.push(format!("--var=health_url={}/healthz", health.base));
    let run = |extra: &[&str]| {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(extra);
        p.converge(&all)
    };
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);

    health.set_status(503);
    let started = std::time::Instant::now();
    let failed = run(&["--var", "image_tag=sha-badbad1", "apply", "--auto-approve"]).expect(1);
    let to_restore = started.elapsed();
    assert!(
        failed
            .stderr()
            .contains("health.http: 2 consecutive failures"),
        "{}",
        failed.stderr()
    );
    let status = run(&["rollout", "status", "proxy.service", "--format", "json"])
        .expect(0)
        .json();
    let rollout = &status["rollouts"][0];
    assert_eq!(rollout["status"], "rolled_back", "{rollout}");
    assert_eq!(rollout["weights"], serde_json::json!([100, 0]), "{rollout}");
    let rollback_s = rollout["rollback_seconds"].as_f64().unwrap();
    println!(
        "falkordb-proxy: failing revision detected and old revision serving alone {:.1}s after apply started (rollback itself {rollback_s:.3}s)",
        to_restore.as_secs_f64()
    );
    assert!(to_restore.as_secs() < 120, "{to_restore:?}");

    // The old revision is still the only one: ECS lists one task set, on the first revision.
    let sdk = moto.sdk().await;
    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&sdk)
            .region(aws_sdk_ecs::config::Region::new("us-east-2"))
            .build(),
    );
    let services = ecs
        .describe_services()
        .cluster("falkordb-proxy-staging")
        .services("falkordb-proxy-staging")
        .send()
        .await
        .unwrap()
        .services
        .unwrap();
    let sets = services[0].task_sets.clone().unwrap_or_default();
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert!(
        sets[0]
            .task_definition
            .as_deref()
            .unwrap_or("")
            .ends_with(":1"),
        "{sets:?}"
    );
}

#[test]
fn elspeth_plans_across_azure_and_aws() {
    let moto = Moto::start();
    let azure = AzureServer::start();
    let p = Project::seed("elspeth")
        .with_moto(&moto)
        .with_env(azure.env());
    p.converge(&["validate"]).expect(0);
    for env in ["dev", "prod"] {
        let plan = plan(&p, env);
        assert_eq!(plan["summary"]["add"], 13, "{env}");
        let ci = change(&plan, "ci");
        assert_eq!(ci["after"]["role_assignments"][0]["role"], "AcrPush");
        assert_eq!(
            ci["after"]["federated_credentials"][0]["issuer"],
            "https://token.actions.githubusercontent.com"
        );
        let vm = change(&plan, "worker_vm");
        assert_eq!(vm["after"]["role_assignments"][0]["role"], "AcrPull");
        let web = &change(&plan, "web.service")["after"]["rollout"]["health"];
        assert_eq!(web["http"]["failures"], 2);
        assert_eq!(
            web["metrics"][0],
            serde_json::json!({"name": "error_rate", "max": 0.05, "for": "3m", "no_data": "wait", "on_fail": "rollback", "max_ratio_to_baseline": null})
        );
        assert_eq!(web["metrics"][1]["max_ratio_to_baseline"], 2.0);
        assert_eq!(web["metrics"][1]["on_fail"], "alert");
    }
    assert!(azure.violations().is_empty(), "{:?}", azure.violations());
}
