//! The `host` provider: reads a host app's live state (drift) and deletes it. Deploys go
//! through the rollout driver with [`super::target::HostTarget`], never through `create` or
//! `update`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;

use super::docker::{self, quote};
use super::host::Host;
use super::nginx;
use super::spec::{AppSpec, Container};
use crate::kinds::{Handler as KindHandler, Kind};
use crate::model::grammar::Name;
use crate::model::{Address, Live, Value};
use crate::providers::kind::{Handler, ReadResult};
use crate::providers::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Provider, ProviderError, ReadItem,
    ReadRequest, ReadResponse, UpdateRequest,
};

/// `host.app`.
pub const KIND: Kind = Kind {
    schema: &super::schema::SCHEMA,
    handler: KindHandler::Host(&HostApp),
    deploy: Some(&super::deploy::HostDeploy),
};

/// How a command reaches hosts: the project root (relative key and known_hosts paths), the
/// host-key policy, and whether stale colours are tidied. The CLI builds it per command and
/// passes it in; the host keys a run accepted come back through [`AcceptedKeys`].
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The project directory.
    pub root: PathBuf,
    /// Record unknown host keys (audited) instead of refusing them.
    pub accept_new: bool,
    /// Remove, while reading, colours stopped longer than `keep_previous` (apply and drift:
    /// the removal a deploy promised, which it never waits for).
    pub tidy: bool,
    /// The host keys recorded under `accept_new`, for the caller to audit.
    pub accepted: AcceptedKeys,
}

