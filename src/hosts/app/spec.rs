//! A `host.app`'s properties as typed settings, read from its normalized (desired or stored)
//! properties, and the rollout spec the engine drives it with. Every value that reaches a host
//! is parsed into its grammar's type here ([`crate::model::grammar`]): a value read back from
//! state or a saved plan goes through the same parsers as one from the files, so nothing
//! unchecked reaches ssh, docker or nginx whatever path it took.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hosts::ssh::{PrivateKey, Target};
use crate::model::grammar::{
    self, EnvName, GrammarError, HostAddress, HostPath, ImageRef, Name, RegistryServer, RoutePath,
    ServerName, SshUser, UrlPath, Volume,
};
use crate::model::secret::Secret;
use crate::model::{Value, parse_duration};
use crate::rollout::spec::{
    Health, Hook, Hooks, HttpGate, OnFail, OnTimeout, RolloutSpec, Strategy,
};

/// Why a host app's properties cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A value does not follow its grammar.
    #[error("`{path}`: {source}")]
    Grammar {
        /// Where, below the properties.
        path: String,
        /// What is wrong.
        source: GrammarError,
    },
    /// A required value is missing.
    #[error("`{0}` is missing")]
    Missing(String),
    /// A duration cannot be read.
    #[error("`{path}`: `{value}` {why}")]
    Duration {
        /// Where.
        path: String,
        /// The text.
        value: String,
        /// Why.
        why: String,
    },
    /// A file on the machine running converge is out of reach.
    #[error("`{path}`: {why}")]
    LocalPath {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
    /// A value is refused for another reason.
    #[error("`{path}`: {why}")]
    Refused {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
}

/// How a service's new colour shows it is healthy.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Running is enough.
    Running,
    /// GET `path` on the container's port answers `expect_status`.
    Http {
        /// Path.
        path: UrlPath,
        /// Status that passes.
        expect_status: u16,
    },
    /// The port accepts a connection.
    Tcp,
    /// Docker's healthcheck (this command) says healthy.
    Command(Vec<String>),
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    /// A sensitive value from the files.
    Value(Secret),
    /// A Secrets Manager secret, read at deploy time (one version when pinned).
    SecretsManager {
        /// The secret's ARN.
        arn: String,
        /// The version converge put (`ARN:::VERSION`).
        version: Option<String>,
    },
}

/// One container's settings (a service or an accessory).
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Image reference.
    pub image: ImageRef,
    /// Command override.
    pub command: Vec<String>,
    /// Plain environment.
    pub env: BTreeMap<EnvName, String>,
    /// Secret environment.
    pub secrets: BTreeMap<EnvName, SecretSource>,
    /// Mounts.
    pub volumes: Vec<Volume>,
    /// Container port behind the proxy.
    pub port: Option<u16>,
    /// Containers per colour on each host (1 for an accessory).
    pub replicas: u16,
    /// Runs to completion once per deploy (`job: true`), before what waits for it.
    pub job: bool,
    /// Health check.
    pub check: Check,
    /// Time between health probes.
    pub check_interval: Duration,
    /// Deadline for health.
    pub check_timeout: Duration,
    /// An accessory's backup, taken before a rollout's pre_traffic hooks.
    pub backup: Option<BackupSpec>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// The user it runs as.
    pub user: Option<String>,
    /// Its working directory.
    pub working_dir: Option<HostPath>,
    /// Containers of the app started before it, and what they must have reached.
    pub depends_on: BTreeMap<Name, Condition>,
    /// Hardening and limits.
    pub runtime: Runtime,
    /// Files mounted read-only, by container path.
    pub files: BTreeMap<HostPath, FileSpec>,
}

/// A file a container gets, mounted read-only and owned by its user.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    /// What it holds.
    pub content: FileContent,
    /// Permissions.
    pub mode: u32,
}

/// A file's content.
#[derive(Debug, Clone, PartialEq)]
pub enum FileContent {
    /// A secret (a compose secret).
    Secret(SecretSource),
    /// Plain text (a compose config).
    Text(String),
}

impl Container {
    /// Where each of its secrets comes from: its secret environment and its secret files.
    pub fn secret_sources(&self) -> impl Iterator<Item = &SecretSource> {
        self.secrets
            .values()
            .chain(self.files.values().filter_map(|f| match &f.content {
                FileContent::Secret(s) => Some(s),
                FileContent::Text(_) => None,
            }))
    }
}

/// What a dependency must have reached before a container that depends on it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Running.
    Started,
    /// Its health check passed.
    Healthy,
    /// A job that exited 0.
    Completed,
}

/// Hardening and limits of a container, as Docker takes them (`runtime:`; a compose file's
/// `read_only`, `cap_add`, `deploy.resources.limits`...). Empty by default.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Runtime {
    /// Read-only root file system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Capabilities added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Security options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// tmpfs mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Memory limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// CPU limit in billionths of a CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    /// Most processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// ulimits: name, soft, hard.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<(String, i64, i64)>,
    /// An init process as PID 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Stop signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_seconds: Option<u64>,
    /// Labels of the file's own (never `converge.*`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Restart policy, when not `unless-stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Logging driver and its options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<(String, BTreeMap<String, String>)>,
    /// Privileged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// The host's network namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Host devices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

