//! What converge asks a host's Docker for: containers as Engine API bodies (data Docker reads
//! itself, so no value of an app's environment, command or mounts ever passes through a
//! shell), and the few `docker` CLI lines the scripts run, built only from checked words
//! ([`Word`]) with `--` before positionals. Pure, tested without a host.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::spec::{Check, Container};
use crate::model::Value;
use crate::model::grammar::{self, Name};

/// Label every container of an app carries (`converge.app=NAME`).
pub const APP_LABEL: &str = "converge.app";
/// Label with the keyed digest of what a container runs.
pub const CONFIG_LABEL: &str = "converge.config";

/// A word a remote script may hold: a value that followed its grammar, a name converge built
/// from such values, or converge's own text. Nothing else can be quoted into a script.
pub trait Word {
    /// The text.
    fn word(&self) -> &str;
}

macro_rules! words {
    ($($t:ty),*) => { $(impl Word for $t { fn word(&self) -> &str { self.as_str() } })* };
}
words!(
    grammar::Name,
    grammar::ImageRef,
    grammar::HostPath,
    grammar::RegistryServer,
    grammar::HostAddress,
    grammar::SshUser,
    ContainerName
);

/// converge's own constant text.
pub struct Const(pub &'static str);

impl Word for Const {
    fn word(&self) -> &str {
        self.0
    }
}

/// A word quoted for POSIX sh (the interpreter of every remote script: `sh -s`). Words have no
/// NUL (every grammar refuses control characters), so quoting never fails.
pub fn quote(word: &dyn Word) -> String {
    let w = word.word();
    debug_assert!(!w.contains('\0'));
    format!("'{}'", w.replace('\'', r"'\''"))
}

/// Words quoted and joined.
pub fn join<W: Word>(words: &[W]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// A container's name, built from checked names and a colour.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerName(String);

impl ContainerName {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name read back from a host (`docker ps`), taken only if it is one converge could
    /// have built for `app`.
    pub fn listed(app: &Name, text: &str) -> Option<ContainerName> {
        let ok = text.starts_with(&format!("{app}-"))
            && text.len() <= 128
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        ok.then(|| ContainerName(text.to_string()))
    }
}

impl std::fmt::Display for ContainerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A colour: `blue` or `green`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// blue.
    Blue,
    /// green.
    Green,
}

impl Colour {
    /// Parses a colour read back (a record, a label, the nginx file).
    pub fn parse(text: &str) -> Option<Colour> {
        match text {
            "blue" => Some(Colour::Blue),
            "green" => Some(Colour::Green),
            _ => None,
        }
    }

    /// The text.
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }

    /// The other colour.
    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }
}

/// A service's container of one colour.
pub fn service_name(app: &Name, service: &Name, colour: Colour) -> ContainerName {
    ContainerName(format!("{app}-{service}-{}", colour.as_str()))
}

/// Replica `replica` (from 1) of a service's colour: the first is [`service_name`], later
/// ones carry their number (`shop-web-blue-2`).
pub fn replica_name(app: &Name, service: &Name, colour: Colour, replica: u16) -> ContainerName {
    match replica {
        0 | 1 => service_name(app, service, colour),
        k => ContainerName(format!("{app}-{service}-{}-{k}", colour.as_str())),
    }
}

/// The replica number a service container's name ends with (1: none).
pub fn replica_number(name: &ContainerName) -> u16 {
    name.as_str()
        .rsplit_once('-')
        .and_then(|(rest, k)| {
            (rest.ends_with("-blue") || rest.ends_with("-green"))
                .then(|| k.parse().ok())
                .flatten()
        })
        .unwrap_or(1)
}

/// An accessory's container.
pub fn accessory_name(app: &Name, accessory: &Name) -> ContainerName {
    ContainerName(format!("{app}-{accessory}"))
}

