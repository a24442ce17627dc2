//! Apps on hosts (issue 15) with the real binary against a real host on loopback: OpenSSH's
//! server letting in a non-root deploy user, nginx with a default site, the machine's Docker
//! Engine, and a test app built FROM scratch with busybox (`tests/fixtures/hostapp`).

mod support;

use support::hosts::{KeepAliveClient, TestHost, TestRegistry, app_image};
use support::isolated_host::IsolatedHost;
use support::{Project, Run};

/// A project whose environment `test` has one host app `name` on `host` with `props` (YAML
/// lines of its properties besides name, hosts and ssh, indented six spaces) and `variables`
/// besides `deploy_key` and `tag` (indented two).
fn project_with(host: &TestHost, name: &str, variables: &str, props: &str) -> Project {
    host.owns(name);
    let p = Project::empty().with_env(vec![("CONVERGE_VAR_DEPLOY_KEY".into(), host.key())]);
    p.write(
        "environments/test.yaml",
        &format!(
            r#"environment: test
providers: {{}}
variables:
  deploy_key: {{ sensitive: true }}
  tag: {{ default: v1 }}
{variables}
resources:
  app:
    type: host.app
    properties:
      name: {name}
      hosts: [{{ address: 127.0.0.1, port: {port}, user: converge-deploy }}]
      ssh: {{ known_hosts: known_hosts, private_key: "${{var.deploy_key}}" }}
{props}"#,
            port = host.ssh_port,
        ),
    );
    p
}

/// A project with one host app `name` on `host`, its image tag from `--var tag=…`.
fn project(host: &TestHost, name: &str, extra_rollout: &str) -> Project {
    let data = host.data(name);
    project_with(
        host,
        name,
        "",
        &format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          volumes: ["{data}:/data"]
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        hooks:
          pre_traffic: [{{ service: web, run: ["app", "migrate"] }}]
          on_rollback: [{{ service: web, run: ["app", "rollback"] }}]
        bake: 3s
        interval: 500ms
        health: {{ http: {{ path: /health, failures: 2 }} }}
        drain_timeout: 2s
        keep_previous: 1s
{extra_rollout}"#,
            data = data.display(),
            proxy = host.proxy_yaml(&format!("{name}.test")),
        ),
    )
}

/// Runs converge in `p` with extra environment variables.
fn converge_with(p: &Project, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = p.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap(), args)
}

/// Everything a run printed (progress goes to stderr).
fn printed(run: &support::Run) -> String {
    format!("{}{}", run.stdout(), run.stderr())
}

fn migrations(host: &TestHost, name: &str) -> Vec<String> {
    std::fs::read_to_string(host.data(name).join("migrations"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// v1, then v2 blue/green while a keep-alive client sends requests through nginx the whole
/// time: not one fails, the version it sees changes once, the migration ran once before the
/// switch, v1 is stopped after the drain and removed by the next deploy after keep_previous;
/// the default site keeps working. Then the live colour stopped by hand is drift (exit 2,
/// naming host and service), and apply repairs it.
#[test]
fn blue_green_switches_without_a_failed_request_and_drift_is_repaired() {
    let name = "bg-switch";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let p = project(&host, name, "");
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ])
        .expect(0);
    assert!(
        printed(&out).contains("rollout complete"),
        "{}",
        printed(&out)
    );
    assert_eq!(host.get("bg-switch.test", "/"), (200, "v1\n".into()));
    assert_eq!(migrations(&host, name), vec!["migrate v1"]);

    let client = KeepAliveClient::start(host.http_port, "bg-switch.test");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2",
        ])
        .expect(0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let seen = client.finish();
    assert!(seen.failed.is_empty(), "failed requests: {:?}", seen.failed);
    assert_eq!(seen.versions, vec!["v1", "v2"], "{seen:?}");
    assert!(seen.ok > 20, "{seen:?}");
    assert_eq!(migrations(&host, name), vec!["migrate v1", "migrate v2"]);
    let text = printed(&out);
    let hook = text.find("hook ok").expect("hook ok");
    let switch = text.find("rollout switch").expect("rollout switch");
    assert!(
        hook < switch,
        "the migration runs before the switch:\n{text}"
    );
    // The old colour (blue, v1) is stopped, kept for keep_previous.
    assert_eq!(
        host.inspect("bg-switch-web-blue", "{{.State.Status}}"),
        "exited"
    );
    assert_eq!(
        host.inspect("bg-switch-web-green", "{{.Config.Image}}"),
        "converge-test/bg-switch:v2"
    );
    assert_eq!(
        support::hosts::http_get(host.default_port, "localhost", "/"),
        (200, "default site\n".into())
    );

    // A no-op apply changes nothing.
    p.converge(&[
        "plan",
        "--env",
        "test",
        "--var",
        "tag=v2",
        "--detailed-exitcode",
    ])
    .expect(0);
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);

    // The live colour stopped by hand: drift names host and service; apply repairs it. Past
    // keep_previous, drift removes the old colour (stopped by the deploy), never the live one.
    std::process::Command::new("docker")
        .args(["stop", "bg-switch-web-green"])
        .output()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let drift = p
        .converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(2);
    let text = printed(&drift);
    assert!(
        text.contains(&format!(
            "(bg-switch-web-green exited on 127.0.0.1:{})",
            host.ssh_port
        )),
        "{text}"
    );
    assert_eq!(host.inspect("bg-switch-web-blue", "{{.State.Status}}"), "");
    assert_eq!(
        host.inspect("bg-switch-web-green", "{{.State.Status}}"),
        "exited"
    );
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--var",
        "tag=v2",
    ])
    .expect(0);
    assert_eq!(host.get("bg-switch.test", "/"), (200, "v2\n".into()));
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);
    // Drift removed what stopped more than keep_previous ago (green, stopped by hand before
    // the repair made it the old colour): only the live colour is left.
    assert_eq!(host.containers(name), vec!["bg-switch-web-blue running"]);
}

/// A canary on a host: nginx splits requests between both colours by each step's weight (the
/// share a client counts is within a few points of the step), a `pause` step exits 3 and
/// `rollout promote` from another process continues it, no request fails, and at 100% only the
/// new colour serves; `plan` shows the app's change as a canary with its steps.
#[test]
fn a_canary_on_a_host_splits_requests_by_step_and_pauses_for_promote() {
    let name = "canary";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let p = project(
        &host,
        name,
        "        strategy: canary\n        steps: [20, pause, 60, pause, 100]\n",
    );
    let server = format!("{name}.test");
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    // The first deploy has no old colour to split with: all at once, no pause.
    apply("v1").expect(0);
    assert_eq!(host.get(&server, "/"), (200, "v1\n".into()));
    // converge's file as releases before access logs wrote it (no log lines) is not drift.
    let conf = host
        .dir
        .path()
        .join("converge")
        .join(format!("{name}.conf"));
    let current = std::fs::read_to_string(&conf).unwrap();
    assert!(current.contains("access_log "), "{current}");
    let older: String = current
        .lines()
        .filter(|l| !l.starts_with("log_format converge_") && !l.starts_with("    access_log "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&conf, older).unwrap();
    let drift = p
        .converge(&["drift", "--env", "test", "--var", "tag=v1"])
        .expect(0);
    assert!(!drift.stdout().contains("edited"), "{}", drift.stdout());

    let plan = p
        .converge(&["plan", "--env", "test", "--var", "tag=v2"])
        .expect(0);
    assert!(
        plan.stdout()
            .contains("canary 20% → pause → 60% → pause → 100%"),
        "{}",
        plan.stdout()
    );
    // Every answer through nginx during the rollout: (v1, v2) counts; none may fail.
    let count = |n: usize| {
        let (mut old, mut new) = (0, 0);
        for _ in 0..n {
            match host.get(&server, "/") {
                (200, body) if body == "v1\n" => old += 1,
                (200, body) if body == "v2\n" => new += 1,
                other => panic!("a request failed during the canary: {other:?}"),
            }
        }
        (old, new)
    };
    let paused = apply("v2").expect(3);
    assert!(printed(&paused).contains("paused"), "{}", printed(&paused));
    let (old, new) = count(50);
    assert!(
        (5..=16).contains(&new),
        "20% step: {new} of {} new",
        old + new
    );
    let status = p
        .converge(&[
            "rollout", "status", "--env", "test", "app", "--format", "json",
        ])
        .expect(0)
        .json();
    let rollout = &status["rollouts"][0];
    assert_eq!(rollout["status"], "paused", "{rollout}");
    assert_eq!(rollout["weights"], serde_json::json!([80, 20]), "{rollout}");
    assert_eq!(rollout["target"]["type"], "host", "{rollout}");
    // A paused canary's split file is the rollout's, not drift.
    let drift = p
        .converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);
    assert!(!drift.stdout().contains("edited"), "{}", drift.stdout());

    let promote = |expect: i32| {
        p.converge(&[
            "rollout", "promote", "--env", "test", "--var", "tag=v2", "app",
        ])
        .expect(expect)
    };
    promote(3);
    let (old, new) = count(50);
    assert!(
        (22..=38).contains(&new),
        "60% step: {new} of {} new",
        old + new
    );
    let text = printed(&promote(0));
    assert_eq!(count(20), (0, 20), "only the new colour serves: {text}");
    let names = host.containers(name);
    assert!(
        names.iter().filter(|n| n.contains("running")).count() == 1,
        "the old colour is stopped: {names:?}"
    );
}

/// `traffic: { sticky: cookie }`: during a canary step a client keeps the colour it first got
/// (nginx sets converge's cookie and reads it back), clients without it are still split by the
/// step's weight, a cookie that names no colour is a new client, and at 100% everyone gets the
/// new colour whatever their cookie says.
#[test]
fn a_sticky_canary_keeps_each_client_on_its_colour() {
    let name = "sticky";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let p = project(
        &host,
        name,
        "        strategy: canary\n        steps: [30, pause, 100]\n        traffic: { sticky: cookie }\n",
    );
    let server = format!("{name}.test");
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    apply("v1").expect(0);
    apply("v2").expect(3);
    let get = |cookie: Option<&str>| {
        let (status, head, body) =
            support::hosts::http_get_with_cookie(host.http_port, &server, "/", cookie);
        assert_eq!(status, 200, "{head}");
        (head, body)
    };
    // New clients are split by the step's weight, and each is told its colour.
    let mut new = 0;
    for _ in 0..50 {
        let (head, body) = get(None);
        let colour = if body == "v2\n" { "green" } else { "blue" };
        assert!(
            head.contains(&format!(
                "Set-Cookie: converge_sticky={colour}; Path=/; HttpOnly"
            )),
            "{head}"
        );
        new += usize::from(body == "v2\n");
    }
    assert!((6..=26).contains(&new), "30% step: {new} of 50 new");
    // A client that has a colour keeps it.
    for (cookie, version) in [
        ("converge_sticky=green", "v2\n"),
        ("converge_sticky=blue", "v1\n"),
    ] {
        for _ in 0..20 {
            assert_eq!(get(Some(cookie)).1, version, "{cookie}");
        }
    }
    // A cookie that names no colour is a new client, never a way into nginx's file.
    let (head, _) = get(Some("converge_sticky=purple;evil"));
    assert!(
        head.contains("converge_sticky=blue;") || head.contains("converge_sticky=green;"),
        "{head}"
    );
    p.converge(&[
        "rollout", "promote", "--env", "test", "--var", "tag=v2", "app",
    ])
    .expect(0);
    for _ in 0..10 {
        assert_eq!(get(Some("converge_sticky=blue")).1, "v2\n");
    }
}