impl Runtime {
    /// Whether nothing is set (what every container had before `runtime` existed: its
    /// settings digest stays the same).
    pub fn is_empty(&self) -> bool {
        self == &Runtime::default()
    }
}

/// `backup: { run, keep, timeout }` of an accessory: a command run inside it whose stdout is
/// the backup, stored on the host as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSpec {
    /// The command (`[pg_dump, -U, app, app]`), run with `docker exec`, never through a shell.
    pub run: Vec<String>,
    /// How many backup files of the accessory each host keeps (the newest).
    pub keep: usize,
    /// How long the command may run.
    pub timeout: Duration,
    /// `copy_to.s3`: where each backup is also streamed, so losing the host loses no backup.
    pub copy_to: Option<S3Copy>,
}

/// An S3 bucket and key prefix backups are copied to (`<prefix><app>/<accessory>/<file>`).
#[derive(Debug, Clone, PartialEq)]
pub struct S3Copy {
    /// The bucket.
    pub bucket: String,
    /// The key prefix ("" or ending in `/`, as given).
    pub prefix: String,
}

/// The nginx settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Nginx {
    /// server_name.
    pub server_name: ServerName,
    /// listen port.
    pub listen: u16,
    /// Whether converge writes the server block (else only the upstream).
    pub server: bool,
    /// TLS certificate and key files on the host.
    pub tls: Option<(HostPath, HostPath)>,
    /// `nginx -c` file, when not nginx's own.
    pub config: Option<HostPath>,
    /// canary with `traffic: { sticky: cookie }`: a client keeps the colour it first got.
    pub sticky: bool,
    /// Where `<app>.conf` goes.
    pub include_dir: HostPath,
    /// nginx's pid file.
    pub pid_file: HostPath,
    /// Which web service answers which server name and path (empty: the one service with a
    /// port answers everything, through the upstream `<app>_live`).
    pub routes: Vec<Route>,
}

/// One of `rollout.proxy.routes`: requests for a server name under a path prefix go to a
/// web service.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The web service.
    pub service: Name,
    /// The path prefix, passed on unchanged.
    pub path: RoutePath,
    /// Its own server block's name (`None`: nginx's server_name).
    pub server_name: Option<ServerName>,
}

/// How hosts log in to the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryAuth {
    /// Images are pulled anonymously.
    Anonymous,
    /// A username and password (`docker login --password-stdin`).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// The host's own managed identity, exchanged for an ACR token on the host.
    Acr,
    /// A token converge mints under `role_arn` with a session policy allowing only pulls from
    /// the app's own repositories.
    Ecr {
        /// The role converge assumes.
        role_arn: String,
    },
}

impl RegistryAuth {
    /// What the hosts receive, in words (the plan says it per host).
    pub fn describe(&self) -> String {
        match self {
            RegistryAuth::Anonymous => "no registry credential".into(),
            RegistryAuth::Basic { username, .. } => format!("the basic login of {username}"),
            RegistryAuth::Acr => {
                "no credential from converge (the host's own managed identity)".into()
            }
            RegistryAuth::Ecr { role_arn } => format!(
                "a 12-hour ECR token of {role_arn} limited to pulls from the app's repositories"
            ),
        }
    }
}

/// Where images come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    /// The server.
    pub server: RegistryServer,
    /// How hosts log in.
    pub auth: RegistryAuth,
}

/// A `host.app`, typed.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// The app's name.
    pub name: Name,
    /// Its hosts.
    pub hosts: Vec<Target>,
    /// converge's known_hosts file.
    pub known_hosts: PathBuf,
    /// The login key.
    pub key: PrivateKey,
    /// Where images come from (`None`: pulled anonymously, or already on the host).
    pub registry: Option<Registry>,
    /// Services by name.
    pub services: BTreeMap<Name, Container>,
    /// Accessories by name.
    pub accessories: BTreeMap<Name, Container>,
    /// nginx.
    pub nginx: Nginx,
    /// `recreate` rather than blue/green.
    pub recreate: bool,
    /// `canary`: both colours on every host, nginx splitting requests between them by weight.
    pub canary: bool,
    /// How long the old colour may finish in-flight requests.
    pub drain_timeout: Duration,
    /// How long the old colour is kept, stopped.
    pub keep_previous: Duration,
    /// App images kept per host.
    pub keep_images: usize,
    /// Hosts at a time.
    pub batch: usize,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).reveal().as_str()
}

fn parsed<T>(value: &str, path: &str) -> Result<T, SpecError>
where
    T: for<'a> TryFrom<&'a str, Error = GrammarError>,
{
    T::try_from(value).map_err(|source| SpecError::Grammar {
        path: path.to_string(),
        source,
    })
}

