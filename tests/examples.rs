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
    let p = Project::seed("raglite").with_moto(&moto).with_env(vec![
        ("CONVERGE_VAR_SLACK_WEBHOOK".into(), webhook.into()),
        (
            "CONVERGE_VAR_DATABASE_URL".into(),
            "postgres://u:p@db/raglite".into(),
        ),
    ]);
    let v = p.converge(&["validate"]).expect(0);
    for line in [
        "dev: valid (14 resources)",
        "staging: valid (40 resources)",
        "prod: valid (40 resources)",
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
    assert_eq!(rollout["health"]["alarms"][0], "raglite-prod-api-blue-5xx");
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

/// falkordb-proxy's promise, run for real: every environment applied against moto, a healthy
/// new sha switched over in staging, then a sha whose health check (through the test listener)
/// fails is rolled out with the example's own gates (probe every 5 s, two failures in a row) and
/// rolled back by itself; then everything is destroyed. The seconds from the start of the apply to the old
/// revision serving alone are measured and must stay under the two minutes the README promises.
#[tokio::test(flavor = "multi_thread")]
async fn falkordb_proxy_applies_everywhere_switches_over_and_rolls_back_a_failing_revision_within_two_minutes()
 {
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
    // dev and prod apply too (their probes point here as well).
    let other = |env: &str, extra: &[&str]| {
        let mut all: Vec<String> = vec!["-e".into(), env.into()];
        all.extend(moto.network_in("us-east-2"));
        all.push(format!("--var=health_url={}/healthz", health.base));
        all.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        p.converge(&refs)
    };
    for env in ["dev", "prod"] {
        other(env, &["apply", "--auto-approve"]).expect(0);
    }
    // A healthy new sha switches over (checks at 0% through the test listener, then 100%).
    run(&[
        "--var",
        "image_tag=sha-0c0ffee",
        "--var",
        "bake=1s",
        "--var",
        "interval=200ms",
        "--var",
        "termination_wait=1s",
        "apply",
        "--auto-approve",
    ])
    .expect(0);
    let status = run(&["rollout", "status", "proxy.service", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(status["rollouts"][0]["status"], "succeeded", "{status}");

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
    let ecs = aws_sdk_ecs::Client::new(&sdk_in(&moto, "us-east-2").await);
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
            .ends_with(":2"),
        "the healthy sha-0c0ffee serves alone: {sets:?}"
    );
    run(&["destroy", "--auto-approve"]).expect(0);
    for env in ["dev", "prod"] {
        other(env, &["destroy", "--auto-approve"]).expect(0);
    }
    for env in ["dev", "staging", "prod"] {
        let cluster = format!("falkordb-proxy-{env}");
        assert!(active_services(&ecs, &cluster).await.is_empty(), "{env}");
    }
}

#[test]
fn elspeth_plans_its_azure_resources_and_its_host_app() {
    let azure = AzureServer::start();
    let mut env = azure.env();
    env.push((
        "CONVERGE_VAR_DEPLOY_KEY".into(),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----".into(),
    ));
    env.push((
        "CONVERGE_VAR_DB_URL".into(),
        "postgres://elspeth:pw@db/elspeth".into(),
    ));
    let p = Project::seed("elspeth").with_env(env);
    p.converge(&["validate"]).expect(0);
    for env in ["dev", "prod"] {
        let plan = plan(&p, env);
        assert_eq!(plan["summary"]["add"], 6, "{env}");
        let ci = change(&plan, "ci");
        assert_eq!(ci["after"]["role_assignments"][0]["role"], "AcrPush");
        assert_eq!(
            ci["after"]["federated_credentials"][0]["issuer"],
            "https://token.actions.githubusercontent.com"
        );
        let vm = change(&plan, "worker_vm");
        assert_eq!(vm["after"]["role_assignments"][0]["role"], "AcrPull");
        let app = &change(&plan, "app")["after"];
        assert_eq!(app["registry"]["auth"]["acr"], true);
        assert_eq!(app["rollout"]["health"]["http"]["failures"], 2);
        assert_eq!(app["services"]["web"]["secrets"], "(sensitive)");
        assert_eq!(
            app["rollout"]["hooks"]["pre_traffic"][0]["run"][0],
            "alembic"
        );
        let text = plan.to_string();
        assert!(
            !text.contains("pw@db") && !text.contains("not-a-key"),
            "{text}"
        );
    }
    assert!(azure.violations().is_empty(), "{:?}", azure.violations());
}

/// An SDK configuration for `region` against moto.
async fn sdk_in(moto: &Moto, region: &str) -> aws_config::SdkConfig {
    moto.sdk()
        .await
        .into_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// Services of `cluster` that are ACTIVE, by name, with their primary task definition.
async fn active_services(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Vec<(String, String)> {
    let arns = ecs
        .list_services()
        .cluster(cluster)
        .send()
        .await
        .map(|o| o.service_arns.unwrap_or_default())
        .unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for chunk in arns.chunks(10) {
        let services = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap()
            .services
            .unwrap_or_default();
        for s in services
            .into_iter()
            .filter(|s| s.status.as_deref() == Some("ACTIVE"))
        {
            let td = s
                .task_sets
                .unwrap_or_default()
                .into_iter()
                .find(|t| t.status.as_deref() == Some("PRIMARY"))
                .and_then(|t| t.task_definition)
                .or(s.task_definition)
                .unwrap_or_default();
            out.push((s.service_name.unwrap_or_default(), td));
        }
    }
    out.sort();
    out
}

/// One build pushed under `tag` to every repository (the same layers, so the same digest).
async fn push_everywhere(ecr: &aws_sdk_ecr::Client, repos: &[String], tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": format!("sha256:{:0>64}", hex::encode(tag))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": format!("sha256:{:1>64}", hex::encode(tag))}],
    });
    for repo in repos {
        ecr.put_image()
            .repository_name(repo)
            .image_tag(tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .unwrap();
    }
}

const RAGLITE_SERVICES: [&str; 6] = [
    "api",
    "ingestion",
    "retrieval",
    "embeddings",
    "worker",
    "web",
];
const RAGLITE_CANARIES: [&str; 4] = ["api", "retrieval", "embeddings", "web"];

/// raglite for real against moto: every environment applied (prod only with what staging
/// proved), a successful canary of every service in staging, one rolled back on its error rate,
/// the live state checked through the SDK, then everything destroyed.
#[tokio::test(flavor = "multi_thread")]
async fn raglite_applies_every_environment_rolls_out_rolls_back_on_its_error_rate_and_destroys() {
    let moto = Moto::start();
    let http = TestHttp::start();
    let secret = "postgres://raglite:Db-pw-5521@db.internal/raglite";
    let p = Project::seed("raglite").with_moto(&moto).with_env(vec![
        (
            "CONVERGE_VAR_SLACK_WEBHOOK".into(),
            format!("{}/hook", http.base),
        ),
        ("CONVERGE_VAR_DATABASE_URL".into(), secret.into()),
    ]);
    let network: Vec<String> = moto.network_in("eu-west-1");
    let mut base = network.clone();
    for svc in RAGLITE_CANARIES {
        base.push(format!("--var={svc}_probe={}/health", http.base));
    }
    // dev has no rollouts, so no probes.
    let run = |env: &str, extra: &[&str]| {
        let mut all: Vec<&str> = vec!["-e", env];
        let vars = if env == "dev" { &network } else { &base };
        all.extend(vars.iter().map(String::as_str));
        all.extend(extra);
        p.converge(&all)
    };
    let sdk = sdk_in(&moto, "eu-west-1").await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);

    // The repositories first, then the builds CI would push, then everything.
    let mut repos = Vec::new();
    for env in ["staging", "prod"] {
        let mut args = vec!["apply", "--auto-approve"];
        let targets: Vec<String> = RAGLITE_SERVICES
            .iter()
            .map(|s| format!("{s}.repo"))
            .collect();
        for t in &targets {
            args.extend(["--target", t.as_str()]);
        }
        run(env, &args).expect(0);
        repos.extend(
            RAGLITE_SERVICES
                .iter()
                .map(|s| format!("raglite-{env}-{s}")),
        );
    }
    for tag in ["1.4.2", "1.4.3", "1.4.4"] {
        push_everywhere(&ecr, &repos, tag).await;
    }
    for env in ["dev", "staging", "prod"] {
        run(env, &["apply", "--auto-approve"]).expect(0);
        run(env, &["plan", "--detailed-exitcode"]).expect(0);
        let services = active_services(&ecs, &format!("raglite-{env}")).await;
        assert_eq!(services.len(), 6, "{env}: {services:?}");
    }
    // prod's gates name alarms its own files created, on the ALB and each target group.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let names: Vec<String> = RAGLITE_CANARIES
        .iter()
        .flat_map(|s| ["blue", "green"].map(|c| format!("raglite-prod-{s}-{c}-5xx")))
        .collect();
    let alarms = cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.clone()))
        .send()
        .await
        .unwrap()
        .metric_alarms
        .unwrap_or_default();
    assert_eq!(alarms.len(), 8, "{names:?}");
    for a in &alarms {
        let dims: Vec<String> = a
            .dimensions
            .iter()
            .flatten()
            .map(|d| format!("{}={}", d.name.clone().unwrap(), d.value.clone().unwrap()))
            .collect();
        assert!(
            dims.iter()
                .any(|d| d.starts_with("LoadBalancer=app/raglite-prod/"))
                && dims
                    .iter()
                    .any(|d| d.starts_with("TargetGroup=targetgroup/raglite-prod-")),
            "{dims:?}"
        );
    }
    // The database URL is a secret in Secrets Manager that only the execution role may read, and
    // the api reads exactly the version converge put.
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let described = sm
        .describe_secret()
        .secret_id("raglite/staging/database-url")
        .send()
        .await
        .unwrap();
    let secret_arn = described.arn.unwrap();
    let iam = aws_sdk_iam::Client::new(&sdk);
    let policy = iam
        .get_role_policy()
        .role_name("raglite-staging-ecs-execution")
        .policy_name("read-secrets")
        .send()
        .await
        .unwrap()
        .policy_document;
    let policy = percent_encoding::percent_decode_str(&policy)
        .decode_utf8_lossy()
        .to_string();
    assert!(policy.contains(&secret_arn), "{policy}");
    let state = std::fs::read(p.root().join("state/staging.db")).unwrap();
    assert!(!String::from_utf8_lossy(&state).contains(secret));

    // A successful canary of every service in staging.
    let fast = [
        "--var",
        "rollout_bake=1s",
        "--var",
        "rollout_interval=200ms",
    ];
    let mut args = vec!["--var", "version=1.4.3"];
    args.extend(fast);
    args.extend(["apply", "--auto-approve"]);
    run("staging", &args).expect(0);
    let services = active_services(&ecs, "raglite-staging").await;
    for (name, td) in &services {
        assert!(td.ends_with(":2"), "{name} runs {td}");
    }

    // The api's next revision raises its error rate: rolled back by its metric gate.
    let child = {
        let mut all: Vec<String> = vec!["-e".into(), "staging".into()];
        all.extend(base.iter().cloned());
        all.extend(
            [
                "--var",
                "version=1.4.4",
                "--var",
                "rollout_bake=120s",
                "--var",
                "rollout_interval=1s",
                "apply",
                "--auto-approve",
                "--target",
                "api.service",
            ]
            .map(String::from),
        );
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        p.command(&refs)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let new_group = loop {
        let status = run(
            "staging",
            &["rollout", "status", "api.service", "--format", "json"],
        )
        .expect(0)
        .json();
        let r = &status["rollouts"][0];
        if r["weights"] == serde_json::json!([90, 10]) && r["status"] == "running" {
            break r["new"]["target_group"].as_str().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never at 10%: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let moved = chrono::Utc::now();
    let boundary = moved.timestamp() - moved.timestamp().rem_euclid(60) + 60;
    let inside = std::time::UNIX_EPOCH + std::time::Duration::from_secs(boundary as u64 + 1);
    while std::time::SystemTime::now() < inside + std::time::Duration::from_secs(1) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let lb = elb
        .describe_load_balancers()
        .names("raglite-staging")
        .send()
        .await
        .unwrap()
        .load_balancers
        .unwrap()[0]
        .load_balancer_arn
        .clone()
        .unwrap();
    let dims = [
        (
            "LoadBalancer",
            lb.split_once(":loadbalancer/").unwrap().1.to_string(),
        ),
        (
            "TargetGroup",
            format!(
                "targetgroup/{}",
                new_group.split_once(":targetgroup/").unwrap().1
            ),
        ),
    ];
    for (metric, value) in [("HTTPCode_Target_5XX_Count", 20.0), ("RequestCount", 100.0)] {
        let mut datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name(metric)
            .value(value)
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(inside));
        for (k, v) in &dims {
            datum = datum.dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name(*k)
                    .value(v)
                    .build(),
            );
        }
        cloudwatch
            .put_metric_data()
            .namespace("AWS/ApplicationELB")
            .metric_data(datum.build())
            .send()
            .await
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("health.metrics.error_rate: error rate 20.0%"),
        "{stderr}"
    );
    let api = active_services(&ecs, "raglite-staging").await;
    let api = api
        .iter()
        .find(|(n, _)| n == "raglite-staging-api")
        .unwrap();
    assert!(api.1.ends_with(":2"), "the api is back on 1.4.3: {api:?}");

    // converge never deletes images: the builds go first, as a user would remove them.
    let dev_repos: Vec<String> = RAGLITE_SERVICES
        .iter()
        .map(|s| format!("raglite-dev-{s}"))
        .collect();
    for repo in repos.iter().chain(&dev_repos) {
        let ids = ecr
            .list_images()
            .repository_name(repo)
            .send()
            .await
            .unwrap()
            .image_ids
            .unwrap_or_default();
        if !ids.is_empty() {
            ecr.batch_delete_image()
                .repository_name(repo)
                .set_image_ids(Some(ids))
                .send()
                .await
                .unwrap();
        }
    }
    for env in ["prod", "staging", "dev"] {
        run(env, &["destroy", "--auto-approve"]).expect(0);
        assert!(
            active_services(&ecs, &format!("raglite-{env}"))
                .await
                .is_empty(),
            "{env}"
        );
    }
    let left = cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names))
        .send()
        .await
        .unwrap()
        .metric_alarms
        .unwrap_or_default();
    assert!(left.is_empty(), "the alarms went with prod");
}

