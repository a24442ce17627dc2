//! A `host.app`'s properties as typed settings, read from its normalized (desired) properties,
//! and the rollout spec the engine drives it with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hosts::ssh::{PrivateKey, Target};
use crate::model::{Value, parse_duration};
use crate::rollout::spec::{
    Health, Hook, Hooks, HttpGate, OnFail, OnTimeout, RolloutSpec, Strategy,
};

/// How a service's new colour shows it is healthy.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Running is enough.
    Running,
    /// GET `path` on the container's port answers `expect_status`.
    Http {
        /// Path.
        path: String,
        /// Status that passes.
        expect_status: u16,
    },
    /// The port accepts a connection.
    Tcp,
    /// Docker's healthcheck (this command) says healthy.
    Command(Vec<String>),
}

/// One container's settings (a service or an accessory).
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Image reference.
    pub image: String,
    /// Command override.
    pub command: Vec<String>,
    /// Plain environment.
    pub env: BTreeMap<String, String>,
    /// Secret environment (revealed: only ever written to the host's 0600 env file).
    pub secrets: BTreeMap<String, String>,
    /// Bind mounts.
    pub volumes: Vec<String>,
    /// Container port behind the proxy.
    pub port: Option<u16>,
    /// Health check.
    pub check: Check,
    /// Time between health probes.
    pub check_interval: Duration,
    /// Deadline for health.
    pub check_timeout: Duration,
}

/// The nginx settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Nginx {
    /// server_name.
    pub server_name: String,
    /// listen port.
    pub listen: u16,
    /// Whether converge writes the server block (else only the upstream).
    pub server: bool,
    /// TLS certificate and key files on the host.
    pub tls: Option<(String, String)>,
    /// `nginx -c` file, when not nginx's own.
    pub config: Option<String>,
    /// Where `<app>.conf` goes.
    pub include_dir: String,
    /// nginx's pid file.
    pub pid_file: String,
}

/// A `host.app`, typed.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// The app's name.
    pub name: String,
    /// Its hosts.
    pub hosts: Vec<Target>,
    /// converge's known_hosts file.
    pub known_hosts: PathBuf,
    /// The login key.
    pub key: PrivateKey,
    /// Registry server and basic credentials (`None`: images are pulled anonymously).
    pub registry: Option<(String, Option<(String, String)>)>,
    /// `auth: { acr: true }`: hosts log in to the registry with their own managed identity.
    pub acr: bool,
    /// `auth: { ecr: true }`: converge gets an ECR token for each pull.
    pub ecr: bool,
    /// Services by name.
    pub services: BTreeMap<String, Container>,
    /// Accessories by name.
    pub accessories: BTreeMap<String, Container>,
    /// nginx.
    pub nginx: Nginx,
    /// `recreate` rather than blue/green.
    pub recreate: bool,
    /// How long the old colour may finish in-flight requests.
    pub drain_timeout: Duration,
    /// How long the old colour is kept, stopped.
    pub keep_previous: Duration,
    /// App images kept per host.
    pub keep_images: usize,
    /// Hosts at a time.
    pub batch: usize,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).reveal().as_str().map(str::to_string)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.reveal().as_str().map(str::to_string))
        .collect()
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.reveal()
        .as_map()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.reveal().as_str().map(|s| (k, s.to_string())))
        .collect()
}

fn duration(v: &Value, key: &str, default: &str) -> Result<Duration, String> {
    let raw = text(v, key).unwrap_or_else(|| default.to_string());
    parse_duration(&raw).map_err(|e| format!("{key}: `{raw}` {e}"))
}

fn container(v: &Value) -> Result<Container, String> {
    let health = v.get("health");
    let check = if !health.get("command").is_null() {
        Check::Command(strings(health.get("command")))
    } else if health.get("tcp").as_bool() == Some(true) {
        Check::Tcp
    } else if !health.get("http").is_null() {
        Check::Http {
            path: text(health.get("http"), "path").unwrap_or_else(|| "/".into()),
            expect_status: health
                .get("http")
                .get("expect_status")
                .as_i64()
                .unwrap_or(200) as u16,
        }
    } else {
        Check::Running
    };
    Ok(Container {
        image: text(v, "image").unwrap_or_default(),
        command: strings(v.get("command")),
        env: string_map(v.get("env")),
        secrets: string_map(v.get("secrets")),
        volumes: strings(v.get("volumes")),
        port: v.get("port").as_i64().map(|p| p as u16),
        check,
        check_interval: duration(health, "interval", "2s")?,
        check_timeout: duration(health, "timeout", "30s")?,
    })
}