fn required<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, SpecError> {
    text(v, key).ok_or_else(|| SpecError::Missing(format!("{path}.{key}")))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.reveal().as_str().map(str::to_string))
        .collect()
}

fn duration(v: &Value, key: &str, default: &str, path: &str) -> Result<Duration, SpecError> {
    let raw = text(v, key).unwrap_or(default);
    parse_duration(raw).map_err(|why| SpecError::Duration {
        path: format!("{path}.{key}"),
        value: grammar::escape_controls(raw),
        why: why.to_string(),
    })
}

fn container(v: &Value, path: &str) -> Result<Container, SpecError> {
    let health = v.get("health");
    let check = if !health.get("command").is_null() {
        Check::Command(strings(health.get("command")))
    } else if health.get("tcp").as_bool() == Some(true) {
        Check::Tcp
    } else if !health.get("http").is_null() {
        Check::Http {
            path: parsed(
                text(health.get("http"), "path").unwrap_or("/"),
                &format!("{path}.health.http.path"),
            )?,
            expect_status: health
                .get("http")
                .get("expect_status")
                .as_i64()
                .unwrap_or(200) as u16,
        }
    } else {
        Check::Running
    };
    let mut env = BTreeMap::new();
    for (k, value) in v.get("env").reveal().as_map().cloned().unwrap_or_default() {
        let name: EnvName = parsed(&k, &format!("{path}.env"))?;
        let value = match value.reveal() {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        env.insert(name, value);
    }
    let mut secrets = BTreeMap::new();
    for (k, value) in v
        .get("secrets")
        .reveal()
        .as_map()
        .cloned()
        .unwrap_or_default()
    {
        let name: EnvName = parsed(&k, &format!("{path}.secrets"))?;
        // State keeps only digests of secrets: a stored row has none to read.
        let Some(text) = value.reveal().as_str() else {
            continue;
        };
        secrets.insert(name, secret_source(text));
    }
    let mut volumes = Vec::new();
    for (i, m) in strings(v.get("volumes")).iter().enumerate() {
        volumes.push(parsed(m, &format!("{path}.volumes.{i}"))?);
    }
    let mut depends_on = BTreeMap::new();
    for (k, cond) in v.get("depends_on").as_map().cloned().unwrap_or_default() {
        let condition = match cond.as_str() {
            Some("service_healthy") => Condition::Healthy,
            Some("service_completed_successfully") => Condition::Completed,
            _ => Condition::Started,
        };
        depends_on.insert(parsed(&k, &format!("{path}.depends_on"))?, condition);
    }
    Ok(Container {
        entrypoint: match v.get("entrypoint") {
            Value::Null => None,
            e => Some(strings(e)),
        },
        user: text(v, "user")
            .map(|u| {
                grammar::CONTAINER_USER
                    .parse(u)
                    .map(|()| u.to_string())
                    .map_err(|source| SpecError::Grammar {
                        path: format!("{path}.user"),
                        source,
                    })
            })
            .transpose()?,
        working_dir: text(v, "working_dir")
            .map(|w| parsed(w, &format!("{path}.working_dir")))
            .transpose()?,
        depends_on,
        runtime: runtime(v.get("runtime"), &format!("{path}.runtime"))?,
        files: files(v.get("files"), &format!("{path}.files"))?,
        image: parsed(required(v, "image", path)?, &format!("{path}.image"))?,
        command: strings(v.get("command")),
        env,
        secrets,
        volumes,
        port: v.get("port").as_i64().map(|p| p as u16),
        replicas: v.get("replicas").as_i64().unwrap_or(1).clamp(1, 32) as u16,
        job: v.get("job").as_bool() == Some(true),
        check,
        check_interval: duration(health, "interval", "2s", &format!("{path}.health"))?,
        check_timeout: duration(health, "timeout", "30s", &format!("{path}.health"))?,
        backup: backup(v.get("backup"), &format!("{path}.backup"))?,
    })
}

/// A secret's source: the whole ARN of a Secrets Manager secret (`ARN:::VERSION` once pinned),
/// or the value itself.
fn secret_source(text: &str) -> SecretSource {
    if grammar::is_secret_arn(text) {
        match text.split_once(":::") {
            Some((arn, version)) => SecretSource::SecretsManager {
                arn: arn.to_string(),
                version: Some(version.to_string()),
            },
            None => SecretSource::SecretsManager {
                arn: text.to_string(),
                version: None,
            },
        }
    } else {
        SecretSource::Value(Secret::new(text))
    }
}

/// A container's `files`: container paths checked, a secret's value or ARN, a text, a mode.
fn files(f: &Value, path: &str) -> Result<BTreeMap<HostPath, FileSpec>, SpecError> {
    let mut out = BTreeMap::new();
    for (target, file) in f.as_map().cloned().unwrap_or_default() {
        let at = format!("{path}.{target}");
        let target: HostPath = parsed(&target, &at)?;
        if target.as_str().contains(':') {
            return Err(SpecError::Refused {
                path: at,
                why: "a file's container path holds no `:` (Docker reads it as a mount option)"
                    .into(),
            });
        }
        let (content, default_mode) = match (file.get("secret").reveal(), text(&file, "text")) {
            (Value::String(s), _) => (FileContent::Secret(secret_source(s)), 0o400),
            (_, Some(t)) => (FileContent::Text(t.to_string()), 0o444),
            // State keeps only digests of secrets: a stored row has no value to read.
            (Value::Redacted(_), _) => continue,
            _ => return Err(SpecError::Missing(format!("{at}.secret"))),
        };
        let mode = match text(&file, "mode") {
            Some(m) => {
                grammar::FILE_MODE
                    .parse(m)
                    .map_err(|source| SpecError::Grammar {
                        path: format!("{at}.mode"),
                        source,
                    })?;
                u32::from_str_radix(m, 8).unwrap_or(default_mode)
            }
            None => default_mode,
        };
        out.insert(target, FileSpec { content, mode });
    }
    Ok(out)
}

/// A container's `runtime` block, each value checked by its grammar again (it may come from a
/// stored row or a saved plan).
fn runtime(r: &Value, path: &str) -> Result<Runtime, SpecError> {
    let checked = |key: &str, g: &'static grammar::Grammar| -> Result<Vec<String>, SpecError> {
        let list = strings(r.get(key));
        for (i, item) in list.iter().enumerate() {
            g.parse(item).map_err(|source| SpecError::Grammar {
                path: format!("{path}.{key}.{i}"),
                source,
            })?;
        }
        Ok(list)
    };
    let stop_grace_seconds = match text(r, "stop_grace_period") {
        Some(_) => Some(duration(r, "stop_grace_period", "10s", path)?.as_secs()),
        None => None,
    };
    let mut ulimits = Vec::new();
    for (name, l) in r.get("ulimits").as_map().cloned().unwrap_or_default() {
        let _: Name = parsed(&name, &format!("{path}.ulimits"))?;
        ulimits.push((
            name,
            l.get("soft").as_i64().unwrap_or(-1),
            l.get("hard").as_i64().unwrap_or(-1),
        ));
    }
    let labels: BTreeMap<String, String> = r
        .get("labels")
        .as_map()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.reveal().as_str()?.to_string())))
        .collect();
    if let Some(k) = labels.keys().find(|k| k.starts_with("converge.")) {
        return Err(SpecError::Refused {
            path: format!("{path}.labels"),
            why: format!("`{}` is converge's own label", grammar::escape_controls(k)),
        });
    }
    let logging = match r.get("logging") {
        Value::Null => None,
        l => {
            let driver: Name = parsed(
                required(l, "driver", &format!("{path}.logging"))?,
                &format!("{path}.logging.driver"),
            )?;
            let options = l
                .get("options")
                .as_map()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.reveal().as_str()?.to_string())))
                .collect();
            Some((driver.to_string(), options))
        }
    };
    Ok(Runtime {
        read_only: r.get("read_only").as_bool(),
        cap_add: checked("cap_add", &grammar::CAPABILITY)?,
        cap_drop: checked("cap_drop", &grammar::CAPABILITY)?,
        security_opt: strings(r.get("security_opt")),
        tmpfs: checked("tmpfs", &grammar::HOST_PATH)?,
        memory: r.get("memory").as_i64(),
        nano_cpus: r.get("cpus").as_f64().map(|c| (c * 1e9).round() as i64),
        pids_limit: r.get("pids_limit").as_i64(),
        ulimits,
        init: r.get("init").as_bool(),
        stop_signal: text(r, "stop_signal")
            .map(|s| {
                grammar::SIGNAL
                    .parse(s)
                    .map(|()| s.to_string())
                    .map_err(|source| SpecError::Grammar {
                        path: format!("{path}.stop_signal"),
                        source,
                    })
            })
            .transpose()?,
        stop_grace_seconds,
        labels,
        restart: text(r, "restart")
            .filter(|p| *p != "unless-stopped")
            .map(str::to_string),
        logging,
        privileged: r.get("privileged").as_bool().filter(|p| *p),
        host_network: r.get("host_network").as_bool().filter(|p| *p),
        devices: checked("devices", &grammar::HOST_PATH)?,
    })
}