/// Gates from what nginx saw: converge's server block logs each request as JSON, and a canary
/// whose new colour answers 500 to a third of a client's requests is rolled back by
/// `error_rate` (Elspeth's rule, seconds instead of minutes) at its first step, with the
/// figures it judged in the error, `rollout status` and the webhook; the old colour serves.
#[test]
fn an_error_rate_read_from_nginx_rolls_a_canary_back_with_its_figures() {
    let name = "errgate";
    for v in ["v1", "v2-errors"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let receiver = support::TestHttp::start();
    let p = project_with(
        &host,
        name,
        "",
        &format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        strategy: canary
        steps: [50, 100]
        proxy: {proxy}
        bake: 20s
        interval: 500ms
        health:
          metrics: [{{ name: error_rate, max: 0.05, for: 30s, min_requests: 10 }}]
        drain_timeout: 2s
        notify: {{ webhook: "{hook}/hook" }}
"#,
            proxy = host.proxy_yaml(&format!("{name}.test")),
            hook = receiver.base,
        ),
    );
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    apply("v1").expect(0);
    // A client asks for /cgi-bin/flaky all along (the old colour answers 404 to it).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (stop, port, server) = (stop.clone(), host.http_port, format!("{name}.test"));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                support::hosts::http_get(port, &server, "/cgi-bin/flaky");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let started = std::time::Instant::now();
    let out = apply("v2-errors").expect(1);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    client.join().unwrap();
    let text = printed(&out);
    assert!(text.contains("health.metrics.error_rate"), "{text}");
    assert!(
        text.contains("requests of the new colour answered 5xx"),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "rolled back before the 20 s bake ended: {text}"
    );
    assert_eq!(host.get(&format!("{name}.test"), "/"), (200, "v1\n".into()));
    let status = p
        .converge(&[
            "rollout", "status", "--env", "test", "app", "--format", "json",
        ])
        .expect(0)
        .json();
    let rollout = &status["rollouts"][0];
    assert_eq!(rollout["status"], "rolled_back", "{rollout}");
    assert!(
        rollout["gates"].as_array().unwrap().iter().any(|g| {
            g["gate"] == "health.metrics.error_rate"
                && g["outcome"] == "fail"
                && g["detail"].as_str().unwrap().contains("of the new colour")
        }),
        "{rollout}"
    );
    let told = receiver
        .hooks()
        .into_iter()
        .rfind(|h| h["event"] == "rollback")
        .expect("the rollback is posted");
    assert!(
        told["reason"].as_str().unwrap().contains("error rate"),
        "{told}"
    );
    assert!(told["rollback_seconds"].as_f64().is_some(), "{told}");
}

/// v3 failing its health check never gets traffic (v2 serves, exit 1); v4 healthy alone but
/// failing behind the proxy (`failures: 2`) is switched back within one interval, on_rollback
/// ran once, and the reason is in `rollout status` and the audit trail. The app's
/// `rollout.notify.webhook` hears each of them (the rollback with its gate, figures and
/// seconds to restore), and an apply that fails outside a rollout (an image tag the registry
/// does not hold).
#[test]
fn a_failing_colour_never_serves_and_a_failing_gate_switches_back() {
    let name = "bg-fail";
    for v in ["v1", "v2-broken", "v3-sour"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let receiver = support::TestHttp::start();
    let p = project(
        &host,
        name,
        &format!(
            "        notify: {{ webhook: \"{}/hook\" }}\n",
            receiver.base
        ),
    );
    let heard = |event: &str| -> Vec<serde_json::Value> {
        receiver
            .hooks()
            .into_iter()
            .filter(|h| h["event"] == event)
            .collect()
    };
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ])
    .expect(0);
    let complete = heard("rollout complete");
    assert_eq!(complete.len(), 1, "{:?}", receiver.hooks());
    assert!(
        complete[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("converge test app: rollout complete"),
        "{}",
        complete[0]
    );
    assert!(!heard("rollout start").is_empty(), "{:?}", receiver.hooks());

    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2-broken",
        ])
        .expect(1);
    assert!(printed(&out).contains("not ready"), "{}", printed(&out));
    assert!(
        !heard("rollout not ready").is_empty() || !heard("apply failed").is_empty(),
        "a colour that never got ready is told: {:?}",
        receiver.hooks()
    );
    assert_eq!(host.get("bg-fail.test", "/"), (200, "v1\n".into()));
    assert_eq!(
        migrations(&host, name),
        vec!["migrate v1"],
        "a colour that is not healthy runs no hook"
    );

    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v3-sour",
        ])
        .expect(1);
    let text = printed(&out);
    assert!(text.contains("health.http"), "{text}");
    assert_eq!(host.get("bg-fail.test", "/"), (200, "v1\n".into()));
    let rolled_back = heard("rollback");
    let told = rolled_back.last().expect("the rollback is posted");
    assert!(
        told["reason"].as_str().unwrap().contains("health.http"),
        "{told}"
    );
    assert!(told["rollback_seconds"].as_f64().unwrap() >= 0.0, "{told}");
    assert!(
        told["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gate"] == "health.http" && g["outcome"] == "fail"),
        "the gate and what it saw: {told}"
    );
    assert_eq!(
        migrations(&host, name),
        vec!["migrate v1", "migrate v3-sour", "rollback v3-sour"],
        "on_rollback ran once"
    );
    let status = p
        .converge(&[
            "rollout", "status", "--env", "test", "app", "--format", "json",
        ])
        .expect(0)
        .json();
    let status_text = status.to_string();
    assert!(
        status_text.contains("rolled_back") && status_text.contains("health.http"),
        "{status_text}"
    );
    let audit = p
        .converge(&["audit", "log", "--env", "test"])
        .expect(0)
        .stdout();
    assert!(
        audit.contains("rollback") && audit.contains("health.http"),
        "{audit}"
    );
    // Only the live colour runs; the failed ones are gone.
    let names = host.containers(name);
    assert!(names.iter().all(|n| !n.contains("green")), "{names:?}");

    // A tag the registry does not hold fails the apply before any colour starts: no rollout
    // event says so, the apply's own post does.
    let before = heard("apply failed").len();
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--var",
        "tag=v9-missing",
    ])
    .expect(1);
    let failed = heard("apply failed");
    assert_eq!(failed.len(), before + 1, "{:?}", receiver.hooks());
    let told = failed.last().unwrap();
    assert_eq!(told["address"], "app", "{told}");
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .starts_with("converge test app: apply failed while updating"),
        "{told}"
    );
    assert_eq!(host.get("bg-fail.test", "/"), (200, "v1\n".into()));
}

/// A secret with `$`, quotes, spaces and a newline reaches the container's environment exactly
/// and appears in no output, plan file, state or audit event. The image comes from a registry
/// with basic auth: a wrong password fails with a clear message and changes nothing on the
/// host, and no registry credential is left there after a pull.
#[test]
fn secrets_reach_the_container_exactly_and_registry_logins_leave_nothing() {
    let name = "secrets";
    let registry = TestRegistry::start("pusher", "registry-pw-5f3a");
    let image = registry.push(&app_image(name, "v1"), "secrets/app:v1");
    let host = TestHost::start();
    let weird = "a $HOME 'single' \"double\"  two spaces\nsecond line";
    let p = project_with(
        &host,
        name,
        "  weird: { sensitive: true }\n  registry_password: { sensitive: true }\n",
        &format!(
            r#"      registry: {{ server: "{server}", auth: {{ basic: {{ username: pusher, password: "${{var.registry_password}}" }} }} }}
      services:
        web:
          image: "{image}"
          port: 8080
          env: {{ PLAIN: visible, DOCKER_HOST: "tcp://192.0.2.1:2375", LD_PRELOAD: /nonexistent.so }}
          secrets: {{ WEIRD: "${{var.weird}}" }}
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
"#,
            server = registry.server,
            proxy = host.proxy_yaml("secrets.test"),
        ),
    );
    let wrong = [
        ("CONVERGE_VAR_WEIRD", weird),
        ("CONVERGE_VAR_REGISTRY_PASSWORD", "not-it"),
    ];
    let out = converge_with(
        &p,
        &wrong,
        &[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ],
    )
    .expect(1);
    let text = printed(&out);
    assert!(
        text.contains(&format!("docker login {} failed", registry.server)),
        "{text}"
    );
    assert!(
        host.containers(name).is_empty(),
        "nothing started: {:?}",
        host.containers(name)
    );
    assert!(!host.dir.path().join("converge/secrets.conf").exists());

    let right = [
        ("CONVERGE_VAR_WEIRD", weird),
        ("CONVERGE_VAR_REGISTRY_PASSWORD", registry.password.as_str()),
    ];
    let mut printed_all = text;
    let plan_file = p.root().join("plan.json");
    let plan = converge_with(
        &p,
        &right,
        &[
            "plan",
            "--env",
            "test",
            "--out",
            plan_file.to_str().unwrap(),
        ],
    );
    printed_all.push_str(&printed(&plan));
    let out = converge_with(&p, &right, &["apply", "--auto-approve", "--env", "test"]).expect(0);
    printed_all.push_str(&printed(&out));
    printed_all.push_str(&printed(
        &converge_with(&p, &right, &["drift", "--env", "test"]).expect(0),
    ));
    let env = host.inspect("secrets-web-blue", "{{json .Config.Env}}");
    let env: Vec<String> = serde_json::from_str(&env).unwrap();
    assert!(env.contains(&format!("WEIRD={weird}")), "{env:?}");
    assert!(env.contains(&"PLAIN=visible".to_string()), "{env:?}");
    // Names the docker CLI would obey are only the container's (issue 21, finding 3): the
    // deploy reached the host's own daemon, and the container has them as given.
    assert!(
        env.contains(&"DOCKER_HOST=tcp://192.0.2.1:2375".to_string())
            && env.contains(&"LD_PRELOAD=/nonexistent.so".to_string()),
        "{env:?}"
    );
    assert_eq!(host.get("secrets.test", "/"), (200, "v1\n".into()));

    let audit = p
        .converge(&["audit", "export", "--env", "test", "--format", "jsonl"])
        .expect(0);
    printed_all.push_str(&audit.stdout());
    let plan_text = std::fs::read_to_string(&plan_file).unwrap();
    let mut state = String::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", p.state_db("test").display());
        if let Ok(bytes) = std::fs::read(&path) {
            state.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    for secret in [
        "second line",
        "registry-pw-5f3a",
        "BEGIN OPENSSH PRIVATE KEY",
    ] {
        assert!(!printed_all.contains(secret), "{secret:?} was printed");
        assert!(
            !plan_text.contains(secret),
            "{secret:?} is in the plan file"
        );
        assert!(!state.contains(secret), "{secret:?} is in state");
    }
    // Values go to Docker as API data: no env file on the host's disk; no registry
    // credential is left on the host.
    assert!(!std::path::Path::new("/etc/converge/secrets").exists());
    assert!(!std::path::Path::new("/home/converge-deploy/.docker/config.json").exists());
    let left = std::process::Command::new("find")
        .args([
            "/tmp",
            "-maxdepth",
            "3",
            "-user",
            "converge-deploy",
            "-name",
            "config.json",
        ])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// A server block nginx rejects (`nginx -t`: here a TLS certificate that does not exist) is
/// never left behind: the previous file is back, the deploy fails before any switch, and the
/// default site keeps working.
#[test]
fn a_file_nginx_rejects_is_never_left_behind() {
    let name = "nginx-bad";
    app_image(name, "v1");
    let host = TestHost::start();
    let p = project(&host, name, "");
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ])
    .expect(0);
    let file = host.dir.path().join("converge/nginx-bad.conf");
    let before = std::fs::read_to_string(&file).unwrap();
    p.edit(
        "environments/test.yaml",
        "listen: ",
        "tls: { certificate: /nonexistent/cert.pem, key: /nonexistent/key.pem }, listen: ",
    );
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v1",
        ])
        .expect(1);
    let text = printed(&out);
    assert!(
        text.contains("nginx") && text.contains("refused the new file"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "the previous file is back"
    );
    assert_eq!(host.get("nginx-bad.test", "/"), (200, "v1\n".into()));
    assert_eq!(
        support::hosts::http_get(host.default_port, "localhost", "/"),
        (200, "default site\n".into())
    );
}

/// recreate: the old colour stops, the new one starts, the downtime is measured and printed;
/// a new version that never gets healthy brings the previous one back.
#[test]
fn recreate_reports_its_downtime_and_restarts_the_previous_tag_on_failure() {
    let name = "recreate";
    for v in ["v1", "v2", "v3-broken"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let p = project(&host, name, "        strategy: recreate\n");
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ])
    .expect(0);
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2",
        ])
        .expect(0);
    let text = printed(&out);
    assert!(text.contains("recreate downtime "), "{text}");
    assert_eq!(
        host.get("recreate.test", "/"),
        (200, "v2\n".into()),
        "{text}\n{}\n{:?}\n{}",
        std::fs::read_to_string(host.dir.path().join("converge/recreate.conf")).unwrap_or_default(),
        host.containers(name),
        std::fs::read_to_string(host.dir.path().join("error.log")).unwrap_or_default()
    );
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v3-broken",
        ])
        .expect(1);
    assert!(printed(&out).contains("not ready"), "{}", printed(&out));
    assert_eq!(host.get("recreate.test", "/"), (200, "v2\n".into()));
}

