//! One compose service read into a container of the app: each field mapped to what `docker
//! compose up` does with it, or refused where it stands.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hashlink::LinkedHashMap;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Node, Span};

use super::interpolate::{Interpolated, interpolate};
use super::{Content, NamedVolume, Shared, Source, Translation, units};
use crate::config::diagnostic::{ConfigError, SourceFile};
use crate::model::Value;
use crate::model::grammar::{self, Grammar};

/// How a service is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Has `ports`: behind nginx, by colour.
    Web,
    /// Neither ports nor named volumes: by colour, after the switch.
    Worker,
    /// Keeps data in named volumes: in place, before the services.
    Accessory,
    /// Another service waits for it to complete (`service_completed_successfully`): run to
    /// completion once per deploy on each host, before what waits for it.
    Job,
}

/// A service read.
pub(super) struct Read {
    pub name: String,
    pub key_span: Span,
    pub class: Class,
    pub value: Value,
    /// Property paths below the service and where they were written.
    pub origins: Vec<(Vec<String>, Span)>,
    /// `depends_on`: the service, its condition, where.
    pub depends: Vec<(String, String, Span)>,
    /// Paths (below the service) of secret files the app's `compose.secrets` fills, by name.
    pub provided: Vec<(Vec<String>, String)>,
}

/// What reading a service needs from the whole file.
pub(super) struct Context<'a, 'b> {
    pub src: &'a Source<'b>,
    pub shared: &'a Shared,
    pub volumes: &'a BTreeMap<String, NamedVolume>,
    pub networks: &'a BTreeSet<String>,
    pub services: &'a BTreeSet<String>,
    /// Host ports published so far, and where.
    pub published: &'a mut BTreeMap<String, Span>,
}

/// Fields with no effect on a host: read, warned about, not used.
const NO_EFFECT: &[&str] = &[
    "container_name",
    "hostname",
    "domainname",
    "expose",
    "platform",
    "pull_policy",
];