/// An accessory's `backup` block (`None` when it has none).
fn backup(b: &Value, path: &str) -> Result<Option<BackupSpec>, SpecError> {
    if b.is_null() {
        return Ok(None);
    }
    if b.get("run").contains_sensitive() {
        return Err(SpecError::Refused {
            path: format!("{path}.run"),
            why: "a sensitive value may not be on a backup's command line (ps and docker inspect show it): give it to the accessory in `secrets`".into(),
        });
    }
    let run = strings(b.get("run"));
    if run.iter().any(|w| w.contains('\0')) {
        return Err(SpecError::Refused {
            path: format!("{path}.run"),
            why: "a word of the command holds a NUL character".into(),
        });
    }
    if run.is_empty() {
        return Err(SpecError::Missing(format!("{path}.run")));
    }
    Ok(Some(BackupSpec {
        run,
        keep: b.get("keep").as_i64().unwrap_or(7).max(1) as usize,
        timeout: duration(b, "timeout", "10m", path)?,
        copy_to: match b.get("copy_to").get("s3") {
            Value::Null => None,
            s3 => Some(S3Copy {
                bucket: required(s3, "bucket", &format!("{path}.copy_to.s3"))?.to_string(),
                prefix: text(s3, "prefix").unwrap_or("").to_string(),
            }),
        },
    }))
}

