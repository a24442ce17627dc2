//! Desired-state values are untrusted input (issue 21): each attack value a review found, given
//! to the real binary, is refused by `validate` and `plan` with an error at its file, line and
//! column, and runs nothing on the runner (the marker file the attack would create never
//! appears). `apply` refuses a value that arrives through another resource's output before any
//! host is reached.

mod support;

use support::{Moto, Project, Run};

/// A host app on a port where nothing listens: reaching it would fail differently from the
/// refusals these tests expect.
const BASE: &str = r#"environment: u
providers: {}
variables:
  key: { sensitive: true, default: "k-secret-value-7c1d" }
  user: { default: deploy }
resources:
  app:
    type: host.app
    properties:
      name: app
      hosts: [{ address: "127.0.0.1", port: 1, user: deploy }]
      ssh: { private_key: "${var.key}", known_hosts: known_hosts }
      services:
        web:
          image: "app:v1"
          port: 8080
          env: { PLAIN: x }
          volumes: ["/srv/app:/data"]
          health: { http: { path: /ready } }
      rollout:
        proxy: { nginx: { server_name: app.test } }
        hooks: { pre_traffic: [{ service: web, run: ["app", "migrate"] }] }
        health: { http: { path: /health } }
"#;

/// A project whose environment `u` is [`BASE`] with `from` replaced by `to`.
fn project(from: &str, to: &str) -> Project {
    assert!(BASE.contains(from), "{from}");
    let p = Project::empty();
    p.write("environments/u.yaml", &BASE.replacen(from, to, 1));
    p
}

/// The line and column (1-based) where `needle` starts in the environment file.
fn at(p: &Project, needle: &str) -> String {
    let text = p.read("environments/u.yaml");
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the file"));
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("environments/u.yaml:{line}:{column}")
}

/// `validate` and `plan` both exit 1 naming `message` at the place `needle` was written, and
/// the marker file an attack would create is not there.
fn refused(p: &Project, needle: &str, message: &str, extra: &[&str]) {
    let place = at(p, needle);
    for command in ["validate", "plan"] {
        let mut args = vec!["-e", "u", command];
        args.extend_from_slice(extra);
        let run = p.converge(&args).expect(1);
        let err = run.stderr();
        assert!(
            err.contains(message) && err.contains(&place),
            "{command}: expected `{message}` at {place}:\n{err}"
        );
        assert!(!p.root().join("PWNED").exists(), "{command} ran the attack");
    }
}

/// Finding 1: a user that is an ssh option, written literally or given through a variable.
#[test]
fn a_user_that_is_an_ssh_option_is_refused_and_runs_nothing() {
    let attack = "-oProxyCommand=touch PWNED;false";
    let p = project("user: deploy }]", &format!("user: \"{attack}\" }}]"));
    refused(&p, &format!("\"{attack}"), "is not a user name", &[]);
    // apply refuses it as well, before any ssh.
    let run = p
        .converge(&["-e", "u", "apply", "--auto-approve"])
        .expect(1);
    assert!(
        run.stderr().contains("is not a user name"),
        "{}",
        run.stderr()
    );
    assert!(!p.root().join("PWNED").exists());

    // Through a variable: the error is at the variable's use and names it.
    let p = project("user: deploy }]", "user: \"${var.user}\" }]");
    let var = format!("user={attack}");
    refused(&p, "\"${var.user}", "is not a user name", &["--var", &var]);
}

/// Finding 2: an address with a space (`127.0.0.1 *` planted a wildcard in known_hosts).
#[test]
fn an_address_with_a_space_is_refused() {
    let p = project("address: \"127.0.0.1\"", "address: \"127.0.0.1 *\"");
    refused(
        &p,
        "\"127.0.0.1 *\"",
        "is not a host name or IP address",
        &[],
    );
}

/// Finding 3: an environment variable name that is shell code.
#[test]
fn an_environment_name_that_is_shell_code_is_refused() {
    let p = project("env: { PLAIN: x }", "env: { \"A=1; touch PWNED; B\": x }");
    refused(
        &p,
        "\"A=1; touch PWNED; B\"",
        "is not an environment variable name",
        &[],
    );
}

/// Finding 4: nginx directives smuggled in through the server name, a TLS path or the include
/// directory.
#[test]
fn nginx_directive_injection_is_refused() {
    let block = r#""x\nlocation /files/ { alias /; autoindex on; }""#;
    let p = project("server_name: app.test", &format!("server_name: {block}"));
    refused(&p, block, "is not an nginx server name", &[]);
    let include = "\"x; include /etc/shadow\"";
    let p = project("server_name: app.test", &format!("server_name: {include}"));
    refused(&p, include, "is not an nginx server name", &[]);
    let p = project(
        "server_name: app.test }",
        "server_name: app.test, tls: { certificate: \"/etc/ssl/a.pem;include /etc/shadow\", key: /etc/ssl/a.key } }",
    );
    refused(
        &p,
        "\"/etc/ssl/a.pem;include",
        "is not an absolute path on the host",
        &[],
    );
    let p = project(
        "server_name: app.test }",
        "server_name: app.test, include_dir: conf.d }",
    );
    refused(&p, "conf.d", "it must be absolute", &[]);
}

/// Finding 5: a sensitive value on a hook's command line (shown by ps and docker inspect).
#[test]
fn a_sensitive_value_in_a_hook_command_is_refused_and_never_shown() {
    let p = project(
        "run: [\"app\", \"migrate\"]",
        "run: [\"app\", \"migrate\", \"--password=${var.key}\"]",
    );
    refused(
        &p,
        "[\"app\", \"migrate\", \"--password",
        "a sensitive value may not be on a hook's command line",
        &[],
    );
    let run = p.converge(&["-e", "u", "plan"]);
    assert!(
        !run.stdout().contains("k-secret-value-7c1d")
            && !run.stderr().contains("k-secret-value-7c1d")
    );
}

