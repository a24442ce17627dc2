//! A team's own docker-compose.yml as the source of a host app (issue 24 §1): read through the
//! real binary into the app's services and accessories, and refused with its location when it
//! asks for what converge cannot or may not do.

mod support;

use support::Project;

fn ghostworks() -> Project {
    Project::seed("ghostworks").with_env(vec![
        ("CONVERGE_VAR_DEPLOY_KEY".into(), "not-a-key".into()),
        ("CONVERGE_VAR_PG_PASSWORD".into(), "pg-secret-77".into()),
        (
            "CONVERGE_VAR_REGISTRY_PASSWORD".into(),
            "reg-secret-88".into(),
        ),
    ])
}

/// The example's compose file (anchors, merge keys, interpolation with defaults and a required
/// sensitive variable, health checks, depends_on, named volumes, hardening and limits) becomes
/// the staging app's two web services (routed by path), worker and accessories; the plan shows them, secrets masked.
#[test]
fn the_ghostworks_compose_file_becomes_the_staging_app() {
    let p = ghostworks();
    let run = p
        .converge(&["-e", "staging", "plan", "--format", "json"])
        .expect(0);
    let plan = run.json();
    let app = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "app")
        .expect("the app is planned")["after"]
        .clone();
    let api = &app["services"]["api"];
    assert_eq!(
        api["image"],
        "registry.ghostworks.example.com/ghostworks:v1.8.2"
    );
    assert_eq!(api["port"], 4000);
    assert_eq!(api["command"], serde_json::json!(["node", "api.js"]));
    assert_eq!(api["user"], "10001:10001");
    assert_eq!(api["env"]["NODE_ENV"], "staging");
    assert_eq!(api["env"]["REDIS_URL"], "redis://redis:6379/0");
    assert_eq!(api["secrets"], "(sensitive)");
    assert_eq!(api["runtime"]["read_only"], true);
    assert_eq!(api["runtime"]["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        api["runtime"]["security_opt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(api["runtime"]["tmpfs"], serde_json::json!(["/tmp"]));
    assert_eq!(api["runtime"]["memory"], 512 * 1024 * 1024);
    assert_eq!(api["runtime"]["cpus"], 1.0);
    assert_eq!(api["runtime"]["stop_grace_period"], "20s");
    assert_eq!(
        api["health"]["command"],
        serde_json::json!(["wget", "-qO-", "http://127.0.0.1:4000/api/healthz"])
    );
    assert_eq!(
        api["depends_on"],
        serde_json::json!({ "db": "service_healthy", "redis": "service_healthy" })
    );
    // The web front is a second web service, routed by the environment's `routes`.
    let web = &app["services"]["web"];
    assert_eq!(web["port"], 3000);
    assert_eq!(web["command"], serde_json::json!(["node", "server.js"]));
    assert_eq!(web["runtime"]["memory"], 256 * 1024 * 1024);
    assert_eq!(
        web["depends_on"],
        serde_json::json!({ "api": "service_healthy" })
    );
    assert_eq!(
        app["rollout"]["proxy"]["routes"],
        serde_json::json!([
            { "service": "api", "path": "/api", "server_name": null },
            { "service": "web", "path": "/", "server_name": null }
        ])
    );
    let worker = &app["services"]["worker"];
    assert!(worker["port"].is_null(), "{worker}");
    assert_eq!(worker["command"], serde_json::json!(["node", "worker.js"]));
    assert_eq!(worker["runtime"]["read_only"], true);
    let db = &app["accessories"]["db"];
    assert_eq!(
        db["volumes"],
        serde_json::json!(["ghostworks-staging_pg-data:/var/lib/postgresql/data"])
    );
    assert_eq!(
        db["health"]["command"],
        serde_json::json!(["/bin/sh", "-c", "pg_isready -U ghostworks"])
    );
    assert_eq!(db["runtime"]["stop_grace_period"], "60s");
    let redis = &app["accessories"]["redis"];
    assert_eq!(
        redis["command"],
        serde_json::json!(["redis-server", "--appendonly", "yes"])
    );
    assert_eq!(redis["runtime"]["memory"], 256 * 1024 * 1024);
    let text = run.stdout() + &run.stderr();
    assert!(!text.contains("pg-secret-77"), "{text}");
}

const ENV: &str = r#"environment: dev
providers: {}
variables:
  key: { sensitive: true, default: "k" }
  secret: { sensitive: true, default: "s3cr3t-value" }
resources:
  app:
    type: host.app
    properties:
      name: shop
      hosts: [{ address: 127.0.0.1 }]
      ssh: { private_key: "${var.key}" }
      compose: { file: ../compose.yaml }
      ALLOW
      rollout:
        proxy: { nginx: { server_name: shop.test } }
"#;

fn project(compose: &str, allow: &str) -> Project {
    let p = Project::empty();
    p.write("environments/dev.yaml", &ENV.replace("ALLOW", allow));
    p.write("compose.yaml", compose);
    p
}

/// Each class of bad compose file is refused at its place in the compose file, by `validate`
/// and `plan`, before anything is read from a host.
#[test]
fn bad_compose_files_are_refused_with_their_location() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "services:\n  web:\n    image: [\n",
            "compose.yaml:4:1",
            "invalid YAML",
        ),
        (
            "services:\n  web:\n    build: .\n",
            "compose.yaml:3:5",
            "`build` without `image`",
        ),
        (
            "services:\n  web:\n    image: a:1\n    depends_on: [db]\n",
            "compose.yaml:4:18",
            "`depends_on` names `db`, which is not a service of this file",
        ),
        (
            "services:\n  a:\n    image: a:1\n    depends_on: [b]\n  b:\n    image: b:1\n    depends_on: [a]\n",
            "compose.yaml:",
            "`depends_on` goes round in a circle",
        ),
        (
            "services:\n  web:\n    image: a:1\n    ports: [\"8080:80\"]\n  api:\n    image: b:1\n    ports: [\"8080:81\"]\n",
            "compose.yaml:7:13",
            "host port `8080` is published twice (at line 4)",
        ),
        (
            "services:\n  web:\n    image: a:1\n    secrets: [db]\nsecrets:\n  db: {}\n",
            "compose.yaml:6:3",
            "secret `db` has no source",
        ),
        (
            "services:\n  web:\n    image: a:1\n    secrets: [nope]\n",
            "compose.yaml:4:15",
            "secret `nope` is not declared under the file's top-level `secrets`",
        ),
        (
            "services:\n  web:\n    image: a:1\n    sysctls: { net.core.somaxconn: 1024 }\n",
            "compose.yaml:4:5",
            "converge does not support `sysctls` of a compose service",
        ),
        (
            "services:\n  web:\n    image: a:1\n    privileged: true\n",
            "compose.yaml:4:17",
            "refused unless the app's `allow: { privileged: true }`",
        ),
        (
            "services:\n  web:\n    image: a:1\n    network_mode: host\n",
            "compose.yaml:4:19",
            "refused unless the app's `allow: { host_network: true }`",
        ),
        (
            "services:\n  web:\n    image: a:1\n    cap_add: [NET_ADMIN]\n",
            "compose.yaml:4:15",
            "`cap_add: NET_ADMIN` is refused unless",
        ),
        (
            "services:\n  web:\n    image: a:1\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
            "compose.yaml:4:15",
            "a bind mount of the host's `/var/run/docker.sock` is refused",
        ),
        (
            "services:\n  web:\n    image: a:1\n    volumes: [\"data:/data\"]\n",
            "compose.yaml:4:15",
            "volume `data` is not declared",
        ),
        (
            "services:\n  web:\n    image: a:${MISSING:?set MISSING first}\n",
            "compose.yaml:3:12",
            "required variable `MISSING` is missing a value: set MISSING first",
        ),
        (
            "services:\n  web:\n    image: \"a:1\"\n    command: [\"run\", \"${secret}\"]\n",
            "compose.yaml:4:22",
            "a sensitive variable may only be used in `environment`",
        ),
        (
            "services:\n  web:\n    image: a:1\n    logging: { driver: syslog, options: { syslog-address: \"tcp://198.51.100.7:514\" } }\n",
            "compose.yaml:4:24",
            "logging driver `syslog` sends the container's output off the host",
        ),
        (
            "services:\n  web:\n    image: a:1\n    security_opt: [\"seccomp={\\\"defaultAction\\\":\\\"SCMP_ACT_ALLOW\\\"}\"]\n",
            "compose.yaml:4:20",
            "can lift the container's confinement",
        ),
        (
            "services:\n  Web_1:\n    image: a:1\n",
            "compose.yaml:2:3",
            "service name `Web_1`",
        ),
        (
            "services:\n  db:\n    image: a:1\n    volumes: [data:/d]\n    deploy: { replicas: 2 }\nvolumes: { data: {} }\n",
            "compose.yaml:5:25",
            "`2` replicas of an accessory",
        ),
        (
            "services:\n  web:\n    image: a:1\n    scale: 40\n",
            "compose.yaml:4:12",
            "`40` replicas: converge runs 1 to 32",
        ),
        (
            "services:\n  web:\n    image: a:1\n    ports: [\"80\"]\n  worker:\n    image: a:1\n    depends_on: { web: { condition: service_completed_successfully } }\n",
            "compose.yaml:7:19",
            "`web` has `ports`: a web service never completes",
        ),
        (
            "services:\n  db:\n    image: a:1\n    volumes: [data:/d]\n    depends_on: { init: { condition: service_completed_successfully } }\n  init:\n    image: a:1\nvolumes: { data: {} }\n",
            "compose.yaml:5:19",
            "accessory `db` depends on `init`, a service",
        ),
    ];
    let mut wrong = Vec::new();
    for (compose, at, message) in cases {
        let p = project(compose, "");
        for command in ["validate", "plan"] {
            let run = p.converge(&["-e", "dev", command]).expect(1);
            let err = run.stderr();
            if !(err.contains(at) && err.contains(message)) {
                wrong.push(format!(
                    "{command} of\n{compose}\nwants {at} {message}, got:\n{err}"
                ));
            }
            assert!(!err.contains("s3cr3t-value"), "{err}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n----\n"));
}