/// A file on the machine running converge that a desired-state file names (a key file,
/// converge's known_hosts): relative paths stay inside `root` (no `..`, no symbolic link out
/// of it); an absolute path is taken only if it exists already. Creates nothing.
pub fn confined(root: &Path, given: &str, what: &str) -> Result<PathBuf, SpecError> {
    let refuse = |why: String| SpecError::LocalPath {
        path: what.to_string(),
        why,
    };
    let path = Path::new(given);
    if path.is_absolute() {
        return if path.exists() {
            Ok(path.to_path_buf())
        } else {
            Err(refuse(format!(
                "`{}` does not exist: an absolute path is used only when it is there already (a relative one stays inside the project)",
                grammar::escape_controls(given)
            )))
        };
    }
    if path.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(refuse(format!(
            "`{}` leaves the project: a relative path may not hold `..`",
            grammar::escape_controls(given)
        )));
    }
    let joined = root.join(path);
    // A symbolic link inside the project may not lead out of it: the nearest part of the path
    // that exists must resolve inside the project.
    let root_real = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut probe = joined.as_path();
    loop {
        if let Ok(real) = probe.canonicalize() {
            if !real.starts_with(&root_real) {
                return Err(refuse(format!(
                    "`{}` leads out of the project (to {})",
                    grammar::escape_controls(given),
                    real.display()
                )));
            }
            break;
        }
        match probe.parent() {
            Some(parent) if parent != probe => probe = parent,
            _ => break,
        }
    }
    Ok(joined)
}

fn registry(p: &Value) -> Result<Option<Registry>, SpecError> {
    let reg = p.get("registry");
    let Some(server) = text(reg, "server") else {
        return Ok(None);
    };
    let server: RegistryServer = parsed(server, "registry.server")?;
    let auth = reg.get("auth");
    let basic = auth.get("basic");
    let ecr = auth.get("ecr");
    let auth = if let Some(username) = text(basic, "username") {
        if username.is_empty() || username.chars().any(|c| c.is_control() || c == ' ') {
            return Err(SpecError::Refused {
                path: "registry.auth.basic.username".into(),
                why: "a user name has no spaces or control characters".into(),
            });
        }
        RegistryAuth::Basic {
            username: username.to_string(),
            password: Secret::new(text(basic, "password").unwrap_or_default()),
        }
    } else if auth.get("acr").as_bool() == Some(true) {
        if !super::schema::acr_login_server(server.as_str()) {
            return Err(SpecError::Refused {
                path: "registry.server".into(),
                why: format!(
                    "`{server}` is not an Azure Container Registry login server, and the host would send it its Azure token"
                ),
            });
        }
        RegistryAuth::Acr
    } else if let Some(role) = text(ecr, "role_arn") {
        RegistryAuth::Ecr {
            role_arn: role.to_string(),
        }
    } else {
        RegistryAuth::Anonymous
    };
    Ok(Some(Registry { server, auth }))
}

fn hosts(p: &Value) -> Result<Vec<Target>, SpecError> {
    let mut out = Vec::new();
    for (i, h) in p
        .get("hosts")
        .as_list()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("hosts.{i}");
        let user: SshUser = parsed(text(h, "user").unwrap_or("deploy"), &format!("{at}.user"))?;
        if user.as_str() == "root" && h.get("allow_root").as_bool() != Some(true) {
            return Err(SpecError::Refused {
                path: format!("{at}.user"),
                why: "converge does not log in as root unless `allow_root: true`".into(),
            });
        }
        let address: HostAddress = parsed(required(h, "address", &at)?, &format!("{at}.address"))?;
        out.push(Target {
            address,
            port: h.get("port").as_i64().unwrap_or(22) as u16,
            user,
        });
    }
    Ok(out)
}

