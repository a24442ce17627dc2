//! Bad input: each class of error names the file, line and column, and changes nothing.

mod support;

use support::{Moto, Project};

const GOOD: &str = r#"environment: dev
providers:
  aws: { region: us-east-1 }
variables:
  tag: v1
resources:
  repo:
    type: aws.ecr_repository
    properties:
      name: app
      image_tag_mutability: IMMUTABLE
  cluster:
    type: aws.ecs_cluster
    properties: { name: dev }
"#;

fn project_with(env: &str) -> Project {
    let p = Project::empty();
    p.write("environments/dev.yaml", env);
    p
}

fn expect_error(p: &Project, needles: &[&str]) {
    let run = p.converge(&["validate"]).expect(1);
    for needle in needles {
        assert!(
            run.stderr().contains(needle),
            "missing {needle:?} in:\n{}",
            run.stderr()
        );
    }
}

#[test]
fn a_good_file_validates() {
    let p = project_with(GOOD);
    let run = p.converge(&["validate"]).expect(0);
    assert!(run.stdout().contains("dev: valid (2 resources)"));
}

#[test]
fn unknown_keys_are_errors_with_location_and_hint() {
    let p = project_with(&GOOD.replace("image_tag_mutability", "image_tag_mutabilty"));
    expect_error(
        &p,
        &[
            "unknown key `image_tag_mutabilty`",
            "environments/dev.yaml:11:7",
            "did you mean `image_tag_mutability`?",
        ],
    );
    let p = project_with(&GOOD.replace("resources:", "resource:"));
    expect_error(&p, &["unknown key `resource`", "environments/dev.yaml:6:1"]);
}

#[test]
fn wrong_types_and_values_are_errors() {
    let p = project_with(&GOOD.replace(
        "properties: { name: dev }",
        "properties: { name: dev, container_insights: maybe }",
    ));
    expect_error(
        &p,
        &[
            "expected bool, found a string `maybe`",
            "environments/dev.yaml:14:50",
        ],
    );
    let p = project_with(&GOOD.replace("IMMUTABLE", "FROZEN"));
    expect_error(
        &p,
        &[
            "`FROZEN` is not one of MUTABLE, IMMUTABLE",
            "environments/dev.yaml:11:29",
        ],
    );
}

#[test]
fn dangling_references_are_errors() {
    let p = project_with(&GOOD.replace("name: app", "name: \"${var.missing}\""));
    expect_error(
        &p,
        &[
            "`${var.missing}`: no variable `missing`",
            "environments/dev.yaml:10:13",
        ],
    );
    let p = project_with(&GOOD.replace("name: dev }", "name: \"${repo.nope}\" }"));
    expect_error(
        &p,
        &[
            "aws.ecr_repository has no attribute `nope`",
            "environments/dev.yaml:14:25",
        ],
    );
}

#[test]
fn reference_cycles_are_errors() {
    let cyclic = GOOD
        .replace("name: app", "name: \"${cluster.arn}\"")
        .replace(
            "properties: { name: dev }",
            "properties: { name: \"${repo.arn}\" }",
        );
    let p = project_with(&cyclic);
    expect_error(
        &p,
        &[
            "reference cycle: cluster -> repo -> cluster",
            "environments/dev.yaml:12:3",
        ],
    );
}

#[test]
fn missing_module_inputs_are_errors() {
    let p = project_with(&format!(
        "{GOOD}modules:\n  api:\n    source: svc\n    inputs: {{ name: api }}\n"
    ));
    p.write(
        "modules/svc/module.yaml",
        "inputs:\n  name: { type: string }\n  port: { type: number }\nresources:\n  r:\n    type: aws.ecr_repository\n    properties: { name: \"${input.name}\" }\n",
    );
    expect_error(
        &p,
        &[
            "module `api` (source `svc`) is missing input `port`",
            "environments/dev.yaml:18:13",
        ],
    );
}

