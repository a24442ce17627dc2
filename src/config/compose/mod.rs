//! A team's own `docker-compose.yml` as the source of a `host.app` (`compose: { file, project }`):
//! its services read as the Compose Specification defines them and mapped to what `docker
//! compose up` would do on a host, into the app's `services` (web services with `ports`, and
//! workers) and `accessories` (services keeping data in named volumes). A compose file is
//! untrusted input like any desired-state file: every value is interpolated, checked by its
//! grammar and located (file:line:column) when refused; what a container may do to its host is
//! refused unless the app's `allow` says so; a field converge cannot honour is an error naming it
//! (or, with no effect on a host, a warning), never dropped silently.

pub mod interpolate;
mod service;
mod units;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use marked_yaml::{Node, Span};

use crate::config::diagnostic::{ConfigError, SourceFile};
use crate::model::Value;
use interpolate::Lookup;

/// What the app's own settings allow containers to do to their host (`allow:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// `privileged`, and unconfined security options.
    pub privileged: bool,
    /// `network_mode: host`.
    pub host_network: bool,
    /// Capabilities `cap_add` may name.
    pub capabilities: Vec<String>,
    /// Host directories bind mounts may name (and what is below them).
    pub host_paths: Vec<String>,
    /// Host devices.
    pub devices: Vec<String>,
    /// Logging drivers besides the host's own ([`Allow::LOCAL_LOG_DRIVERS`]).
    pub log_drivers: Vec<String>,
}

impl Allow {
    /// Logging drivers that keep a container's output on its host: always allowed.
    pub const LOCAL_LOG_DRIVERS: &'static [&'static str] =
        &["json-file", "local", "journald", "none"];

    /// The `allow` block of an app's properties.
    pub fn of(allow: &Value) -> Allow {
        let list = |k: &str| -> Vec<String> {
            allow
                .get(k)
                .as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.reveal().as_str().map(str::to_string))
                .collect()
        };
        Allow {
            privileged: allow.get("privileged").as_bool() == Some(true),
            host_network: allow.get("host_network").as_bool() == Some(true),
            capabilities: list("capabilities"),
            host_paths: list("host_paths"),
            devices: list("devices"),
            log_drivers: list("log_drivers"),
        }
    }

    /// Whether a `security_opt` entry may be given: `no-new-privileges` always (it only takes
    /// privileges away); any other (a seccomp or AppArmor profile, an SELinux label, which can
    /// each lift the confinement without saying "unconfined") only with `privileged`.
    pub fn security_opt(&self, opt: &str) -> bool {
        matches!(
            opt,
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
        ) || self.privileged
    }

    /// Whether a bind mount of `path` is allowed: it is, or is below, an allowed directory.
    pub fn host_path(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        self.host_paths.iter().any(|a| {
            let a = a.trim_end_matches('/');
            path == a || path.starts_with(&format!("{a}/")) || a.is_empty()
        })
    }
}

/// What a compose file is read with.
pub struct Source<'a> {
    /// The file.
    pub file: &'a SourceFile,
    /// The project name (`<project>_<volume>`).
    pub project: &'a str,
    /// Variables for interpolation.
    pub lookup: Lookup<'a>,
    /// Active profiles.
    pub profiles: &'a [String],
    /// What the app allows.
    pub allow: &'a Allow,
    /// Reads a file the compose file names (`env_file`), relative to the compose file.
    pub read: &'a dyn Fn(&str) -> Result<String, String>,
    /// Secrets the app's `compose.secrets` gives (a sensitive variable or a Secrets Manager
    /// secret), by name: they win over the compose file's own source.
    pub provided: &'a BTreeSet<String>,
}

/// A top-level secret's or config's content.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// The app's `compose.secrets.<name>`.
    Provided,
    /// A value (sensitive for a secret).
    Value(Value),
}

/// The file's top-level `secrets` and `configs`.
pub(crate) struct Shared {
    pub secrets: BTreeMap<String, Content>,
    pub configs: BTreeMap<String, Content>,
}