fn nginx(r: &Value) -> Result<Nginx, SpecError> {
    let n = r.get("proxy").get("nginx");
    let at = "rollout.proxy.nginx";
    let path = |key: &str, default: &str| -> Result<HostPath, SpecError> {
        parsed(text(n, key).unwrap_or(default), &format!("{at}.{key}"))
    };
    let tls = n.get("tls");
    let tls = match (text(tls, "certificate"), text(tls, "key")) {
        (Some(c), Some(k)) => Some((
            parsed(c, &format!("{at}.tls.certificate"))?,
            parsed(k, &format!("{at}.tls.key"))?,
        )),
        _ => None,
    };
    let sticky = text(r.get("traffic"), "sticky") == Some("cookie");
    let server = n.get("server").as_bool().unwrap_or(true);
    if sticky && text(r, "strategy") != Some("canary") {
        return Err(SpecError::Refused {
            path: "rollout.traffic.sticky".into(),
            why: "is for canary rollouts (blue/green and recreate switch every client at once)"
                .into(),
        });
    }
    if sticky && !server {
        return Err(SpecError::Refused {
            path: "rollout.traffic.sticky".into(),
            why: "needs converge's own server block (`proxy.nginx.server: true`), where the cookie is set and read".into(),
        });
    }
    let mut routes = Vec::new();
    for (i, route) in r
        .get("proxy")
        .get("routes")
        .as_list()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("rollout.proxy.routes.{i}");
        routes.push(Route {
            service: parsed(required(route, "service", &at)?, &format!("{at}.service"))?,
            path: parsed(text(route, "path").unwrap_or("/"), &format!("{at}.path"))?,
            server_name: text(route, "server_name")
                .map(|n| parsed(n, &format!("{at}.server_name")))
                .transpose()?,
        });
    }
    Ok(Nginx {
        routes,
        sticky,
        server_name: parsed(
            required(n, "server_name", at)?,
            &format!("{at}.server_name"),
        )?,
        listen: n.get("listen").as_i64().unwrap_or(80) as u16,
        server,
        tls,
        config: text(n, "config")
            .map(|c| parsed(c, &format!("{at}.config")))
            .transpose()?,
        include_dir: path("include_dir", "/etc/nginx/converge")?,
        pid_file: path("pid_file", "/run/nginx.pid")?,
    })
}

impl AppSpec {
    /// The app of normalized properties; files the properties name on this machine are taken
    /// from `root` and must stay inside it ([`confined`]).
    pub fn from_properties(p: &Value, root: &Path) -> Result<AppSpec, SpecError> {
        let ssh = p.get("ssh");
        let key = match (
            ssh.get("private_key").reveal(),
            text(ssh, "private_key_file"),
        ) {
            (Value::String(k), _) => PrivateKey::Inline(Secret::new(k.clone())),
            (_, Some(f)) => {
                let file = confined(root, f, "ssh.private_key_file")?;
                if !file.is_file() {
                    return Err(SpecError::LocalPath {
                        path: "ssh.private_key_file".into(),
                        why: format!("`{}` is not a file", grammar::escape_controls(f)),
                    });
                }
                PrivateKey::File(file)
            }
            _ => PrivateKey::Agent,
        };
        // A saved plan or a stored row goes through the same refusals as the files.
        if let Some((path, why)) = super::schema::unallowed(p)
            .into_iter()
            .chain(super::schema::route_problems(p))
            .next()
        {
            return Err(SpecError::Refused {
                path: path.join("."),
                why,
            });
        }
        let r = p.get("rollout");
        let mut services = BTreeMap::new();
        for (k, v) in p.get("services").as_map().cloned().unwrap_or_default() {
            let at = format!("services.{k}");
            services.insert(parsed(&k, &at)?, container(&v, &at)?);
        }
        let mut accessories = BTreeMap::new();
        for (k, v) in p.get("accessories").as_map().cloned().unwrap_or_default() {
            let at = format!("accessories.{k}");
            accessories.insert(parsed(&k, &at)?, container(&v, &at)?);
        }
        Ok(AppSpec {
            name: parsed(required(p, "name", "")?, "name")?,
            hosts: hosts(p)?,
            known_hosts: confined(
                root,
                text(ssh, "known_hosts").unwrap_or(".converge/known_hosts"),
                "ssh.known_hosts",
            )?,
            key,
            registry: registry(p)?,
            services,
            accessories,
            nginx: nginx(r)?,
            recreate: text(r, "strategy") == Some("recreate"),
            canary: text(r, "strategy") == Some("canary"),
            drain_timeout: duration(r, "drain_timeout", "30s", "rollout")?,
            keep_previous: duration(r, "keep_previous", "1h", "rollout")?,
            keep_images: r.get("keep_images").as_i64().unwrap_or(3).max(1) as usize,
            batch: r.get("batch").as_i64().unwrap_or(1).max(1) as usize,
        })
    }

    /// Whether a container of the app waits for another (`depends_on`).
    pub fn has_dependencies(&self) -> bool {
        self.services
            .values()
            .chain(self.accessories.values())
            .any(|c| !c.depends_on.is_empty())
    }

    /// Whether the app has a live network (`converge-<app>-live`): workers, jobs and
    /// accessories reach the web services there by name; an app of web services alone needs
    /// none (each network takes one of Docker's few address pools on the host).
    pub fn uses_live_network(&self) -> bool {
        !self.accessories.is_empty() || self.services.values().any(|c| c.port.is_none())
    }