/// Two apps on one host, staging beside prod: names, ports and nginx files never collide.
#[test]
fn two_apps_share_a_host_without_colliding() {
    let host = TestHost::start();
    let mut projects = Vec::new();
    for (name, tag) in [("twin-staging", "v1"), ("twin-prod", "v2")] {
        app_image(name, tag);
        let p = project(&host, name, "");
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
        .expect(0);
        projects.push(p);
    }
    assert_eq!(host.get("twin-staging.test", "/"), (200, "v1\n".into()));
    assert_eq!(host.get("twin-prod.test", "/"), (200, "v2\n".into()));
    let ports: Vec<String> = ["twin-staging-web-blue", "twin-prod-web-blue"]
        .iter()
        .map(|c| host.inspect(c, "{{index .Config.Labels \"converge.port\"}}"))
        .collect();
    assert_ne!(ports[0], ports[1]);
    projects[0]
        .converge(&["drift", "--env", "test", "--var", "tag=v1"])
        .expect(0);
    projects[1]
        .converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);
}

/// kill -9 of converge mid-deploy (the new colour started, a pre_traffic hook running, before
/// the switch): the next apply resumes the same rollout and converges with exactly one colour
/// live, the migration run once, and nothing duplicated.
#[test]
fn a_killed_deploy_resumes_with_one_colour_live_and_nothing_twice() {
    let name = "kill9";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let data = host.data(name);
    let p = project_with(
        &host,
        name,
        "",
        &format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          volumes: ["{data}:/data"]
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        hooks:
          pre_traffic: [{{ service: web, run: ["app", "migrate"] }}, {{ service: web, run: ["sleep", "4"] }}]
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
            data = data.display(),
            proxy = host.proxy_yaml("kill9.test"),
        ),
    );
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ])
    .expect(0);
    let mut child = p
        .command(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the second hook (sleep 4) to be running, then kill converge outright.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let names = host.containers(name);
        if names
            .iter()
            .any(|n| n.contains("pre-traffic-2") && n.ends_with("running"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hook never ran: {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        host.get("kill9.test", "/"),
        (200, "v1\n".into()),
        "no switch happened"
    );

    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2",
        ])
        .expect(0);
    assert!(
        printed(&out).contains("resuming the rollout"),
        "{}",
        printed(&out)
    );
    assert_eq!(host.get("kill9.test", "/"), (200, "v2\n".into()));
    assert_eq!(migrations(&host, name), vec!["migrate v1", "migrate v2"]);
    let names = host.containers(name);
    assert_eq!(
        names,
        vec![
            "kill9-web-blue exited".to_string(),
            "kill9-web-green running".to_string()
        ],
        "one colour live, the old one stopped, no hook left"
    );
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);
}

/// examples/elspeth applied end to end: its Azure resources against the local Azure server,
/// and its host app on a loopback host standing in for the worker VM (host and registry put in
/// place of the VM's public IP and the ACR login server). The host pulls with its own managed
/// identity: an IMDS token exchanged at `/oauth2/exchange` (both served by the local Azure
/// server) for the ACR refresh token the registry takes. Migrations run before the switch and
/// the smoke test after it; a version whose /health fails never takes traffic; destroy removes
/// everything.
#[test]
fn the_elspeth_example_applies_end_to_end() {
    let azure = support::AzureServer::start();
    let registry = TestRegistry::start(
        "00000000-0000-0000-0000-000000000000",
        support::azure::ACR_REFRESH_TOKEN,
    );
    for v in ["v2.3.0", "v2.4.0-sour"] {
        registry.push(&app_image("elspeth", v), &format!("elspeth:{v}"));
    }
    let host = TestHost::start_with_env(&[
        ("CONVERGE_IMDS_ENDPOINT", azure.plain.as_str()),
        (
            "CONVERGE_ACR_EXCHANGE_URL",
            &format!("{}/oauth2/exchange", azure.plain),
        ),
    ]);
    host.owns("elspeth-dev");
    let mut env = azure.env();
    env.push(("CONVERGE_VAR_DEPLOY_KEY".into(), host.key()));
    env.push((
        "CONVERGE_VAR_DB_URL".into(),
        "postgres://elspeth:db-pw-91c2@db/elspeth".into(),
    ));
    let p = Project::seed("elspeth").with_env(env);
    let file = "environments/dev.yaml";
    p.edit(
        file,
        r#"{ address: "${worker_vm.public_ip_address}", user: deploy }"#,
        &format!(
            "{{ address: 127.0.0.1, port: {}, user: converge-deploy }}",
            host.ssh_port
        ),
    );
    for _ in 0..3 {
        p.edit(file, "${registry.login_server}", &registry.server);
    }
    p.edit(
        file,
        "proxy: { nginx: { server_name: elspeth.dev.example.com, listen: 80 } }",
        &format!("proxy: {}", host.proxy_yaml("elspeth.dev.example.com")),
    );
    for _ in 0..2 {
        p.edit(
            file,
            "/srv/elspeth-dev/data",
            &host.data("elspeth-dev").display().to_string(),
        );
    }
    p.edit(file, "bake: 3m", "bake: 2s");
    p.edit(file, "interval: 10s", "interval: 500ms");
    p.edit(file, "drain_timeout: 30s", "drain_timeout: 1s");
    p.edit(
        file,
        "interval: 2s, timeout: 30s",
        "interval: 500ms, timeout: 5s",
    );

    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "-e",
            "dev",
            "--accept-new-host-keys",
        ])
        .expect(0);
    let text = printed(&out);
    assert!(
        text.contains("post_traffic hook 1 (elspeth --version)") && text.contains("hook ok"),
        "{text}"
    );
    assert_eq!(
        host.get("elspeth.dev.example.com", "/"),
        (200, "v2.3.0\n".into())
    );
    assert_eq!(
        host.inspect("elspeth-dev-worker-blue", "{{.State.Status}}"),
        "running"
    );
    assert_eq!(azure.acr_exchanges(), vec![registry.server.clone()]);
    assert_eq!(migrations(&host, "elspeth-dev"), vec!["migrate v2.3.0"]);
    assert!(!text.contains("db-pw-91c2"), "{text}");

    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "-e",
            "dev",
            "--var",
            "image_tag=v2.4.0-sour",
        ])
        .expect(1);
    // Its /health fails on its own port: it never takes traffic, and no migration ran for it.
    assert!(
        printed(&out).contains("GET /health answered 404"),
        "{}",
        printed(&out)
    );
    assert_eq!(
        host.get("elspeth.dev.example.com", "/"),
        (200, "v2.3.0\n".into())
    );
    assert_eq!(migrations(&host, "elspeth-dev"), vec!["migrate v2.3.0"]);
    assert_eq!(
        host.inspect("elspeth-dev-worker-blue", "{{.State.Status}}"),
        "running",
        "the old worker runs on"
    );

    p.converge(&["destroy", "--auto-approve", "-e", "dev"])
        .expect(0);
    assert!(
        host.containers("elspeth-dev").is_empty(),
        "{:?}",
        host.containers("elspeth-dev")
    );
    assert!(!host.dir.path().join("converge/elspeth-dev.conf").exists());
    assert!(azure.violations().is_empty(), "{:?}", azure.violations());
}

/// examples/vardiologio applied end to end: its Secrets Manager secret against moto, its host
/// app on a loopback host. The container gets that environment's secret value (read from that
/// one version at deploy time); a new value is a new version and a new deploy.
#[test]
fn the_vardiologio_example_delivers_its_secrets_manager_secret() {
    let moto = support::Moto::start();
    let name = "vardiologio-staging";
    app_image(name, "v3.2.0");
    let host = TestHost::start();
    host.owns(name);
    let p = Project::seed("vardiologio").with_moto(&moto).with_env(vec![
        ("CONVERGE_VAR_DEPLOY_KEY".into(), host.key()),
        (
            "CONVERGE_VAR_DATABASE_URL".into(),
            "postgres://v:first-7a1@db/v".into(),
        ),
    ]);
    let file = "environments/staging.yaml";
    p.edit(
        file,
        r#"[{ address: "${var.host}", user: deploy }]"#,
        &format!(
            "[{{ address: 127.0.0.1, port: {}, user: converge-deploy }}]",
            host.ssh_port
        ),
    );
    p.edit(
        file,
        "registry.vardiologio.example.com/vardiologio",
        &format!("converge-test/{name}"),
    );
    p.edit(file, "port: 8000", "port: 8080");
    p.edit(
        file,
        "proxy: { nginx: { server_name: staging.vardiologio.example.com, listen: 80 } }",
        &format!(
            "proxy: {}",
            host.proxy_yaml("staging.vardiologio.example.com")
        ),
    );
    p.edit(file, "bake: 2m", "bake: 1s");
    p.edit(file, "interval: 5s", "interval: 500ms");
    p.edit(file, "drain_timeout: 30s", "drain_timeout: 1s");
    p.converge(&[
        "apply",
        "--auto-approve",
        "-e",
        "staging",
        "--accept-new-host-keys",
    ])
    .expect(0);
    let env = |colour: &str| -> Vec<String> {
        serde_json::from_str(&host.inspect(&format!("{name}-web-{colour}"), "{{json .Config.Env}}"))
            .unwrap_or_default()
    };
    assert!(
        env("blue").contains(&"DATABASE_URL=postgres://v:first-7a1@db/v".to_string()),
        "{:?}",
        env("blue")
    );
    assert_eq!(
        host.get("staging.vardiologio.example.com", "/"),
        (200, "v3.2.0\n".into())
    );
    // The app prints its database URL; `converge logs` masks the Secrets Manager value the
    // container runs with (read from the version state pins), even when the files' variable
    // now holds another one (issue 21, finding 6).
    let logs = converge_with(
        &p,
        &[("CONVERGE_VAR_DATABASE_URL", "postgres://v:not-applied@db/v")],
        &["logs", "-e", "staging", "app", "--service", "web"],
    )
    .expect(0);
    let text = printed(&logs);
    assert!(
        text.contains("connecting to (sensitive)") && !text.contains("first-7a1"),
        "{text}"
    );

    // A new value: the plan shows the secret and the app changing together; apply rolls it out.
    let rotated = [("CONVERGE_VAR_DATABASE_URL", "postgres://v:second-9b2@db/v")];
    let plan = converge_with(
        &p,
        &rotated,
        &["plan", "-e", "staging", "--detailed-exitcode"],
    )
    .expect(2);
    assert!(!printed(&plan).contains("second-9b2"), "{}", printed(&plan));
    let out = converge_with(&p, &rotated, &["apply", "--auto-approve", "-e", "staging"]).expect(0);
    assert!(!printed(&out).contains("second-9b2"), "{}", printed(&out));
    assert!(
        env("green").contains(&"DATABASE_URL=postgres://v:second-9b2@db/v".to_string()),
        "{:?}",
        env("green")
    );
    converge_with(&p, &rotated, &["drift", "-e", "staging"]).expect(0);
}

/// `auth: { ecr: { role_arn } }`: converge assumes the role with a pull-only session policy,
/// gets an ECR token under it (moto's GetAuthorizationToken) and gives it
/// to the host over stdin for one pull; the password is in no output, and no credential is left.
#[test]
fn an_ecr_token_from_converge_pulls_and_leaves_nothing() {
    let moto = support::Moto::start();
    // moto's token for its default account is `AWS:123456789012-auth-token`.
    let registry = TestRegistry::start("AWS", "123456789012-auth-token");
    let name = "ecr-pull";
    let image = registry.push(&app_image(name, "v1"), "ecr-pull/app:v1");
    let host = TestHost::start();
    let p = project_with(
        &host,
        name,
        "",
        &format!(
            r#"      registry: {{ server: "{server}", auth: {{ ecr: {{ role_arn: "arn:aws:iam::123456789012:role/converge-pull" }} }} }}
      services:
        web:
          image: "{image}"
          port: 8080
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
"#,
            server = registry.server,
            proxy = host.proxy_yaml("ecr-pull.test"),
        ),
    )
    .with_moto(&moto);
    p.edit(
        "environments/test.yaml",
        "providers: {}",
        "providers: { aws: { region: us-east-1 } }",
    );
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ])
        .expect(0);
    assert!(
        !printed(&out).contains("123456789012-auth-token"),
        "{}",
        printed(&out)
    );
    assert_eq!(host.get("ecr-pull.test", "/"), (200, "v1\n".into()));
    assert!(!std::path::Path::new("/home/converge-deploy/.docker/config.json").exists());
    // The token was minted under the role with a session policy allowing only pulls of the
    // app's one repository (issue 21, finding 8): moto keeps each assumed role's policy.
    let port: u16 = moto.upstream.rsplit(':').next().unwrap().parse().unwrap();
    let (_, data) = support::hosts::http_get(port, "127.0.0.1", "/moto-api/data.json");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    let assumed = data["sts"]["AssumedRole"].as_array().unwrap();
    assert_eq!(assumed.len(), 1, "{assumed:?}");
    assert_eq!(
        assumed[0]["role_arn"],
        "arn:aws:iam::123456789012:role/converge-pull"
    );
    let policy: serde_json::Value =
        serde_json::from_str(assumed[0]["policy"].as_str().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][1]["Action"],
        serde_json::json!([
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability"
        ])
    );
    assert_eq!(
        policy["Statement"][1]["Resource"],
        serde_json::json!(["arn:aws:ecr:us-east-1:*:repository/ecr-pull/app"])
    );
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 2, "{policy}");
}

