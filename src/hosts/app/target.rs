//! Containers on hosts behind nginx as a rollout [`Target`]: a colour (`blue`, `green`) per
//! deploy beside the live one, health through an SSH tunnel, the switch in converge's nginx
//! file (checked with `nginx -t`, counted once new workers run), the old colour drained and
//! stopped. What a step learns per host (colours, ports) is kept in the record's `target`, so
//! a killed run resumes with the same colour and port and starts nothing twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::docker::{self, Colour, ContainerName, quote};
use super::host::{Host, Listed};
use super::nginx;
use super::spec::{AppSpec, Check, Container, RegistryAuth, SecretSource};
use crate::model::Value;
use crate::model::grammar::{ImageRef, Name, ServerName, UrlPath};
use crate::model::secret::{Masker, Secret};
use crate::providers::{Applied, ProviderError};
use crate::rollout::engine::{Probe, ProbeResult};
use crate::rollout::record::Rollout;
use crate::rollout::spec::{Hook, HookStage, RolloutSpec};
use crate::rollout::target::{Readiness, Target, TargetError};

/// What the rollout keeps per host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStep {
    /// `address:port`.
    pub host: String,
    /// The live colour before this rollout (`None`: the first deploy).
    pub old: Option<String>,
    /// The colour being deployed.
    pub new: String,
    /// The old colour's host port.
    pub old_port: Option<u16>,
    /// The new colour's host port.
    pub port: u16,
}

impl HostStep {
    /// The old colour (none on a first deploy) and the new one, or why the record cannot say.
    pub fn colours(&self) -> Result<(Option<Colour>, Colour), TargetError> {
        let old = self.old.as_deref().map(colour).transpose()?;
        Ok((old, colour(&self.new)?))
    }
}

/// The record's `target` for a host app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// Per host, in file order.
    pub hosts: Vec<HostStep>,
    /// recreate: seconds nothing served (old stopped → new switched), per host.
    #[serde(default)]
    pub downtime: Vec<f64>,
}

/// A host app under a rollout.
pub struct HostTarget<'a> {
    app: AppSpec,
    /// Secrets Manager, for secrets given as `${S.arn}` (`None`: no AWS in this environment).
    aws: Option<&'a crate::providers::aws::AwsProvider>,
    spec: RolloutSpec,
    /// How this command reaches hosts.
    options: super::HostOptions,
    open: tokio::sync::Mutex<BTreeMap<usize, Arc<Host>>>,
    /// nginx's workers before the switch, per host index (drain waits for them to exit).
    old_workers: std::sync::Mutex<BTreeMap<usize, (Vec<u32>, Instant)>>,
    /// recreate: when the old colour stopped, per host index.
    stopped_at: std::sync::Mutex<BTreeMap<usize, Instant>>,
    /// recreate: seconds nothing served, per host index switched in this run.
    downtime: std::sync::Mutex<BTreeMap<usize, f64>>,
    /// Texts masked in what containers print: the app's sensitive values, and secret values
    /// read from Secrets Manager once read.
    secrets: std::sync::Mutex<Masker>,
    /// Hosts whose first-contact checks passed in this run.
    checked: tokio::sync::Mutex<std::collections::BTreeSet<usize>>,
    /// Whether every Secrets Manager value of the app has been read (and is masked).
    learned: std::sync::atomic::AtomicBool,
}

fn call(e: ProviderError) -> TargetError {
    TargetError::Call(e)
}

/// A colour a record or a host gave back, or a refusal naming it (never a default).
fn colour(text: &str) -> Result<Colour, TargetError> {
    Colour::parse(text).ok_or_else(|| {
        TargetError::Unsupported(format!(
            "`{}` is not a colour (blue or green): the rollout record is not one converge wrote",
            crate::model::grammar::escape_controls(text)
        ))
    })
}

/// What to mask in whatever an app's containers print: its sensitive values from the files and
/// the Secrets Manager values it uses (read now: `converge logs` and a resumed rollout need
/// them before anything else reads them).
pub async fn masker_for(
    app: &AppSpec,
    desired: &Value,
    registry: &crate::providers::Registry,
) -> Result<Masker, ProviderError> {
    let mut masker = Masker::new(desired.sensitive_texts());
    for s in app.secret_values() {
        masker.add(&s);
    }
    for c in app.services.values().chain(app.accessories.values()) {
        for source in c.secrets.values() {
            if let SecretSource::SecretsManager { arn, version } = source {
                let aws = registry
                    .aws()
                    .ok_or_else(|| ProviderError::NotConfigured("aws".into()))?;
                masker.add(&aws.secrets().value(arn, version.as_deref()).await?);
            }
        }
    }
    Ok(masker)
}

/// A port for (app, colour) in 20000-29999, past `taken`.
fn allocate(app: &Name, colour: Colour, taken: &[u16]) -> u16 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{app}/{}", colour.as_str()).as_bytes());
    let mut port = 20_000 + (u16::from_be_bytes([h[0], h[1]]) % 10_000);
    while taken.contains(&port) {
        port = if port >= 29_999 { 20_000 } else { port + 1 };
    }
    port
}