    /// The first service behind the proxy, if any.
    pub fn proxied(&self) -> Option<(&Name, &Container)> {
        self.services.iter().find(|(_, c)| c.port.is_some())
    }

    /// Every secret value the app's files give (masked in whatever a host prints).
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in self.services.values().chain(self.accessories.values()) {
            for s in c.secret_sources() {
                if let SecretSource::Value(v) = s {
                    out.push(v.expose().to_string());
                }
            }
        }
        if let Some(Registry {
            auth: RegistryAuth::Basic { password, .. },
            ..
        }) = &self.registry
        {
            out.push(password.expose().to_string());
        }
        if let PrivateKey::Inline(k) = &self.key {
            out.push(k.expose().to_string());
        }
        out
    }
}

/// The rollout the engine drives a host app with: blue/green is the engine's blue/green with
/// no pre-traffic bake (nothing but the new colour's own health can be judged before the
/// switch) and the app's `bake` after it; recreate is the engine's in-place deploy.
pub fn rollout_spec(p: &Value) -> Result<RolloutSpec, SpecError> {
    let r = p.get("rollout");
    let recreate = text(r, "strategy") == Some("recreate");
    let gate = r.get("health").get("http");
    let http = match gate {
        Value::Null => None,
        g => Some(HttpGate {
            url: parsed::<UrlPath>(text(g, "path").unwrap_or("/"), "rollout.health.http.path")?
                .to_string(),
            expect_status: g.get("expect_status").as_i64().unwrap_or(200) as u16,
            timeout: duration(g, "timeout", "2s", "rollout.health.http")?,
            failures: g.get("failures").as_i64().unwrap_or(2).max(1) as u32,
            on_fail: OnFail::Rollback,
        }),
    };
    let hooks = |stage: &str| -> Result<Vec<Hook>, SpecError> {
        r.get("hooks")
            .get(stage)
            .as_list()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let at = format!("rollout.hooks.{stage}.{i}");
                if h.get("run").contains_sensitive() {
                    return Err(SpecError::Refused {
                        path: format!("{at}.run"),
                        why: "a sensitive value may not be on a hook's command line".into(),
                    });
                }
                Ok(Hook {
                    run: strings(h.get("run")),
                    container: text(h, "service")
                        .map(|s| parsed::<Name>(s, &format!("{at}.service")).map(|n| n.to_string()))
                        .transpose()?,
                    timeout: duration(h, "timeout", "5m", &at)?,
                    per_host: h.get("per_host").as_bool() == Some(true),
                })
            })
            .collect()
    };
    // The new colour's deadline: the longest of its services' and accessories' health timeouts.
    let mut ready_timeout = Duration::ZERO;
    for group in ["services", "accessories"] {
        for s in p
            .get(group)
            .as_map()
            .cloned()
            .unwrap_or_default()
            .values()
            .filter(|s| !s.get("health").is_null())
        {
            ready_timeout = ready_timeout.max(duration(s.get("health"), "timeout", "30s", group)?);
        }
    }
    if ready_timeout.is_zero() {
        ready_timeout = Duration::from_secs(30);
    }
    let bake = duration(r, "bake", "1m", "rollout")?;
    let canary = text(r, "strategy") == Some("canary");
    let (steps, pauses) = if canary {
        crate::rollout::spec::canary_steps(r.get("steps").as_list().unwrap_or_default()).map_err(
            |e| SpecError::Refused {
                path: "rollout.steps".into(),
                why: e.to_string(),
            },
        )?
    } else {
        // One step per batch of hosts: blue/green switches them in turn, recreate replaces
        // them in turn.
        (
            batch_steps(
                p.get("hosts").as_list().map(|h| h.len()).unwrap_or(1),
                r.get("batch").as_i64().unwrap_or(1).max(1) as usize,
            ),
            Vec::new(),
        )
    };
    Ok(RolloutSpec {
        strategy: if recreate {
            Strategy::Rolling
        } else if canary {
            Strategy::Canary
        } else {
            Strategy::BlueGreen
        },
        ready_timeout,
        on_timeout: OnTimeout::Rollback,
        wait: true,
        steps,
        pauses,
        pause_timeout: duration(r, "pause_timeout", "24h", "rollout")?,
        // canary: every step bakes; blue/green: the bake follows the (last) switch.
        bake: if canary { bake } else { Duration::ZERO },
        interval: duration(r, "interval", "10s", "rollout")?.max(Duration::from_millis(100)),
        termination_wait: if canary { Duration::ZERO } else { bake },
        listener_arn: String::new(),
        target_groups: Vec::new(),
        test_listener_arn: None,
        health: Health {
            http,
            metrics: metric_gates(r)?,
            ..Health::default()
        },
        max_run_rate_increase: None,
        webhook: webhook(r)?,
        hooks: Hooks {
            pre_traffic: hooks("pre_traffic")?,
            post_traffic: hooks("post_traffic")?,
            on_rollback: hooks("on_rollback")?,
        },
        backup: p
            .get("accessories")
            .as_map()
            .is_some_and(|a| a.values().any(|c| !c.get("backup").is_null())),
    })
}