#[test]
fn var_flags_must_name_declared_variables_and_sensitive_values_stay_hidden() {
    let p = project_with(
        &GOOD
            .replace("  tag: v1", "  tag: v1\n  token: { sensitive: true }")
            .replace("name: app", "name: \"app-${var.token}\""),
    );
    // `validate` needs no secret (a pull request from a fork has none): the sensitive
    // variable without a value is checked as unknown and named; `plan` needs it.
    let checked = p.converge(&["validate"]).expect(0);
    assert!(
        checked
            .stderr()
            .contains("sensitive variables without a value, checked as unknown (plan and apply need them): token"),
        "{}",
        checked.stderr()
    );
    let missing = p.converge(&["plan", "-e", "dev"]).expect(1);
    assert!(
        missing.stderr().contains("variable `token` has no default"),
        "{}",
        missing.stderr()
    );
    let bad = p.converge(&["validate", "--var", "tokn=x"]).expect(1);
    assert!(bad.stderr().contains("declares no variable `tokn`"));
    let plan = p.converge(&[
        "plan",
        "-e",
        "dev",
        "--var",
        "token=hunter2",
        "--format",
        "json",
    ]);
    // No cloud configured for this test: the plan still renders from files and empty state.
    assert!(!plan.stdout().contains("hunter2") && !plan.stderr().contains("hunter2"));
}

#[test]
fn bad_input_changes_nothing_in_cloud_or_state() {
    let moto = Moto::start();
    let p = project_with(&GOOD.replace(
        "resources:",
        "resources:\n  broken: { type: aws.ecr_repository, properties: { nme: x } }",
    ))
    .with_moto(&moto);
    let run = p
        .converge(&["apply", "-e", "dev", "--auto-approve"])
        .expect(1);
    assert!(
        run.stderr().contains("unknown key `nme`"),
        "{}",
        run.stderr()
    );
    assert!(!p.state_db("dev").exists(), "no state was written");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repos = rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk().await);
        ecr.describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories
            .unwrap_or_default()
    });
    assert!(repos.is_empty(), "nothing was created: {repos:?}");
}

#[test]
fn the_example_project_validates_and_staging_plans_its_rollouts() {
    let p = Project::example();
    let run = p.converge(&["validate"]).expect(0);
    for line in [
        "dev: valid (6 resources)",
        "staging: valid (13 resources)",
        "prod: valid (13 resources)",
    ] {
        assert!(run.stdout().contains(line), "{line} in {}", run.stdout());
    }
    // A first plan reads nothing from the cloud: no state yet.
    let plan = p
        .converge(&["plan", "-e", "staging", "--format", "json"])
        .expect(0)
        .json();
    let service = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "api.service")
        .unwrap();
    assert_eq!(service["after"]["rollout"]["strategy"], "canary");
    assert_eq!(
        service["after"]["rollout"]["steps"],
        serde_json::json!([10, 50, 100])
    );
}

#[test]
fn rollout_blocks_are_checked_with_locations() {
    let p = project_with(&format!(
        "{GOOD}  svc:
    type: aws.ecs_service
    properties:
      name: svc
      cluster: dev
      task: {{ family: svc, cpu: 256, memory: 512, containers: [{{ name: app, image: nginx }}] }}
      network: {{ subnets: [subnet-1] }}
      rollout: {{ strategy: canary, bake: soon, cost: {{ max_run_rate_increase: lots }} }}
"
    ));
    expect_error(
        &p,
        &[
            "`soon` is not a duration",
            "environments/dev.yaml:22:42",
            "`lots` is not a percentage (write 50%)",
        ],
    );
}

#[test]
fn usage_figures_are_checked_like_properties() {
    let p = project_with(&GOOD.replace(
        "      image_tag_mutability: IMMUTABLE\n",
        "      image_tag_mutability: IMMUTABLE\n    usage: { storage_bg: 50 }\n",
    ));
    expect_error(
        &p,
        &["dev.yaml:12:14", "storage_bg", "did you mean `storage_gb`"],
    );
    let p = project_with(&GOOD.replace(
        "      image_tag_mutability: IMMUTABLE\n",
        "      image_tag_mutability: IMMUTABLE\n    usage: { storage_gb: lots }\n",
    ));
    expect_error(&p, &["dev.yaml:12:"]);
}