/// The service `name` with its `extends` (within the file) applied: the base's fields, then
/// the service's own (`environment` and `labels` merged key by key).
pub(super) fn extended(
    file: &SourceFile,
    services: &MarkedMappingNode,
    name: &str,
    chain: &mut Vec<String>,
) -> Result<Node, ConfigError> {
    let node = services
        .get_node(name)
        .expect("the caller names a service of the file");
    let Some(map) = node.as_mapping() else {
        return Err(ConfigError::at(
            file,
            node.span(),
            format!("service `{name}` must be a mapping"),
            "here",
        ));
    };
    let Some(ext) = map.get_node("extends") else {
        return Ok(node.clone());
    };
    let base_name = match ext {
        Node::Scalar(s) => s.as_str().to_string(),
        Node::Mapping(m) => {
            if let Some(f) = m.get_node("file") {
                return Err(ConfigError::at(
                    file,
                    f.span(),
                    "`extends` from another file is not supported: converge reads one compose file",
                    "here",
                ));
            }
            match m.get_scalar("service") {
                Some(s) => s.as_str().to_string(),
                None => {
                    return Err(ConfigError::at(
                        file,
                        ext.span(),
                        "`extends` needs `service`",
                        "here",
                    ));
                }
            }
        }
        Node::Sequence(_) => {
            return Err(ConfigError::at(
                file,
                ext.span(),
                "`extends` is a service name or `{ service: NAME }`",
                "here",
            ));
        }
    };
    if services.get_node(&base_name).is_none() {
        return Err(ConfigError::at(
            file,
            ext.span(),
            format!("`extends` names `{base_name}`, which is not a service of this file"),
            "unknown service",
        ));
    }
    if chain.contains(&base_name) || base_name == name {
        return Err(ConfigError::at(
            file,
            ext.span(),
            format!("`extends` goes round in a circle through `{base_name}`"),
            "here",
        ));
    }
    chain.push(name.to_string());
    let base = extended(file, services, &base_name, chain)?;
    let mut merged: LinkedHashMap<MarkedScalarNode, Node> = LinkedHashMap::new();
    if let Some(b) = base.as_mapping() {
        for (k, v) in b.iter() {
            if k.as_str() != "profiles" {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in map.iter() {
        if k.as_str() == "extends" {
            continue;
        }
        let combined = match (merged.get(k), v) {
            (Some(Node::Mapping(old)), Node::Mapping(new))
                if matches!(k.as_str(), "environment" | "labels") =>
            {
                let mut m: LinkedHashMap<MarkedScalarNode, Node> = LinkedHashMap::new();
                for (a, b) in old.iter().chain(new.iter()) {
                    m.insert(a.clone(), b.clone());
                }
                Node::from(MarkedMappingNode::new(*new.span(), m))
            }
            _ => v.clone(),
        };
        merged.insert(k.clone(), combined);
    }
    Ok(Node::from(MarkedMappingNode::new(*node.span(), merged)))
}

/// Whether a service is deployed with these profiles: it has none, or one of them.
pub(super) fn active(node: &Node, profiles: &[String]) -> bool {
    match node.as_mapping().and_then(|m| m.get_sequence("profiles")) {
        None => true,
        Some(list) => list
            .iter()
            .filter_map(|p| p.as_scalar())
            .any(|p| profiles.iter().any(|a| a == p.as_str())),
    }
}

/// Reads one service; `None` (with errors in `out`) when it cannot be.
pub(super) fn read(
    ctx: Context<'_, '_>,
    key: &MarkedScalarNode,
    node: &Node,
    out: &mut Translation,
) -> Option<Read> {
    let mut r = Reader {
        file: ctx.src.file,
        src: ctx.src,
        out,
        origins: Vec::new(),
        service: key.as_str().to_string(),
    };
    let errors_before = r.out.errors.len();
    if let Err(e) = grammar::NAME.parse(key.as_str()) {
        r.error(
            key.span(),
            format!(
                "service name `{}`: {} (converge names containers `<app>-<service>`)",
                key.as_str(),
                e.why
            ),
        );
    }
    let map = node.as_mapping()?;
    let mut v: BTreeMap<String, Value> = BTreeMap::new();
    let mut env: BTreeMap<String, Value> = BTreeMap::new();
    let mut secrets: BTreeMap<String, Value> = BTreeMap::new();
    let mut runtime: BTreeMap<String, Value> = BTreeMap::new();
    let mut mounts: Vec<Value> = Vec::new();
    let mut named = false;
    let mut port: Option<(u16, Span)> = None;
    let mut replicas: Option<(i64, Span)> = None;
    let mut depends = Vec::new();
    let mut health: Option<Value> = None;
    let mut files: BTreeMap<String, Value> = BTreeMap::new();
    let mut provided: Vec<(Vec<String>, String)> = Vec::new();
    for (k, field) in map.iter() {
        let name = k.as_str();
        match name {
            "image" => {
                if let Some(image) = r.text(field, &grammar::IMAGE) {
                    r.origin(&["image"], field);
                    v.insert("image".into(), Value::str(image));
                }
            }
            "build" => {
                if map.get_node("image").is_none() {
                    r.error(k.span(), "`build` without `image`: converge deploys images, it does not build them; build and push the image in CI and name it in `image`");
                } else {
                    r.warn(k.span(), "`build` is not used: converge deploys the image `image` names");
                }
            }
            "command" | "entrypoint" => {
                if let Some(words) = r.words(field) {
                    r.origin(&[name], field);
                    v.insert(name.into(), Value::List(words.into_iter().map(Value::str).collect()));
                }
            }
            "environment" => r.environment(field, &mut env, &mut secrets),
            "env_file" => r.env_files(field, &mut env),
            "healthcheck" => health = r.healthcheck(field),
            "depends_on" => depends = r.depends_on(field, ctx.services),
            "volumes" => {
                // A tmpfs goes to `runtime`; a refused mount is reported where it stands.
                for m in r.list(field) {
                    if let Some((mount, is_named)) = r.mount(&m, ctx.volumes, &mut runtime) {
                        named |= is_named;
                        r.origin(&["volumes", &mounts.len().to_string()], &m);
                        mounts.push(Value::str(mount));
                    }
                }
            }
            "tmpfs" => {
                let paths = match field {
                    Node::Scalar(_) => vec![field.clone()],
                    _ => r.list(field),
                };
                for p in paths {
                    if let Some(t) = r.text(&p, &grammar::HOST_PATH) {
                        push(&mut runtime, "tmpfs", Value::str(t));
                    }
                }
            }
            "ports" => port = r.ports(field, ctx.published),
            "networks" => {
                let given: Vec<(String, Span)> = match field {
                    Node::Sequence(s) => s.iter().filter_map(|n| n.as_scalar().map(|s| (s.as_str().to_string(), *s.span()))).collect(),
                    Node::Mapping(m) => m.iter().map(|(k, _)| (k.as_str().to_string(), *k.span())).collect(),
                    Node::Scalar(_) => Vec::new(),
                };
                for (n, span) in given {
                    if n != "default" && !ctx.networks.contains(&n) {
                        r.error(&span, format!("network `{n}` is not declared under the file's top-level `networks`"));
                    }
                }
                r.warn(k.span(), "converge joins every container of the app to one network, `converge-<app>`: services on different compose networks can reach each other");
            }
            "restart" => {
                if let Some(p) = r.plain(field) {
                    match p.as_str() {
                        "no" | "always" | "on-failure" | "unless-stopped" => {
                            runtime.insert("restart".into(), Value::str(p));
                        }
                        _ if p.starts_with("on-failure:") => {
                            runtime.insert("restart".into(), Value::str("on-failure"));
                        }
                        _ => r.error(field.span(), format!("`restart: {p}`: write no, always, on-failure or unless-stopped")),
                    }
                }
            }
            "user" => {
                if let Some(u) = r.text(field, &grammar::CONTAINER_USER) {
                    r.origin(&["user"], field);
                    v.insert("user".into(), Value::str(u));
                }
            }
            "working_dir" => {
                if let Some(w) = r.text(field, &grammar::HOST_PATH) {
                    v.insert("working_dir".into(), Value::str(w));
                }
            }
            "read_only" | "init" | "privileged" => {
                if let Some(b) = r.boolean(field) {
                    if name == "privileged" && b && !ctx.src.allow.privileged {
                        r.error(field.span(), "`privileged: true` gives the container every device and capability of the host: refused unless the app's `allow: { privileged: true }`");
                    }
                    runtime.insert(name.into(), Value::Bool(b));
                }
            }
            "network_mode" => match r.plain(field).as_deref() {
                Some("host") if ctx.src.allow.host_network => {
                    runtime.insert("host_network".into(), Value::Bool(true));
                }
                Some("host") => r.error(field.span(), "`network_mode: host` gives the container the host's network: refused unless the app's `allow: { host_network: true }`"),
                Some("bridge") | None => {}
                Some(other) => r.error(field.span(), format!("`network_mode: {other}` is not supported (converge puts the app's containers on its own network)")),
            },
            "pid" | "ipc" | "userns_mode" | "uts" | "cgroup" | "cgroup_parent" => r.error(
                k.span(),
                format!("`{name}` shares a namespace of the host or another container: not supported"),
            ),
            "cap_add" => {
                for c in r.list(field) {
                    if let Some(cap) = r.text(&c, &grammar::CAPABILITY) {
                        let bare = cap.trim_start_matches("CAP_");
                        if !ctx.src.allow.capabilities.iter().any(|a| a.trim_start_matches("CAP_") == bare) {
                            r.error(c.span(), format!("`cap_add: {cap}` is refused unless the app's `allow: {{ capabilities: [{bare}] }}`"));
                        }
                        push(&mut runtime, "cap_add", Value::str(cap));
                    }
                }
            }
            "cap_drop" => {
                for c in r.list(field) {
                    if let Some(cap) = r.text(&c, &grammar::CAPABILITY) {
                        push(&mut runtime, "cap_drop", Value::str(cap));
                    }
                }
            }
            "security_opt" => {
                for o in r.list(field) {
                    if let Some(opt) = r.plain(&o) {
                        if !ctx.src.allow.security_opt(&opt) {
                            r.error(o.span(), format!("`{opt}` can lift the container's confinement (only `no-new-privileges` always may be given): refused unless the app's `allow: {{ privileged: true }}`"));
                        }
                        push(&mut runtime, "security_opt", Value::str(opt));
                    }
                }
            }
            "devices" => {
                for d in r.list(field) {
                    if let Some(dev) = r.plain(&d) {
                        let host = dev.split(':').next().unwrap_or_default().to_string();
                        if !ctx.src.allow.devices.contains(&host) {
                            r.error(d.span(), format!("device `{host}` is refused unless the app's `allow: {{ devices: [{host}] }}`"));
                        } else if dev.contains(':') {
                            r.error(d.span(), "converge gives a device at the same path in the container: write only the host path");
                        }
                        push(&mut runtime, "devices", Value::str(host));
                    }
                }
            }
            "mem_limit" => {
                if let Some(b) = r.bytes(field) {
                    runtime.insert("memory".into(), Value::int(b));
                }
            }
            "cpus" => {
                if let Some(c) = r.number(field) {
                    runtime.insert("cpus".into(), Value::Number(c));
                }
            }
            "pids_limit" => {
                if let Some(p) = r.integer(field) {
                    runtime.insert("pids_limit".into(), Value::int(p));
                }
            }
            "ulimits" => r.ulimits(field, &mut runtime),
            "stop_signal" => {
                if let Some(s) = r.text(field, &grammar::SIGNAL) {
                    runtime.insert("stop_signal".into(), Value::str(s));
                }
            }
            "stop_grace_period" => {
                if let Some(d) = r.duration(field) {
                    runtime.insert("stop_grace_period".into(), Value::str(units::text(d)));
                }
            }
            "labels" => {
                let mut labels = BTreeMap::new();
                for (lk, lv, span) in r.pairs(field) {
                    if lk.starts_with("converge.") {
                        r.error(&span, format!("`{lk}` is converge's own label"));
                        continue;
                    }
                    labels.insert(lk, Value::str(lv.unwrap_or_default()));
                }
                if !labels.is_empty() {
                    runtime.insert("labels".into(), Value::Map(labels));
                }
            }
            "logging" => {
                if let Some(m) = field.as_mapping() {
                    let mut logging = BTreeMap::new();
                    if let Some(d) = m.get_node("driver")
                        && let Some(driver) = r.text(d, &grammar::NAME)
                    {
                        if !super::Allow::LOCAL_LOG_DRIVERS.contains(&driver.as_str())
                            && !ctx.src.allow.log_drivers.contains(&driver)
                        {
                            r.error(d.span(), format!("logging driver `{driver}` sends the container's output off the host: refused unless the app's `allow: {{ log_drivers: [{driver}] }}`"));
                        }
                        logging.insert("driver".into(), Value::str(driver));
                    }
                    if let Some(o) = m.get_node("options") {
                        let options: BTreeMap<String, Value> = r
                            .pairs(o)
                            .into_iter()
                            .map(|(k, v, _)| (k, Value::str(v.unwrap_or_default())))
                            .collect();
                        logging.insert("options".into(), Value::Map(options));
                    }
                    if logging.contains_key("driver") {
                        runtime.insert("logging".into(), Value::Map(logging));
                    }
                }
            }
            "deploy" => replicas = r.deploy(field, &mut runtime).or(replicas),
            "scale" => replicas = r.integer(field).map(|n| (n, *field.span())),
            "profiles" => {}
            "secrets" | "configs" => {
                r.shared_files(field, name == "secrets", ctx.shared, &mut files, &mut provided)
            }
            other if other.starts_with("x-") => {}
            other if NO_EFFECT.contains(&other) => {
                r.warn(k.span(), format!("`{other}` has no effect: converge names and places the app's containers itself"))
            }
            other => r.error(k.span(), format!("converge does not support `{other}` of a compose service")),
        }
    }
    if map.get_node("image").is_none() && map.get_node("build").is_none() {
        r.error(
            key.span(),
            format!("service `{}` has no `image`", key.as_str()),
        );
    }
    let class = if named {
        Class::Accessory
    } else if port.is_some() {
        Class::Web
    } else {
        Class::Worker
    };
    if class == Class::Accessory {
        if let Some((_, span)) = &port {
            r.warn(span, "an accessory's `ports` are not published: converge publishes only the web service, through nginx; the app's other containers reach it by name");
        }
    } else if let Some((p, span)) = port {
        v.insert("port".into(), Value::int(i64::from(p)));
        r.origins.push((vec!["port".into()], span));
    }
    match replicas {
        Some((n, span)) if !(1..=32).contains(&n) => r.error(&span, format!("`{n}` replicas: converge runs 1 to 32 containers of a service per colour on each host")),
        Some((n, span)) if n > 1 && class == Class::Accessory => r.error(&span, format!("`{n}` replicas of an accessory: converge runs one container of a service with named volumes (never two writing one volume)")),
        Some((n, span)) if n > 1 => {
            v.insert("replicas".into(), Value::int(n));
            r.origins.push((vec!["replicas".into()], span));
        }
        _ => {}
    }
    if let Some(h) = health {
        v.insert("health".into(), h);
    }
    if !env.is_empty() {
        v.insert("env".into(), Value::Map(env));
    }
    if !secrets.is_empty() {
        v.insert("secrets".into(), Value::Map(secrets));
    }
    if !mounts.is_empty() {
        v.insert("volumes".into(), Value::List(mounts));
    }
    if !runtime.is_empty() {
        v.insert("runtime".into(), Value::Map(runtime));
    }
    if !files.is_empty() {
        v.insert("files".into(), Value::Map(files));
    }
    if !depends.is_empty() {
        let deps: BTreeMap<String, Value> = depends
            .iter()
            .map(|(n, c, _): &(String, String, Span)| (n.clone(), Value::str(c.clone())))
            .collect();
        v.insert("depends_on".into(), Value::Map(deps));
    }
    let failed = r.out.errors.len() > errors_before;
    let origins = r.origins;
    if failed {
        return None;
    }
    Some(Read {
        name: key.as_str().to_string(),
        key_span: *key.span(),
        class,
        value: Value::Map(v),
        origins: std::iter::once((vec![], *key.span()))
            .chain(origins)
            .collect(),
        depends,
        provided,
    })
}

fn push(map: &mut BTreeMap<String, Value>, key: &str, value: Value) {
    match map
        .entry(key.to_string())
        .or_insert_with(|| Value::List(Vec::new()))
    {
        Value::List(l) => l.push(value),
        other => *other = Value::List(vec![value]),
    }
}

/// Makes each service another waits for with `service_completed_successfully` a job (`job:
/// true`): a web service never completes, so one with `ports` is an error where it is waited for.
pub(super) fn mark_jobs(file: &SourceFile, all: &mut [Read], out: &mut Translation) {
    let waited: Vec<(String, Span)> = all
        .iter()
        .flat_map(|s| s.depends.iter())
        .filter(|(_, condition, _)| condition == "service_completed_successfully")
        .map(|(dep, _, span)| (dep.clone(), *span))
        .collect();
    for (dep, span) in waited {
        let Some(job) = all.iter_mut().find(|s| s.name == dep) else {
            continue;
        };
        match job.class {
            Class::Web => out.error(
                file,
                &span,
                format!("`{dep}` has `ports`: a web service never completes, so nothing can wait for `service_completed_successfully` of it"),
            ),
            Class::Job => {}
            _ => {
                job.class = Class::Job;
                if let Value::Map(m) = &mut job.value {
                    m.insert("job".into(), Value::Bool(true));
                }
            }
        }
    }
}

/// Cycles and waits converge cannot honour in `depends_on` (an accessory waits only for
/// accessories).
pub(super) fn check_dependencies(file: &SourceFile, all: &[Read], out: &mut Translation) {
    let by_name: BTreeMap<&str, &Read> = all.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut graph = petgraph::graph::DiGraph::<&str, Span>::new();
    let index: BTreeMap<&str, _> = all
        .iter()
        .map(|s| (s.name.as_str(), graph.add_node(s.name.as_str())))
        .collect();
    for s in all {
        for (dep, _, span) in &s.depends {
            let Some(d) = by_name.get(dep.as_str()) else {
                continue;
            };
            if s.class == Class::Accessory && d.class != Class::Accessory {
                out.error(file, span, format!("accessory `{}` depends on `{dep}`, a service: accessories start before the app's services", s.name));
            }
            graph.add_edge(index[s.name.as_str()], index[dep.as_str()], *span);
        }
    }
    if let Err(cycle) = petgraph::algo::toposort(&graph, None) {
        let start = cycle.node_id();
        let name = graph[start];
        let span = graph
            .edges(start)
            .next()
            .map(|e| *e.weight())
            .unwrap_or_else(|| by_name[name].key_span);
        out.error(
            file,
            &span,
            format!("`depends_on` goes round in a circle through `{name}`"),
        );
    }
}

/// A reader of one service's fields, with the translation its findings go to.
struct Reader<'a, 'b> {
    file: &'a SourceFile,
    src: &'a Source<'b>,
    out: &'a mut Translation,
    origins: Vec<(Vec<String>, Span)>,
    service: String,
}

impl Reader<'_, '_> {
    fn error(&mut self, span: &Span, message: impl Into<String>) {
        let message = format!("service `{}`: {}", self.service, message.into());
        self.out
            .errors
            .push(ConfigError::at(self.file, span, message, "here"));
    }

    fn warn(&mut self, span: &Span, message: impl Into<String>) {
        let message = format!("service `{}`: {}", self.service, message.into());
        self.out.warnings.push((*span, message));
    }

    fn origin(&mut self, path: &[&str], node: &Node) {
        self.origins
            .push((path.iter().map(|s| s.to_string()).collect(), *node.span()));
    }

    /// A scalar, interpolated; `None` (reported) for a mapping or list or a bad interpolation.
    fn scalar(&mut self, node: &Node) -> Option<Interpolated> {
        let Some(s) = node.as_scalar() else {
            self.error(node.span(), "expected a single value here");
            return None;
        };
        match interpolate(s.as_str(), self.src.lookup) {
            Ok(i) => {
                for name in &i.unset {
                    self.warn(
                        s.span(),
                        format!(
                            "variable `{name}` is not set: an empty string is used, as Compose does"
                        ),
                    );
                }
                Some(i)
            }
            Err(e) => {
                self.error(s.span(), e.to_string());
                None
            }
        }
    }

    /// A scalar that may not hold a secret (it would show on a command line or in a label).
    fn plain(&mut self, node: &Node) -> Option<String> {
        let i = self.scalar(node)?;
        if i.sensitive {
            self.error(node.span(), "a sensitive variable may only be used in `environment` (converge keeps it masked there); here it would show in `docker inspect` and `ps`");
            return None;
        }
        Some(i.text)
    }

    fn text(&mut self, node: &Node, g: &'static Grammar) -> Option<String> {
        let t = self.plain(node)?;
        match g.parse(&t) {
            Ok(()) => Some(t),
            Err(e) => {
                self.error(node.span(), format!("{}: {}", e.value, e.why));
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node) -> Option<bool> {
        let t = self.plain(node)?;
        match t.as_str() {
            "true" | "True" | "yes" => Some(true),
            "false" | "False" | "no" => Some(false),
            _ => {
                self.error(node.span(), format!("`{t}` is not true or false"));
                None
            }
        }
    }

    fn integer(&mut self, node: &Node) -> Option<i64> {
        let t = self.plain(node)?;
        t.parse().ok().or_else(|| {
            self.error(node.span(), format!("`{t}` is not a whole number"));
            None
        })
    }

    fn number(&mut self, node: &Node) -> Option<serde_json::Number> {
        let t = self.plain(node)?;
        match t
            .parse::<f64>()
            .ok()
            .filter(|n| *n >= 0.0)
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => Some(n),
            None => {
                self.error(node.span(), format!("`{t}` is not a number"));
                None
            }
        }
    }

    fn bytes(&mut self, node: &Node) -> Option<i64> {
        let t = self.plain(node)?;
        units::bytes(&t).or_else(|| {
            self.error(
                node.span(),
                format!("`{t}` is not a size (256m, 1g, 1024k...)"),
            );
            None
        })
    }

    fn duration(&mut self, node: &Node) -> Option<Duration> {
        let t = self.plain(node)?;
        units::duration(&t).or_else(|| {
            self.error(
                node.span(),
                format!("`{t}` is not a duration (30s, 1m30s, 500ms...)"),
            );
            None
        })
    }

    fn list(&mut self, node: &Node) -> Vec<Node> {
        match node {
            Node::Sequence(s) => s.iter().cloned().collect(),
            other => {
                self.error(other.span(), "expected a list here");
                Vec::new()
            }
        }
    }

    /// `command`/`entrypoint`: a list of words, or a string split as a shell would (Compose's
    /// own rule; nothing runs a shell).
    fn words(&mut self, node: &Node) -> Option<Vec<String>> {
        match node {
            Node::Scalar(_) => {
                let t = self.plain(node)?;
                match shlex::split(&t) {
                    Some(w) => Some(w),
                    None => {
                        self.error(node.span(), "unbalanced quotes");
                        None
                    }
                }
            }
            Node::Sequence(s) => s.iter().map(|w| self.plain(w)).collect(),
            Node::Mapping(_) => {
                self.error(node.span(), "expected a string or a list of words");
                None
            }
        }
    }

    /// A mapping `K: V` or a list `K=V`, keys as written, values interpolated (`None` when a
    /// list item has no `=`, or a mapping's value is empty).
    fn pairs(&mut self, node: &Node) -> Vec<(String, Option<String>, Span)> {
        self.pairs_interpolated(node)
            .into_iter()
            .filter_map(|(k, v, span)| match v {
                Some(i) if i.sensitive => {
                    self.error(
                        &span,
                        "a sensitive variable may only be used in `environment`",
                    );
                    None
                }
                v => Some((k, v.map(|i| i.text), span)),
            })
            .collect()
    }

    fn pairs_interpolated(&mut self, node: &Node) -> Vec<(String, Option<Interpolated>, Span)> {
        let mut out = Vec::new();
        match node {
            Node::Mapping(m) => {
                for (k, v) in m.iter() {
                    let value = match v {
                        Node::Scalar(s)
                            if matches!(s.as_str(), "" | "~" | "null") && s.may_coerce() =>
                        {
                            None
                        }
                        v => self.scalar(v),
                    };
                    out.push((k.as_str().to_string(), value, *k.span()));
                }
            }
            Node::Sequence(s) => {
                for item in s.iter() {
                    let Some(text) = item.as_scalar() else {
                        self.error(item.span(), "expected `NAME=value`");
                        continue;
                    };
                    match text.as_str().split_once('=') {
                        Some((k, _)) => {
                            let key = k.to_string();
                            let raw = text.as_str()[k.len() + 1..].to_string();
                            let scalar = Node::from(MarkedScalarNode::new(*text.span(), raw));
                            let value = self.scalar(&scalar);
                            out.push((key, value, *text.span()));
                        }
                        None => out.push((text.as_str().to_string(), None, *text.span())),
                    }
                }
            }
            Node::Scalar(_) => {
                self.error(node.span(), "expected a mapping or a list of `NAME=value`")
            }
        }
        out
    }

    /// `environment`: plain values to `env`, values that took a sensitive variable to
    /// `secrets`; a name without a value takes converge's variable of that name.
    fn environment(
        &mut self,
        node: &Node,
        env: &mut BTreeMap<String, Value>,
        secrets: &mut BTreeMap<String, Value>,
    ) {
        for (k, v, span) in self.pairs_interpolated(node) {
            if let Err(e) = grammar::ENV_NAME.parse(&k) {
                self.error(&span, format!("{}: {}", e.value, e.why));
                continue;
            }
            let value = match v {
                Some(i) => Some((i.text, i.sensitive)),
                None => (self.src.lookup)(&k),
            };
            let Some((text, sensitive)) = value else {
                self.warn(&span, format!("`{k}` has no value here and no variable `{k}` gives one: it is left out, as Compose leaves out a name the environment does not set"));
                continue;
            };
            let path = if sensitive { "secrets" } else { "env" };
            self.origins.push((vec![path.into(), k.clone()], span));
            if sensitive {
                secrets.insert(k, Value::str(text).into_sensitive());
            } else {
                env.insert(k, Value::str(text));
            }
        }
    }

    /// `env_file`: files beside the compose file, read as Compose reads `.env` files.
    fn env_files(&mut self, node: &Node, env: &mut BTreeMap<String, Value>) {
        let files: Vec<Node> = match node {
            Node::Scalar(_) => vec![node.clone()],
            Node::Sequence(s) => s.iter().cloned().collect(),
            Node::Mapping(_) => {
                self.error(node.span(), "`env_file` is a path or a list of paths");
                return;
            }
        };
        for f in files {
            let path_node = match &f {
                Node::Mapping(m) => match m.get_node("path") {
                    Some(p) => p.clone(),
                    None => {
                        self.error(f.span(), "an `env_file` entry needs `path`");
                        continue;
                    }
                },
                other => other.clone(),
            };
            let Some(path) = self.plain(&path_node) else {
                continue;
            };
            let text = match (self.src.read)(&path) {
                Ok(t) => t,
                Err(why) => {
                    self.error(path_node.span(), format!("cannot read `{path}`: {why}"));
                    continue;
                }
            };
            match super::interpolate::dotenv(&text) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        self.origins
                            .push((vec!["env".into(), k.clone()], *path_node.span()));
                        env.entry(k).or_insert(Value::str(v));
                    }
                }
                Err(line) => self.error(
                    path_node.span(),
                    format!("`{path}` line {line} is not `NAME=value`"),
                ),
            }
        }
    }

    /// `healthcheck` → `health: { command, interval, timeout }`: the command as Docker runs
    /// it, the deadline what Compose's probes would take to call it unhealthy.
    fn healthcheck(&mut self, node: &Node) -> Option<Value> {
        let m = node.as_mapping()?;
        if let Some(d) = m.get_node("disable")
            && self.boolean(d) == Some(true)
        {
            return None;
        }
        let test = m.get_node("test")?;
        let command = match test {
            Node::Scalar(_) => vec!["/bin/sh".to_string(), "-c".into(), self.plain(test)?],
            Node::Sequence(s) => {
                let words: Vec<String> = s.iter().map(|w| self.plain(w)).collect::<Option<_>>()?;
                match words.split_first() {
                    Some((first, rest)) if first == "CMD" => rest.to_vec(),
                    Some((first, rest)) if first == "CMD-SHELL" => {
                        vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
                    }
                    Some((first, _)) if first == "NONE" => return None,
                    _ => {
                        self.error(
                            test.span(),
                            "a healthcheck's `test` starts with CMD, CMD-SHELL or NONE",
                        );
                        return None;
                    }
                }
            }
            Node::Mapping(_) => {
                self.error(test.span(), "a healthcheck's `test` is a string or a list");
                return None;
            }
        };
        let mut get = |key: &str, default: Duration| -> Duration {
            match m.get_node(key) {
                Some(n) => self.duration(n).unwrap_or(default),
                None => default,
            }
        };
        let interval = get("interval", Duration::from_secs(2));
        let probe = get("timeout", Duration::from_secs(30));
        let start = get("start_period", Duration::ZERO);
        let retries = match m.get_node("retries") {
            Some(n) => self.integer(n).unwrap_or(3).max(1) as u32,
            None => 3,
        };
        let deadline = (start + (interval + probe) * retries).max(Duration::from_secs(30));
        self.origin(&["health"], node);
        let mut h = BTreeMap::new();
        h.insert(
            "command".to_string(),
            Value::List(command.into_iter().map(Value::str).collect()),
        );
        h.insert("interval".into(), Value::str(units::text(interval)));
        h.insert("timeout".into(), Value::str(units::text(deadline)));
        Some(Value::Map(h))
    }

    /// `depends_on`, list or mapping form: (service, condition, where).
    fn depends_on(
        &mut self,
        node: &Node,
        services: &BTreeSet<String>,
    ) -> Vec<(String, String, Span)> {
        let mut out = Vec::new();
        let entries: Vec<(MarkedScalarNode, Option<Node>)> = match node {
            Node::Sequence(s) => s
                .iter()
                .filter_map(|n| n.as_scalar().map(|s| (s.clone(), None)))
                .collect(),
            Node::Mapping(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            Node::Scalar(_) => {
                self.error(
                    node.span(),
                    "`depends_on` is a list of services or a mapping",
                );
                return out;
            }
        };
        for (name, detail) in entries {
            let mut condition = "service_started".to_string();
            if let Some(Node::Mapping(d)) = &detail {
                for (k, v) in d.iter() {
                    match k.as_str() {
                        "condition" => match self.plain(v).as_deref() {
                            Some(c @ ("service_started" | "service_healthy" | "service_completed_successfully")) => condition = c.to_string(),
                            Some(other) => self.error(v.span(), format!("`condition: {other}`: write service_started, service_healthy or service_completed_successfully")),
                            None => {}
                        },
                        "restart" | "required" => {}
                        other => self.error(k.span(), format!("converge does not support `{other}` of a dependency")),
                    }
                }
            }
            if !services.contains(name.as_str()) {
                self.error(name.span(), format!("`depends_on` names `{}`, which is not a service of this file (or not in an active profile)", name.as_str()));
                continue;
            }
            self.origins.push((
                vec!["depends_on".into(), name.as_str().to_string()],
                *name.span(),
            ));
            out.push((name.as_str().to_string(), condition, *name.span()));
        }
        out
    }

    /// One `volumes` entry: (the mount as converge writes it, whether it is a named volume);
    /// a tmpfs goes to `runtime.tmpfs`.
    fn mount(
        &mut self,
        node: &Node,
        volumes: &BTreeMap<String, NamedVolume>,
        runtime: &mut BTreeMap<String, Value>,
    ) -> Option<(String, bool)> {
        let (kind, source, target, read_only) = match node {
            Node::Scalar(_) => {
                let t = self.plain(node)?;
                let parts: Vec<&str> = t.split(':').collect();
                let (source, target, mode) = match parts.as_slice() {
                    [target] => (None, target.to_string(), None),
                    [s, t] => (Some(s.to_string()), t.to_string(), None),
                    [s, t, m] => (Some(s.to_string()), t.to_string(), Some(m.to_string())),
                    _ => {
                        self.error(node.span(), "write SOURCE:TARGET[:ro]");
                        return None;
                    }
                };
                let read_only = match mode.as_deref() {
                    None | Some("rw") => false,
                    Some("ro") => true,
                    Some(other) => {
                        self.error(
                            node.span(),
                            format!("mount option `{other}` is not supported (ro or rw)"),
                        );
                        return None;
                    }
                };
                let kind = match &source {
                    Some(s) if s.starts_with(['/', '.', '~']) => "bind",
                    Some(_) => "volume",
                    None => "anonymous",
                };
                (kind.to_string(), source, target, read_only)
            }
            Node::Mapping(m) => {
                let get = |r: &mut Self, k: &str| m.get_node(k).and_then(|n| r.plain(n));
                let kind = get(self, "type").unwrap_or_else(|| "volume".into());
                let source = get(self, "source");
                let Some(target) = get(self, "target") else {
                    self.error(node.span(), "a mount needs `target`");
                    return None;
                };
                let read_only = match m.get_node("read_only") {
                    Some(n) => self.boolean(n).unwrap_or(false),
                    None => false,
                };
                let kind = if kind == "volume" && source.is_none() {
                    "anonymous".to_string()
                } else {
                    kind
                };
                (kind, source, target, read_only)
            }
            Node::Sequence(_) => {
                self.error(node.span(), "a mount is a string or a mapping");
                return None;
            }
        };
        if grammar::HOST_PATH.parse(&target).is_err() {
            self.error(
                node.span(),
                format!(
                    "`{}` is not an absolute container path",
                    grammar::escape_controls(&target)
                ),
            );
            return None;
        }
        let ro = if read_only { ":ro" } else { "" };
        match kind.as_str() {
            "tmpfs" => {
                push(runtime, "tmpfs", Value::str(target));
                None
            }
            "anonymous" => {
                self.error(node.span(), "an anonymous volume is lost when the container is replaced: name it under the file's top-level `volumes`");
                None
            }
            "volume" => {
                let source = source.unwrap_or_default();
                match volumes.get(&source) {
                    Some(v) => Some((format!("{}:{target}{ro}", v.docker_name), true)),
                    None => {
                        self.error(node.span(), format!("volume `{source}` is not declared under the file's top-level `volumes`"));
                        None
                    }
                }
            }
            "bind" => {
                let source = source.unwrap_or_default();
                if !source.starts_with('/') {
                    self.error(node.span(), format!("`{source}` is a path on the machine running converge, not on the hosts: bind an absolute host path (allowed in the app's `allow.host_paths`) or use a named volume"));
                    return None;
                }
                if !self.src.allow.host_path(&source) {
                    self.error(node.span(), format!("a bind mount of the host's `{source}` is refused unless the app's `allow: {{ host_paths: [{source}] }}` (or a directory above it)"));
                    return None;
                }
                let mount = format!("{source}:{target}{ro}");
                match grammar::Volume::try_from(mount.as_str()) {
                    Ok(_) => Some((mount, false)),
                    Err(e) => {
                        self.error(node.span(), e.to_string());
                        None
                    }
                }
            }
            other => {
                self.error(
                    node.span(),
                    format!("mount type `{other}` is not supported (volume, bind or tmpfs)"),
                );
                None
            }
        }
    }

    /// A service's `secrets` or `configs`: each a file at its target (secrets below
    /// `/run/secrets/`, configs below `/`), mode 0400 (secrets) or 0444 (configs) unless
    /// `mode` says, owned by the service's user.
    fn shared_files(
        &mut self,
        node: &Node,
        secret: bool,
        shared: &Shared,
        files: &mut BTreeMap<String, Value>,
        provided: &mut Vec<(Vec<String>, String)>,
    ) {
        let what = if secret { "secret" } else { "config" };
        for item in self.list(node) {
            let (source, target, mode) = match &item {
                Node::Scalar(s) => (s.as_str().to_string(), None, None),
                Node::Mapping(m) => {
                    let Some(source) = m.get_scalar("source") else {
                        self.error(item.span(), format!("a {what} needs `source`"));
                        continue;
                    };
                    for key in ["uid", "gid"] {
                        if let Some(n) = m.get_node(key) {
                            self.warn(n.span(), format!("`{key}` is not used: converge makes the file the service's user's (root when it has none), so it stays readable with every capability dropped"));
                        }
                    }
                    let target = m.get_node("target").and_then(|n| self.plain(n));
                    let mode = match m.get_scalar("mode") {
                        Some(mode) => {
                            let text = mode.as_str();
                            let parsed = if text.starts_with('0') && text.len() > 1 {
                                u32::from_str_radix(&text[1..], 8).ok()
                            } else {
                                text.parse::<u32>().ok()
                            };
                            match parsed.filter(|m| *m <= 0o777) {
                                Some(m) => Some(format!("0{m:03o}")),
                                None => {
                                    self.error(
                                        mode.span(),
                                        format!("`{text}` is not a file mode (0400, 0440...)"),
                                    );
                                    continue;
                                }
                            }
                        }
                        None => None,
                    };
                    (source.as_str().to_string(), target, mode)
                }
                Node::Sequence(_) => {
                    self.error(item.span(), format!("a {what} is a name or a mapping"));
                    continue;
                }
            };
            let defs = if secret {
                &shared.secrets
            } else {
                &shared.configs
            };
            let Some(content) = defs.get(&source) else {
                self.error(
                    item.span(),
                    format!(
                        "{what} `{source}` is not declared under the file's top-level `{what}s`"
                    ),
                );
                continue;
            };
            let target = match target {
                Some(t) if t.starts_with('/') => t,
                Some(t) if secret => format!("/run/secrets/{t}"),
                Some(t) => format!("/{t}"),
                None if secret => format!("/run/secrets/{source}"),
                None => format!("/{source}"),
            };
            if let Err(e) = grammar::HOST_PATH.parse(&target) {
                self.error(item.span(), format!("{}: {}", e.value, e.why));
                continue;
            }
            if target.contains(':') {
                self.error(
                    item.span(),
                    format!("`{target}`: a file's path holds no `:`"),
                );
                continue;
            }
            let mut file = BTreeMap::new();
            if let Some(mode) = mode {
                file.insert("mode".to_string(), Value::str(mode));
            }
            match content {
                Content::Provided => {
                    provided.push((
                        vec!["files".into(), target.clone(), "secret".into()],
                        source,
                    ));
                }
                Content::Value(v) => {
                    file.insert(
                        if secret { "secret" } else { "text" }.to_string(),
                        v.clone(),
                    );
                }
            }
            self.origins
                .push((vec!["files".into(), target.clone()], *item.span()));
            files.insert(target, Value::Map(file));
        }
    }

    /// `ports`: the container port nginx routes to (one per service), each host port published
    /// once in the file.
    fn ports(
        &mut self,
        node: &Node,
        published: &mut BTreeMap<String, Span>,
    ) -> Option<(u16, Span)> {
        let mut targets: Vec<(u16, Span)> = Vec::new();
        for p in self.list(node) {
            let (host, target) = match &p {
                Node::Scalar(_) => {
                    let t = self.plain(&p)?;
                    let t = t.split('/').next().unwrap_or_default().to_string();
                    match t.rsplit_once(':') {
                        Some((host, target)) => (Some(host.to_string()), target.to_string()),
                        None => (None, t),
                    }
                }
                Node::Mapping(m) => {
                    let target = m
                        .get_node("target")
                        .and_then(|n| self.plain(n))
                        .unwrap_or_default();
                    let host = m.get_node("published").and_then(|n| self.plain(n));
                    (host, target)
                }
                Node::Sequence(_) => {
                    self.error(p.span(), "a port is a string or a mapping");
                    continue;
                }
            };
            let Ok(port) = target.parse::<u16>() else {
                self.error(
                    p.span(),
                    format!("`{target}` is not a container port (ranges are not supported)"),
                );
                continue;
            };
            if let Some(host) = host.filter(|h| !h.is_empty()) {
                if let Some(first) = published.get(&host) {
                    let at = crate::config::Location::of(self.file, first)
                        .map(|l| format!(" (at line {})", l.line))
                        .unwrap_or_default();
                    self.error(
                        p.span(),
                        format!("host port `{host}` is published twice{at}"),
                    );
                    continue;
                }
                published.insert(host, *p.span());
            }
            if !targets.iter().any(|(t, _)| *t == port) {
                targets.push((port, *p.span()));
            }
        }
        if targets.len() > 1 {
            self.error(
                &targets[1].1,
                format!(
                    "converge routes one port of a web service, and `{}` is the first",
                    targets[0].0
                ),
            );
        }
        targets.into_iter().next()
    }

    fn ulimits(&mut self, node: &Node, runtime: &mut BTreeMap<String, Value>) {
        let Some(m) = node.as_mapping() else {
            self.error(node.span(), "`ulimits` is a mapping");
            return;
        };
        let mut out = BTreeMap::new();
        for (k, v) in m.iter() {
            let (soft, hard) = match v {
                Node::Scalar(_) => {
                    let Some(n) = self.integer(v) else { continue };
                    (n, n)
                }
                Node::Mapping(l) => {
                    let soft = l.get_node("soft").and_then(|n| self.integer(n));
                    let hard = l.get_node("hard").and_then(|n| self.integer(n));
                    match (soft, hard) {
                        (Some(s), Some(h)) => (s, h),
                        _ => {
                            self.error(v.span(), "a ulimit needs `soft` and `hard`");
                            continue;
                        }
                    }
                }
                Node::Sequence(_) => {
                    self.error(v.span(), "a ulimit is a number or `{ soft, hard }`");
                    continue;
                }
            };
            let mut l = BTreeMap::new();
            l.insert("soft".to_string(), Value::int(soft));
            l.insert("hard".to_string(), Value::int(hard));
            out.insert(k.as_str().to_string(), Value::Map(l));
        }
        runtime.insert("ulimits".into(), Value::Map(out));
    }

    /// `deploy`: replicas (returned, with where they are written), resource limits, the restart
    /// policy; placement and update settings have no effect on a host (warned), converge's
    /// rollout replaces update_config.
    fn deploy(
        &mut self,
        node: &Node,
        runtime: &mut BTreeMap<String, Value>,
    ) -> Option<(i64, Span)> {
        let Some(m) = node.as_mapping() else {
            self.error(node.span(), "`deploy` is a mapping");
            return None;
        };
        let mut replicas = None;
        for (k, v) in m.iter() {
            match k.as_str() {
                "replicas" => replicas = self.integer(v).map(|n| (n, *v.span())),
                "resources" => {
                    let Some(r) = v.as_mapping() else { continue };
                    if let Some(l) = r.get_mapping("limits") {
                        for (lk, lv) in l.iter() {
                            match lk.as_str() {
                                "memory" => {
                                    if let Some(b) = self.bytes(lv) {
                                        runtime.insert("memory".into(), Value::int(b));
                                    }
                                }
                                "cpus" => {
                                    if let Some(c) = self.number(lv) {
                                        runtime.insert("cpus".into(), Value::Number(c));
                                    }
                                }
                                "pids" => {
                                    if let Some(p) = self.integer(lv) {
                                        runtime.insert("pids_limit".into(), Value::int(p));
                                    }
                                }
                                other => self.error(lk.span(), format!("converge does not support the limit `{other}`")),
                            }
                        }
                    }
                    if r.get_node("reservations").is_some() {
                        self.warn(k.span(), "`resources.reservations` has no effect on a single host (Docker reserves nothing)");
                    }
                }
                "restart_policy" => {
                    let condition = v.as_mapping().and_then(|p| p.get_node("condition")).and_then(|c| self.plain(c));
                    let policy = match condition.as_deref() {
                        Some("none") => "no",
                        Some("on-failure") => "on-failure",
                        _ => "always",
                    };
                    runtime.insert("restart".into(), Value::str(policy));
                }
                "mode" => {
                    if self.plain(v).as_deref() == Some("global") {
                        self.warn(v.span(), "`mode: global` is what converge does anyway: the service runs on every host of the app");
                    }
                }
                "placement" | "update_config" | "rollback_config" | "endpoint_mode" | "labels" => self.warn(
                    k.span(),
                    format!("`deploy.{}` has no effect: converge's `hosts` and `rollout` decide where and how the service is deployed", k.as_str()),
                ),
                other => self.error(k.span(), format!("converge does not support `deploy.{other}`")),
            }
        }
        replicas
    }
}