/// `rollout.health.metrics`: gates judged from converge's nginx access log.
fn metric_gates(r: &Value) -> Result<Vec<crate::rollout::spec::MetricGate>, SpecError> {
    use crate::rollout::spec::{MetricGate, NoData};
    let list = r.get("health").get("metrics").as_list().unwrap_or_default();
    if !list.is_empty() && r.get("proxy").get("nginx").get("server").as_bool() == Some(false) {
        return Err(SpecError::Refused {
            path: "rollout.health.metrics".into(),
            why: "reads the access log converge's own server block writes (`proxy.nginx.server: true`)".into(),
        });
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("rollout.health.metrics.{i}");
            Ok(MetricGate {
                name: text(m, "name").unwrap_or("error_rate").to_string(),
                max: m.get("max").as_f64(),
                max_ratio_to_baseline: m.get("max_ratio_to_baseline").as_f64(),
                window: duration(m, "for", "1m", &at)?,
                min_requests: m.get("min_requests").as_i64().unwrap_or(1).max(0) as u64,
                no_data: match text(m, "no_data") {
                    Some("fail") => NoData::Fail,
                    Some("pass") => NoData::Pass,
                    _ => NoData::Wait,
                },
                on_fail: match text(m, "on_fail") {
                    Some("alert") => OnFail::Alert,
                    _ => OnFail::Rollback,
                },
            })
        })
        .collect()
}

/// `rollout.notify.webhook`: an http(s) URL (a sensitive variable allowed, so its value is
/// never shown in the refusal); `None` when absent or not known yet.
fn webhook(r: &Value) -> Result<Option<String>, SpecError> {
    let Some(url) = text(r.get("notify"), "webhook") else {
        return Ok(None);
    };
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(Some(url.to_string()))
        }
        _ => Err(SpecError::Refused {
            path: "rollout.notify.webhook".into(),
            why: "must be an http(s) URL".into(),
        }),
    }
}

/// Blue/green's steps for `hosts` hosts switched `batch` at a time: the share of hosts on the
/// new colour after each batch (`[100]`: all at once; `[34, 67, 100]`: three hosts, one by one).
pub fn batch_steps(hosts: usize, batch: usize) -> Vec<i32> {
    let hosts = hosts.max(1);
    let batch = batch.clamp(1, hosts);
    (1..=hosts.div_ceil(batch))
        .map(|k| ((100 * (k * batch).min(hosts)).div_ceil(hosts)) as i32)
        .collect()
}

/// Whether a host app's change needs a deploy (anything but its name does: every other
/// property shapes what runs on the hosts).
pub fn needs_deploy(prior: &Value, desired: &Value) -> bool {
    ["hosts", "registry", "services", "accessories", "rollout"]
        .iter()
        .any(|k| !prior.get(k).same_as(desired.get(k)))
}

#[cfg(test)]
mod tests {
    use super::{Value, batch_steps, nginx, webhook};

    #[test]
    fn batches_switch_a_growing_share_of_hosts_ending_at_all() {
        assert_eq!(batch_steps(1, 1), [100]);
        assert_eq!(batch_steps(2, 1), [50, 100]);
        assert_eq!(batch_steps(2, 5), [100]);
        assert_eq!(batch_steps(3, 1), [34, 67, 100]);
        assert_eq!(batch_steps(5, 2), [40, 80, 100]);
    }

    #[test]
    fn sticky_traffic_is_for_a_canary_behind_converges_own_server_block() {
        let rollout = |strategy: &str, server: bool| {
            Value::from_json(&serde_json::json!({
                "strategy": strategy,
                "traffic": { "sticky": "cookie" },
                "proxy": { "nginx": { "server_name": "app.test", "server": server } }
            }))
        };
        assert!(nginx(&rollout("canary", true)).unwrap().sticky);
        for (strategy, server, why) in [
            ("blue_green", true, "is for canary rollouts"),
            ("canary", false, "needs converge's own server block"),
        ] {
            let err = nginx(&rollout(strategy, server)).unwrap_err().to_string();
            assert!(err.starts_with("`rollout.traffic.sticky`: "), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_webhook_is_an_http_url_and_a_refusal_never_shows_it() {
        let rollout =
            |url: &str| Value::from_json(&serde_json::json!({ "notify": { "webhook": url } }));
        assert_eq!(
            webhook(&rollout("https://hooks.example.test/x")).unwrap(),
            Some("https://hooks.example.test/x".to_string())
        );
        assert_eq!(webhook(&Value::Null).unwrap(), None);
        for bad in [
            "ftp://hooks.example.test/x",
            "hooks.example.test",
            "http://",
        ] {
            let err = webhook(&rollout(bad)).unwrap_err().to_string();
            assert_eq!(
                err, "`rollout.notify.webhook`: must be an http(s) URL",
                "{bad}"
            );
        }
    }
}