/// Reads top-level `secrets` (`secret`) or `configs`: `file:` (beside the compose file),
/// `environment:` (converge's variable; sensitive for a secret), `content:` (a config); a
/// secret the app's `compose.secrets` gives needs none of them.
fn shared_files(
    src: &Source<'_>,
    node: Option<&Node>,
    secret: bool,
    out: &mut Translation,
) -> BTreeMap<String, Content> {
    let what = if secret { "secret" } else { "config" };
    let mut found = BTreeMap::new();
    let Some(node) = node else { return found };
    let Some(map) = node.as_mapping() else {
        out.error(src.file, node.span(), format!("`{what}s` is a mapping"));
        return found;
    };
    for (k, v) in map.iter() {
        let name = k.as_str().to_string();
        if secret && src.provided.contains(&name) {
            found.insert(name, Content::Provided);
            continue;
        }
        let field = |key: &str| v.as_mapping().and_then(|m| m.get_scalar(key)).cloned();
        let content = if let Some(file) = field("file") {
            match (src.read)(file.as_str()) {
                Ok(text) if secret => Some(Value::str(text).into_sensitive()),
                Ok(text) => Some(Value::str(text)),
                Err(why) => {
                    out.error(
                        src.file,
                        file.span(),
                        format!("{what} `{name}`: cannot read `{}`: {why}", file.as_str()),
                    );
                    continue;
                }
            }
        } else if let Some(var) = field("environment") {
            match (src.lookup)(var.as_str()) {
                Some((_, false)) if secret => {
                    out.error(src.file, var.span(), format!("secret `{name}` takes converge's variable `{}`, which must be sensitive (`sensitive: true`) so that it stays masked", var.as_str()));
                    continue;
                }
                Some((text, sensitive)) => Some(if sensitive {
                    Value::str(text).into_sensitive()
                } else {
                    Value::str(text)
                }),
                None => None,
            }
        } else if let (false, Some(content)) = (secret, field("content")) {
            match interpolate::interpolate(content.as_str(), src.lookup) {
                Ok(i) if !i.sensitive => Some(Value::str(i.text)),
                Ok(_) => {
                    out.error(
                        src.file,
                        content.span(),
                        format!("config `{name}` takes a sensitive value: make it a secret"),
                    );
                    continue;
                }
                Err(e) => {
                    out.error(src.file, content.span(), e.to_string());
                    continue;
                }
            }
        } else {
            None
        };
        match content {
            Some(value) => {
                found.insert(name, Content::Value(value));
            }
            None => out.error(
                src.file,
                k.span(),
                if secret {
                    format!("secret `{name}` has no source: give it `file:` or `environment:` (a sensitive variable), or the app's `compose: {{ secrets: {{ {name}: ... }} }}`")
                } else {
                    format!("config `{name}` has no source: give it `file:`, `content:` or `environment:`")
                },
            ),
        }
    }
    found
}

/// A compose file read into an app's properties.
#[derive(Debug, Default)]
pub struct Translation {
    /// `services`: web services and workers.
    pub services: BTreeMap<String, Value>,
    /// `accessories`: services keeping data in named volumes.
    pub accessories: BTreeMap<String, Value>,
    /// Where in the compose file each property path (`services.api.image`) was written.
    pub origins: Vec<(Vec<String>, Span)>,
    /// Warnings, each with where it applies.
    pub warnings: Vec<(Span, String)>,
    /// Errors.
    pub errors: Vec<ConfigError>,
    /// Secret files whose content is the app's `compose.secrets.<name>`: the property path of
    /// the file's `secret` and the name.
    pub provided: Vec<(Vec<String>, String)>,
}

impl Translation {
    fn error(&mut self, file: &SourceFile, span: &Span, message: impl Into<String>) {
        self.errors
            .push(ConfigError::at(file, span, message, "here"));
    }
}

const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets", "configs",
];

