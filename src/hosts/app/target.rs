//! Containers on hosts behind nginx as a rollout [`Target`]: a colour (`blue`, `green`) per
//! deploy beside the live one, health through an SSH tunnel, the switch in converge's nginx
//! file (checked with `nginx -t`, counted once new workers run), the old colour drained and
//! stopped. What a step learns per host (colours, ports) is kept in the record's `target`, so
//! a killed run resumes with the same colour and port and starts nothing twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::docker::{self, Colour, ContainerName, quote};
use super::host::{Host, Listed};
use super::nginx;
use super::spec::{AppSpec, Check, Condition, Container, RegistryAuth, SecretSource};
use crate::model::Value;
use crate::model::grammar::{ImageRef, Name, ServerName, UrlPath};
use crate::model::secret::{Masker, Secret};
use crate::providers::{Applied, ProviderError};
use crate::rollout::engine::{Probe, ProbeResult};
use crate::rollout::record::{Phase, Rollout};
use crate::rollout::spec::{Hook, HookStage, RolloutSpec};
use crate::rollout::target::{Readiness, Target, TargetError};

mod backups;
mod batches;
mod colours;
mod files;
mod hooks;
mod proxy;
mod record;
mod secrets;
mod traffic_log;

pub use backups::backup_dir;
pub use record::{HostRecord, HostStep};

use colours::allocate;
pub use proxy::{NoAnswer, http_get};
pub use secrets::masker_for;

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
    /// Per host: when a rollback started its old colour again (its health is awaited from
    /// then, up to `check_timeout`).
    restarting: std::sync::Mutex<BTreeMap<usize, Instant>>,
    /// Per host: nginx's workers before a reload not yet confirmed, and when it was.
    reloads: std::sync::Mutex<BTreeMap<usize, (Vec<u32>, Instant)>>,
    /// Hosts a rollback has switched back to the old colour in this run.
    switched_back: std::sync::Mutex<std::collections::BTreeSet<usize>>,
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
            restarting: Default::default(),
            reloads: Default::default(),
            switched_back: Default::default(),
            stopped_at: Default::default(),
            downtime: Default::default(),
            secrets: std::sync::Mutex::new(Masker::new(desired.sensitive_texts())),
            checked: Default::default(),
            learned: Default::default(),
        }
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

    /// The record's host part, or the reason it cannot be read (never a default: a record
    /// that does not decode must not read as "no host touched").
    /// Each host's step names its web services' ports (see [`HostStep::with_ports_of`]).
    fn record(&self, rec: &Rollout) -> Result<HostRecord, TargetError> {
        let mut record = rec.details::<HostRecord>()?;
        let web = self.app.proxied().map(|(s, _)| s);
        record.hosts = record
            .hosts
            .into_iter()
            .map(|h| h.with_ports_of(web))
            .collect();
        Ok(record)
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

    /// Services without a port, replaced at the switch (jobs are not: they ran before it).
    fn late(&self) -> Vec<(&Name, &Container)> {
        self.app
            .services
            .iter()
            .filter(|(_, c)| c.port.is_none() && !c.job)
            .collect()
    }

    /// What the new colour starts before the switch: the services behind the proxy and the
    /// jobs (which run to completion once per deploy).
    fn before_switch(&self) -> Vec<(&Name, &Container)> {
        self.app
            .services
            .iter()
            .filter(|(_, c)| c.port.is_some() || c.job)
            .collect()
    }
}