/// examples/ghostworks: the app with Postgres and Redis accessories behind nginx, staging and
/// production on hosts; validates and plans (the plan reads no host: nothing is deployed yet).
#[test]
fn ghostworks_plans_its_app_and_accessories_in_both_environments() {
    let p = Project::seed("ghostworks").with_env(vec![
        ("CONVERGE_VAR_DEPLOY_KEY".into(), "not-a-key".into()),
        ("CONVERGE_VAR_PG_PASSWORD".into(), "pg-secret-77".into()),
        (
            "CONVERGE_VAR_REGISTRY_PASSWORD".into(),
            "reg-secret-88".into(),
        ),
    ]);
    p.converge(&["validate"]).expect(0);
    for (env, name) in [
        ("staging", "ghostworks-staging"),
        ("production", "ghostworks"),
    ] {
        let plan = plan(&p, env);
        assert_eq!(plan["summary"]["add"], 1, "{env}");
        let app = &change(&plan, "app")["after"];
        assert_eq!(app["name"], name);
        assert_eq!(app["accessories"]["db"]["image"], "postgres:16");
        assert_eq!(app["accessories"]["db"]["secrets"], "(sensitive)");
        assert_eq!(app["accessories"]["redis"]["command"][0], "redis-server");
        assert_eq!(app["registry"]["auth"]["basic"]["password"], "(sensitive)");
        let text = plan.to_string();
        assert!(
            !text.contains("pg-secret-77") && !text.contains("reg-secret-88"),
            "{text}"
        );
    }
}