/// What the app's own `allow` lets a compose file ask for validates; without it, the same
/// file is refused (above).
#[test]
fn allow_lets_a_compose_file_have_what_it_names() {
    let p = project(
        "services:\n  web:\n    image: a:1\n    privileged: true\n    network_mode: host\n    cap_add: [NET_ADMIN]\n    volumes: [\"/srv/data/uploads:/uploads\"]\n",
        "allow: { privileged: true, host_network: true, capabilities: [NET_ADMIN], host_paths: [/srv/data] }",
    );
    p.converge(&["-e", "dev", "validate"]).expect(0);
    let p = project(
        "services:\n  web:\n    image: a:1\n    volumes: [\"/srv/other:/uploads\"]\n",
        "allow: { host_paths: [/srv/data] }",
    );
    let run = p.converge(&["-e", "dev", "validate"]).expect(1);
    assert!(
        run.stderr().contains("`/srv/other` is refused"),
        "{}",
        run.stderr()
    );
}

/// A secret from a sensitive variable becomes a 0400 file at /run/secrets/<name>, a config a
/// 0444 file; the plan shows neither value.
#[test]
fn secrets_and_configs_become_files_with_their_values_masked() {
    let p = project(
        "services:\n  web:\n    image: a:1\n    secrets: [db, { source: api, target: keys/api, mode: 0440 }]\n    configs: [site]\nsecrets:\n  db: { environment: secret }\n  api: { environment: secret }\nconfigs:\n  site: { content: \"hello ${key:+x}\" }\n",
        "",
    );
    let run = p
        .converge(&["-e", "dev", "plan", "--format", "json"])
        .expect(0);
    let plan = run.json();
    let files = &plan["changes"][0]["after"]["services"]["web"]["files"];
    assert_eq!(files["/run/secrets/db"]["secret"], "(sensitive)", "{files}");
    assert_eq!(files["/run/secrets/keys/api"]["mode"], "0440", "{files}");
    assert_eq!(files["/site"]["text"], "hello x", "{files}");
    assert!(
        !(run.stdout() + &run.stderr()).contains("s3cr3t-value"),
        "{}",
        run.stdout()
    );
    let p = project(
        "services:\n  web:\n    image: a:1\n    secrets: [db]\nsecrets:\n  db: { environment: plain }\n",
        "",
    );
    p.write(
        "environments/dev.yaml",
        &ENV.replace("ALLOW", "")
            .replace("variables:\n", "variables:\n  plain: visible\n"),
    );
    let run = p.converge(&["-e", "dev", "validate"]).expect(1);
    assert!(
        run.stderr().contains("compose.yaml:6:22")
            && run.stderr().contains("which must be sensitive"),
        "{}",
        run.stderr()
    );
}

/// The app's own `services` next to `compose` is an error where it is written; a property the
/// compose file gave that a rule refuses is located in the compose file.
#[test]
fn services_are_written_once_and_rules_point_into_the_compose_file() {
    let p = project(
        "services:\n  web:\n    image: a:1\n",
        "services: { web: { image: b:1 } }",
    );
    let run = p.converge(&["-e", "dev", "validate"]).expect(1);
    assert!(
        run.stderr().contains("environments/dev.yaml:14:17")
            && run
                .stderr()
                .contains("`services` come from the compose file"),
        "{}",
        run.stderr()
    );
    // An unset variable is Compose's warning (an empty string), with its place.
    let p = project(
        "services:\n  web:\n    image: a:1\n    environment: { A: \"x${UNSET}\" }\n",
        "",
    );
    let run = p.converge(&["-e", "dev", "validate"]).expect(0);
    assert!(
        run.stderr().contains("compose.yaml:4:23")
            && run.stderr().contains("variable `UNSET` is not set"),
        "{}",
        run.stderr()
    );
}
