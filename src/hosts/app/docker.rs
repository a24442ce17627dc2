//! The shell a host runs for converge: `docker` CLI command lines, env files and names, built
//! as text here (pure, tested without a host) and run over SSH by `host.rs`.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::spec::{Check, Container};

/// Label every container of an app carries (`converge.app=NAME`).
pub const APP_LABEL: &str = "converge.app";

/// A word quoted for the host's POSIX shell.
pub fn quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| "''".into())
}

/// Words quoted and joined.
pub fn join(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The directory of the app's env files on the host.
pub fn env_dir(app: &str) -> String {
    format!("/etc/converge/{app}")
}

/// A service's container of one colour.
pub fn service_name(app: &str, service: &str, colour: &str) -> String {
    format!("{app}-{service}-{colour}")
}

/// An accessory's container.
pub fn accessory_name(app: &str, accessory: &str) -> String {
    format!("{app}-{accessory}")
}

/// The app's Docker network.
pub fn network(app: &str) -> String {
    format!("converge-{app}")
}

/// Whether `name` is a shell variable name (what `docker run -e NAME` copies from its own
/// environment).
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The env file of one container: `export NAME='value'` lines the host's shell sources before
/// `docker run -e NAME`, so every value reaches the container exactly (`$`, quotes, spaces
/// and newlines included; Docker's own `--env-file` cannot carry a newline).
pub fn env_file(c: &Container) -> String {
    let mut out = String::from("# written by converge; 0600, read only by the deploy user\n");
    for (k, v) in c.env.iter().chain(c.secrets.iter()) {
        out.push_str(&format!("export {k}={}\n", quote(v)));
    }
    out
}

/// A digest of what a container runs (image, command, env, secrets, volumes, port, check),
/// put on it as a label so a later run sees whether it is what the files say. Secrets enter
/// it only through SHA-256.
pub fn config_hash(c: &Container) -> String {
    let secrets: BTreeMap<&String, String> = c
        .secrets
        .iter()
        .map(|(k, v)| (k, hex::encode(Sha256::digest(v.as_bytes()))))
        .collect();
    let text = serde_json::json!({
        "image": c.image, "command": c.command, "env": c.env, "secrets": secrets,
        "volumes": c.volumes, "port": c.port, "check": format!("{:?}", c.check),
    })
    .to_string();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// What `docker run` needs besides the container's settings.
pub struct Run<'a> {
    /// Container name.
    pub name: &'a str,
    /// The app.
    pub app: &'a str,
    /// Labels besides `converge.app`.
    pub labels: Vec<(&'a str, String)>,
    /// Host port on 127.0.0.1 published to the container's port.
    pub publish: Option<u16>,
    /// `-d --restart unless-stopped` (a service or accessory) or a one-off (a hook).
    pub detach: bool,
    /// The env file sourced first.
    pub env_file: String,
    /// Network alias.
    pub alias: Option<String>,
    /// Command override (hooks).
    pub command: Option<Vec<String>>,
}

/// `docker run` of `c` as a shell script: sources the env file, passes each variable by name.
pub fn run(c: &Container, r: &Run<'_>) -> String {
    let mut words: Vec<String> = vec!["docker".into(), "run".into(), "-d".into()];
    words.extend(["--name".into(), r.name.into()]);
    words.extend(["--network".into(), network(r.app)]);
    if let Some(alias) = &r.alias {
        words.extend(["--network-alias".into(), alias.clone()]);
    }
    if r.detach {
        words.extend(["--restart".into(), "unless-stopped".into()]);
    }
    words.extend(["--label".into(), format!("{APP_LABEL}={}", r.app)]);
    for (k, v) in &r.labels {
        words.extend(["--label".into(), format!("{k}={v}")]);
    }
    words.extend([
        "--label".into(),
        format!("converge.config={}", config_hash(c)),
    ]);
    if let (Some(host), Some(port)) = (r.publish, c.port) {
        words.extend(["-p".into(), format!("127.0.0.1:{host}:{port}")]);
    }
    for v in &c.volumes {
        words.extend(["-v".into(), v.clone()]);
    }
    for k in c.env.keys().chain(c.secrets.keys()) {
        words.extend(["-e".into(), k.clone()]);
    }
    if let Check::Command(cmd) = &c.check {
        words.extend([
            "--health-cmd".into(),
            join(cmd),
            "--health-interval".into(),
            format!("{}ms", c.check_interval.as_millis().max(1000)),
            "--health-start-period".into(),
            "0s".into(),
        ]);
    }
    words.push(c.image.clone());
    let command = r.command.as_ref().unwrap_or(&c.command);
    words.extend(command.iter().cloned());
    format!("set -a; . {}; set +a; {}", quote(&r.env_file), join(&words))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        Container {
            image: "reg/app:v1".into(),
            command: vec![],
            env: BTreeMap::from([("A".into(), "plain".into())]),
            secrets: BTreeMap::from([("S".into(), "it's $HOME \"q\"\nline2".into())]),
            volumes: vec!["/srv/a:/data".into()],
            port: Some(8080),
            check: Check::Running,
            check_interval: std::time::Duration::from_secs(2),
            check_timeout: std::time::Duration::from_secs(30),
        }
    }

    /// The env file, sourced by a real shell, gives back every value exactly.
    #[test]
    fn an_env_file_round_trips_every_byte_through_sh() {
        let file = env_file(&container());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{file}\nprintf '%s' \"$S\""))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "it's $HOME \"q\"\nline2"
        );
    }

    /// No value is on the command line: variables are passed by name.
    #[test]
    fn docker_run_names_variables_and_never_holds_their_values() {
        let script = run(
            &container(),
            &Run {
                name: "app-web-blue",
                app: "app",
                labels: vec![("converge.colour", "blue".into())],
                publish: Some(21000),
                detach: true,
                env_file: "/etc/converge/app/web-blue.env".into(),
                alias: None,
                command: None,
            },
        );
        assert!(script.contains("-e A -e S"), "{script}");
        assert!(script.contains("-p 127.0.0.1:21000:8080"), "{script}");
        assert!(
            !script.contains("plain") && !script.contains("line2"),
            "{script}"
        );
        assert!(valid_env_name("DATABASE_URL") && !valid_env_name("1X") && !valid_env_name("A-B"));
    }
}