/// The rollout commands work on host apps as on ECS services: `rollout abort` during the bake
/// switches back (apply exits 1, the old colour serves), `rollout history` lists the versions,
/// and a host whose key changed is refused even with --accept-new-host-keys.
#[test]
fn rollout_commands_steer_a_host_app_and_a_changed_host_key_is_refused() {
    let name = "steer";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let p = project(&host, name, "");
    p.edit("environments/test.yaml", "bake: 3s", "bake: 30s");
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ])
    .expect(0);
    let child = p
        .command(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Abort once the switch happened (nginx serves v2), during the 30 s bake.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while host.get("steer.test", "/").1 != "v2\n" {
        assert!(std::time::Instant::now() < deadline, "never switched");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    p.converge(&["rollout", "abort", "--env", "test", "app"])
        .expect(0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("aborted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host.get("steer.test", "/"), (200, "v1\n".into()));

    let history = p
        .converge(&["rollout", "history", "--env", "test", "app"])
        .expect(0)
        .stdout();
    assert!(
        history.contains("converge-test/steer:v1") && history.contains("converge-test/steer:v2"),
        "{history}"
    );

    // The host's key changes (rebuilt, or someone in the middle): refused, both fingerprints.
    let other = host.dir.path().join("other_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(keygen.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(
        p.root().join("known_hosts"),
        format!("[127.0.0.1]:{} {}", host.ssh_port, public),
    )
    .unwrap();
    let out = p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ]);
    let text = printed(&out);
    assert_ne!(out.code(), 0, "{text}");
    assert!(
        text.contains("has CHANGED") && text.matches("SHA256:").count() >= 2,
        "{text}"
    );
}

/// Two hosts for one app: a test host and an isolated one beside it, both pulling `name`'s
/// `versions` from a registry with basic auth, and a project whose `host.app` runs the `web`
/// service on both (health `timeout` as given, `rollout` lines after its `proxy`).
struct TwoHosts {
    // Dropped in this order: the project, then the hosts (the second before the first it
    // stands beside), then the registry.
    project: Project,
    data: std::path::PathBuf,
    second_data: std::path::PathBuf,
    second: IsolatedHost,
    first: TestHost,
    _registry: TestRegistry,
}

fn two_hosts(name: &str, versions: &[&str], health_timeout: &str, rollout: &str) -> TwoHosts {
    let password = format!("pw-{name}");
    let registry = TestRegistry::start("pusher", &password);
    for v in versions {
        registry.push(&app_image(name, v), &format!("{name}:{v}"));
    }
    let first = TestHost::start();
    let second = IsolatedHost::beside(&first, &registry);
    first.owns(name);
    let data = first.data(name);
    let second_data = second.data(&first, name);
    let project = Project::empty().with_env(vec![
        ("CONVERGE_VAR_DEPLOY_KEY".into(), first.key()),
        ("CONVERGE_VAR_REGISTRY_PASSWORD".into(), password),
    ]);
    project.write(
        "environments/test.yaml",
        &format!(
            r#"environment: test
providers: {{}}
variables:
  deploy_key: {{ sensitive: true }}
  registry_password: {{ sensitive: true }}
  tag: {{ default: v1 }}
resources:
  app:
    type: host.app
    properties:
      name: {name}
      hosts:
        - {{ address: 127.0.0.1, port: {p1}, user: converge-deploy }}
        - {{ address: 127.0.0.1, port: {p2}, user: converge-deploy }}
      ssh: {{ known_hosts: known_hosts, private_key: "${{var.deploy_key}}" }}
      registry: {{ server: "{server}", auth: {{ basic: {{ username: pusher, password: "${{var.registry_password}}" }} }} }}
      services:
        web:
          image: "{server}/{name}:${{var.tag}}"
          port: 8080
          volumes: ["{data}:/data"]
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: {health_timeout} }}
      rollout:
        proxy: {proxy}
{rollout}"#,
            p1 = first.ssh_port,
            p2 = second.ssh_port,
            server = registry.server,
            data = data.display(),
            proxy = first.proxy_yaml(&format!("{name}.test")),
        ),
    );
    TwoHosts {
        project,
        data,
        second_data,
        second,
        first,
        _registry: registry,
    }
}

/// Two hosts with `batch: 1`, the second an [`IsolatedHost`] (its own network and mount
/// namespaces, sshd, nginx and Docker Engine, pulling from the registry): v1 reaches both; v2
/// cannot start on the second host: the first was switched to v2 first (its batch), the
/// second's failure rolls it back to v1 and leaves the second on v1; the migration and
/// on_rollback ran once each, on the first host only; exit 1 with the second host named. Once
/// the second host is well, v2 reaches both.
#[test]
fn two_hosts_in_batches_a_failure_on_the_second_rolls_the_first_back() {
    let name = "two-hosts";
    let h = two_hosts(
        name,
        &["v1", "v2", "v3"],
        "4s",
        r#"        hooks:
          pre_traffic:
            - { service: web, run: ["app", "migrate"] }
            - { service: web, run: ["app", "hostcheck"], per_host: true }
          on_rollback: [{ service: web, run: ["app", "rollback"] }]
        bake: 1s
        interval: 500ms
        health: { http: { path: /health, failures: 2 } }
        drain_timeout: 2s
        batch: 1
"#,
    );
    let (p, first, second, data, second_data) =
        (&h.project, &h.first, &h.second, &h.data, &h.second_data);
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    let host = format!("{name}.test");
    let out = apply("v1").expect(0);
    let text = printed(&out);
    assert!(
        text.contains("50% of traffic on the new revision"),
        "{text}"
    );
    assert_eq!(first.get(&host, "/"), (200, "v1\n".into()));
    assert_eq!(second.get(&host, "/"), (200, "v1\n".into()));
    assert_eq!(migrations(first, name), vec!["migrate v1"]);
    assert!(
        !second_data.join("migrations").exists(),
        "hooks run on the first host only"
    );
    // A per_host hook runs on each host, the second's at its batch's switch.
    let checks =
        |dir: &std::path::Path| std::fs::read_to_string(dir.join("checks")).unwrap_or_default();
    assert_eq!(checks(data), "check v1\n");
    assert_eq!(checks(second_data), "check v1\n");

    // v2 cannot start on the second host.
    std::fs::write(second_data.join("sick"), "").unwrap();
    let out = apply("v2").expect(1);
    let text = printed(&out);
    let switched = text
        .find("50% of traffic on the new revision")
        .expect("the first batch was switched");
    let failed = text
        .find("cannot start on this host")
        .unwrap_or_else(|| panic!("the second host's log is shown:\n{text}"));
    assert!(switched < failed, "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", second.ssh_port)),
        "the failing host is named:\n{text}"
    );
    assert_eq!(first.get(&host, "/"), (200, "v1\n".into()));
    assert_eq!(second.get(&host, "/"), (200, "v1\n".into()));
    assert_eq!(
        migrations(first, name),
        vec!["migrate v1", "migrate v2", "rollback v2"],
        "the migration and on_rollback ran once each"
    );
    assert!(!second_data.join("migrations").exists());
    // The second host's v2 never got healthy: its per_host hook never ran.
    assert_eq!(checks(data), "check v1\ncheck v2\n");
    assert_eq!(checks(second_data), "check v1\n");
    for colour in ["blue", "green"] {
        let c = format!("{name}-web-{colour}");
        let (on_first, on_second) = (
            first.inspect(&c, "{{.Config.Image}}"),
            second.inspect(&c, "{{.Config.Image}}"),
        );
        assert!(
            !on_first.ends_with(":v2") && !on_second.ends_with(":v2"),
            "the v2 colour is removed everywhere: {c} {on_first} / {on_second}"
        );
    }
    let status = p
        .converge(&["rollout", "status", "app", "--env", "test"])
        .expect(0);
    assert!(
        printed(&status).contains("cannot start on this host"),
        "{}",
        printed(&status)
    );

    // The second host is well again: v2 reaches both.
    std::fs::remove_file(second_data.join("sick")).unwrap();
    apply("v2").expect(0);
    assert_eq!(first.get(&host, "/"), (200, "v2\n".into()));
    assert_eq!(second.get(&host, "/"), (200, "v2\n".into()));

    // recreate goes one batch at a time too: the first host is replaced and switched before
    // the second is stopped; the second's failure starts v2 again on both.
    p.edit(
        "environments/test.yaml",
        "        batch: 1\n",
        "        batch: 1\n        strategy: recreate\n",
    );
    std::fs::write(second_data.join("sick"), "").unwrap();
    let text = printed(&apply("v3").expect(1));
    assert!(text.contains("cannot start on this host"), "{text}");
    assert_eq!(first.get(&host, "/"), (200, "v2\n".into()), "{text}");
    assert_eq!(second.get(&host, "/"), (200, "v2\n".into()), "{text}");
    std::fs::remove_file(second_data.join("sick")).unwrap();
    let text = printed(&apply("v3").expect(0));
    assert_eq!(first.get(&host, "/"), (200, "v3\n".into()));
    assert_eq!(second.get(&host, "/"), (200, "v3\n".into()));
    // Each batch reports its own host's downtime when it is ready.
    let downtime: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("recreate downtime"))
        .collect();
    assert_eq!(downtime.len(), 2, "one line per batch:\n{text}");
    for line in &downtime {
        assert_eq!(
            line.matches("s,").count(),
            0,
            "one figure per batch of one host: {line}"
        );
    }
}

