//! Apps on hosts (issue 15) with the real binary against a real host on loopback: OpenSSH's
//! server letting in a non-root deploy user, nginx with a default site, the machine's Docker
//! Engine, and a test app built FROM scratch with busybox (`tests/fixtures/hostapp`).

mod support;

use support::Project;
use support::hosts::{KeepAliveClient, TestHost, app_image};

/// A project with one host app `name` on `host`, its image tag from `--var tag=…`.
fn project(host: &TestHost, name: &str, extra_rollout: &str) -> Project {
    host.owns(name);
    let p = Project::empty().with_env(vec![("CONVERGE_VAR_DEPLOY_KEY".into(), host.key())]);
    let data = host.data(name);
    p.write(
        "environments/test.yaml",
        &format!(
            r#"environment: test
providers: {{}}
variables:
  deploy_key: {{ sensitive: true }}
  tag: {{ default: v1 }}
resources:
  app:
    type: host.app
    properties:
      name: {name}
      hosts: [{{ address: 127.0.0.1, port: {port}, user: converge-deploy }}]
      ssh: {{ known_hosts: known_hosts, private_key: "${{var.deploy_key}}" }}
      services:
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
            port = host.ssh_port,
            data = data.display(),
            proxy = host.proxy_yaml(&format!("{name}.test")),
        ),
    );
    p
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

    // The live colour stopped by hand: drift names host and service; apply repairs it.
    std::process::Command::new("docker")
        .args(["stop", "bg-switch-web-green"])
        .output()
        .unwrap();
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
    std::thread::sleep(std::time::Duration::from_millis(1100));
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
    // The v1 colour stopped more than keep_previous ago is gone.
    let names = host.containers(name);
    assert_eq!(names.len(), 2, "{names:?}");
}

/// v3 failing its health check never gets traffic (v2 serves, exit 1); v4 healthy alone but
/// failing behind the proxy (`failures: 2`) is switched back within one interval, on_rollback
/// ran once, and the reason is in `rollout status` and the audit trail.
#[test]
fn a_failing_colour_never_serves_and_a_failing_gate_switches_back() {
    let name = "bg-fail";
    for v in ["v1", "v2-broken", "v3-sour"] {
        app_image(name, v);
    }
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
}