/// examples/vardiologio: staging and prod, each with its own Secrets Manager secret feeding its
/// host app; validates and plans against moto.
#[test]
fn vardiologio_plans_a_secret_and_a_host_app_per_environment() {
    let moto = Moto::start();
    let p = Project::seed("vardiologio").with_moto(&moto).with_env(vec![
        ("CONVERGE_VAR_DEPLOY_KEY".into(), "not-a-key".into()),
        (
            "CONVERGE_VAR_DATABASE_URL".into(),
            "postgres://v:pw-4411@db/v".into(),
        ),
    ]);
    p.converge(&["validate"]).expect(0);
    for env in ["staging", "prod"] {
        let plan = plan(&p, env);
        assert_eq!(plan["summary"]["add"], 2, "{env}");
        let app = &change(&plan, "app")["after"];
        assert_eq!(app["name"], format!("vardiologio-{env}"));
        let web = &app["services"]["web"];
        if env == "prod" {
            // From the compose file: the secret is a file, its content masked.
            assert_eq!(
                web["files"]["/run/secrets/database_url"]["secret"], "(sensitive)",
                "{web}"
            );
            assert_eq!(web["env"]["VARDIOLOGIO_ENV"], "prod");
            assert_eq!(web["user"], "10001:10001");
        } else {
            assert_eq!(web["secrets"], "(sensitive)");
        }
        assert_eq!(app["rollout"]["health"]["http"]["failures"], 2);
        assert!(!plan.to_string().contains("pw-4411"));
    }
}