impl AppSpec {
    /// The app of normalized properties; relative paths are taken from `root`.
    pub fn from_properties(p: &Value, root: &Path) -> Result<AppSpec, String> {
        let ssh = p.get("ssh");
        let key = match (
            ssh.get("private_key").reveal(),
            text(ssh, "private_key_file"),
        ) {
            (Value::String(k), _) => PrivateKey::Inline(k.clone()),
            (_, Some(f)) => PrivateKey::File(root.join(f)),
            _ => PrivateKey::Agent,
        };
        let reg = p.get("registry");
        let registry = text(reg, "server").map(|server| {
            let basic = reg.get("auth").get("basic");
            let creds =
                text(basic, "username").map(|u| (u, text(basic, "password").unwrap_or_default()));
            (server, creds)
        });
        let r = p.get("rollout");
        let n = r.get("proxy").get("nginx");
        let tls = n.get("tls");
        let mut services = BTreeMap::new();
        for (k, v) in p.get("services").as_map().cloned().unwrap_or_default() {
            services.insert(k, container(&v)?);
        }
        let mut accessories = BTreeMap::new();
        for (k, v) in p.get("accessories").as_map().cloned().unwrap_or_default() {
            accessories.insert(k, container(&v)?);
        }
        Ok(AppSpec {
            name: text(p, "name").unwrap_or_default(),
            hosts: p
                .get("hosts")
                .as_list()
                .unwrap_or_default()
                .iter()
                .map(|h| Target {
                    address: text(h, "address").unwrap_or_default(),
                    port: h.get("port").as_i64().unwrap_or(22) as u16,
                    user: text(h, "user").unwrap_or_else(|| "deploy".into()),
                })
                .collect(),
            known_hosts: root
                .join(text(ssh, "known_hosts").unwrap_or_else(|| ".converge/known_hosts".into())),
            key,
            acr: reg.get("auth").get("acr").as_bool() == Some(true),
            ecr: reg.get("auth").get("ecr").as_bool() == Some(true),
            registry,
            services,
            accessories,
            nginx: Nginx {
                server_name: text(n, "server_name").unwrap_or_default(),
                listen: n.get("listen").as_i64().unwrap_or(80) as u16,
                server: n.get("server").as_bool().unwrap_or(true),
                tls: text(tls, "certificate").zip(text(tls, "key")),
                config: text(n, "config"),
                include_dir: text(n, "include_dir").unwrap_or_else(|| "/etc/nginx/converge".into()),
                pid_file: text(n, "pid_file").unwrap_or_else(|| "/run/nginx.pid".into()),
            },
            recreate: text(r, "strategy").as_deref() == Some("recreate"),
            drain_timeout: duration(r, "drain_timeout", "30s")?,
            keep_previous: duration(r, "keep_previous", "1h")?,
            keep_images: r.get("keep_images").as_i64().unwrap_or(3).max(1) as usize,
            batch: r.get("batch").as_i64().unwrap_or(1).max(1) as usize,
        })
    }

    /// The one service behind the proxy, if any.
    pub fn proxied(&self) -> Option<(&str, &Container)> {
        self.services
            .iter()
            .find(|(_, c)| c.port.is_some())
            .map(|(k, c)| (k.as_str(), c))
    }
}

/// The rollout the engine drives a host app with: blue/green is the engine's blue/green with
/// no pre-traffic bake (nothing but the new colour's own health can be judged before the
/// switch) and the app's `bake` after it; recreate is the engine's in-place deploy.
pub fn rollout_spec(p: &Value) -> Result<RolloutSpec, String> {
    let r = p.get("rollout");
    let recreate = text(r, "strategy").as_deref() == Some("recreate");
    let gate = r.get("health").get("http");
    let http = match gate {
        Value::Null => None,
        g => Some(HttpGate {
            url: text(g, "path").unwrap_or_else(|| "/".into()),
            expect_status: g.get("expect_status").as_i64().unwrap_or(200) as u16,
            timeout: duration(g, "timeout", "2s")?,
            failures: g.get("failures").as_i64().unwrap_or(2).max(1) as u32,
            on_fail: OnFail::Rollback,
        }),
    };
    let hooks = |stage: &str| -> Result<Vec<Hook>, String> {
        r.get("hooks")
            .get(stage)
            .as_list()
            .unwrap_or_default()
            .iter()
            .map(|h| {
                Ok(Hook {
                    run: strings(h.get("run")),
                    container: text(h, "service"),
                    timeout: duration(h, "timeout", "5m")?,
                    per_host: h.get("per_host").as_bool() == Some(true),
                })
            })
            .collect()
    };
    // The new colour's deadline: the longest of its services' health timeouts.
    let mut ready_timeout = Duration::ZERO;
    for s in p
        .get("services")
        .as_map()
        .cloned()
        .unwrap_or_default()
        .values()
        .filter(|s| !s.get("health").is_null())
    {
        ready_timeout = ready_timeout.max(duration(s.get("health"), "timeout", "30s")?);
    }
    if ready_timeout.is_zero() {
        ready_timeout = Duration::from_secs(30);
    }
    let bake = duration(r, "bake", "1m")?;
    Ok(RolloutSpec {
        strategy: if recreate {
            Strategy::Rolling
        } else {
            Strategy::BlueGreen
        },
        ready_timeout,
        on_timeout: OnTimeout::Rollback,
        wait: true,
        steps: if recreate {
            vec![100]
        } else {
            batch_steps(
                p.get("hosts").as_list().map(|h| h.len()).unwrap_or(1),
                r.get("batch").as_i64().unwrap_or(1).max(1) as usize,
            )
        },
        pauses: Vec::new(),
        pause_timeout: Duration::from_secs(24 * 3600),
        bake: Duration::ZERO,
        interval: duration(r, "interval", "10s")?.max(Duration::from_millis(100)),
        termination_wait: bake,
        listener_arn: String::new(),
        target_groups: Vec::new(),
        test_listener_arn: None,
        health: Health {
            http,
            ..Health::default()
        },
        max_run_rate_increase: None,
        webhook: None,
        hooks: Hooks {
            pre_traffic: hooks("pre_traffic")?,
            post_traffic: hooks("post_traffic")?,
            on_rollback: hooks("on_rollback")?,
        },
    })
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
    use super::batch_steps;

    #[test]
    fn batches_switch_a_growing_share_of_hosts_ending_at_all() {
        assert_eq!(batch_steps(1, 1), [100]);
        assert_eq!(batch_steps(2, 1), [50, 100]);
        assert_eq!(batch_steps(2, 5), [100]);
        assert_eq!(batch_steps(3, 1), [34, 67, 100]);
        assert_eq!(batch_steps(5, 2), [40, 80, 100]);
    }
}