/// The host keys a command recorded with `--accept-new-host-keys` (`HOST FINGERPRINTS`),
/// shared by every session the command opens.
#[derive(Debug, Clone, Default)]
pub struct AcceptedKeys(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl AcceptedKeys {
    /// Notes a key recorded in known_hosts.
    pub fn record(&self, key: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(key);
    }

    /// The keys noted since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The provider of `host.*` kinds.
#[derive(Default)]
pub struct HostProvider {
    /// Each host app's `ssh` block as the files give it (state keeps only the key's digest,
    /// and reads need the key).
    ssh: BTreeMap<Address, Value>,
    /// How this command reaches hosts.
    options: HostOptions,
}

impl HostProvider {
    /// A provider that logs in with the `ssh` blocks of `apps` (address → evaluated `ssh`),
    /// as `options` say.
    pub fn new(ssh: BTreeMap<Address, Value>, options: HostOptions) -> HostProvider {
        HostProvider { ssh, options }
    }

    /// How this command reaches hosts.
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// `props` of the app at `address` with the files' `ssh` block in place of one whose key
    /// state kept only as a digest (a rollout run from state alone: a pause that expired).
    pub fn with_login(&self, address: &Address, props: &Value) -> Value {
        let redacted = matches!(props.get("ssh").get("private_key"), Value::Redacted(_));
        match self.ssh.get(address) {
            Some(ssh) if redacted => props.clone().with_entry("ssh", ssh.clone()),
            _ => props.clone(),
        }
    }

    /// The app of stored properties, with the files' `ssh` block.
    fn app(&self, address: &Address, prior: &Value) -> Result<AppSpec, ProviderError> {
        let mut props = prior.clone();
        if let Some(ssh) = self.ssh.get(address) {
            props = props.with_entry("ssh", ssh.clone());
        }
        AppSpec::from_properties(&props, &self.options.root)
            .map_err(|e| ProviderError::Invalid(format!("{address}: {e}")))
    }
}

fn handler(
    kind: &crate::model::schema::KindSchema,
) -> Result<&'static dyn Handler<HostProvider>, ProviderError> {
    match crate::kinds::find(kind.kind).map(|k| k.handler) {
        Some(KindHandler::Host(h)) => Ok(h),
        _ => Err(ProviderError::UnknownKind {
            provider: "host".into(),
            kind: kind.kind.into(),
        }),
    }
}

#[async_trait]
impl Provider for HostProvider {
    async fn read(&self, request: ReadRequest) -> ReadResponse {
        ReadResponse {
            results: crate::providers::kind::read_by_kind(self, request.items, handler).await,
        }
    }

    fn planned_id(&self, r: &CreateRequest) -> String {
        handler(r.kind)
            .map(|h| h.planned_id(self, r))
            .unwrap_or_default()
    }

    async fn create(&self, r: CreateRequest) -> Result<Applied, ProviderError> {
        handler(r.kind)?.create(self, r).await
    }

    async fn update(&self, r: UpdateRequest) -> Result<Applied, ProviderError> {
        handler(r.kind)?.update(self, r).await
    }

    async fn delete(&self, r: DeleteRequest) -> Result<(), ProviderError> {
        handler(r.kind)?.delete(self, r).await
    }

    async fn import(&self, r: ImportRequest) -> Result<Option<(Applied, Live)>, ProviderError> {
        handler(r.kind)?.import(self, r).await
    }
}

/// `host.app`'s handler.
pub struct HostApp;

/// Marks `path` of `props` with what was seen instead (drift shows the path and the marker).
fn mark(props: Value, path: &[&str], seen: String) -> Value {
    match path {
        [] => Value::str(seen),
        [key, rest @ ..] => {
            let inner = props.get(key).clone();
            props.with_entry(key, mark(inner, rest, seen))
        }
    }
}

/// What runs on one host against what was applied: the stored properties with every
/// difference marked.
async fn read_host(
    app: &AppSpec,
    host: &Host,
    tidy: bool,
    mut live: Value,
) -> Result<Value, ProviderError> {
    let at = host.label();
    let file = host.nginx_file(app).await?;
    let colour = file.as_deref().and_then(nginx::live_colour);
    if tidy {
        // The live colour stays whatever its state (stopped by hand, it is drift to repair).
        let keep: Vec<docker::ContainerName> = colour
            .iter()
            .flat_map(|c| {
                app.services.iter().flat_map(move |(s, spec)| {
                    (1..=spec.replicas.max(1))
                        .map(move |k| docker::replica_name(&app.name, s, *c, k))
                })
            })
            .collect();
        for removed in super::target::HostTarget::clean(app, host, &keep).await? {
            tracing::info!("{removed} on {at} removed: stopped longer than keep_previous");
        }
    }
    let listed = host.containers(&app.name).await?;
    let Some(colour) = colour else {
        return Ok(mark(
            live,
            &["rollout", "proxy", "nginx", "server_name"],
            format!("(no converge nginx file for {} on {at})", app.name),
        ));
    };
    // A job ran to completion in its deploy: not running is what it should be.
    for (name, c) in app.services.iter().filter(|(_, c)| !c.job) {
        for k in 1..=c.replicas.max(1) {
            let cname = docker::replica_name(&app.name, name, colour, k);
            let seen = match listed.iter().find(|l| l.name == cname) {
                None => format!("(no {cname} on {at})"),
                Some(l) if l.state != "running" => format!("({cname} {} on {at})", l.state),
                Some(l) if l.image != c.image.as_str() => {
                    format!("({cname} runs {} on {at})", l.image)
                }
                Some(_) => continue,
            };
            live = mark(live, &["services", name.as_str(), "image"], seen);
            break;
        }
    }
    // The nginx file routes every web service's replicas of the live colour (a replica missing
    // is drift already, marked above).
    let web: Vec<(&Name, &Container)> = app
        .services
        .iter()
        .filter(|(_, c)| c.port.is_some())
        .collect();
    let ports: nginx::Ports = web
        .iter()
        .map(|(s, c)| {
            let ports: Vec<u16> = (1..=c.replicas.max(1))
                .filter_map(|k| {
                    let cname = docker::replica_name(&app.name, s, colour, k);
                    listed.iter().find(|l| l.name == cname)?.port
                })
                .collect();
            ((*s).clone(), ports)
        })
        .collect();
    let complete = web
        .iter()
        .all(|(s, c)| ports.get(*s).map(Vec::len) == Some(usize::from(c.replicas.max(1))));
    if !web.is_empty() && complete {
        let expected = nginx::render(&app.name, &app.nginx, colour, &ports);
        // A canary's step (the live colour and the new one, split by weight) is the
        // rollout's, which its record resumes: not drift.
        let canary_step = file
            .as_deref()
            .is_some_and(|f| nginx::split(f).is_some() && nginx::live_colour(f) == Some(colour));
        // converge's file from before it wrote an access log: the same but for the log
        // lines (the next deploy rewrites it), so an upgrade shows no drift.
        let current = file
            .as_deref()
            .is_some_and(|f| f == expected || f == nginx::without_access_log(&expected));
        if !current && !canary_step {
            live = mark(
                live,
                &["rollout", "proxy", "nginx", "server_name"],
                format!(
                    "(nginx file {} edited on {at})",
                    nginx::path(&app.name, &app.nginx)
                ),
            );
        }
    }
    // Every named volume an accessory keeps its data in must be there (a volume removed by
    // hand is data gone, which an apply cannot bring back: drift says so).
    let named: Vec<(&Name, &str)> = app
        .accessories
        .iter()
        .flat_map(|(n, c)| {
            c.volumes
                .iter()
                .filter(|v| !v.is_bind())
                .map(move |v| (n, v.parts().0))
        })
        .collect();
    if !named.is_empty() {
        let volumes = host.volumes().await?;
        if let Some((name, volume)) = named
            .iter()
            .find(|(_, v)| !volumes.iter().any(|have| have == v))
        {
            live = mark(
                live,
                &["accessories", name.as_str(), "volumes"],
                format!("(volume {volume} missing on {at})"),
            );
        }
    }
    for (name, c) in &app.accessories {
        let cname = docker::accessory_name(&app.name, name);
        match listed.iter().find(|l| l.name == cname) {
            Some(l) if l.state == "running" && l.image == c.image.as_str() => {}
            Some(l) => {
                live = mark(
                    live,
                    &["accessories", name.as_str(), "image"],
                    format!("({cname} {} {} on {at})", l.state, l.image),
                );
            }
            None => {
                live = mark(
                    live,
                    &["accessories", name.as_str(), "image"],
                    format!("(no {cname} on {at})"),
                );
            }
        }
    }
    Ok(live)
}

async fn read_one(p: &HostProvider, item: &ReadItem) -> Result<Option<Live>, ProviderError> {
    let app = p.app(&item.address, &item.prior)?;
    let mut live = item.prior.clone();
    let mut any = false;
    for target in &app.hosts {
        let host = Host::open(&app, target, &p.options).await?;
        let listed = host.containers(&app.name).await?;
        any |= !listed.is_empty();
        live = read_host(&app, &host, p.options.tidy, live).await?;
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(Live {
        properties: live,
        outputs: item.prior_outputs.clone(),
    }))
}

#[async_trait]
impl Handler<HostProvider> for HostApp {
    async fn read(&self, p: &HostProvider, items: Vec<ReadItem>) -> Vec<ReadResult> {
        let reads = items
            .iter()
            .map(|item| async move { (item.address.clone(), read_one(p, item).await) });
        futures::future::join_all(reads).await
    }

    fn planned_id(&self, _p: &HostProvider, r: &CreateRequest) -> String {
        r.properties
            .get("name")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn create(&self, _p: &HostProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "{}: a host app is deployed by its rollout",
            r.address
        )))
    }

    async fn update(&self, _p: &HostProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        // Only the name could differ without a deploy, and it replaces: nothing to do.
        Ok(Applied {
            remote_id: r.remote_id,
            outputs: r.prior_outputs,
        })
    }

    async fn delete(&self, p: &HostProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        let app = p.app(&r.address, &r.prior)?;
        for target in &app.hosts {
            let host = Host::open(&app, target, &p.options).await?;
            for listed in host.containers(&app.name).await? {
                host.remove_container(&listed.name).await?;
            }
            if host.nginx_file(&app).await?.is_some() {
                host.sh(
                    "remove nginx file",
                    &nginx::remove_script(&app.name, &app.nginx),
                    None,
                )
                .await?;
            }
            let mut script = format!(
                "docker network rm -- {} {} >/dev/null 2>&1 || true\n",
                quote(&docker::network(&app.name)),
                quote(&docker::live_network(&app.name))
            );
            // Env files older releases wrote.
            if let Some(dir) = docker::legacy_env_dir(&app.name) {
                script.push_str(&format!("rm -rf -- {} 2>/dev/null || true\n", quote(&dir)));
            }
            host.sh("remove network", &script, None).await?;
        }
        Ok(())
    }

    async fn import(
        &self,
        _p: &HostProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "{}: a host app cannot be imported: apply it, and converge creates its containers",
            r.address
        )))
    }
}