/// A hook's one-off container: `APP-hook-ID8-STAGE-N`.
pub fn hook_name(app: &Name, rollout_id: &str, stage: &str, index: usize) -> ContainerName {
    let id: String = rollout_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let stage: String = stage
        .chars()
        .map(|c| if c.is_ascii_lowercase() { c } else { '-' })
        .collect();
    ContainerName(format!("{app}-hook-{id}-{stage}-{}", index + 1))
}

/// The never-started helper that puts a container's files on the host: `NAME-files`.
pub fn files_helper_name(container: &ContainerName) -> ContainerName {
    ContainerName(format!("{container}-files"))
}

/// The app's Docker network.
pub fn network(app: &Name) -> ContainerName {
    ContainerName(format!("converge-{app}"))
}

/// The app's second network, where each web service's name (`web`) is an alias of its live
/// colour only: the app's other containers reach the live version by the name Compose gives it.
pub fn live_network(app: &Name) -> ContainerName {
    ContainerName(format!("converge-{app}-live"))
}

/// The directory older releases kept the app's env files in on the host (removed with the app).
pub fn legacy_env_dir(app: &Name) -> Option<grammar::HostPath> {
    grammar::HostPath::try_from(format!("/etc/converge/{app}").as_str()).ok()
}

/// A keyed digest of what a container runs (image, command, environment and secrets as the
/// files give them, mounts, port, check): its `converge.config` label, so a later run sees
/// whether a container is what the files say. Made with the environment's state key
/// ([`crate::model::digest`]), the one hash converge takes over data that can hold a secret.
pub fn config_digest(c: &Container) -> String {
    crate::model::digest::keyring().digest(&config_value(c))
}

/// Whether a container's `converge.config` label says it runs `c` (a digest under the
/// previous state key during a rotation counts).
pub fn runs(label: &str, c: &Container) -> bool {
    crate::model::digest::keyring()
        .matches(label, &config_value(c))
        .unwrap_or(false)
}

fn config_value(c: &Container) -> Value {
    let secrets: BTreeMap<String, Json> = c
        .secrets
        .iter()
        .map(|(k, v)| {
            let v = match v {
                super::spec::SecretSource::Value(s) => json!({ "value": s.expose() }),
                super::spec::SecretSource::SecretsManager { arn, version } => {
                    json!({ "arn": arn, "version": version })
                }
            };
            (k.to_string(), v)
        })
        .collect();
    let env: BTreeMap<String, &String> = c.env.iter().map(|(k, v)| (k.to_string(), v)).collect();
    let volumes: Vec<&str> = c.volumes.iter().map(|v| v.as_str()).collect();
    let mut value = json!({
        "image": c.image.as_str(), "command": c.command, "env": env, "secrets": secrets,
        "volumes": volumes, "port": c.port, "check": format!("{:?}", c.check),
    });
    // Settings added later join the digest only when set: a container started before they
    // existed still runs what the files say.
    if let Some(e) = &c.entrypoint {
        value["entrypoint"] = json!(e);
    }
    if let Some(u) = &c.user {
        value["user"] = json!(u);
    }
    if let Some(w) = &c.working_dir {
        value["working_dir"] = json!(w.as_str());
    }
    if !c.runtime.is_empty() {
        value["runtime"] = json!(c.runtime);
    }
    if !c.files.is_empty() {
        let files: BTreeMap<&str, Json> = c
            .files
            .iter()
            .map(|(path, f)| {
                let content = match &f.content {
                    super::spec::FileContent::Text(t) => json!({ "text": t }),
                    super::spec::FileContent::Secret(super::spec::SecretSource::Value(s)) => {
                        json!({ "value": s.expose() })
                    }
                    super::spec::FileContent::Secret(
                        super::spec::SecretSource::SecretsManager { arn, version },
                    ) => json!({ "arn": arn, "version": version }),
                };
                (path.as_str(), json!({ "content": content, "mode": f.mode }))
            })
            .collect();
        value["files"] = json!(files);
    }
    Value::from_json(&value)
}