impl<'a> HostTarget<'a> {
    /// The target for app `app` at `address`, with its rollout `spec`.
    pub fn new(
        app: AppSpec,
        spec: RolloutSpec,
        options: super::HostOptions,
        desired: &Value,
        aws: Option<&'a crate::providers::aws::AwsProvider>,
    ) -> HostTarget<'a> {
        HostTarget {
            app,
            aws,
            spec,
            options,
            open: Default::default(),
            old_workers: Default::default(),
            stopped_at: Default::default(),
            downtime: Default::default(),
            secrets: std::sync::Mutex::new(Masker::new(desired.sensitive_texts())),
            checked: Default::default(),
            learned: Default::default(),
        }
    }

    /// Reads every Secrets Manager value the app uses, for masking, before anything runs (a
    /// resumed rollout may never read them again itself).
    pub async fn learn_secrets(&self) -> Result<(), TargetError> {
        for c in self
            .app
            .services
            .values()
            .chain(self.app.accessories.values())
        {
            for source in c.secrets.values() {
                self.secret_value(source).await?;
            }
        }
        Ok(())
    }

    async fn host(&self, i: usize) -> Result<Arc<Host>, TargetError> {
        let mut open = self.open.lock().await;
        if let Some(h) = open.get(&i) {
            return Ok(h.clone());
        }
        let target = self
            .app
            .hosts
            .get(i)
            .ok_or_else(|| TargetError::Unsupported(format!("no host {i}")))?;
        let h = Arc::new(
            Host::open(&self.app, target, &self.options)
                .await
                .map_err(call)?,
        );
        open.insert(i, h.clone());
        drop(open);
        let mut checked = self.checked.lock().await;
        if checked.insert(i)
            && let Err(e) =
                crate::hosts::preflight::check(&h.session, &target.user, &self.app.nginx).await
        {
            checked.remove(&i);
            return Err(TargetError::StepFailed(e.to_string()));
        }
        Ok(h)
    }

    /// ECR's docker login for this pull: a token minted under the app's `role_arn` with a
    /// session policy allowing only pulls from the app's repositories (valid 12 hours; given to
    /// the host over stdin and gone with its throw-away DOCKER_CONFIG).
    async fn ecr_login(&self, role_arn: &str) -> Result<(String, Secret), TargetError> {
        let aws = self.aws.ok_or_else(|| {
            TargetError::Unsupported(
                "registry.auth.ecr needs `providers.aws` in the environment".into(),
            )
        })?;
        let repositories: Vec<String> = self
            .images()
            .iter()
            .map(|i| i.repository().to_string())
            .collect();
        let (user, password) = aws
            .ecr_pull()
            .token(role_arn, &repositories)
            .await
            .map_err(call)?;
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(password.expose());
        Ok((user, password))
    }

    /// Every image the app runs, once each.
    fn images(&self) -> Vec<ImageRef> {
        let mut images: Vec<ImageRef> = self
            .app
            .services
            .values()
            .chain(self.app.accessories.values())
            .map(|c| c.image.clone())
            .collect();
        images.sort();
        images.dedup();
        images
    }

    /// The masker of what containers print: the app's sensitive values and every Secrets
    /// Manager value it uses (read first if this run has not yet, as after a resume: a
    /// container may print a secret the run never had to read itself).
    async fn masker(&self) -> Masker {
        if !self.learned.load(std::sync::atomic::Ordering::Relaxed) {
            match self.learn_secrets().await {
                Ok(()) => self
                    .learned
                    .store(true, std::sync::atomic::Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!("cannot read the app's Secrets Manager values to mask them: {e}")
                }
            }
        }
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A secret's value: as the files give it, or read from Secrets Manager now (the version
    /// converge pinned) and added to what is masked.
    async fn secret_value(&self, source: &SecretSource) -> Result<Secret, TargetError> {
        match source {
            SecretSource::Value(v) => Ok(v.clone()),
            SecretSource::SecretsManager { arn, version } => {
                let aws = self.aws.ok_or_else(|| {
                    TargetError::Unsupported(format!(
                        "a secret names the Secrets Manager secret {arn}, and the environment has no `providers.aws`"
                    ))
                })?;
                let value = aws
                    .secrets()
                    .value(arn, version.as_deref())
                    .await
                    .map_err(call)?;
                self.secrets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(&value);
                Ok(Secret::new(value))
            }
        }
    }

    /// `c`'s environment as Docker takes it (`NAME=value`, secrets resolved): data in the
    /// Engine API body, never a shell's input.
    async fn env_of(&self, c: &Container) -> Result<Vec<String>, TargetError> {
        let mut out: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, source) in &c.secrets {
            let value = self.secret_value(source).await?;
            out.push(format!("{k}={}", value.expose()));
        }
        Ok(out)
    }

    /// The record's host part, or the reason it cannot be read (never a default: a record
    /// that does not decode must not read as "no host touched").
    fn record(rec: &Rollout) -> Result<HostRecord, TargetError> {
        serde_json::from_value(rec.target.clone()).map_err(|e| {
            TargetError::Unsupported(format!(
                "the rollout record's host part cannot be read ({e}); `converge rollout abort` ends it"
            ))
        })
    }

    /// Services this strategy starts with the new colour before the switch (blue/green: the
    /// one behind the proxy; recreate: all of them, at the deploy step).
    fn early(&self) -> Vec<(&Name, &Container)> {
        self.app
            .services
            .iter()
            .filter(|(_, c)| c.port.is_some())
            .collect()
    }

    fn late(&self) -> Vec<(&Name, &Container)> {
        self.app
            .services
            .iter()
            .filter(|(_, c)| c.port.is_none())
            .collect()
    }

    /// Starts `service`'s container of `colour` (reusing a running one with the same settings,
    /// which a killed run may have left).
    async fn start_service(
        &self,
        host: &Host,
        listed: &[Listed],
        service: &Name,
        c: &Container,
        colour: Colour,
        port: u16,
    ) -> Result<(), TargetError> {
        let name = docker::service_name(&self.app.name, service, colour);
        if listed.iter().any(|l| {
            l.name == name
                && docker::runs(&l.config, c)
                && l.state == "running"
                && (c.port.is_none() || l.port == Some(port))
        }) {
            return Ok(());
        }
        let mut labels = vec![
            ("converge.role", "service".to_string()),
            ("converge.service", service.to_string()),
            ("converge.colour", colour.as_str().to_string()),
        ];
        if c.port.is_some() {
            labels.push(("converge.port", port.to_string()));
        }
        let body = docker::create_body(
            c,
            &docker::Run {
                app: &self.app.name,
                labels,
                publish: c.port.map(|_| port),
                restart: true,
                alias: Some(format!("{service}-{}", colour.as_str())),
                command: None,
                env: self.env_of(c).await?,
            },
        );
        host.run_container(&name, &body).await.map_err(call)
    }

    /// Starts the accessories that are missing, stopped or changed (replaced in place: never
    /// two of one).
    async fn accessories(&self, host: &Host, listed: &[Listed]) -> Result<(), TargetError> {
        for (name, c) in &self.app.accessories {
            let cname = docker::accessory_name(&self.app.name, name);
            if listed
                .iter()
                .any(|l| l.name == cname && docker::runs(&l.config, c) && l.state == "running")
            {
                continue;
            }
            let body = docker::create_body(
                c,
                &docker::Run {
                    app: &self.app.name,
                    labels: vec![
                        ("converge.role", "accessory".into()),
                        ("converge.service", name.to_string()),
                    ],
                    publish: None,
                    restart: true,
                    alias: Some(name.to_string()),
                    command: None,
                    env: self.env_of(c).await?,
                },
            );
            host.run_container(&cname, &body).await.map_err(call)?;
        }
        Ok(())
    }

    /// One look at the health of `service`'s `colour` container on `host`.
    async fn health(
        &self,
        host: &Host,
        service: &Name,
        c: &Container,
        colour: Colour,
        port: u16,
    ) -> Result<Readiness, TargetError> {
        let name = docker::service_name(&self.app.name, service, colour);
        let out = host
            .sh(
                "docker inspect",
                &format!(
                    "docker inspect -f '{{{{.State.Status}}}} {{{{.State.ExitCode}}}} {{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{end}}}}' -- {}",
                    quote(&name)
                ),
                None,
            )
            .await
            .map_err(call)?;
        let f: Vec<&str> = out.split_whitespace().collect();
        let (status, code) = (
            f.first().copied().unwrap_or(""),
            f.get(1).copied().unwrap_or(""),
        );
        if status == "exited" || status == "dead" {
            let logs = host.logs(&name, 50, &self.masker().await).await;
            return Ok(Readiness::Failed(format!(
                "{name} on {} exited with {code}; its last lines:\n{logs}",
                host.label()
            )));
        }
        if status != "running" {
            return Ok(Readiness::Pending(format!("{name} is {status}")));
        }
        let seen = match &c.check {
            Check::Running => Ok(format!("{name} running")),
            Check::Command(_) => match f.get(2).copied() {
                Some("healthy") => Ok(format!("{name} healthy (Docker healthcheck)")),
                other => Err(format!(
                    "{name}: Docker health {}",
                    other.unwrap_or("starting")
                )),
            },
            Check::Tcp => host
                .session
                .tunnel(port, b"", Duration::from_secs(2))
                .await
                .map(|_| format!("{name} accepts connections"))
                .or_else(|e| match e {
                    crate::hosts::ssh::TunnelError::Failed(_) => {
                        Ok(format!("{name} accepts connections"))
                    }
                    e => Err(format!("{name}: {e}")),
                }),
            Check::Http {
                path,
                expect_status,
            } => match http_get(host, port, path, None, Duration::from_secs(2)).await {
                Ok(s) if s == *expect_status => Ok(format!("{name}: GET {path} {s}")),
                Ok(s) => Err(format!(
                    "{name}: GET {path} answered {s}, expected {expect_status}"
                )),
                Err(e) => Err(format!("{name}: GET {path}: {e}")),
            },
        };
        Ok(match seen {
            Ok(s) => Readiness::Ready(s),
            Err(s) => Readiness::Pending(s),
        })
    }

    /// Points converge's nginx file at `colour` on `port` (checked with `nginx -t`; the previous
    /// file is put back on failure) and reloads; counts only once new workers are seen.
    async fn switch(
        &self,
        i: usize,
        host: &Host,
        colour: Colour,
        port: u16,
    ) -> Result<(), TargetError> {
        let before = host.nginx_workers(&self.app).await.map_err(call)?;
        let file = nginx::render(&self.app.name, &self.app.nginx, colour, port);
        let out = host
            .session
            .run(
                &nginx::install_script(&self.app.name, &self.app.nginx),
                Some(file.as_bytes()),
            )
            .await
            .map_err(|e| {
                call(ProviderError::Api {
                    operation: format!("nginx on {}", host.label()),
                    message: e.to_string(),
                })
            })?;
        if !out.success() {
            return Err(TargetError::StepFailed(format!(
                "nginx on {} refused the new file (the previous one is back): {}",
                host.label(),
                out.stderr.trim()
            )));
        }
        self.old_workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(i, (before.clone(), Instant::now()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = host.nginx_workers(&self.app).await.map_err(call)?;
            if now.iter().any(|p| !before.contains(p)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TargetError::StepFailed(format!(
                    "nginx on {} started no new workers within 10s of the reload (the reload failed)",
                    host.label()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until nginx's workers from before the switch have exited, or `drain_timeout`.
    async fn drain(&self, i: usize, host: &Host) {
        let Some((before, since)) = self
            .old_workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&i)
            .cloned()
        else {
            return;
        };
        while since.elapsed() < self.app.drain_timeout {
            let now = host.nginx_workers(&self.app).await.unwrap_or_default();
            if !now.iter().any(|p| before.contains(p)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(&self, host: &Host, names: &[ContainerName]) -> Result<(), TargetError> {
        if names.is_empty() {
            return Ok(());
        }
        host.sh(
            "docker stop",
            &format!(
                "docker stop -t 10 -- {} >/dev/null 2>&1 || true",
                docker::join(names)
            ),
            None,
        )
        .await
        .map_err(call)
        .map(|_| ())
    }

    fn colour_names(&self, colour: Colour, services: &[(&Name, &Container)]) -> Vec<ContainerName> {
        services
            .iter()
            .map(|(s, _)| docker::service_name(&self.app.name, s, colour))
            .collect()
    }

    /// Removes the app's images beyond the newest `keep_images` per repository (images in use
    /// stay: Docker refuses to remove them).
    async fn prune_images(&self, host: &Host) {
        let mut repos: Vec<String> = self
            .app
            .services
            .values()
            .map(|c| c.image.repository().to_string())
            .collect();
        repos.sort();
        repos.dedup();
        for repo in repos {
            let Ok(repo) = ImageRef::try_from(repo.as_str()) else {
                continue;
            };
            let script = format!(
                "docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' -- {} | tail -n +{} | xargs -r docker rmi -- >/dev/null 2>&1 || true",
                quote(&repo),
                self.app.keep_images + 1
            );
            let _ = host.sh("prune images", &script, None).await;
        }
    }

    /// Gets host `i` ready for the new colour: leftovers cleaned, network, registry login and
    /// pull, accessories, and (blue/green) the new colour of the services behind the proxy
    /// started beside the old one.
    async fn prepare(&self, i: usize, step: &HostStep) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        let (old, new) = step.colours()?;
        let keep: Vec<ContainerName> = match old {
            Some(old) => self.colour_names(old, &self.app.services.iter().collect::<Vec<_>>()),
            None => Vec::new(),
        };
        Self::clean(&self.app, &host, &keep).await.map_err(call)?;
        host.ensure_network(&self.app.name).await.map_err(call)?;
        let login = match &self.app.registry {
            Some(r) => match &r.auth {
                RegistryAuth::Ecr { role_arn } => Some(self.ecr_login(role_arn).await?),
                _ => None,
            },
            None => None,
        };
        host.pull(&self.app, &self.images(), login)
            .await
            .map_err(call)?;
        let listed = host.containers(&self.app.name).await.map_err(call)?;
        self.accessories(&host, &listed).await?;
        if !self.app.recreate {
            for (s, c) in self.early() {
                self.start_service(&host, &listed, s, c, new, step.port)
                    .await?;
            }
        }
        Ok(())
    }

    /// Waits (one look per `interval`, until `ready_timeout`) for host `i`'s new colour to be
    /// healthy: a batch after the first is started and checked at its switch.
    async fn await_healthy(
        &self,
        i: usize,
        step: &HostStep,
        services: &[(&Name, &Container)],
    ) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        let (_, new) = step.colours()?;
        let deadline = Instant::now() + self.spec.ready_timeout;
        for (s, c) in services.iter().copied() {
            loop {
                match self.health(&host, s, c, new, step.port).await? {
                    Readiness::Ready(_) => break,
                    Readiness::Failed(why) => return Err(TargetError::StepFailed(why)),
                    // (`health` names the host when the container exited.)
                    Readiness::Pending(why) if Instant::now() >= deadline => {
                        let name = docker::service_name(&self.app.name, s, new);
                        let logs = host.logs(&name, 50, &self.masker().await).await;
                        return Err(TargetError::StepFailed(format!(
                            "not ready on {} after ready_timeout {}: {why}; its last lines:\n{logs}",
                            host.label(),
                            humantime::format_duration(self.spec.ready_timeout)
                        )));
                    }
                    Readiness::Pending(_) => {
                        tokio::time::sleep(self.spec.interval.min(c.check_interval)).await
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the readiness wait of `rec` has no look left after this one.
    fn last_look(&self, rec: &Rollout) -> bool {
        let started = rec
            .ready_started
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        started.is_some_and(|t| {
            let elapsed = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .unwrap_or_default();
            elapsed + self.spec.interval >= self.spec.ready_timeout
        })
    }

    /// recreate: stops host `i`'s old colour and starts the new one.
    async fn recreate_host(&self, i: usize, step: &HostStep) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        self.stopped_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(i)
            .or_insert_with(Instant::now);
        let (old, new) = step.colours()?;
        if let Some(old) = old {
            self.stop(
                &host,
                &self.colour_names(old, &self.app.services.iter().collect::<Vec<_>>()),
            )
            .await?;
        }
        let listed = host.containers(&self.app.name).await.map_err(call)?;
        for (s, c) in &self.app.services {
            self.start_service(&host, &listed, s, c, new, step.port)
                .await?;
        }
        Ok(())
    }

    /// recreate: points host `i`'s nginx at its new colour (unless it already does) and, once
    /// nginx's old workers (which still route to the stopped colour) are gone, records how
    /// long nothing served.
    async fn switch_recreated(&self, i: usize, step: &HostStep) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        let (_, new) = step.colours()?;
        let live = self.live(&host).await?;
        if live == Some(new) {
            return Ok(());
        }
        self.switch(i, &host, new, step.port).await?;
        self.drain(i, &host).await;
        let stopped = self
            .stopped_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&i)
            .copied();
        if let Some(t) = stopped {
            self.downtime
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(i, t.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// recreate: whether a rollback has nothing to do on `host` (a later batch never reached
    /// it): its old colour all running, none of the new one running, nginx on the old.
    async fn untouched(&self, host: &Host, step: &HostStep) -> Result<bool, TargetError> {
        let (Some(old), new) = step.colours()? else {
            return Ok(false);
        };
        let listed = host.containers(&self.app.name).await.map_err(call)?;
        let services = |colour: Colour| {
            listed
                .iter()
                .filter(|l| l.role == "service" && l.colour == Some(colour))
                .collect::<Vec<_>>()
        };
        let live = self.live(host).await?;
        Ok(live == Some(old)
            && services(old).len() == self.app.services.len()
            && services(old).iter().all(|l| l.state == "running")
            && services(new).iter().all(|l| l.state != "running"))
    }

    /// The container name of hook `index` of `stage` in the rollout `rec` (the same on every
    /// host, so a resumed run finds the one it started).
    fn hook_name(&self, rec: &Rollout, stage: HookStage, index: usize) -> ContainerName {
        docker::hook_name(&self.app.name, &rec.id, stage.as_str(), index)
    }

    /// The hosts a hook runs on: the first, or with `per_host` every host the rollout reached
    /// by this stage (pre_traffic: the first batch; later batches run theirs at their switch).
    fn hook_hosts(&self, rec: &Rollout, hook: &Hook, stage: HookStage) -> Vec<usize> {
        if !hook.per_host {
            return vec![0];
        }
        let count = match stage {
            HookStage::PreTraffic => self.started(),
            HookStage::PostTraffic => self.app.hosts.len(),
            HookStage::OnRollback => self.reached(rec),
        };
        (0..count).collect()
    }

    /// Starts hook container `name` on host `i` (unless it exists: a resumed run) with the new
    /// image and the service's environment (secrets included: a hook reads them from there,
    /// never from its command line).
    async fn start_hook_on(
        &self,
        i: usize,
        name: &ContainerName,
        hook: &Hook,
    ) -> Result<(), TargetError> {
        let service = hook.container.clone().unwrap_or_default();
        let (_, c) = self
            .app
            .services
            .iter()
            .find(|(k, _)| k.as_str() == service)
            .ok_or_else(|| {
                TargetError::Unsupported(format!("hook names no service `{service}`"))
            })?;
        let host = self.host(i).await?;
        let exists = host
            .sh(
                "docker inspect",
                &format!(
                    "docker inspect -- {} >/dev/null 2>&1 && echo yes || true",
                    quote(name)
                ),
                None,
            )
            .await
            .map_err(call)?;
        if exists.trim() == "yes" {
            return Ok(());
        }
        // Every hook runs the new image with the new colour's environment (an on_rollback
        // down-migration is the new version's to undo).
        let mut one_off = c.clone();
        one_off.port = None;
        let body = docker::create_body(
            &one_off,
            &docker::Run {
                app: &self.app.name,
                labels: vec![
                    ("converge.role", "hook".into()),
                    ("converge.service", service.clone()),
                ],
                publish: None,
                restart: false,
                alias: None,
                command: Some(hook.run.clone()),
                env: self.env_of(c).await?,
            },
        );
        host.run_container(name, &body).await.map_err(call)
    }

    /// One look at hook container `name` on host `i`: running, exited 0 (removed), or failed
    /// (with its last lines; removed).
    async fn hook_state_on(
        &self,
        i: usize,
        name: &ContainerName,
    ) -> Result<Readiness, TargetError> {
        let host = self.host(i).await?;
        let out = host
            .sh(
                "docker inspect",
                &format!("docker inspect -f '{{{{.State.Status}}}} {{{{.State.ExitCode}}}}' -- {} 2>/dev/null || echo gone", quote(name)),
                None,
            )
            .await
            .map_err(call)?;
        let f: Vec<&str> = out.split_whitespace().collect();
        match (f.first().copied(), f.get(1).copied()) {
            (Some("gone"), _) => Ok(Readiness::Failed(format!(
                "{name} is gone from {}",
                host.label()
            ))),
            (Some("exited"), Some("0")) => {
                let _ = host.remove_container(name).await;
                Ok(Readiness::Ready(format!(
                    "{name} exited 0 on {}",
                    host.label()
                )))
            }
            (Some("exited" | "dead"), code) => {
                let logs = host.logs(name, 50, &self.masker().await).await;
                let _ = host.remove_container(name).await;
                Ok(Readiness::Failed(format!(
                    "{name} on {} exited {}; its last lines:\n{logs}",
                    host.label(),
                    code.unwrap_or("?")
                )))
            }
            (status, _) => Ok(Readiness::Pending(format!(
                "{name} is {} on {}",
                status.unwrap_or("unknown"),
                host.label()
            ))),
        }
    }

    /// A later batch's host `i`: its `per_host` pre_traffic hooks, each run to the end (within
    /// its timeout) before the host is switched.
    async fn per_host_pre_traffic(&self, i: usize, rec: &Rollout) -> Result<(), TargetError> {
        for (index, hook) in self.spec.hooks.pre_traffic.iter().enumerate() {
            if !hook.per_host {
                continue;
            }
            let name = self.hook_name(rec, HookStage::PreTraffic, index);
            self.start_hook_on(i, &name, hook).await?;
            let deadline = Instant::now() + hook.timeout;
            loop {
                match self.hook_state_on(i, &name).await? {
                    Readiness::Ready(_) => break,
                    Readiness::Failed(why) => {
                        return Err(TargetError::StepFailed(format!(
                            "pre_traffic hook {} ({}) failed: {why}",
                            index + 1,
                            hook.run.join(" ")
                        )));
                    }
                    Readiness::Pending(_) if Instant::now() >= deadline => {
                        let host = self.host(i).await?;
                        let _ = host.remove_container(&name).await;
                        return Err(TargetError::StepFailed(format!(
                            "pre_traffic hook {} ({}) on {} timed out after {}; its container was stopped",
                            index + 1,
                            hook.run.join(" "),
                            host.label(),
                            humantime::format_duration(hook.timeout)
                        )));
                    }
                    Readiness::Pending(_) => {
                        tokio::time::sleep(self.spec.interval.min(Duration::from_millis(500))).await
                    }
                }
            }
        }
        Ok(())
    }

    /// The colour converge's nginx file on `host` routes to (`None`: no file, or not ours).
    async fn live(&self, host: &Host) -> Result<Option<Colour>, TargetError> {
        Ok(host
            .nginx_file(&self.app)
            .await
            .map_err(call)?
            .as_deref()
            .and_then(nginx::live_colour))
    }

    /// Hosts in the first batch (the ones the new colour starts on before any switch).
    fn first_batch(&self) -> usize {
        self.app.batch.max(1).min(self.app.hosts.len())
    }

    /// Hosts switched to the new colour at `rec`'s step: none before the switch, one more
    /// batch per step (`[0, 50, 100]` with two hosts, `batch: 1`), all at the last.
    fn switched(&self, rec: &Rollout) -> usize {
        let n = self.app.hosts.len();
        if rec.weights[1] == 0 {
            0
        } else if rec.steps.len() <= 2 {
            n
        } else {
            (rec.step * self.app.batch.max(1)).min(n)
        }
    }

    /// Hosts whose new colour starts before any switch: the first batch (recreate: every
    /// host, replaced batch by batch in its deploy step).
    fn started(&self) -> usize {
        match self.app.recreate {
            true => self.app.hosts.len(),
            false => self.first_batch(),
        }
    }

    /// Hosts this rollout may have touched (a rollback restores these and leaves the rest).
    fn reached(&self, rec: &Rollout) -> usize {
        self.switched(rec).max(self.started())
    }

    /// Removes stopped colours of this app older than `keep_previous`, and hook containers
    /// left behind (run by every deploy and by drift).
    pub async fn clean(
        app: &AppSpec,
        host: &Host,
        keep: &[ContainerName],
    ) -> Result<Vec<ContainerName>, ProviderError> {
        let listed = host.containers(&app.name).await?;
        let mut removed = Vec::new();
        for l in listed
            .iter()
            .filter(|l| l.role == "service" && l.state != "running" && !keep.contains(&l.name))
        {
            let out = host
                .sh(
                    "docker inspect",
                    &format!(
                        "docker inspect -f '{{{{.State.FinishedAt}}}}' -- {}",
                        quote(&l.name)
                    ),
                    None,
                )
                .await?;
            let finished = chrono::DateTime::parse_from_rfc3339(out.trim())
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok();
            let age = finished
                .map(|t| (chrono::Utc::now() - t).to_std().unwrap_or_default())
                .unwrap_or_default();
            if age >= app.keep_previous {
                host.remove_container(&l.name).await?;
                removed.push(l.name.clone());
            }
        }
        Ok(removed)
    }
}

/// Why a GET through the SSH tunnel got no status code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoAnswer(String);

/// GET `path` on the host's 127.0.0.1:`port` through the SSH tunnel: the status code.
/// `Host` is `host_header` (the app's server name through nginx) or `localhost`; both are
/// checked values, and the path a checked request path, so neither can split the request.
pub async fn http_get(
    host: &Host,
    port: u16,
    path: &UrlPath,
    host_header: Option<&ServerName>,
    timeout: Duration,
) -> Result<u16, NoAnswer> {
    let host_header = host_header.map(|h| h.as_str()).unwrap_or("localhost");
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nConnection: close\r\nUser-Agent: converge\r\n\r\n"
    );
    let response = host
        .session
        .tunnel(port, request.as_bytes(), timeout)
        .await
        .map_err(|e| NoAnswer(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| NoAnswer("no HTTP answer".into()))
}

#[async_trait]
impl Target for HostTarget<'_> {
    async fn begin(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        self.learn_secrets().await?;
        let mut record = HostRecord::default();
        for i in 0..self.app.hosts.len() {
            let host = self.host(i).await?;
            let listed = host.containers(&self.app.name).await.map_err(call)?;
            let live = self.live(&host).await?;
            let new = live.map(Colour::other).unwrap_or(Colour::Blue);
            let proxied = self
                .app
                .proxied()
                .map(|(s, _)| s.to_string())
                .unwrap_or_default();
            let port_of = |colour: Colour| {
                listed
                    .iter()
                    .find(|l| {
                        l.service == proxied && l.colour == Some(colour) && l.role == "service"
                    })
                    .and_then(|l| l.port)
            };
            let old_port = live.and_then(port_of);
            let port = match port_of(new) {
                Some(p) => p,
                None => {
                    let mut taken = host.ports_in_use().await.map_err(call)?;
                    taken.extend(old_port);
                    allocate(&self.app.name, new, &taken)
                }
            };
            record.hosts.push(HostStep {
                host: host.label(),
                old: live.map(|c| c.as_str().to_string()),
                new: new.as_str().to_string(),
                old_port,
                port,
            });
        }
        let first = record.hosts.first().cloned().unwrap_or_default();
        rec.old.task_definition = first.old.clone().unwrap_or_default();
        rec.old.task_set = rec.old.task_definition.clone();
        rec.new.task_definition = first.new.clone();
        rec.new.task_set = first.new.clone();
        rec.service = self.app.name.to_string();
        rec.target = serde_json::to_value(&record).map_err(|e| {
            TargetError::Unsupported(format!("the host record cannot be written: {e}"))
        })?;
        Ok(())
    }

    async fn start_revision(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        self.learn_secrets().await?;
        let record = Self::record(rec)?;
        // recreate replaces every host in its deploy step; blue/green starts the first batch
        // here and each later one at its switch.
        let count = self.started();
        for (i, step) in record.hosts.iter().enumerate().take(count) {
            self.prepare(i, step).await?;
        }
        Ok(())
    }

    async fn set_weights(&self, rec: &Rollout, weights: [i32; 2]) -> Result<(), TargetError> {
        if weights[1] == 0 {
            return Ok(());
        }
        let record = Self::record(rec)?;
        for (i, step) in record.hosts.iter().enumerate().take(self.switched(rec)) {
            let host = self.host(i).await?;
            let (old, new) = step.colours()?;
            let live = self.live(&host).await?;
            if live != Some(new) {
                // A later batch: its new colour starts now and must be healthy to switch.
                if i >= self.first_batch() {
                    self.prepare(i, step).await?;
                    self.await_healthy(i, step, &self.early()).await?;
                    self.per_host_pre_traffic(i, rec).await?;
                }
            }
            let listed = host.containers(&self.app.name).await.map_err(call)?;
            // Services without a port: the new colour starts and the old stops at the switch,
            // so no two consumers ever run through a bake.
            for (s, c) in self.late() {
                self.start_service(&host, &listed, s, c, new, 0).await?;
            }
            // Switched by an earlier batch (or before a crash): not reloaded again.
            if live != Some(new) {
                self.switch(i, &host, new, step.port).await?;
            }
            if let Some(old) = old {
                self.stop(&host, &self.colour_names(old, &self.late()))
                    .await?;
            }
        }
        Ok(())
    }

    async fn evaluate(&self, rec: &Rollout) -> Vec<Probe> {
        let Some(gate) = &self.spec.health.http else {
            return Vec::new();
        };
        let path = match UrlPath::try_from(gate.url.as_str()) {
            Ok(p) => p,
            Err(e) => {
                return vec![Probe {
                    gate: "health.http".into(),
                    result: ProbeResult::Fail(format!("health.http.path: {e}")),
                    on_fail: gate.on_fail,
                    threshold: Some(1),
                }];
            }
        };
        if rec.weights[1] == 0 && rec.strategy != "rolling" {
            return Vec::new();
        }
        let mut result = ProbeResult::Pass;
        let probed = match rec.strategy.as_str() {
            "rolling" => self.app.hosts.len(),
            _ => self.switched(rec),
        };
        for i in 0..probed {
            let host = match self.host(i).await {
                Ok(h) => h,
                Err(e) => {
                    result = ProbeResult::Fail(e.to_string());
                    break;
                }
            };
            match http_get(
                &host,
                self.app.nginx.listen,
                &path,
                Some(&self.app.nginx.server_name),
                gate.timeout,
            )
            .await
            {
                Ok(s) if s == gate.expect_status => {}
                Ok(s) => {
                    result = ProbeResult::Fail(format!(
                        "GET {} through nginx on {} answered {s}, expected {}",
                        gate.url,
                        host.label(),
                        gate.expect_status
                    ));
                    break;
                }
                Err(e) => {
                    result = ProbeResult::Fail(format!(
                        "GET {} through nginx on {}: {e}",
                        gate.url,
                        host.label()
                    ));
                    break;
                }
            }
        }
        vec![Probe {
            gate: "health.http".into(),
            result,
            on_fail: gate.on_fail,
            threshold: Some(gate.failures),
        }]
    }

    async fn deploy(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        // recreate, one batch of hosts at a time: each batch but the last is stopped, started,
        // checked and switched here (a failure rolls back the hosts reached); the last one is
        // checked and switched by `ready`. The downtime runs from the stop to the switch.
        let record = Self::record(rec)?;
        let all: Vec<(&Name, &Container)> = self.app.services.iter().collect();
        let n = record.hosts.len();
        let batch = self.app.batch.max(1);
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            for (i, step) in record.hosts.iter().enumerate().take(end).skip(start) {
                self.recreate_host(i, step).await?;
            }
            if end < n {
                for (i, step) in record.hosts.iter().enumerate().take(end).skip(start) {
                    self.await_healthy(i, step, &all).await?;
                    self.switch_recreated(i, step).await?;
                }
            }
        }
        Ok(())
    }

    async fn ready(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        let record = Self::record(rec)?;
        let services: Vec<(&Name, &Container)> = if self.app.recreate {
            self.app.services.iter().collect()
        } else {
            self.early()
        };
        let mut seen = Vec::new();
        let count = self.started();
        for (i, step) in record.hosts.iter().enumerate().take(count) {
            let host = self.host(i).await?;
            let (_, new) = step.colours()?;
            for (s, c) in &services {
                match self.health(&host, s, c, new, step.port).await? {
                    Readiness::Ready(d) => seen.push(d),
                    // The last look before the deadline: what the container printed goes
                    // with the reason.
                    Readiness::Pending(why) if self.last_look(rec) => {
                        let name = docker::service_name(&self.app.name, s, new);
                        let logs = host.logs(&name, 50, &self.masker().await).await;
                        return Ok(Readiness::Pending(format!(
                            "{why} on {}; its last lines:\n{logs}",
                            host.label()
                        )));
                    }
                    Readiness::Pending(why) => {
                        return Ok(Readiness::Pending(format!("{why} on {}", host.label())));
                    }
                    other => return Ok(other),
                }
            }
        }
        if self.app.recreate {
            // Healthy: switch nginx to it now (the hosts an earlier batch switched already
            // are); the downtime ends here.
            for (i, step) in record.hosts.iter().enumerate() {
                if let Err(e) = self.switch_recreated(i, step).await {
                    return match e {
                        TargetError::StepFailed(r) => Ok(Readiness::Failed(r)),
                        e => Err(e),
                    };
                }
            }
            let downtime = self.downtime.lock().unwrap_or_else(|p| p.into_inner());
            if !downtime.is_empty() {
                seen.push(format!(
                    "recreate downtime {}",
                    downtime
                        .values()
                        .map(|d| format!("{d:.2}s"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(Readiness::Ready(seen.join("; ")))
    }

    async fn promote(&self, rec: &Rollout) -> Result<(), TargetError> {
        let record = Self::record(rec)?;
        for (i, step) in record.hosts.iter().enumerate() {
            let host = self.host(i).await?;
            if let (Some(old), _) = step.colours()? {
                self.drain(i, &host).await;
                self.stop(
                    &host,
                    &self.colour_names(old, &self.app.services.iter().collect::<Vec<_>>()),
                )
                .await?;
            }
            self.prune_images(&host).await;
        }
        Ok(())
    }

    async fn restore(&self, rec: &Rollout) -> Result<(), TargetError> {
        let record = Self::record(rec)?;
        // Hosts a later batch never reached are left as they are.
        let reached = self.reached(rec);
        for (i, step) in record.hosts.iter().enumerate().take(reached) {
            let host = self.host(i).await?;
            let all: Vec<(&Name, &Container)> = self.app.services.iter().collect();
            if self.app.recreate && self.untouched(&host, step).await? {
                continue;
            }
            let (old, new) = step.colours()?;
            if let Some(old) = old {
                let names = self.colour_names(old, &all);
                host.sh(
                    "docker start",
                    &format!(
                        "docker start -- {} >/dev/null 2>&1 || true",
                        docker::join(&names)
                    ),
                    None,
                )
                .await
                .map_err(call)?;
                // A colour started again (recreate stopped it) serves only once it is healthy.
                if let (Some((s, c)), Some(port)) = (self.app.proxied(), step.old_port) {
                    let deadline = Instant::now() + c.check_timeout;
                    while Instant::now() < deadline {
                        if let Readiness::Ready(_) = self.health(&host, s, c, old, port).await? {
                            break;
                        }
                        tokio::time::sleep(c.check_interval.min(Duration::from_millis(250))).await;
                    }
                }
            }
            let live = self.live(&host).await?;
            // Switched, or (recreate) its old colour restarted: nginx points at the old colour
            // again with fresh workers (ones from before hold keep-alive connections to the
            // stopped container, which would answer 502 once each).
            if live == Some(new) || self.app.recreate {
                match (old, step.old_port) {
                    (Some(old), Some(port)) => match self.switch(i, &host, old, port).await {
                        Ok(()) | Err(TargetError::StepFailed(_)) => {}
                        Err(e) => return Err(e),
                    },
                    _ => {
                        host.sh(
                            "remove nginx file",
                            &nginx::remove_script(&self.app.name, &self.app.nginx),
                            None,
                        )
                        .await
                        .map_err(call)?;
                    }
                }
            }
            let names = self.colour_names(new, &all);
            host.sh(
                "remove the new colour",
                &format!(
                    "docker rm -f -- {} >/dev/null 2>&1 || true",
                    docker::join(&names)
                ),
                None,
            )
            .await
            .map_err(call)?;
        }
        Ok(())
    }

    async fn start_hook(&self, rec: &mut Rollout, hook: &Hook) -> Result<(), TargetError> {
        let Some(run) = rec.hook.clone() else {
            return Ok(());
        };
        let name = self.hook_name(rec, run.stage, run.index);
        let mut on = Vec::new();
        for i in self.hook_hosts(rec, hook, run.stage) {
            self.start_hook_on(i, &name, hook).await?;
            on.push(self.host(i).await?.label());
        }
        if let Some(h) = &mut rec.hook {
            h.task_arn = format!("{name} on {}", on.join(", "));
        }
        Ok(())
    }

    async fn hook_status(&self, rec: &Rollout, hook: &Hook) -> Result<Readiness, TargetError> {
        let Some(run) = rec.hook.as_ref() else {
            return Ok(Readiness::Failed(
                "the hook's container was not recorded".into(),
            ));
        };
        let name = self.hook_name(rec, run.stage, run.index);
        let mut done = Vec::new();
        for i in self.hook_hosts(rec, hook, run.stage) {
            match self.hook_state_on(i, &name).await? {
                Readiness::Ready(d) => done.push(d),
                other => return Ok(other),
            }
        }
        Ok(Readiness::Ready(done.join("; ")))
    }

    async fn stop_hook(&self, rec: &Rollout) -> Result<(), TargetError> {
        let Some(run) = rec.hook.as_ref() else {
            return Ok(());
        };
        let name = self.hook_name(rec, run.stage, run.index);
        for i in 0..self.reached(rec) {
            let host = self.host(i).await?;
            host.remove_container(&name).await.map_err(call)?;
        }
        Ok(())
    }

    fn applied(&self, rec: &Rollout) -> Applied {
        let record = Self::record(rec).unwrap_or_default();
        let ports: BTreeMap<String, serde_json::Value> = record
            .hosts
            .iter()
            .map(|h| (h.host.clone(), serde_json::json!(h.port)))
            .collect();
        Applied {
            remote_id: self.app.name.to_string(),
            outputs: Value::from_json(&serde_json::json!({
                "colour": record.hosts.first().map(|h| h.new.clone()).unwrap_or_default(),
                "ports": ports,
            })),
        }
    }
}