/// Ctrl-C while a later batch of hosts waits to be ready: the engine owns that wait, so the
/// apply stops at once (exit 130, well before `ready_timeout`) with the first batch switched
/// and the record in the batch phase; once the second host is well, the next apply resumes the
/// same rollout and finishes it.
#[test]
fn ctrl_c_in_a_batch_wait_exits_130_and_the_next_apply_resumes_the_same_rollout() {
    let name = "batch-int";
    let h = two_hosts(
        name,
        &["v1", "v2"],
        "5m",
        "        bake: 1s\n        interval: 500ms\n        drain_timeout: 2s\n        batch: 1\n",
    );
    let (p, first, second, second_data) = (&h.project, &h.first, &h.second, &h.second_data);
    let args = |tag: &str| {
        vec![
            "apply".to_string(),
            "--auto-approve".into(),
            "--env".into(),
            "test".into(),
            "--accept-new-host-keys".into(),
            "--var".into(),
            format!("tag={tag}"),
        ]
    };
    let run = |tag: &str| {
        let a = args(tag);
        p.converge(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let host = format!("{name}.test");
    run("v1").expect(0);
    assert_eq!(second.get(&host, "/"), (200, "v1\n".into()));

    // v2 serves nothing on the second host (no /ready): its batch waits.
    std::fs::write(second_data.join("sick"), "").unwrap();
    let a = args("v2");
    let child = p
        .command(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = || -> serde_json::Value {
        let out = p
            .converge(&[
                "rollout", "status", "--env", "test", "app", "--format", "json",
            ])
            .stdout();
        serde_json::from_str(&out).unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let waiting = loop {
        let s = status();
        let r = &s["rollouts"][0];
        if r["phase"] == "batch" && r["ready_started"].is_string() {
            break r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second batch never started waiting: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let interrupted_at = std::time::Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    let stopped_after = interrupted_at.elapsed();
    let interrupted = Run::from_output(output, &["apply"]).expect(130);
    assert!(
        stopped_after < std::time::Duration::from_secs(60),
        "Ctrl-C cut the 5m ready_timeout short (took {stopped_after:?})"
    );
    let text = printed(&interrupted);
    assert!(text.contains("Interrupted"), "{text}");
    // The first batch is switched to v2; the second still serves v1.
    assert_eq!(first.get(&host, "/"), (200, "v2\n".into()));
    assert_eq!(second.get(&host, "/"), (200, "v1\n".into()));
    let after = status();
    assert_eq!(after["rollouts"][0]["id"], waiting["id"], "{after}");
    assert_eq!(after["rollouts"][0]["phase"], "batch", "{after}");
    assert_eq!(after["rollouts"][0]["status"], "running", "{after}");
    // What the release before typed target parts left here (version 2) resumes the same way.
    support::records::rewrite_as_version_2_blocking(p.root(), "test", "app");
    assert_eq!(
        status()["rollouts"][0]["phase"],
        "batch",
        "a version 2 record reads"
    );

    // The second host's new colour becomes ready (the one the batch started, which the
    // resume waits on again rather than starting another).
    let waiting_colour = ["blue", "green"]
        .map(|c| format!("{name}-web-{c}"))
        .into_iter()
        .find(|c| second.inspect(c, "{{.Config.Image}}").ends_with(":v2"))
        .expect("the second batch's v2 colour runs");
    let ready = second
        .docker()
        .args(["exec", &waiting_colour, "sh", "-c", "echo ok > /www/ready"])
        .status()
        .unwrap();
    assert!(ready.success());
    std::fs::remove_file(second_data.join("sick")).unwrap();
    let text = printed(&run("v2").expect(0));
    assert_eq!(first.get(&host, "/"), (200, "v2\n".into()), "{text}");
    assert_eq!(second.get(&host, "/"), (200, "v2\n".into()), "{text}");
    let done = status();
    assert_eq!(done["rollouts"][0]["id"], waiting["id"], "{done}");
    assert_eq!(done["rollouts"][0]["status"], "succeeded", "{done}");
}

/// `rollout undo` of a host app: after v1 and v2, it goes back to v1 through the app's own
/// blue/green rollout (health, hooks, switch) and pins it there: plan says so, apply of the
/// files' v2 is refused, drift does not call it drift, and `apply --redo` rolls v2 out again.
#[test]
fn rollout_undo_takes_a_host_app_back_to_the_images_before_and_pins_it() {
    let name = "undo";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let p = project(&host, name, "");
    p.edit("environments/test.yaml", "bake: 3s", "bake: 1s");
    let run = |args: &[&str]| {
        let mut all = vec!["--env", "test"];
        all.extend_from_slice(args);
        p.converge(&all)
    };
    run(&["apply", "--auto-approve", "--accept-new-host-keys"]).expect(0);
    run(&["apply", "--auto-approve", "--var", "tag=v2"]).expect(0);
    assert_eq!(host.get("undo.test", "/"), (200, "v2\n".into()));

    let missing = run(&["rollout", "undo", "app", "--to", "v9"]);
    assert_ne!(missing.code(), 0);
    assert!(
        printed(&missing).contains("no rollout of v9 completed"),
        "{}",
        printed(&missing)
    );
    let undone = run(&["rollout", "undo", "app", "--var", "tag=v2"]).expect(0);
    let text = printed(&undone);
    assert!(
        text.contains("undone to rev v1 by") && text.contains("the files still say rev v2"),
        "{text}"
    );
    assert!(
        text.contains("rollout switch"),
        "through the rollout: {text}"
    );
    assert_eq!(host.get("undo.test", "/"), (200, "v1\n".into()));

    let plan = run(&["plan", "--var", "tag=v2"]).expect(0);
    assert!(
        printed(&plan).contains("undone to rev v1 by"),
        "{}",
        printed(&plan)
    );
    let refused = run(&["apply", "--auto-approve", "--var", "tag=v2"]).expect(1);
    assert!(
        printed(&refused).contains("apply --redo"),
        "{}",
        printed(&refused)
    );
    assert_eq!(
        host.get("undo.test", "/"),
        (200, "v1\n".into()),
        "refused: nothing moved"
    );
    let drift = run(&["drift", "--var", "tag=v2"]).expect(0);
    assert!(printed(&drift).contains("not drift"), "{}", printed(&drift));

    run(&["apply", "--auto-approve", "--redo", "--var", "tag=v2"]).expect(0);
    assert_eq!(host.get("undo.test", "/"), (200, "v2\n".into()));
    run(&["plan", "--detailed-exitcode", "--var", "tag=v2"]).expect(0);
}

/// A `plan` killed with `kill -9` while it reads a host leaves its inline key's file behind;
/// the next converge command removes it (issue 21, finding 7). The host's docker is made to
/// hang while a flag file exists, so the plan is caught mid-read.
#[test]
fn a_key_left_by_a_killed_plan_is_gone_once_the_next_command_ran() {
    let name = "killed-plan";
    app_image(name, "v1");
    let tools = tempfile::tempdir().unwrap();
    let flag = tools.path().join("hang");
    let docker = tools.path().join("docker");
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\nif [ -e {} ]; then sleep 30; fi\nif [ -x /usr/local/bin/docker ]; then exec /usr/local/bin/docker \"$@\"; fi\nexec /usr/bin/docker \"$@\"\n",
            flag.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        tools.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", tools.path().display());
    let host = TestHost::start_with_env(&[("PATH", path.as_str())]);
    let p = project(&host, name, "");
    p.converge(&[
        "apply",
        "--auto-approve",
        "--env",
        "test",
        "--accept-new-host-keys",
    ])
    .expect(0);
    std::fs::write(&flag, "").unwrap();
    let mut plan = p.command(&["plan", "--env", "test"]);
    let mut child = plan
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!("converge-ssh-{}-", child.id());
    let find = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let dir = loop {
        if let Some(d) = find().filter(|d| d.join("key").exists()) {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the plan never opened its session"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(&flag).unwrap();
    assert!(
        dir.join("key").exists(),
        "kill -9 leaves the key (what the sweep is for)"
    );
    p.converge(&["validate"]).expect(0);
    assert!(!dir.exists(), "the next command swept {}", dir.display());
}

/// First contact runs before a host's first change: a host without converge's nginx include
/// directory is refused naming it and the command that fixes it, and nothing starts there.
#[test]
fn a_host_missing_a_piece_is_refused_before_anything_starts() {
    let name = "preflight";
    app_image(name, "v1");
    let host = TestHost::start();
    let p = project(&host, name, "");
    let d = host.dir.path().display().to_string();
    p.edit(
        "environments/test.yaml",
        &format!("include_dir: {d}/converge"),
        &format!("include_dir: {d}/missing"),
    );
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ])
        .expect(1);
    let text = printed(&out);
    assert!(
        text.contains(&format!("nginx include directory {d}/missing: create it")),
        "{text}"
    );
    assert!(
        host.containers(name).is_empty(),
        "{:?}",
        host.containers(name)
    );
    assert!(migrations(&host, name).is_empty());
}

/// Backups before migrations (issue 23 §4). Without a `backup`, validate warns at the stateful
/// accessory. With one: a backup that fails (the file it dumps does not exist yet) rolls back
/// before the migration (its line never appears), exit 1 naming accessory and host; a good one
/// holds the data as it was before the migration ran, 0600; after three deploys only `keep: 2`
/// files remain, and `converge backups`, `rollout history` and the audit trail list them.
#[test]
fn a_backup_is_taken_before_the_migration_and_a_failed_one_stops_it() {
    let name = "backups";
    for v in ["v1", "v2", "v3"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let data = host.data(name);
    let file = |backup: &str| {
        format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          volumes: ["{data}:/data"]
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      accessories:
        db:
          image: "converge-test/{name}:v1"
          command: ["app", "work"]
          volumes: ["{data}:/data"]
{backup}      rollout:
        proxy: {proxy}
        hooks:
          pre_traffic: [{{ service: web, run: ["app", "migrate"] }}]
        bake: 1s
        interval: 500ms
        drain_timeout: 2s
        keep_previous: 1s
"#,
            data = data.display(),
            proxy = host.proxy_yaml(&format!("{name}.test")),
        )
    };
    let p = project_with(&host, name, "", &file(""));
    let warned = p.converge(&["validate"]).expect(0);
    let text = printed(&warned);
    assert!(
        text.contains("warning: environments/test.yaml:22:")
            && text.contains("accessory `db` keeps data in volumes without a `backup`"),
        "{text}"
    );
    // Each backup is also streamed to S3 (moto), so losing the host loses none.
    let moto = support::Moto::start();
    moto.python("import boto3; boto3.client('s3').create_bucket(Bucket='db-backups')");
    let p = project_with(
        &host,
        name,
        "",
        &file("          backup: { run: [cat, /data/migrations], keep: 2, timeout: 20s, copy_to: { s3: { bucket: db-backups, prefix: prod/ } } }\n"),
    )
    .with_moto(&moto);
    let env = std::fs::read_to_string(p.root().join("environments/test.yaml"))
        .unwrap()
        .replace("providers: {}", "providers: { aws: { region: us-east-1 } }");
    p.write("environments/test.yaml", &env);
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    // Nothing to dump yet: the backup fails and the migration never runs.
    let failed = apply("v1").expect(1);
    let text = printed(&failed);
    assert!(
        text.contains("the backup of accessory `db` on 127.0.0.1:")
            && text.contains("so no pre_traffic hook ran"),
        "{text}"
    );
    assert!(!data.join("migrations").exists(), "the migration ran");
    assert!(
        !text.contains("hook start") && !text.contains("pre_traffic hook 1"),
        "{text}"
    );

    std::fs::write(data.join("migrations"), "seed\n").unwrap();
    apply("v1").expect(0);
    assert_eq!(migrations(&host, name), ["seed", "migrate v1"]);
    let dir = support::hosts::backups_dir(name).join("db");
    let files = |dir: &std::path::Path| {
        let mut f: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f
    };
    let first = files(&dir);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(std::fs::read_to_string(&first[0]).unwrap(), "seed\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&first[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{:o}", mode);
    for tag in ["v2", "v3"] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        apply(tag).expect(0);
    }
    let kept = files(&dir);
    assert_eq!(kept.len(), 2, "keep: 2 → {kept:?}");
    assert!(!kept.contains(&first[0]), "the oldest was pruned: {kept:?}");
    assert_eq!(
        std::fs::read_to_string(&kept[1]).unwrap(),
        "seed\nmigrate v1\nmigrate v2\n",
        "the newest backup was taken before v3's migration"
    );

    let listed = p
        .converge(&["backups", "app", "--env", "test", "--format", "json"])
        .expect(0)
        .json();
    let listed = listed["backups"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let newest = &listed[0];
    assert_eq!(newest["path"], kept[1].display().to_string());
    assert_eq!(newest["accessory"], "db");
    let bytes = std::fs::read(&kept[1]).unwrap();
    assert_eq!(newest["size"], bytes.len());
    let digest = support::hosts::run(std::process::Command::new("sha256sum").arg(&kept[1]));
    assert_eq!(
        newest["sha256"].as_str().unwrap(),
        digest.split_whitespace().next().unwrap()
    );
    // The newest backup's copy in S3 has the file's bytes, under prefix/app/accessory/file.
    let key = format!(
        "prod/{name}/db/{}",
        kept[1].file_name().unwrap().to_string_lossy()
    );
    assert_eq!(newest["copy"], format!("s3://db-backups/{key}"), "{newest}");
    let copied = moto.python(&format!(
        "import boto3, sys; sys.stdout.write(boto3.client('s3').get_object(Bucket='db-backups', Key='{key}')['Body'].read().decode())"
    ));
    assert_eq!(copied.as_bytes(), bytes.as_slice());
    let history = p
        .converge(&["rollout", "history", "app", "--env", "test"])
        .expect(0);
    let history = printed(&history);
    assert_eq!(
        history.matches("backup of db on 127.0.0.1:").count(),
        3,
        "one backup before each of the three revisions: {history}"
    );
    let audit = printed(&p.converge(&["audit", "log", "--env", "test"]).expect(0));
    assert_eq!(audit.matches("rollout backup").count(), 3, "{audit}");
}

/// A host canary paused past its `pause_timeout` is rolled back by the next command that
/// touches the environment; a canary killed with `kill -9` while baking a step, and one
/// stopped by Ctrl-C (exit 130), keep their split in nginx, and the next apply resumes the same
/// rollout on the same colour and weights (no colour started twice) and finishes it.
#[test]
fn a_host_canary_expires_at_pause_timeout_and_resumes_after_kill_9_and_ctrl_c() {
    let name = "canaryresume";
    for v in ["v1", "v2", "v3", "v4"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let server = format!("{name}.test");
    let with = |rollout: &str| {
        project_with(
            &host,
            name,
            "",
            &format!(
                r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        strategy: canary
        interval: 500ms
        drain_timeout: 1s
        keep_previous: 1s
{rollout}"#,
                proxy = host.proxy_yaml(&server),
            ),
        )
    };
    let p = with("        steps: [30, pause, 100]\n        bake: 1s\n        pause_timeout: 2s\n");
    let apply = |p: &Project, tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    let status = |p: &Project| {
        p.converge(&[
            "rollout", "status", "--env", "test", "app", "--format", "json",
        ])
        .expect(0)
        .json()["rollouts"][0]
            .clone()
    };
    let count = |n: usize, old_v: &str, new_v: &str| {
        let (mut old, mut new) = (0, 0);
        for _ in 0..n {
            match host.get(&server, "/") {
                (200, body) if body == format!("{old_v}\n") => old += 1,
                (200, body) if body == format!("{new_v}\n") => new += 1,
                other => panic!("a request failed during the canary: {other:?}"),
            }
        }
        (old, new)
    };
    apply(&p, "v1").expect(0);
    apply(&p, "v2").expect(3);
    assert_eq!(status(&p)["weights"], serde_json::json!([70, 30]));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let drift = p.converge(&["drift", "--env", "test", "--var", "tag=v1"]);
    assert!(
        drift.stderr().contains("paused past its pause_timeout"),
        "{}",
        drift.stderr()
    );
    drift.expect(0);
    assert_eq!(count(20, "v1", "v2"), (20, 0), "all requests back on v1");
    let expired = status(&p);
    assert_eq!(expired["status"], "rolled_back", "{expired}");
    assert!(
        expired["reason"]
            .as_str()
            .unwrap()
            .contains("pause_timeout 2s"),
        "{expired}"
    );

    // A long bake at 50%, so converge can be stopped in the middle of it.
    let file = p.root().join("environments/test.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "        steps: [30, pause, 100]\n        bake: 1s\n        pause_timeout: 2s\n",
        "        steps: [50, 100]\n        bake: 6s\n",
    );
    p.write("environments/test.yaml", &text);
    // The child is handed to the caller, which kills or waits on it (clippy cannot see that).
    #[allow(clippy::zombie_processes)]
    let in_the_step = |p: &Project, tag: &str| {
        let mut child = p
            .command(&[
                "apply",
                "--auto-approve",
                "--env",
                "test",
                "--var",
                &format!("tag={tag}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // The record names the step before nginx is split (the step is saved, then
            // taken): the bake starts once the split is confirmed.
            let s = status(p);
            if s["phase"] == "baking"
                && s["weights"] == serde_json::json!([50, 50])
                && s["bake_started"].is_string()
            {
                return (child, s);
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the canary never reached its 50% bake: {s}");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let colour = |s: &serde_json::Value| s["new_revision"].as_str().unwrap().to_string();
    let running = || {
        host.containers(name)
            .into_iter()
            .filter(|n| n.ends_with("running"))
            .count()
    };
    let resumed = |p: &Project, old_tag: &str, tag: &str, before: &serde_json::Value| {
        // The split is still nginx's: both colours answer while nothing runs the rollout
        // (looked at again for a few seconds: under a loaded machine nginx's reload may still
        // be settling when the run is stopped).
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (old, new) = count(40, old_tag, tag);
            seen.push((old, new));
            if (10..=30).contains(&new) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let (_, new) = *seen.last().unwrap();
        assert!(
            (10..=30).contains(&new),
            "50% step, (old, new) of 40: {seen:?}"
        );
        assert_eq!(running(), 2, "both colours run, no third");
        let out = apply(p, tag).expect(0);
        let text = printed(&out);
        assert!(text.contains("resuming the rollout"), "{text}");
        let done = status(p);
        assert_eq!(done["id"], before["id"], "the same rollout: {done}");
        assert_eq!(colour(&done), colour(before), "the same colour: {done}");
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(count(10, "x", tag).1, 10, "only {tag} serves");
        let audit = printed(&p.converge(&["audit", "log", "--env", "test"]).expect(0));
        audit
            .lines()
            .filter(|l| l.contains("rollout start"))
            .count()
    };

    let (mut child, before) = in_the_step(&p, "v3");
    child.kill().unwrap();
    child.wait().unwrap();
    let starts_after_kill = resumed(&p, "v1", "v3", &before);

    let (child, before) = in_the_step(&p, "v4");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let interrupted = Run::from_output(child.wait_with_output().unwrap(), &["apply"]).expect(130);
    assert!(
        printed(&interrupted).contains("Interrupted"),
        "{}",
        printed(&interrupted)
    );
    assert_eq!(status(&p)["weights"], serde_json::json!([50, 50]));
    let starts_after_ctrl_c = resumed(&p, "v3", "v4", &before);
    assert_eq!(
        starts_after_ctrl_c,
        starts_after_kill + 1,
        "one `rollout start` per rollout: the resumes started nothing"
    );
}

/// converge's own image (issue 23 §6): the runtime stage of the Dockerfile, on a Debian base
/// built here from Debian's packages (scripts/debian-base.sh) and with the binary these tests
/// run, has OpenSSH's client, runs as a non-root user with a passwd entry, and deploys a host
/// app from inside the container over the loopback sshd, nginx and Docker of the host tests.
#[test]
fn converges_image_deploys_a_host_app_over_ssh() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    support::hosts::run(&mut std::process::Command::new(
        repo.join("scripts/debian-base.sh"),
    ));
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(repo.join("Dockerfile"), context.path().join("Dockerfile")).unwrap();
    support::hosts::run(
        std::process::Command::new("strip")
            .args(["--strip-debug", "-o"])
            .arg(context.path().join("converge"))
            .arg(env!("CARGO_BIN_EXE_converge")),
    );
    let tag = "converge-test/converge:local";
    support::hosts::run(
        std::process::Command::new("docker")
            .args([
                "build",
                "-q",
                "--build-arg",
                "BASE=converge-local/debian:bookworm-slim",
                "--target",
                "prebuilt",
                "-t",
                tag,
            ])
            .arg(context.path())
            .env("DOCKER_BUILDKIT", "0"),
    );
    let in_image = |entrypoint: &str, args: &[&str]| {
        support::hosts::run(
            std::process::Command::new("docker")
                .args(["run", "--rm", "--entrypoint", entrypoint, tag])
                .args(args),
        )
    };
    assert_eq!(in_image("id", &["-un"]).trim(), "converge");
    assert_ne!(in_image("id", &["-u"]).trim(), "0");
    let ssh = std::process::Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "ssh", tag, "-V"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ssh.stderr).contains("OpenSSH"),
        "{ssh:?}"
    );
    assert!(in_image("sh", &["-c", "command -v ssh-keyscan"]).contains("ssh-keyscan"));

    let name = "imaged";
    app_image(name, "v1");
    let host = TestHost::start();
    let p = project_with(
        &host,
        name,
        "",
        &format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
            proxy = host.proxy_yaml(&format!("{name}.test")),
        ),
    );
    // The container's user writes state and known_hosts into the mounted project.
    support::hosts::run(
        std::process::Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(p.root()),
    );
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "host", "-v"])
        .arg(format!("{}:/work", p.root().display()))
        .args([
            "-e",
            "CONVERGE_VAR_DEPLOY_KEY",
            "-e",
            "AWS_EC2_METADATA_DISABLED=true",
            "-e",
            "CONVERGE_AZURE_IMDS_DISABLED=true",
            "-e",
            "NO_COLOR=1",
            tag,
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ])
        .env("CONVERGE_VAR_DEPLOY_KEY", host.key())
        .output()
        .unwrap();
    let run = Run::from_output(out, &["apply (in the image)"]).expect(0);
    assert!(
        printed(&run).contains("Apply complete: 1 done"),
        "{}",
        printed(&run)
    );
    assert_eq!(host.get(&format!("{name}.test"), "/"), (200, "v1\n".into()));
    assert!(
        std::fs::read_to_string(p.root().join("known_hosts"))
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", host.ssh_port)),
        "the container recorded the host key in the project's known_hosts"
    );
}

/// A canary on two hosts (the second an [`IsolatedHost`]), 10% → pause → 50% → pause → 100%:
/// a client counting answers through both hosts' nginx sees the new version's share of each step
/// within a few points, never a failed request, then only the new version.
#[test]
fn a_canary_on_two_hosts_shares_requests_by_step_on_each() {
    let name = "two-canary";
    let h = two_hosts(
        name,
        &["v1", "v2"],
        "8s",
        r#"        strategy: canary
        steps: [10, pause, 50, pause, 100]
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
    );
    let (p, first, second) = (&h.project, &h.first, &h.second);
    let server = format!("{name}.test");
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
    };
    // Requests alternate between the two hosts: (v1, v2) answers of each host.
    let count = |n: usize| {
        let mut seen = [(0, 0), (0, 0)];
        for i in 0..n {
            let answer = match i % 2 {
                0 => first.get(&server, "/"),
                _ => second.get(&server, "/"),
            };
            match answer {
                (200, body) if body == "v1\n" => seen[i % 2].0 += 1,
                (200, body) if body == "v2\n" => seen[i % 2].1 += 1,
                other => panic!("a request failed during the canary: {other:?}"),
            }
        }
        seen
    };
    apply("v1").expect(0);
    assert_eq!(count(20), [(10, 0), (10, 0)]);
    apply("v2").expect(3);
    for (share, range) in [(10, 2..=22), (50, 34..=66)] {
        let seen = count(200);
        for (host, (old, new)) in seen.iter().enumerate() {
            assert!(
                range.contains(new),
                "{share}% step on host {}: {new} of {} new",
                host + 1,
                old + new
            );
        }
        let expect = if share == 10 { 3 } else { 0 };
        p.converge(&[
            "rollout", "promote", "--env", "test", "--var", "tag=v2", "app",
        ])
        .expect(expect);
    }
    assert_eq!(
        count(40),
        [(0, 20), (0, 20)],
        "only v2 serves on both hosts"
    );
}

/// A real accessory: PostgreSQL (from Debian's packages) as the app's `db`, with a Docker
/// healthcheck the rollout waits for before its migration, a `pg_dump` backup before each
/// migration, and a migration hook that writes a row per deploy through the app network's
/// `db` name. The database keeps running (never restarted) and keeps its rows across deploys;
/// each backup holds the database as it was before that deploy's migration.
#[test]
fn a_postgres_accessory_keeps_its_data_across_deploys_and_is_dumped_before_each_migration() {
    let name = "pgapp";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let pg = support::hosts::postgres_image();
    let host = TestHost::start();
    let data = host.data(name);
    let p = project_with(
        &host,
        name,
        "",
        &format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
        tools:
          image: "{pg}"
          command: ["sleep", "infinity"]
      accessories:
        db:
          image: "{pg}"
          volumes: ["{data}/pg:/var/lib/postgresql/data"]
          health: {{ command: [pg_isready, -U, postgres], interval: 500ms, timeout: 60s }}
          backup: {{ run: [pg_dump, -U, postgres, postgres], keep: 5 }}
      rollout:
        proxy: {proxy}
        hooks:
          pre_traffic:
            - {{ service: tools, run: [psql, -h, db, -U, postgres, -v, ON_ERROR_STOP=1, -c, "CREATE TABLE IF NOT EXISTS deploys (tag text); INSERT INTO deploys VALUES ('${{var.tag}}')"] }}
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
            data = data.display(),
            proxy = host.proxy_yaml(&format!("{name}.test")),
        ),
    );
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
        .expect(0)
    };
    let rows = || {
        host.docker_exec(
            &format!("{name}-db"),
            &[
                "psql",
                "-U",
                "postgres",
                "-tAc",
                "SELECT string_agg(tag, ',' ORDER BY tag) FROM deploys",
            ],
        )
        .trim()
        .to_string()
    };
    let started = || host.inspect(&format!("{name}-db"), "{{.State.StartedAt}}");
    let backups = || {
        let dir = support::hosts::backups_dir(name).join("db");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect::<Vec<_>>()
    };

    let first = printed(&apply("v1"));
    assert!(
        first.contains(&format!("{name}-db healthy (Docker healthcheck)")),
        "the rollout waited for the database: {first}"
    );
    assert_eq!(rows(), "v1");
    let dumps = backups();
    assert_eq!(dumps.len(), 1);
    assert!(
        dumps[0].contains("PostgreSQL database dump"),
        "{}",
        dumps[0]
    );
    assert!(
        !dumps[0].contains("CREATE TABLE public.deploys"),
        "taken before the first migration: {}",
        dumps[0]
    );
    let db_started = started();

    apply("v2");
    assert_eq!(rows(), "v1,v2", "the rows survived the deploy");
    assert_eq!(started(), db_started, "the database was never restarted");
    let dumps = backups();
    assert_eq!(dumps.len(), 2);
    assert!(
        dumps[1].contains("CREATE TABLE public.deploys")
            && dumps[1].contains("\nv1\n")
            && !dumps[1].contains("\nv2\n"),
        "taken after v1's migration and before v2's: {}",
        dumps[1]
    );
    assert_eq!(host.get(&format!("{name}.test"), "/"), (200, "v2\n".into()));
}

/// Issue 24: a team's own compose file deployed end to end. PostgreSQL and Redis (accessories:
/// named volumes `<project>_<volume>`) start healthy before the web service and the worker that
/// wait for them (`service_healthy`: the worker's first act finds the database accepting
/// connections); the web service's hardening and limits are what `docker inspect` shows; a new
/// tag switches blue/green with no failed request while the accessories keep running with
/// their data; an accessory changed in the file is replaced in place, its volume's data kept.
#[test]
fn a_compose_file_deploys_with_its_accessories_healthy_first_and_data_kept() {
    let name = "composed";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let pg = support::hosts::postgres_image();
    let redis = support::hosts::redis_image();
    let volumes = [format!("{name}_pg"), format!("{name}_cache")];
    let remove_volumes = || {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f"])
            .args(&volumes)
            .output();
    };
    remove_volumes();
    let host = TestHost::start();
    let p = project_with(
        &host,
        name,
        "  CACHE_MEMORY: { default: 256m }",
        &format!(
            r#"      compose: {{ file: ../compose.yaml }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
            proxy = host.proxy_yaml(&format!("{name}.test")),
        ),
    );
    p.write(
        "compose.yaml",
        &format!(
            r#"x-hardened: &hardened
  cap_drop: [ALL]
  security_opt: ["no-new-privileges:true"]
  pids_limit: 200
services:
  web:
    <<: *hardened
    image: converge-test/{name}:${{tag}}
    ports: ["8080"]
    mem_limit: 128m
    cpus: 0.5
    stop_grace_period: 5s
    labels: {{ team: storefront }}
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/ready"]
      interval: 500ms
      timeout: 2s
    depends_on:
      db: {{ condition: service_healthy }}
      cache: {{ condition: service_healthy }}
  worker:
    <<: *hardened
    image: {pg}
    command: ["sh", "-c", "pg_isready -h db -U postgres; redis-cli -h cache ping 2>&1 || true; exec sleep infinity"]
    depends_on:
      db: {{ condition: service_healthy }}
  db:
    image: {pg}
    volumes: [pg:/var/lib/postgresql/data]
    healthcheck:
      test: pg_isready -U postgres
      interval: 500ms
      timeout: 5s
      retries: 60
  cache:
    image: {redis}
    command: redis-server --appendonly yes --protected-mode no --dir /data
    mem_limit: ${{CACHE_MEMORY}}
    volumes: [cache:/data]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 500ms
volumes:
  pg:
  cache:
"#
        ),
    );
    let apply = |vars: &[&str]| {
        let mut args = vec![
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ];
        for v in vars {
            args.extend(["--var", v]);
        }
        p.converge(&args).expect(0)
    };
    let started = |c: &str| host.inspect(&format!("{name}-{c}"), "{{.State.StartedAt}}");

    let first = printed(&apply(&["tag=v1"]));
    assert!(
        first.contains(&format!("{name}-db healthy (Docker healthcheck)"))
            && first.contains(&format!("{name}-cache healthy (Docker healthcheck)")),
        "{first}"
    );
    assert_eq!(host.get(&format!("{name}.test"), "/"), (200, "v1\n".into()));
    // The worker started once the database was healthy: its first act found it accepting.
    let worker = format!("{name}-worker-blue");
    let logs = std::process::Command::new("docker")
        .args(["logs", &worker])
        .output()
        .unwrap();
    let logs =
        String::from_utf8_lossy(&logs.stdout).to_string() + &String::from_utf8_lossy(&logs.stderr);
    assert!(logs.contains("accepting connections"), "{logs}");
    assert!(started("db") < started("web-blue"), "db before web");
    // The worker reaches the web service by its compose name, which is the live colour only.
    let live_ip = |colour: &str| {
        host.inspect(
            &format!("{name}-web-{colour}"),
            &format!(
                "{{{{(index .NetworkSettings.Networks \"converge-{name}-live\").IPAddress}}}}"
            ),
        )
    };
    let resolved = |worker: &str| {
        host.docker_exec(worker, &["getent", "hosts", "web"])
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(resolved(&worker), live_ip("blue"));
    // Hardening and limits as written.
    let web = format!("{name}-web-blue");
    assert_eq!(
        host.inspect(&web, "{{json .HostConfig.CapDrop}}").trim(),
        r#"["ALL"]"#
    );
    assert_eq!(
        host.inspect(&web, "{{json .HostConfig.SecurityOpt}}")
            .trim(),
        r#"["no-new-privileges:true"]"#
    );
    assert_eq!(
        host.inspect(&web, "{{.HostConfig.Memory}}").trim(),
        "134217728"
    );
    assert_eq!(
        host.inspect(&web, "{{.HostConfig.NanoCpus}}").trim(),
        "500000000"
    );
    assert_eq!(
        host.inspect(&web, "{{.HostConfig.PidsLimit}}").trim(),
        "200"
    );
    assert_eq!(host.inspect(&web, "{{.Config.StopTimeout}}").trim(), "5");
    assert_eq!(
        host.inspect(&web, r#"{{index .Config.Labels "team"}}"#)
            .trim(),
        "storefront"
    );
    assert_eq!(
        host.inspect(&web, r#"{{index .Config.Labels "converge.app"}}"#)
            .trim(),
        name
    );
    // Named volumes as Compose names them.
    assert_eq!(
        host.inspect(&format!("{name}-db"), "{{range .Mounts}}{{.Name}}{{end}}")
            .trim(),
        format!("{name}_pg")
    );
    // Data in both accessories.
    host.docker_exec(
        &format!("{name}-db"),
        &[
            "psql",
            "-U",
            "postgres",
            "-c",
            "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')",
        ],
    );
    host.docker_exec(
        &format!("{name}-cache"),
        &["redis-cli", "SET", "kept", "before"],
    );
    let (db_started, cache_started) = (started("db"), started("cache"));

    // A new tag: blue/green with no failed request; the accessories untouched.
    let client = KeepAliveClient::start(host.http_port, &format!("{name}.test"));
    apply(&["tag=v2"]);
    let report = client.finish();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.versions.last().map(String::as_str), Some("v2"));
    assert_eq!(
        resolved(&format!("{name}-worker-green")),
        live_ip("green"),
        "the name follows the switch"
    );
    assert!(
        !host
            .inspect(
                &format!("{name}-web-blue"),
                "{{json .NetworkSettings.Networks}}"
            )
            .contains(&format!("converge-{name}-live")),
        "the old colour left the live network"
    );
    assert_eq!(
        (started("db"), started("cache")),
        (db_started.clone(), cache_started.clone())
    );

    // The cache's definition changes: the plan says it restarts and what that costs; it is
    // replaced in place (stopped gracefully), its data kept by its volume.
    let plan = p
        .converge(&[
            "plan",
            "--env",
            "test",
            "--var",
            "tag=v2",
            "--var",
            "CACHE_MEMORY=300m",
        ])
        .expect(0);
    assert!(
        printed(&plan).contains("cache: restart, about ")
            && printed(&plan).contains(" s of downtime (stopped within 10 s"),
        "{}",
        printed(&plan)
    );
    apply(&["tag=v2", "CACHE_MEMORY=300m"]);
    assert_ne!(started("cache"), cache_started, "the cache was replaced");
    assert_eq!(started("db"), db_started);
    assert_eq!(
        host.inspect(&format!("{name}-cache"), "{{.HostConfig.Memory}}")
            .trim(),
        (300u64 << 20).to_string()
    );
    assert_eq!(
        host.docker_exec(&format!("{name}-cache"), &["redis-cli", "GET", "kept"])
            .trim(),
        "before"
    );
    assert_eq!(
        host.docker_exec(
            &format!("{name}-db"),
            &["psql", "-U", "postgres", "-tAc", "SELECT v FROM kept"]
        )
        .trim(),
        "before"
    );

    // The worker and the cache leave the file: the plan says the cache goes and its data
    // stays; after the rollout neither runs, and the cache's volume is still there.
    let compose = p.read("compose.yaml");
    let start = compose.find("\n  worker:\n").unwrap();
    let end = compose.find("\n  db:\n").unwrap();
    let mut trimmed = format!("{}{}", &compose[..start], &compose[end..]);
    let start = trimmed.find("\n  cache:\n").unwrap();
    let end = trimmed.find("\nvolumes:\n  pg:").unwrap();
    trimmed = format!("{}{}", &trimmed[..start], &trimmed[end..]);
    trimmed = trimmed
        .replace("      cache: { condition: service_healthy }\n", "")
        .replace("  cache:\n", "");
    p.write("compose.yaml", &trimmed);
    let plan = p
        .converge(&["plan", "--env", "test", "--var", "tag=v2"])
        .expect(0);
    assert!(
        printed(&plan)
            .contains("cache: removed once the rollout succeeds (its named volumes are kept)"),
        "{}",
        printed(&plan)
    );
    apply(&["tag=v2"]);
    let left = host.containers(name);
    assert!(
        !left
            .iter()
            .any(|c| c.starts_with(&format!("{name}-cache "))),
        "the cache's container is removed: {left:?}"
    );
    assert!(
        !left
            .iter()
            .any(|c| c.contains("-worker-") && c.ends_with(" running")),
        "no worker runs: {left:?}"
    );
    let volume = std::process::Command::new("docker")
        .args(["volume", "inspect", &format!("{name}_cache")])
        .output()
        .unwrap();
    assert!(volume.status.success(), "the cache's volume is kept");

    // Drift covers the project's volumes: the database's container and volume removed by hand
    // are both drift, and an apply brings them back (empty: data a volume held is gone).
    for args in [
        vec!["rm", "-f", &format!("{name}-db")],
        vec!["volume", "rm", &format!("{name}_pg")],
    ] {
        let out = std::process::Command::new("docker")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let drift = p
        .converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(2);
    let text = printed(&drift);
    assert!(
        text.contains(&format!("volume {name}_pg missing"))
            && text.contains(&format!("no {name}-db")),
        "{text}"
    );
    apply(&["tag=v2"]);
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);
    drop(host);
    remove_volumes();
}

/// Issue 24 §2: two web services of one compose file behind one nginx: `/api` (and a server
/// name of its own) go to the API, everything else to the front; `/apix` is not the API's. Both
/// switch colour together in one reload, with no failed request on either path; drift sees
/// nothing; a third service with a port and no route is refused at its place in the compose
/// file, and nothing on the host changes.
#[test]
fn two_web_services_are_routed_by_path_and_server_name_and_switch_together() {
    let name = "routed";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let (front, api) = (format!("{name}.test"), format!("api.{name}.test"));
    let nginx = host.proxy_yaml(&front);
    let proxy = format!(
        "{}, routes: [{{ service: api, path: /api }}, {{ service: web }}, {{ service: api, server_name: {api} }}] }}",
        nginx.strip_suffix(" }").unwrap()
    );
    let p = project_with(
        &host,
        name,
        "",
        &format!(
            r#"      compose: {{ file: ../compose.yaml }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#
        ),
    );
    let service = |role: &str| {
        format!(
            r#"    image: converge-test/{name}:${{tag}}
    ports: ["8080"]
    environment: {{ ROLE: "{role}" }}
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/ready"]
      interval: 500ms
"#
        )
    };
    let compose = format!(
        "services:\n  web:\n{}  api:\n{}    deploy: {{ replicas: 2 }}\n",
        service(""),
        service("api")
    );
    p.write("compose.yaml", &compose);
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
        .expect(0)
    };
    apply("v1");
    assert_eq!(host.get(&front, "/"), (200, "v1\n".into()));
    assert_eq!(host.get(&front, "/api/"), (200, "api v1\n".into()));
    assert_eq!(host.get(&api, "/"), (200, "api v1\n".into()));
    assert_eq!(host.get(&front, "/apix").0, 404, "/apix is the front's");

    let clients = [
        KeepAliveClient::start_at(host.http_port, &front, "/"),
        KeepAliveClient::start_at(host.http_port, &front, "/api/"),
    ];
    std::thread::sleep(std::time::Duration::from_millis(300));
    apply("v2");
    std::thread::sleep(std::time::Duration::from_millis(300));
    for (client, last) in clients.into_iter().zip(["v2", "api v2"]) {
        let report = client.finish();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(report.versions.last().map(String::as_str), Some(last));
    }
    assert_eq!(host.get(&api, "/"), (200, "api v2\n".into()));
    // The API's two replicas (compose's deploy.replicas) both run in the new colour.
    assert_eq!(
        host.inspect(&format!("{name}-api-green-2"), "{{.State.Status}}"),
        "running"
    );
    // One file routes both, and the old colour of each is gone.
    for c in ["web-blue", "api-blue", "api-blue-2"] {
        assert_eq!(
            host.inspect(&format!("{name}-{c}"), "{{.State.Status}}"),
            "exited"
        );
    }
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);

    // A third web service with no route: refused where its port is written.
    p.write(
        "compose.yaml",
        &format!("{compose}  admin:\n{}", service("admin")),
    );
    let before = host.inspect(&format!("{name}-web-green"), "{{.State.StartedAt}}");
    let refused = p
        .converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--var",
            "tag=v2",
        ])
        .expect(1);
    let err = printed(&refused);
    assert!(
        err.contains("compose.yaml:") && err.contains("`admin` has a port but no route"),
        "{err}"
    );
    assert!(
        host.inspect(&format!("{name}-admin-blue"), "{{.Id}}")
            .is_empty()
    );
    assert_eq!(
        host.inspect(&format!("{name}-web-green"), "{{.State.StartedAt}}"),
        before
    );
}

/// Issue 24 §1 (`deploy.replicas`): a web service's replicas are all servers of its upstream,
/// each on its own port, and requests reach each of them; a deploy that scales down (3 to 2)
/// switches with no failed request and stops every replica of the old colour, the third
/// included; drift sees nothing.
#[test]
fn a_web_service_s_replicas_share_its_upstream_and_scale_down_without_a_failed_request() {
    let name = "replicated";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let server = format!("{name}.test");
    let env = |replicas: u16| {
        format!(
            r#"      services:
        web:
          image: "converge-test/{name}:${{var.tag}}"
          port: 8080
          replicas: {replicas}
          health: {{ http: {{ path: /ready }}, interval: 500ms, timeout: 8s }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
            proxy = host.proxy_yaml(&server),
        )
    };
    let p = project_with(&host, name, "", &env(3));
    let apply = |tag: &str| {
        p.converge(&[
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
            "--var",
            &format!("tag={tag}"),
        ])
        .expect(0)
    };
    apply("v1");
    let port_of = |c: &str| host.inspect(c, "{{index .Config.Labels \"converge.port\"}}");
    let blue: Vec<String> = ["", "-2", "-3"]
        .iter()
        .map(|k| format!("{name}-web-blue{k}"))
        .collect();
    let ports: std::collections::BTreeSet<String> = blue.iter().map(|c| port_of(c)).collect();
    assert_eq!(ports.len(), 3, "a port each: {ports:?}");
    let conf = host
        .dir
        .path()
        .join("converge")
        .join(format!("{name}.conf"));
    let file = std::fs::read_to_string(&conf).unwrap();
    for port in &ports {
        assert!(
            file.contains(&format!("server 127.0.0.1:{port} max_fails=0;")),
            "{file}"
        );
    }
    // Round robin: a dozen requests reach every replica (nginx's log names the port).
    for _ in 0..12 {
        assert_eq!(host.get(&server, "/"), (200, "v1\n".into()));
    }
    let log = std::fs::read_to_string(
        host.dir
            .path()
            .join("converge")
            .join(format!("{name}.access.log")),
    )
    .unwrap();
    for port in &ports {
        assert!(
            log.contains(&format!("127.0.0.1:{port}")),
            "{port} answered nothing:\n{log}"
        );
    }

    p.write(
        "environments/test.yaml",
        &p.read("environments/test.yaml")
            .replace("replicas: 3", "replicas: 2"),
    );
    let client = KeepAliveClient::start(host.http_port, &server);
    std::thread::sleep(std::time::Duration::from_millis(300));
    apply("v2");
    let report = client.finish();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.versions.last().map(String::as_str), Some("v2"));
    for c in [format!("{name}-web-green"), format!("{name}-web-green-2")] {
        assert_eq!(host.inspect(&c, "{{.State.Status}}"), "running", "{c}");
    }
    assert!(
        host.inspect(&format!("{name}-web-green-3"), "{{.Id}}")
            .is_empty()
    );
    for c in &blue {
        assert_eq!(host.inspect(c, "{{.State.Status}}"), "exited", "{c}");
    }
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);
}