/// The `HostConfig` and top-level fields of a container's `runtime` block.
fn apply_runtime(c: &Container, body: &mut Json, host: &mut Json) {
    let r = &c.runtime;
    if let Some(e) = &c.entrypoint {
        body["Entrypoint"] = json!(e);
    }
    if let Some(u) = &c.user {
        body["User"] = json!(u);
    }
    if let Some(w) = &c.working_dir {
        body["WorkingDir"] = json!(w.as_str());
    }
    if let Some(s) = &r.stop_signal {
        body["StopSignal"] = json!(s);
    }
    if let Some(t) = r.stop_grace_seconds {
        body["StopTimeout"] = json!(t);
    }
    for (k, v) in &r.labels {
        body["Labels"][k] = json!(v);
    }
    if let Some(ro) = r.read_only {
        host["ReadonlyRootfs"] = json!(ro);
    }
    if !r.cap_add.is_empty() {
        host["CapAdd"] = json!(r.cap_add);
    }
    if !r.cap_drop.is_empty() {
        host["CapDrop"] = json!(r.cap_drop);
    }
    if !r.security_opt.is_empty() {
        host["SecurityOpt"] = json!(r.security_opt);
    }
    if !r.tmpfs.is_empty() {
        let tmpfs: serde_json::Map<String, Json> =
            r.tmpfs.iter().map(|t| (t.clone(), json!(""))).collect();
        host["Tmpfs"] = Json::Object(tmpfs);
    }
    if let Some(m) = r.memory {
        host["Memory"] = json!(m);
    }
    if let Some(n) = r.nano_cpus {
        host["NanoCpus"] = json!(n);
    }
    if let Some(p) = r.pids_limit {
        host["PidsLimit"] = json!(p);
    }
    if !r.ulimits.is_empty() {
        host["Ulimits"] = json!(
            r.ulimits
                .iter()
                .map(|(name, soft, hard)| json!({ "Name": name, "Soft": soft, "Hard": hard }))
                .collect::<Vec<_>>()
        );
    }
    if let Some(i) = r.init {
        host["Init"] = json!(i);
    }
    if let Some(p) = &r.restart {
        host["RestartPolicy"]["Name"] = json!(p);
    }
    if let Some((driver, options)) = &r.logging {
        host["LogConfig"] = json!({ "Type": driver, "Config": options });
    }
    if r.privileged == Some(true) {
        host["Privileged"] = json!(true);
    }
    if r.host_network == Some(true) {
        host["NetworkMode"] = json!("host");
        body["NetworkingConfig"] = Json::Null;
    }
    if !r.devices.is_empty() {
        host["Devices"] = json!(
            r.devices
                .iter()
                .map(
                    |d| json!({ "PathOnHost": d, "PathInContainer": d, "CgroupPermissions": "rwm" })
                )
                .collect::<Vec<_>>()
        );
    }
}

/// What a container needs besides its settings.
pub struct Run<'a> {
    /// The app.
    pub app: &'a Name,
    /// Labels besides `converge.app` and `converge.config`.
    pub labels: Vec<(&'static str, String)>,
    /// Host port on 127.0.0.1 published to the container's port.
    pub publish: Option<u16>,
    /// Restarted by Docker unless stopped (a service or accessory), or a one-off (a hook).
    pub restart: bool,
    /// Network alias.
    pub alias: Option<String>,
    /// Command override (hooks).
    pub command: Option<Vec<String>>,
    /// The environment, secrets resolved (`NAME=value`), in name order.
    pub env: Vec<String>,
    /// Read-only binds of the container's files (`HOST_FILE:PATH:ro`).
    pub files: Vec<String>,
}