/// Each of `services` once per replica, with the replica's number (from 1).
fn replicas<'s>(services: &[(&'s Name, &'s Container)]) -> Vec<(&'s Name, &'s Container, u16)> {
    services
        .iter()
        .flat_map(|(s, c)| (1..=c.replicas.max(1)).map(move |k| (*s, *c, k)))
        .collect()
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
            // Each web service's replica keeps the port its container runs on; one not
            // running yet gets a port no container on the host has. The old colour's ports are
            // those of its replicas that run, whatever their count was.
            let port_of = |name: &ContainerName| {
                listed
                    .iter()
                    .find(|l| &l.name == name && l.role == "service")
                    .and_then(|l| l.port)
            };
            let mut taken: Option<Vec<u16>> = None;
            let (mut ports, mut old_ports) = (nginx::Ports::new(), nginx::Ports::new());
            for (service, _) in self.early() {
                let mut old: Vec<(&ContainerName, u16)> = listed
                    .iter()
                    .filter(|l| {
                        l.role == "service"
                            && l.service == service.as_str()
                            && live.is_some()
                            && l.colour == live
                    })
                    .filter_map(|l| l.port.map(|p| (&l.name, p)))
                    .collect();
                old.sort_by_key(|(name, _)| docker::replica_number(name));
                if !old.is_empty() {
                    old_ports.insert(service.clone(), old.into_iter().map(|(_, p)| p).collect());
                }
            }
            // An app with no web service keeps a port for its first service, as nginx's
            // upstream needs a server (nothing listens there: no route reaches the app).
            let mut web: Vec<(&Name, u16)> = self
                .early()
                .into_iter()
                .map(|(s, c)| (s, c.replicas))
                .collect();
            if web.is_empty() {
                web.extend(self.app.services.keys().next().map(|s| (s, 1)));
            }
            for (service, replicas) in web {
                let mut own = Vec::new();
                for k in 1..=replicas.max(1) {
                    let name = docker::replica_name(&self.app.name, service, new, k);
                    let port = match port_of(&name) {
                        Some(p) => p,
                        None => {
                            if taken.is_none() {
                                let mut t = host.ports_in_use().await.map_err(call)?;
                                t.extend(old_ports.values().flatten());
                                t.extend(ports.values().flatten());
                                taken = Some(t);
                            }
                            let t = taken.as_mut().expect("just filled");
                            let p = allocate(&self.app.name, new, t);
                            t.push(p);
                            p
                        }
                    };
                    own.push(port);
                }
                ports.insert(service.clone(), own);
            }
            let port = ports.values().flatten().next().copied().unwrap_or_default();
            let old_port = old_ports.values().flatten().next().copied();
            let log_offset = self.log_size(&host).await?;
            record.hosts.push(HostStep {
                host: host.label(),
                old: live,
                new,
                old_port,
                port,
                old_ports,
                ports,
                log_offset,
            });
        }
        let first = record.hosts.first();
        rec.old_revision = first
            .and_then(|h| h.old)
            .map_or_else(String::new, |c| c.as_str().to_string());
        rec.new_revision = first.map_or_else(String::new, |h| h.new.as_str().to_string());
        rec.set_details(&record)?;
        Ok(())
    }

    async fn start_revision(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        self.learn_secrets().await?;
        let record = self.record(rec)?;
        // recreate replaces hosts in its deploy steps; blue/green starts the first batch
        // here, and each later one here too when the engine's batch phase asks.
        let hosts = match rec.phase {
            Phase::Batch => self.batch_hosts(rec),
            _ => 0..self.started().min(record.hosts.len()),
        };
        for i in hosts {
            self.prepare(i, &record.hosts[i]).await?;
        }
        Ok(())
    }

    async fn set_weights(
        &self,
        rec: &Rollout,
        weights: [i32; 2],
    ) -> Result<Readiness, TargetError> {
        if weights[1] == 0 {
            return Ok(Readiness::Ready(String::new()));
        }
        let record = self.record(rec)?;
        for (i, step) in record.hosts.iter().enumerate().take(self.switched(rec)) {
            let host = self.host(i).await?;
            let (old, new) = step.colours();
            // A canary step short of 100%: nginx splits requests between both colours (one
            // reload, no container touched); a host without an old colour is switched whole.
            if let (true, Some(old), false) = (
                self.app.canary && weights[1] < 100,
                old,
                step.old_ports.is_empty(),
            ) {
                if self.split_on(&host).await? != Some((new, weights[1])) {
                    let share = |colour, ports, weight| nginx::Share {
                        colour,
                        ports,
                        weight,
                    };
                    self.split(
                        i,
                        &host,
                        share(old, &step.old_ports, weights[0]),
                        share(new, &step.ports, weights[1]),
                    )
                    .await?;
                }
                if let Some(waiting) = self.reload_pending(i, &host).await? {
                    return Ok(Readiness::Pending(waiting));
                }
                continue;
            }
            let live = self.live(&host).await?;
            if live != Some(new) {
                // The engine started this batch and waited for it; a record from before it
                // did (or a container gone since) is checked here once, never waited on.
                for (s, c, k) in replicas(&self.early()) {
                    match self.health(&host, s, c, new, k, step.port_of(s, k)).await? {
                        Readiness::Ready(_) => {}
                        Readiness::Pending(why) | Readiness::Failed(why) => {
                            return Err(TargetError::StepFailed(format!(
                                "not ready at its switch on {}: {why}",
                                host.label()
                            )));
                        }
                    }
                }
            }
            let listed = host.containers(&self.app.name).await.map_err(call)?;
            // Services without a port: the new colour starts and the old stops at the switch,
            // so no two consumers ever run through a bake.
            for (s, c, k) in replicas(&self.late()) {
                let slot = colours::Slot {
                    colour: new,
                    replica: k,
                    port: 0,
                };
                self.start_service(&host, &listed, s, c, slot).await?;
            }
            // Switched by an earlier batch (or before a crash): not reloaded again, and the
            // live name is made sure of (a crash may have come between the two).
            if live != Some(new) {
                self.switch(i, &host, new, &step.ports).await?;
            } else {
                self.move_live_name(&host, new).await?;
            }
            // The switch counts once nginx's new workers are seen: the engine asks again.
            if let Some(waiting) = self.reload_pending(i, &host).await? {
                return Ok(Readiness::Pending(waiting));
            }
            if let Some(old) = old {
                let names = self.colour_names(&host, old, &self.late()).await?;
                self.stop(&host, &names).await?;
            }
        }
        Ok(Readiness::Ready(String::new()))
    }

    async fn evaluate(&self, rec: &Rollout) -> Result<Vec<Probe>, TargetError> {
        let mut probes = self.http_gate(rec).await?;
        probes.extend(self.log_gates(rec).await?);
        Ok(probes)
    }

    async fn deploy(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        // recreate, one batch of hosts at a time: each batch but the last is stopped, started,
        // checked and switched here (a failure rolls back the hosts reached); the last one is
        // checked and switched by `ready`. The downtime runs from the stop to the switch.
        let record = self.record(rec)?;
        for i in self.batch_hosts(rec) {
            self.recreate_host(i, &record.hosts[i]).await?;
        }
        Ok(())
    }

    async fn ready(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        let record = self.record(rec)?;
        let services: Vec<(&Name, &Container)> = if self.app.recreate {
            self.app.services.iter().collect()
        } else {
            self.before_switch()
        };
        let mut seen = Vec::new();
        let hosts = if self.app.recreate || rec.phase == Phase::Batch {
            self.batch_hosts(rec)
        } else {
            0..self.started().min(record.hosts.len())
        };
        for i in hosts.clone() {
            let step = &record.hosts[i];
            let host = self.host(i).await?;
            // What waited for a dependency starts once the dependency is up.
            if self.app.has_dependencies()
                && let Some(waiting) = self.start_in_order(&host, &services, step).await?
            {
                return Ok(Readiness::Pending(format!("{waiting} on {}", host.label())));
            }
            // Accessories first: nothing moves (no hook, no traffic) before the database the
            // new colour needs says it is healthy.
            for (name, c) in &self.app.accessories {
                if !matches!(c.check, Check::Command(_)) {
                    continue;
                }
                let cname = docker::accessory_name(&self.app.name, name);
                match self.health_of(&host, &cname, c, 0).await? {
                    Readiness::Ready(d) => seen.push(d),
                    Readiness::Pending(why) => {
                        return Ok(Readiness::Pending(format!("{why} on {}", host.label())));
                    }
                    other => return Ok(other),
                }
            }
            let (_, new) = step.colours();
            for (s, c, k) in replicas(&services) {
                match self.health(&host, s, c, new, k, step.port_of(s, k)).await? {
                    Readiness::Ready(d) => seen.push(d),
                    // The last look before the deadline: what the container printed goes
                    // with the reason.
                    Readiness::Pending(why) if self.last_look(rec) => {
                        let name = docker::replica_name(&self.app.name, s, new, k);
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
            // Healthy: switch this batch's nginx to it now (an earlier batch's hosts are
            // switched already); the downtime ends here.
            for i in hosts.clone() {
                if let Err(e) = self.switch_recreated(i, &record.hosts[i]).await {
                    return match e {
                        TargetError::StepFailed(r) => Ok(Readiness::Failed(r)),
                        e => Err(e),
                    };
                }
            }
            // Switched once nginx's new workers are seen.
            for i in hosts.clone() {
                match self.reload_pending(i, &*self.host(i).await?).await {
                    Ok(None) => {}
                    Ok(Some(waiting)) => return Ok(Readiness::Pending(waiting)),
                    Err(TargetError::StepFailed(r)) => return Ok(Readiness::Failed(r)),
                    Err(e) => return Err(e),
                }
            }
            // Ready once nginx's old workers (routing to the stopped colour) are gone.
            for i in hosts.clone() {
                if let Some(draining) = self.draining(i, &*self.host(i).await?).await {
                    return Ok(Readiness::Pending(draining));
                }
            }
            // This batch's hosts only: each batch reports its own downtime.
            let downtime = self.downtime.lock().unwrap_or_else(|p| p.into_inner());
            let figures: Vec<String> = downtime
                .iter()
                .filter(|(i, _)| hosts.contains(i))
                .map(|(_, d)| format!("{d:.2}s"))
                .collect();
            if !figures.is_empty() {
                seen.push(format!("recreate downtime {}", figures.join(", ")));
            }
        }
        Ok(Readiness::Ready(seen.join("; ")))
    }

    async fn promote(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        let record = self.record(rec)?;
        // The old colour stops only once nginx's workers from before the switch are gone.
        for (i, step) in record.hosts.iter().enumerate() {
            if step.colours().0.is_some()
                && let Some(draining) = self.draining(i, &*self.host(i).await?).await
            {
                return Ok(Readiness::Pending(draining));
            }
        }
        for (i, step) in record.hosts.iter().enumerate() {
            let host = self.host(i).await?;
            if let (Some(old), _) = step.colours() {
                let all: Vec<(&Name, &Container)> = self.app.services.iter().collect();
                let names = self.colour_names(&host, old, &all).await?;
                self.stop(&host, &names).await?;
            }
            self.remove_orphans(&host).await?;
            self.prune_images(&host).await;
        }
        Ok(Readiness::Ready(String::new()))
    }

    async fn restore(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        let record = self.record(rec)?;
        // Hosts a later batch never reached are left as they are.
        let reached = self.reached(rec);
        for (i, step) in record.hosts.iter().enumerate().take(reached) {
            let host = self.host(i).await?;
            let all: Vec<(&Name, &Container)> = self.app.services.iter().collect();
            if self.app.recreate && self.untouched(&host, step).await? {
                continue;
            }
            let (old, new) = step.colours();
            if let Some(old) = old {
                // The old colour's jobs ran in their own deploy: they do not run again.
                let serving: Vec<(&Name, &Container)> =
                    all.iter().copied().filter(|(_, c)| !c.job).collect();
                let names = self.colour_names(&host, old, &serving).await?;
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
                // A colour started again (recreate stopped it) serves only once it is healthy
                // (or its check_timeout passed): until then the restore is under way, and the
                // engine asks again.
                for (s, c) in self.early() {
                    let ports = step.old_ports_of(s);
                    let since = *self
                        .restarting
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(i)
                        .or_insert_with(Instant::now);
                    for (k, port) in (1..).zip(ports) {
                        if since.elapsed() < c.check_timeout
                            && !matches!(
                                self.health(&host, s, c, old, k, *port).await?,
                                Readiness::Ready(_)
                            )
                        {
                            return Ok(Readiness::Pending(format!(
                                "the old colour is starting again on {}",
                                host.label()
                            )));
                        }
                    }
                }
            }
            // A canary step's split sends some requests to the new colour too.
            let (live, split) = self.routes(&host).await?;
            let split = split.is_some();
            // Switched, or (recreate) its old colour restarted: nginx points at the old colour
            // again with fresh workers (ones from before hold keep-alive connections to the
            // stopped container, which would answer 502 once each).
            // (Switched back already by this restore, its reload awaited: not again.)
            let again = self
                .switched_back
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&i);
            if (live == Some(new) || split || self.app.recreate) && !again {
                match (old, step.old_ports.is_empty()) {
                    (Some(old), false) => match self.switch(i, &host, old, &step.old_ports).await {
                        Ok(()) | Err(TargetError::StepFailed(_)) => {
                            self.switched_back
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(i);
                        }
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
            // Back once nginx's new workers are seen (a reload that shows none is let be: the
            // old colour is what the file names either way).
            match self.reload_pending(i, &host).await {
                Ok(Some(waiting)) => return Ok(Readiness::Pending(waiting)),
                Ok(None) | Err(TargetError::StepFailed(_)) => {}
                Err(e) => return Err(e),
            }
            let names = self.colour_names(&host, new, &all).await?;
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
        Ok(Readiness::Ready(String::new()))
    }

    async fn backup(&self, rec: &mut Rollout) -> Result<Readiness, TargetError> {
        self.take_backups(rec).await
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
            h.run = format!("{name} on {}", on.join(", "));
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

    fn applied(&self, rec: &Rollout) -> Result<Applied, TargetError> {
        let record = self.record(rec)?;
        let ports: BTreeMap<String, serde_json::Value> = record
            .hosts
            .iter()
            .map(|h| (h.host.clone(), serde_json::json!(h.port)))
            .collect();
        Ok(Applied {
            remote_id: self.app.name.to_string(),
            outputs: Value::from_json(&serde_json::json!({
                "colour": record.hosts.first().map_or("", |h| h.new.as_str()),
                "ports": ports,
            })),
        })
    }
}

impl HostTarget<'_> {
    /// `health.http`: one probe through nginx on each host that serves the new colour.
    async fn http_gate(&self, rec: &Rollout) -> Result<Vec<Probe>, TargetError> {
        let Some(gate) = &self.spec.health.http else {
            return Ok(Vec::new());
        };
        let path = match UrlPath::try_from(gate.url.as_str()) {
            Ok(p) => p,
            Err(e) => {
                return Ok(vec![Probe {
                    gate: "health.http".into(),
                    result: ProbeResult::Fail(format!("health.http.path: {e}")),
                    on_fail: gate.on_fail,
                    threshold: Some(1),
                }]);
            }
        };
        if rec.weights[1] == 0 && rec.strategy != "rolling" {
            return Ok(Vec::new());
        }
        let mut result = ProbeResult::Pass(String::new());
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
        Ok(vec![Probe {
            gate: "health.http".into(),
            result,
            on_fail: gate.on_fail,
            threshold: Some(gate.failures),
        }])
    }
}