/// A lookback too long for date arithmetic is a clear usage error, not a panic (exit 101).
#[test]
fn cost_watch_refuses_an_absurd_lookback_with_a_message() {
    let p = project_with(GOOD);
    let run = p
        .converge(&["-e", "dev", "cost", "watch", "--lookback", "100000000d"])
        .expect(1);
    assert!(
        run.stderr().contains("--lookback is at most 3650d"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
}

/// A rollout record in state that cannot be decoded is an error naming the service, never a
/// rollout silently dropped from `rollout status`.
#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_rollout_record_is_an_error_not_forgotten() {
    let p = project_with(GOOD);
    p.converge(&["-e", "dev", "state", "list"]).expect(0);
    let inserted = support::Backend::Sqlite
        .execute(
            p.root(),
            "dev",
            "INSERT INTO rollouts (env, address, body, request, updated_at) VALUES (?, ?, ?, NULL, ?)",
            &["dev", "api.service", r#"{"id": 7, "strategy": []}"#, "2026-12-01T00:00:00Z"],
        )
        .await;
    assert_eq!(inserted, 1);
    let run = p.converge(&["-e", "dev", "rollout", "status"]).expect(1);
    assert!(
        run.stderr()
            .contains("the rollout record of api.service in state cannot be read"),
        "{}",
        run.stderr()
    );
    let run = p
        .converge(&["-e", "dev", "rollout", "abort", "api.service"])
        .expect(1);
    assert!(run.stderr().contains("cannot be read"), "{}", run.stderr());
}

/// A rollout's own rules fail `validate` and `plan` (they used to fail halfway through an
/// apply), each at the literal the user wrote: in the environment file when the value came
/// through a module input or a variable, not inside module.yaml.
#[test]
fn rollout_rules_fail_validate_and_plan_at_the_literal_in_the_environment_file() {
    let p = Project::example();
    let file = "environments/staging.yaml";
    p.edit(file, "      steps: [10, 50, 100]", "      steps: [50, 10]");
    p.edit(file, "  rollout_bake: 5m", "  rollout_bake: 1s");
    p.edit(
        file,
        "timeout: 2s, failures: 2 }",
        "timeout: 2s, failures: 0 }",
    );
    p.edit(
        file,
        "name: error_rate, max: 0.05",
        "name: error_rat, max: 0.05",
    );
    for command in ["validate", "plan"] {
        let run = p.converge(&["-e", "staging", command]).expect(1);
        let err = run.stderr();
        for needle in [
            "api.service: step 10 comes after 50: steps must increase",
            "environments/staging.yaml:37:19",
            "api.service: bake 1s is shorter than interval 10s",
            "environments/staging.yaml:16:17",
            "`0` is out of range: expected a whole number from 1 to 1000 (used as `${input.health}` at modules/rollout-service/module.yaml:",
            "environments/staging.yaml:41:86",
            "`error_rat` is not one of error_rate, p95_latency",
            "environments/staging.yaml:43:21",
        ] {
            assert!(err.contains(needle), "{command}: {needle:?} in:\n{err}");
        }
        // One error per literal, however many places use the value.
        assert_eq!(err.matches("`error_rat` is not one of").count(), 1, "{err}");
    }
    // The same bake given with --var has no literal in the files: the error points at the
    // reference that brought it in.
    let p = Project::example();
    let run = p
        .converge(&["-e", "staging", "--var", "rollout_bake=1s", "validate"])
        .expect(1);
    assert!(
        run.stderr().contains("environments/staging.yaml:38:13"),
        "{}",
        run.stderr()
    );
}

/// Numbers the cloud takes as 32-bit integers or ports are range-checked at their literal:
/// they used to be narrowed with `as i32` / `as u16` and truncated silently.
#[test]
fn out_of_range_and_fractional_numbers_are_errors_at_their_literal() {
    let p = Project::example();
    p.edit(
        "environments/staging.yaml",
        "      port: 8000",
        "      port: 70000",
    );
    p.edit(
        "environments/staging.yaml",
        "      desired_count: 2",
        "      desired_count: 2.5",
    );
    let run = p.converge(&["-e", "staging", "validate"]).expect(1);
    for needle in [
        "`70000` is out of range: expected a whole number from 1 to 65535",
        "environments/staging.yaml:26:13",
        "`2.5` is not a whole number: expected a whole number from 0 to 2147483647",
        "environments/staging.yaml:25:22",
    ] {
        assert!(
            run.stderr().contains(needle),
            "{needle:?} in:\n{}",
            run.stderr()
        );
    }
    let p = project_with(&GOOD.replace(
        "      image_tag_mutability: IMMUTABLE\n",
        "      image_tag_mutability: IMMUTABLE\n      lifecycle: { keep_last_images: 0 }\n",
    ));
    expect_error(&p, &["`0` is out of range", "environments/dev.yaml:12:38"]);
}

/// `notify.webhook` may come from a (sensitive) variable, given outside the files; a bad one
/// is an error that names the variable, never its value.
#[test]
fn a_webhook_from_a_sensitive_variable_is_checked_without_showing_it() {
    let with_hook = |value: &str| {
        let p = project_with(&GOOD.replace(
            "variables:\n",
            "notify: { webhook: \"${var.hook}\" }\nvariables:\n  hook: { sensitive: true }\n",
        ));
        p.with_env(vec![("CONVERGE_VAR_HOOK".into(), value.into())])
    };
    with_hook("https://hooks.example.test/x")
        .converge(&["validate"])
        .expect(0);
    let p = with_hook("ftp-secret-Zz");
    let run = p.converge(&["validate"]).expect(1);
    assert!(
        run.stderr()
            .contains("`notify.webhook` must be an http(s) URL, found the value of `${var.hook}`"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("ftp-secret-Zz"), "{}", run.stderr());
}

/// A secret nested in a host app's service (`services.web.secrets.DB`) given as a literal in
/// the file is an error at that literal, as a top-level secret is; a sensitive variable, or
/// the ARN of a Secrets Manager secret (which names a secret, not its value), is fine.
#[test]
fn a_literal_secret_inside_a_host_app_service_is_a_located_error() {
    let p = Project::empty();
    p.write(
        "environments/h.yaml",
        r#"environment: h
providers: {}
variables:
  key: { sensitive: true, default: "k" }
  token: { sensitive: true, default: "t" }
resources:
  app:
    type: host.app
    properties:
      name: lit
      hosts: [{ address: 127.0.0.1 }]
      ssh: { private_key: "${var.key}" }
      services:
        web:
          image: "app:v1"
          port: 8080
          secrets: { DB: hunter2, TOKEN: "${var.token}", REF: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", FAKE: "arn:hunter2" }
      rollout:
        proxy: { nginx: { server_name: lit.test } }
"#,
    );
    for command in ["validate", "plan"] {
        let run = p.converge(&["-e", "h", command]).expect(1);
        let err = run.stderr();
        assert!(
            err.contains("environments/h.yaml:17:26")
                && err.contains(
                    "`services.web.secrets.DB` is secret and must come from a sensitive variable"
                ),
            "{command}: {err}"
        );
        // `arn:hunter2` is no ARN: a secret in the file (issue 21).
        assert!(
            err.contains(
                "`services.web.secrets.FAKE` is secret and must come from a sensitive variable"
            ),
            "{command}: {err}"
        );
        // TOKEN and REF are fine: the errors are DB's and FAKE's.
        assert!(err.contains("2 errors in the desired-state files"), "{err}");
        assert!(
            !err.contains("secrets.TOKEN") && !err.contains("secrets.REF"),
            "{err}"
        );
    }
}

/// Two host apps of one environment on one host may not share a name or an nginx server: the
/// second is a located error naming the first; on other hosts, or with other names and
/// servers, they are fine.
#[test]
fn two_host_apps_colliding_on_a_host_is_a_located_error() {
    let app = |key: &str, name: &str, port: u16, server: &str| {
        format!(
            r#"  {key}:
    type: host.app
    properties:
      name: {name}
      hosts: [{{ address: 10.0.0.5, port: {port} }}]
      ssh: {{ private_key: "${{var.key}}" }}
      services: {{ web: {{ image: "app:v1", port: 8080 }} }}
      rollout:
        proxy: {{ nginx: {{ server_name: {server} }} }}
"#
        )
    };
    let p = Project::empty();
    let head = "environment: h\nproviders: {}\nvariables:\n  key: { sensitive: true, default: k }\nresources:\n";
    p.write(
        "environments/h.yaml",
        &format!(
            "{head}{}{}{}",
            app("shop", "shop", 22, "shop.test"),
            app("shop_again", "shop", 22, "other.test"),
            app("blog", "blog", 22, "shop.test"),
        ),
    );
    let run = p.converge(&["-e", "h", "validate"]).expect(1);
    let err = run.stderr();
    assert!(
        err.contains("shop_again: app name `shop` on 10.0.0.5:22 is already shop's")
            && err.contains("environments/h.yaml:18:13"),
        "{err}"
    );
    assert!(
        err.contains("blog: nginx server `shop.test` on port 80 on 10.0.0.5:22 is already shop's")
            && err.contains("environments/h.yaml:32:40"),
        "{err}"
    );
    assert!(err.contains("2 errors"), "{err}");
    // The same app name on another host (staging beside prod on their own VMs) is fine.
    p.write(
        "environments/h.yaml",
        &format!(
            "{head}{}{}",
            app("shop", "shop", 22, "shop.test"),
            app("shop_b", "shop", 2222, "shop.test"),
        ),
    );
    p.converge(&["-e", "h", "validate"]).expect(0);
}

/// Routes to several web services are checked where they are written: two services with a port
/// and no routes, a service with a port no route reaches, a route to a service without a port
/// (or to none), two routes taking one server name and path, a path nginx would read as more
/// than a prefix, and routes without converge's own server block.
#[test]
fn routes_to_web_services_are_checked_at_their_place() {
    let env = |services: &str, proxy: &str| {
        format!(
            r#"environment: r
providers: {{}}
variables:
  key: {{ sensitive: true, default: "k" }}
resources:
  app:
    type: host.app
    properties:
      name: routed
      hosts: [{{ address: 127.0.0.1 }}]
      ssh: {{ private_key: "${{var.key}}" }}
      services:
{services}
      rollout:
        proxy: {proxy}
"#
        )
    };
    let two = "        web: { image: \"app:v1\", port: 8080 }\n        api: { image: \"app:v1\", port: 8081 }\n        worker: { image: \"app:v1\" }";
    let nginx = "nginx: { server_name: r.test }";
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "no routes",
            format!("{{ {nginx} }}"),
            &[
                "environments/r.yaml:13:",
                "`api` and `web` both have a port: say which requests go to which in `rollout.proxy.routes`",
            ],
        ),
        (
            "unreached",
            format!("{{ {nginx}, routes: [{{ service: web }}] }}"),
            &["`api` has a port but no route in `rollout.proxy.routes` reaches it"],
        ),
        (
            "to a worker, to nothing",
            format!(
                "{{ {nginx}, routes: [{{ service: web }}, {{ service: api, path: /api }}, {{ service: worker, path: /w }}, {{ service: ghost, path: /g }}] }}"
            ),
            &[
                "`worker` has no `port`: nginx can only route to a web service",
                "no service `ghost` in services",
            ],
        ),
        (
            "taken twice",
            format!(
                "{{ {nginx}, routes: [{{ service: web }}, {{ service: api, path: / }}] }}"
            ),
            &["routes 0 and 1 both take r.test/"],
        ),
        (
            "not a prefix",
            format!(
                "{{ {nginx}, routes: [{{ service: web }}, {{ service: api, path: \"~* \\\\.php$\" }}] }}"
            ),
            &["environments/r.yaml:17:", "is not a path prefix"],
        ),
        (
            "no server block",
            "{ nginx: { server_name: r.test, server: false }, routes: [{ service: web }, { service: api, path: /api }] }".to_string(),
            &["routes are locations in converge's own server block"],
        ),
    ];
    for (case, proxy, needles) in cases {
        let p = Project::empty();
        p.write("environments/r.yaml", &env(two, &proxy));
        let run = p.converge(&["-e", "r", "validate"]).expect(1);
        for needle in needles {
            assert!(
                run.stderr().contains(needle),
                "{case}: missing {needle:?} in:\n{}",
                run.stderr()
            );
        }
    }
    // One route each: fine.
    let p = Project::empty();
    p.write(
        "environments/r.yaml",
        &env(
            two,
            &format!("{{ {nginx}, routes: [{{ service: web }}, {{ service: api, path: /api/v1 }}, {{ service: api, server_name: api.r.test }}] }}"),
        ),
    );
    p.converge(&["-e", "r", "validate"]).expect(0);
}

/// Jobs are checked where they are written: a job with a port, `service_completed_successfully`
/// of a service that is not a job, and an accessory waiting for a job.
#[test]
fn jobs_and_what_waits_for_them_are_checked_at_their_place() {
    let p = Project::empty();
    p.write(
        "environments/j.yaml",
        r#"environment: j
providers: {}
variables:
  key: { sensitive: true, default: "k" }
resources:
  app:
    type: host.app
    properties:
      name: jobs
      hosts: [{ address: 127.0.0.1 }]
      ssh: { private_key: "${var.key}" }
      services:
        web: { image: "app:v1", port: 8080, depends_on: { worker: service_completed_successfully } }
        worker: { image: "app:v1" }
        migrate: { image: "app:v1", job: true, port: 9000 }
      accessories:
        db: { image: "db:1", depends_on: { migrate: service_completed_successfully } }
      rollout:
        proxy: { nginx: { server_name: j.test } }
"#,
    );
    let run = p.converge(&["-e", "j", "validate"]).expect(1);
    let err = run.stderr();
    for needle in [
        "environments/j.yaml:13:",
        "`worker` is not a job (`job: true`): only a job completes",
        "`migrate` is a job: it runs to completion, so nginx has nothing to route to",
        "accessory `db` waits for job `migrate`",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