/// The Engine API body (`POST /containers/create`) of `c`: every value is JSON data Docker
/// reads itself, so a variable called `PATH` or `DOCKER_HOST` is just the container's.
pub fn create_body(c: &Container, r: &Run<'_>) -> Json {
    let mut labels = serde_json::Map::new();
    labels.insert(APP_LABEL.into(), json!(r.app.as_str()));
    for (k, v) in &r.labels {
        labels.insert((*k).into(), json!(v));
    }
    labels.insert(CONFIG_LABEL.into(), json!(config_digest(c)));
    let net = network(r.app);
    let mut host = json!({
        "Binds": c.volumes.iter().map(|v| v.as_str().to_string()).chain(r.files.iter().cloned()).collect::<Vec<_>>(),
        "NetworkMode": net.as_str(),
        "RestartPolicy": { "Name": if r.restart { "unless-stopped" } else { "no" } },
    });
    let mut body = json!({
        "Image": c.image.as_str(),
        "Env": r.env,
        "Labels": labels,
        "HostConfig": Json::Null,
        "NetworkingConfig": {
            "EndpointsConfig": {
                net.as_str(): { "Aliases": r.alias.iter().collect::<Vec<_>>() }
            }
        },
    });
    if let (Some(host_port), Some(port)) = (r.publish, c.port) {
        let key = format!("{port}/tcp");
        body["ExposedPorts"] = json!({ key.clone(): {} });
        host["PortBindings"] =
            json!({ key: [{ "HostIp": "127.0.0.1", "HostPort": host_port.to_string() }] });
    }
    let command = r.command.as_ref().unwrap_or(&c.command);
    if !command.is_empty() {
        body["Cmd"] = json!(command);
    }
    if let Check::Command(cmd) = &c.check {
        let mut test = vec!["CMD".to_string()];
        test.extend(cmd.iter().cloned());
        body["Healthcheck"] = json!({
            "Test": test,
            "Interval": (c.check_interval.as_millis().max(1000) as u64) * 1_000_000,
            "StartPeriod": 0,
        });
    }
    apply_runtime(c, &mut body, &mut host);
    if !r.restart {
        // A one-off (a hook) is never restarted, whatever the service says.
        host["RestartPolicy"]["Name"] = json!("no");
    }
    body["HostConfig"] = host;
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::grammar::{EnvName, ImageRef, Volume};

    fn container() -> Container {
        Container {
            image: ImageRef::try_from("reg/app:v1").unwrap(),
            command: vec![],
            env: BTreeMap::from([(EnvName::try_from("A").unwrap(), "plain".into())]),
            secrets: BTreeMap::new(),
            volumes: vec![Volume::try_from("/srv/a:/data").unwrap()],
            port: Some(8080),
            replicas: 1,
            job: false,
            check: Check::Command(vec!["app".into(), "check; rm -rf /".into()]),
            check_interval: std::time::Duration::from_secs(2),
            check_timeout: std::time::Duration::from_secs(30),
            backup: None,
            entrypoint: None,
            user: None,
            working_dir: None,
            depends_on: BTreeMap::new(),
            runtime: Default::default(),
            files: BTreeMap::new(),
        }
    }

    /// Values are JSON data: a variable named DOCKER_HOST or holding shell syntax is just text.
    #[test]
    fn a_container_is_data_docker_reads_itself() {
        let app = Name::try_from("app").unwrap();
        let body = create_body(
            &container(),
            &Run {
                app: &app,
                labels: vec![("converge.colour", "blue".into())],
                publish: Some(21000),
                restart: true,
                alias: Some("web-blue".into()),
                command: None,
                env: vec![
                    "DOCKER_HOST=tcp://evil:2375".into(),
                    "X=$(touch /tmp/x)".into(),
                ],
                files: vec![],
            },
        );
        assert_eq!(body["Env"][0], "DOCKER_HOST=tcp://evil:2375");
        assert_eq!(body["Env"][1], "X=$(touch /tmp/x)");
        assert_eq!(
            body["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"],
            "21000"
        );
        assert_eq!(
            body["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"],
            "127.0.0.1"
        );
        assert_eq!(body["Healthcheck"]["Test"][2], "check; rm -rf /");
        assert_eq!(body["Labels"]["converge.app"], "app");
        assert!(
            body["Labels"]["converge.config"]
                .as_str()
                .unwrap()
                .starts_with("hmac-sha256:")
        );
        assert_eq!(
            body["NetworkingConfig"]["EndpointsConfig"]["converge-app"]["Aliases"][0],
            "web-blue"
        );
    }

    /// Hardening and limits reach Docker as written; settings that are not given leave the
    /// digest as it was before they existed (no container is replaced by an upgrade).
    #[test]
    fn runtime_settings_reach_the_engine_body_and_the_digest_only_when_set() {
        let app = Name::try_from("app").unwrap();
        let plain = container();
        let before = config_value(&plain);
        assert!(before.get("runtime").is_null() && before.get("user").is_null());
        let mut c = plain.clone();
        c.user = Some("10001:10001".into());
        c.entrypoint = Some(vec!["/init".into()]);
        c.runtime = super::super::spec::Runtime {
            read_only: Some(true),
            cap_drop: vec!["ALL".into()],
            security_opt: vec!["no-new-privileges:true".into()],
            tmpfs: vec!["/tmp".into()],
            memory: Some(512 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(100),
            ulimits: vec![("nofile".into(), 1024, 2048)],
            init: Some(true),
            stop_signal: Some("SIGQUIT".into()),
            stop_grace_seconds: Some(20),
            labels: BTreeMap::from([("team".to_string(), "web".to_string())]),
            restart: Some("on-failure".into()),
            ..Default::default()
        };
        let run = Run {
            app: &app,
            labels: vec![],
            publish: None,
            restart: true,
            alias: None,
            command: None,
            env: vec![],
            files: vec![],
        };
        let body = create_body(&c, &run);
        let host = &body["HostConfig"];
        assert_eq!(body["User"], "10001:10001");
        assert_eq!(body["Entrypoint"][0], "/init");
        assert_eq!(body["StopSignal"], "SIGQUIT");
        assert_eq!(body["StopTimeout"], 20);
        assert_eq!(body["Labels"]["team"], "web");
        assert_eq!(host["ReadonlyRootfs"], true);
        assert_eq!(host["CapDrop"][0], "ALL");
        assert_eq!(host["SecurityOpt"][0], "no-new-privileges:true");
        assert_eq!(host["Tmpfs"]["/tmp"], "");
        assert_eq!(host["Memory"], 512 << 20);
        assert_eq!(host["NanoCpus"], 500_000_000);
        assert_eq!(host["PidsLimit"], 100);
        assert_eq!(host["Ulimits"][0]["Hard"], 2048);
        assert_eq!(host["Init"], true);
        assert_eq!(host["RestartPolicy"]["Name"], "on-failure");
        assert!(host.get("Privileged").is_none());
        // A hook's one-off never restarts, whatever the service says.
        let once = create_body(
            &c,
            &Run {
                restart: false,
                ..run
            },
        );
        assert_eq!(once["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert!(!runs(&config_digest(&plain), &c));
    }

    #[test]
    fn quoting_survives_every_character_a_word_can_hold() {
        let name = Name::try_from("a-b").unwrap();
        assert_eq!(quote(&name), "'a-b'");
        assert_eq!(quote(&Const("it's")), r"'it'\''s'");
    }

    #[test]
    fn names_read_back_must_be_converge_s() {
        let app = Name::try_from("shop").unwrap();
        assert!(ContainerName::listed(&app, "shop-web-blue").is_some());
        assert!(ContainerName::listed(&app, "other-web").is_none());
        assert!(ContainerName::listed(&app, "shop-x;rm").is_none());
        assert_eq!(
            hook_name(&app, "0f3c9a2b-77", "pre_traffic", 0).as_str(),
            "shop-hook-0f3c9a2b-pre-traffic-1"
        );
    }

    #[test]
    fn the_config_digest_is_keyed_and_follows_the_settings() {
        let c = container();
        let label = config_digest(&c);
        assert!(runs(&label, &c));
        let mut other = c.clone();
        other
            .env
            .insert(EnvName::try_from("B").unwrap(), "x".into());
        assert!(!runs(&label, &other));
    }
}