/// Reads the parsed compose file `root` into an app's services and accessories.
pub fn translate(src: &Source<'_>, root: &Node) -> Translation {
    let mut out = Translation::default();
    let Some(top) = root.as_mapping() else {
        out.error(src.file, root.span(), "a compose file is a mapping");
        return out;
    };
    for (k, _) in top.iter() {
        if !TOP_KEYS.contains(&k.as_str()) && !k.as_str().starts_with("x-") {
            out.error(
                src.file,
                k.span(),
                format!(
                    "converge does not read a compose file's top-level `{}`",
                    k.as_str()
                ),
            );
        }
    }
    let shared = Shared {
        secrets: shared_files(src, top.get_node("secrets"), true, &mut out),
        configs: shared_files(src, top.get_node("configs"), false, &mut out),
    };
    let volumes = top_volumes(src, top.get_node("volumes"), &mut out);
    let networks: BTreeSet<String> = match top.get_node("networks") {
        Some(Node::Mapping(m)) => m.iter().map(|(k, _)| k.as_str().to_string()).collect(),
        _ => BTreeSet::new(),
    };
    let Some(services) = top.get_mapping("services") else {
        let span = top.get_node("services").map_or(*root.span(), |n| *n.span());
        out.error(src.file, &span, "a compose file needs a `services` mapping");
        return out;
    };
    let mut read = Vec::new();
    for (name, _) in services.iter() {
        let resolved = match service::extended(src.file, services, name.as_str(), &mut Vec::new()) {
            Ok(n) => n,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        if !service::active(&resolved, src.profiles) {
            continue;
        }
        read.push((name.clone(), resolved));
    }
    let names: BTreeSet<String> = read.iter().map(|(n, _)| n.as_str().to_string()).collect();
    let mut published: BTreeMap<String, Span> = BTreeMap::new();
    let mut all = Vec::new();
    for (name, node) in &read {
        let ctx = service::Context {
            src,
            shared: &shared,
            volumes: &volumes,
            networks: &networks,
            services: &names,
            published: &mut published,
        };
        if let Some(s) = service::read(ctx, name, node, &mut out) {
            all.push(s);
        }
    }
    service::mark_jobs(src.file, &mut all, &mut out);
    service::check_dependencies(src.file, &all, &mut out);
    for s in all {
        let group = match s.class {
            service::Class::Accessory => "accessories",
            _ => "services",
        };
        for (path, span) in s.origins {
            let mut full = vec![group.to_string(), s.name.clone()];
            full.extend(path);
            out.origins.push((full, span));
        }
        for (path, name) in s.provided {
            let mut full = vec![group.to_string(), s.name.clone()];
            full.extend(path);
            out.provided.push((full, name));
        }
        match s.class {
            service::Class::Accessory => out.accessories.insert(s.name, s.value),
            _ => out.services.insert(s.name, s.value),
        };
    }
    out
}

/// A named volume of the file: its Docker name, as Compose names it.
#[derive(Debug, Clone)]
pub(crate) struct NamedVolume {
    docker_name: String,
}

fn top_volumes(
    src: &Source<'_>,
    node: Option<&Node>,
    out: &mut Translation,
) -> BTreeMap<String, NamedVolume> {
    let mut volumes = BTreeMap::new();
    let Some(node) = node else { return volumes };
    let Some(map) = node.as_mapping() else {
        out.error(
            src.file,
            node.span(),
            "`volumes` is a mapping of volume names",
        );
        return volumes;
    };
    for (k, v) in map.iter() {
        let mut docker_name = format!("{}_{}", src.project, k.as_str());
        if let Some(m) = v.as_mapping() {
            for (field, value) in m.iter() {
                match field.as_str() {
                    "name" => match value.as_scalar() {
                        Some(s) => docker_name = s.as_str().to_string(),
                        None => out.error(src.file, value.span(), "a volume's `name` is a string"),
                    },
                    "external" => {
                        if value.as_scalar().and_then(|s| s.as_bool()) == Some(true)
                            && m.get_node("name").is_none()
                        {
                            docker_name = k.as_str().to_string();
                        }
                    }
                    "labels" => {}
                    other if other.starts_with("x-") => {}
                    other => out.error(
                        src.file,
                        field.span(),
                        format!("converge does not support `{other}` of a volume (Docker's local driver makes every named volume)"),
                    ),
                }
            }
        }
        if let Err(e) =
            crate::model::grammar::Volume::try_from(format!("{docker_name}:/x").as_str())
        {
            out.error(src.file, k.span(), format!("volume `{}`: {e}", k.as_str()));
            continue;
        }
        volumes.insert(k.as_str().to_string(), NamedVolume { docker_name });
    }
    volumes
}
