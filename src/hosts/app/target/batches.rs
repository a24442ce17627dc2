//! Hosts one batch at a time: preparing and checking a batch's new colour, recreate's stop
//! and start, and which hosts a rollout started on, switched and may have touched.

use super::*;

impl HostTarget<'_> {
    /// Gets host `i` ready for the new colour: leftovers cleaned, network, registry login and
    /// pull, accessories, and (blue/green) the new colour of the services behind the proxy
    /// started beside the old one.
    pub(super) async fn prepare(&self, i: usize, step: &HostStep) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        let (old, new) = step.colours();
        let all: Vec<(&Name, &Container)> = self.app.services.iter().collect();
        let keep: Vec<ContainerName> = match old {
            Some(old) => self.colour_names(&host, old, &all).await?,
            None => Vec::new(),
        };
        Self::clean(&self.app, &host, &keep).await.map_err(call)?;
        host.ensure_network(&self.app.name, self.app.uses_live_network())
            .await
            .map_err(call)?;
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
        // What waits for a dependency is started by `ready`, polled by the engine's loop.
        let early = if self.app.recreate {
            Vec::new()
        } else {
            self.before_switch()
        };
        // A job runs once per deploy: one left by an earlier deploy of this colour runs again.
        self.remove_finished_jobs(&host, new).await?;
        self.start_in_order(&host, &early, step).await?;
        Ok(())
    }

    /// The hosts of the batch `rec` is at: blue/green's later batch being started
    /// ([`Phase::Batch`], or its hooks), or recreate's batch being deployed.
    pub(super) fn batch_hosts(&self, rec: &Rollout) -> std::ops::Range<usize> {
        let (n, b) = (self.app.hosts.len(), self.app.batch.max(1));
        let k = match self.app.recreate {
            true => rec.step,
            false => rec.step.saturating_sub(1),
        };
        (k * b).min(n)..((k + 1) * b).min(n)
    }

    /// Whether the readiness wait of `rec` has no look left after this one.
    pub(super) fn last_look(&self, rec: &Rollout) -> bool {
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
    pub(super) async fn recreate_host(&self, i: usize, step: &HostStep) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        self.stopped_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(i)
            .or_insert_with(Instant::now);
        let (old, _) = step.colours();
        if let Some(old) = old {
            let all: Vec<(&Name, &Container)> = self.app.services.iter().collect();
            let names = self.colour_names(&host, old, &all).await?;
            self.stop(&host, &names).await?;
        }
        // What waits for a dependency is started by `ready`, polled by the engine's loop.
        let services: Vec<(&Name, &Container)> = self.app.services.iter().collect();
        self.remove_finished_jobs(&host, step.new).await?;
        self.start_in_order(&host, &services, step).await?;
        Ok(())
    }

    /// recreate: points host `i`'s nginx at its new colour (unless it already does) and records
    /// how long nothing served (from the stop to the switch). nginx's old workers, which still
    /// route to the stopped colour, drain after it: `ready` waits on them through the engine.
    pub(super) async fn switch_recreated(
        &self,
        i: usize,
        step: &HostStep,
    ) -> Result<(), TargetError> {
        let host = self.host(i).await?;
        let (_, new) = step.colours();
        let live = self.live(&host).await?;
        if live == Some(new) {
            return Ok(());
        }
        self.switch(i, &host, new, &step.ports).await?;
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
    pub(super) async fn untouched(
        &self,
        host: &Host,
        step: &HostStep,
    ) -> Result<bool, TargetError> {
        let (Some(old), new) = step.colours() else {
            return Ok(false);
        };
        let listed = host.containers(&self.app.name).await.map_err(call)?;
        // Jobs finish by design: only the serving containers (every replica) count.
        let serving = |service: &str| {
            self.app
                .services
                .iter()
                .any(|(s, c)| s.as_str() == service && !c.job)
        };
        let services = |colour: Colour| {
            listed
                .iter()
                .filter(|l| l.role == "service" && l.colour == Some(colour) && serving(&l.service))
                .collect::<Vec<_>>()
        };
        let expected: usize = self
            .app
            .services
            .values()
            .filter(|c| !c.job)
            .map(|c| usize::from(c.replicas.max(1)))
            .sum();
        let live = self.live(host).await?;
        Ok(live == Some(old)
            && services(old).len() == expected
            && services(old).iter().all(|l| l.state == "running")
            && services(new).iter().all(|l| l.state != "running"))
    }

    /// The colour converge's nginx file on `host` routes to (`None`: no file, or not ours).
    pub(super) async fn live(&self, host: &Host) -> Result<Option<Colour>, TargetError> {
        Ok(host
            .nginx_file(&self.app)
            .await
            .map_err(call)?
            .as_deref()
            .and_then(nginx::live_colour))
    }

    /// Hosts in the first batch (the ones the new colour starts on before any switch).
    pub(super) fn first_batch(&self) -> usize {
        // A canary splits requests on every host at once.
        if self.app.canary {
            return self.app.hosts.len();
        }
        self.app.batch.max(1).min(self.app.hosts.len())
    }

    /// Hosts switched to the new colour at `rec`'s step: none before the switch, one more
    /// batch per step (`[0, 50, 100]` with two hosts, `batch: 1`), all at the last.
    pub(super) fn switched(&self, rec: &Rollout) -> usize {
        let n = self.app.hosts.len();
        if rec.weights[1] == 0 {
            0
        } else if rec.steps.len() <= 2 || self.app.canary {
            n
        } else {
            (rec.step * self.app.batch.max(1)).min(n)
        }
    }

    /// Hosts whose new colour starts before any switch: the first batch (recreate: every
    /// host, replaced batch by batch in its deploy step).
    pub(super) fn started(&self) -> usize {
        match self.app.recreate {
            true => self.app.hosts.len(),
            false => self.first_batch(),
        }
    }

    /// Hosts this rollout may have touched (a rollback restores these and leaves the rest).
    pub(super) fn reached(&self, rec: &Rollout) -> usize {
        self.switched(rec).max(self.started())
    }
}