/// Issue 24 §1 (`service_completed_successfully`): a compose service another waits for to
/// complete is a job: it runs to completion in the new colour before the web service starts,
/// once per deploy (again in the next), never restarted; a job that fails fails the deploy with
/// what it printed, and the live colour keeps serving.
#[test]
fn a_job_runs_to_completion_before_what_waits_for_it_and_a_failed_one_rolls_back() {
    let name = "jobbed";
    for v in ["v1", "v2"] {
        app_image(name, v);
    }
    let host = TestHost::start();
    let server = format!("{name}.test");
    let p = project_with(
        &host,
        name,
        "  job_exit: { default: \"0\" }",
        &format!(
            r#"      compose: {{ file: ../compose.yaml }}
      rollout:
        proxy: {proxy}
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
"#,
            proxy = host.proxy_yaml(&server),
        ),
    );
    p.write(
        "compose.yaml",
        &format!(
            r#"services:
  web:
    image: converge-test/{name}:${{tag}}
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/ready"]
      interval: 500ms
    depends_on:
      migrate: {{ condition: service_completed_successfully }}
  migrate:
    image: converge-test/{name}:${{tag}}
    command: ["sh", "-c", "sleep 1; echo migrated ${{tag}}; exit ${{job_exit}}"]
"#
        ),
    );
    let apply = |vars: &[&str]| {
        let mut args = vec![
            "apply",
            "--auto-approve",
            "--env",
            "test",
            "--accept-new-host-keys",
        ];
        for v in vars {
            args.extend(["--var", v]);
        }
        p.command(&args).output().unwrap()
    };
    let inspect = |c: &str, f: &str| host.inspect(&format!("{name}-{c}"), f);
    let logs = |c: &str| {
        let out = std::process::Command::new("docker")
            .args(["logs", &format!("{name}-{c}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let ran_first = |colour: &str| {
        let finished = inspect(&format!("migrate-{colour}"), "{{.State.FinishedAt}}");
        let started = inspect(&format!("web-{colour}"), "{{.State.StartedAt}}");
        assert!(!finished.starts_with("0001"), "the job finished");
        assert!(
            finished <= started,
            "job finished {finished}, web started {started}"
        );
    };

    let first = apply(&["tag=v1"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(host.get(&server, "/"), (200, "v1\n".into()));
    assert_eq!(
        inspect(
            "migrate-blue",
            "{{.State.Status}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}"
        ),
        "exited 0 no"
    );
    assert_eq!(logs("migrate-blue").trim(), "migrated v1");
    ran_first("blue");

    let second = apply(&["tag=v2"]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(host.get(&server, "/"), (200, "v2\n".into()));
    assert_eq!(logs("migrate-green").trim(), "migrated v2");
    ran_first("green");
    // Drift: a finished job is what a job should be.
    p.converge(&["drift", "--env", "test", "--var", "tag=v2"])
        .expect(0);

    // The job fails in the next deploy: nothing waiting for it starts, the deploy fails with
    // what it printed, and v2 keeps serving.
    let failed = apply(&["tag=v1", "job_exit=3"]);
    let text = String::from_utf8_lossy(&failed.stdout).to_string()
        + &String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{name}-migrate-blue"))
            && text.contains("exited with 3")
            && text.contains("migrated v1"),
        "{text}"
    );
    assert_eq!(host.get(&server, "/"), (200, "v2\n".into()));
    assert!(inspect("web-blue", "{{.State.Status}}") != "running");
}

/// Issue 24: examples/vardiologio's prod deploys from its compose file, its `database_url`
/// secret filled from the environment's Secrets Manager secret: one file, mounted read-only at
/// /run/secrets/database_url, 0400 and owned by the service's user (10001, every capability
/// dropped, a read-only root), with the value in no output; a new value is a new deploy.
#[test]
fn the_vardiologio_compose_file_mounts_its_secrets_manager_secret_as_a_file() {
    let moto = support::Moto::start();
    let name = "vardiologio-prod";
    app_image(name, "v3.2.0");
    let host = TestHost::start();
    host.owns(name);
    let p = Project::seed("vardiologio").with_moto(&moto).with_env(vec![
        ("CONVERGE_VAR_DEPLOY_KEY".into(), host.key()),
        (
            "CONVERGE_VAR_DATABASE_URL".into(),
            "postgres://v:first-5c3@db/v".into(),
        ),
    ]);
    let file = "environments/prod.yaml";
    p.edit(
        file,
        r#"[{ address: "${var.host}", user: deploy }]"#,
        &format!(
            "[{{ address: 127.0.0.1, port: {}, user: converge-deploy }}]",
            host.ssh_port
        ),
    );
    p.edit(
        file,
        "proxy: { nginx: { server_name: vardiologio.example.com, listen: 80 } }",
        &format!("proxy: {}", host.proxy_yaml("vardiologio.example.com")),
    );
    p.edit(file, "bake: 2m", "bake: 1s");
    p.edit(file, "interval: 5s", "interval: 500ms");
    p.edit(file, "drain_timeout: 30s", "drain_timeout: 1s");
    // The test app listens on 8080 and writes its pages below /www.
    p.edit("docker-compose.yml", "8000:8000", "8080:8080");
    p.edit("docker-compose.yml", "127.0.0.1:8000", "127.0.0.1:8080");
    p.edit(
        "docker-compose.yml",
        "registry.vardiologio.example.com/vardiologio",
        &format!("converge-test/{name}"),
    );
    p.edit(
        "docker-compose.yml",
        "read_only: true",
        "read_only: true\n    tmpfs: [/www]",
    );
    let out = p
        .converge(&[
            "apply",
            "--auto-approve",
            "-e",
            "prod",
            "--accept-new-host-keys",
        ])
        .expect(0);
    assert!(!printed(&out).contains("first-5c3"), "{}", printed(&out));
    let web = format!("{name}-web-blue");
    assert_eq!(
        host.docker_exec(&web, &["cat", "/run/secrets/database_url"]),
        "postgres://v:first-5c3@db/v"
    );
    assert_eq!(
        host.docker_exec(
            &web,
            &["stat", "-c", "%a %u %g", "/run/secrets/database_url"]
        )
        .trim(),
        "400 10001 10001"
    );
    assert_eq!(host.inspect(&web, "{{.Config.User}}"), "10001:10001");
    let written = std::process::Command::new("docker")
        .args([
            "exec",
            &web,
            "sh",
            "-c",
            "echo x > /run/secrets/database_url",
        ])
        .output()
        .unwrap();
    assert!(!written.status.success(), "the secret file is read-only");
    assert!(
        !host
            .inspect(&web, "{{json .Config.Env}}")
            .contains("first-5c3"),
        "the value is no environment variable"
    );
    assert_eq!(
        host.get("vardiologio.example.com", "/"),
        (200, "v3.2.0\n".into())
    );

    // A new value is a new deploy: the green colour mounts it, and drift is clean after.
    let rotated = [("CONVERGE_VAR_DATABASE_URL", "postgres://v:second-8d1@db/v")];
    let out = converge_with(&p, &rotated, &["apply", "--auto-approve", "-e", "prod"]).expect(0);
    assert!(!printed(&out).contains("second-8d1"), "{}", printed(&out));
    assert_eq!(
        host.docker_exec(
            &format!("{name}-web-green"),
            &["cat", "/run/secrets/database_url"]
        ),
        "postgres://v:second-8d1@db/v"
    );
    converge_with(&p, &rotated, &["drift", "-e", "prod"]).expect(0);
}