/// Finding 9: the host's Azure token goes only to an ACR login server.
#[test]
fn an_acr_exchange_with_a_server_that_is_not_acr_is_refused() {
    let p = project(
        "      services:",
        "      registry: { server: evil.example.com, auth: { acr: true } }\n      services:",
    );
    refused(
        &p,
        "evil.example.com",
        "is not an Azure Container Registry login server",
        &[],
    );
    let p = project(
        "      services:",
        "      registry: { server: shop.azurecr.io, auth: { acr: true } }\n      services:",
    );
    p.converge(&["-e", "u", "validate"]).expect(0);
}

/// Low: a NUL byte (quoted away to `''` before), an image or registry that is a docker flag,
/// CR/LF in a probe's path, root without `allow_root`, a key file outside the project, a module
/// source outside it, a newline in a map key.
#[test]
fn small_holes_are_refused_at_their_place() {
    let p = project("image: \"app:v1\"", "image: \"app\\0:v1\"");
    refused(&p, "\"app\\0:v1\"", "is not an image reference", &[]);
    let p = project("env: { PLAIN: x }", "env: { PLAIN: \"a\\0b\" }");
    refused(&p, "\"a\\0b\"", "control character", &[]);
    let p = project("image: \"app:v1\"", "image: \"--privileged\"");
    refused(&p, "\"--privileged\"", "starts with `-`", &[]);
    let p = project(
        "      services:",
        "      registry: { server: \"--help\" }\n      services:",
    );
    refused(&p, "\"--help\"", "is not a registry server", &[]);
    let p = project(
        "health: { http: { path: /health } }",
        "health: { http: { path: \"/health\\r\\nHost: evil\" } }",
    );
    refused(&p, "\"/health\\r\\nHost", "is not a request path", &[]);
    let p = project("user: deploy }]", "user: root }]");
    refused(&p, "root }]", "does not log in as root", &[]);
    let p = project("user: deploy }]", "user: root, allow_root: true }]");
    p.converge(&["-e", "u", "validate"]).expect(0);
    let p = project(
        "known_hosts: known_hosts }",
        "known_hosts: known_hosts, private_key_file: ../../etc/ssh/ssh_host_ed25519_key }",
    );
    refused(&p, "../../etc/ssh", "leaves the project", &[]);

    let p = Project::empty();
    p.write(
        "environments/u.yaml",
        "environment: u\nproviders: {}\nmodules:\n  m: { source: \"../../etc\" }\n",
    );
    refused(&p, "\"../../etc\"", "is not a module name", &[]);

    let p = Project::empty();
    p.write(
        "environments/u.yaml",
        "environment: u\nproviders: { aws: { region: us-east-1 } }\nresources:\n  repo:\n    type: aws.ecr_repository\n    properties: { name: r, tags: { \"team\\nPlan: 0 to add\": x } }\n",
    );
    refused(&p, "\"team\\nPlan", "holds a control character", &[]);
}

/// Low: a mount that hands a container the host is legal, and a located warning.
#[test]
fn mounting_the_host_is_a_located_warning() {
    let p = project(
        "volumes: [\"/srv/app:/data\"]",
        "volumes: [\"/:/host\", \"/var/run/docker.sock:/var/run/docker.sock\"]",
    );
    for command in ["validate", "plan"] {
        let run = p.converge(&["-e", "u", command]).expect(0);
        let err = run.stderr();
        assert!(
            err.contains("warning: environments/u.yaml:")
                && err.contains("mounting `/` gives the container the host")
                && err.contains("mounting `/var/run/docker.sock`"),
            "{command}: {err}"
        );
    }
}

/// Low: the loader reads only regular files of at most 16 MiB (an environment file linked to
/// /dev/zero read until memory ran out).
#[test]
fn the_loader_refuses_devices_and_huge_files() {
    let p = Project::empty();
    std::fs::create_dir_all(p.root().join("environments")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", p.root().join("environments/z.yaml")).unwrap();
    let started = std::time::Instant::now();
    let run = p.converge(&["-e", "z", "validate"]).expect(1);
    assert!(
        run.stderr().contains("not a regular file"),
        "{}",
        run.stderr()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    p.write(
        "environments/big.yaml",
        &format!("environment: big\n# {}\n", "x".repeat(17 * 1024 * 1024)),
    );
    let run = p.converge(&["-e", "big", "validate"]).expect(1);
    assert!(
        run.stderr().contains("larger than 16 MiB"),
        "{}",
        run.stderr()
    );
}

/// Low: a value that reaches a host app through another resource's output is unknown at load;
/// apply checks it against the kind's grammar before anything reaches a host (here an ECR
/// repository's URI as the app's name: it would name containers, a directory and a file).
#[test]
fn a_value_from_an_output_is_checked_before_any_host_is_reached() {
    let moto = Moto::start();
    let p = project("      name: app\n", "      name: \"${repo.uri}\"\n").with_moto(&moto);
    p.edit(
        "environments/u.yaml",
        "providers: {}",
        "providers: { aws: { region: us-east-1 } }",
    );
    p.edit(
        "environments/u.yaml",
        "resources:\n",
        "resources:\n  repo: { type: aws.ecr_repository, properties: { name: shop/app } }\n",
    );
    p.converge(&["-e", "u", "validate"]).expect(0);
    let run: Run = p
        .converge(&["-e", "u", "apply", "--auto-approve"])
        .expect(1);
    let err = run.stderr();
    assert!(
        err.contains("app: `name`:") && err.contains("is not a name"),
        "{err}"
    );
    assert!(!err.contains("ssh"), "a host was reached: {err}");
}
