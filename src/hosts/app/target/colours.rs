//! The colours on a host: starting a service's new colour (or an accessory in place),
//! stopping, pruning images, removing colours stopped longer than `keep_previous`, and the
//! port a colour gets.

use super::*;

/// Names of `containers` with each one after what it depends on (`depends_on` is acyclic:
/// the loader refuses a cycle; one left by a hand-edited row keeps name order).
pub(super) fn dependency_order(containers: &BTreeMap<Name, Container>) -> Vec<&Name> {
    let mut order: Vec<&Name> = Vec::new();
    let mut left: Vec<&Name> = containers.keys().collect();
    while !left.is_empty() {
        let ready: Vec<&Name> = left
            .iter()
            .copied()
            .filter(|n| {
                containers[*n]
                    .depends_on
                    .keys()
                    .all(|d| !containers.contains_key(d) || order.contains(&d))
            })
            .collect();
        let next = if ready.is_empty() {
            vec![left[0]]
        } else {
            ready
        };
        left.retain(|n| !next.contains(n));
        order.extend(next);
    }
    order
}

/// A port for (app, colour) in 20000-29999, past `taken`.
pub(super) fn allocate(app: &Name, colour: Colour, taken: &[u16]) -> u16 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{app}/{}", colour.as_str()).as_bytes());
    let mut port = 20_000 + (u16::from_be_bytes([h[0], h[1]]) % 10_000);
    while taken.contains(&port) {
        port = if port >= 29_999 { 20_000 } else { port + 1 };
    }
    port
}

/// Where one replica of a service runs: its colour, its number (from 1) and its host port
/// (0 for a service without a port).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    /// The colour.
    pub colour: Colour,
    /// The replica's number.
    pub replica: u16,
    /// Its host port.
    pub port: u16,
}

impl HostTarget<'_> {
    /// Removes the finished jobs of `colour` on `host` (an earlier deploy's), so this deploy
    /// runs each again; one still running is left to finish (a resumed run's).
    pub(super) async fn remove_finished_jobs(
        &self,
        host: &Host,
        colour: Colour,
    ) -> Result<(), TargetError> {
        let jobs: Vec<&Name> = self
            .app
            .services
            .iter()
            .filter(|(_, c)| c.job)
            .map(|(s, _)| s)
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        for l in host.containers(&self.app.name).await.map_err(call)? {
            if l.role == "service"
                && l.colour == Some(colour)
                && l.state != "running"
                && jobs.iter().any(|j| j.as_str() == l.service)
            {
                host.remove_container(&l.name).await.map_err(call)?;
            }
        }
        Ok(())
    }

    /// Starts `service`'s replica at `slot` (reusing a running one with the same settings,
    /// which a killed run may have left): whether it started one now.
    pub(super) async fn start_service(
        &self,
        host: &Host,
        listed: &[Listed],
        service: &Name,
        c: &Container,
        slot: Slot,
    ) -> Result<bool, TargetError> {
        let Slot {
            colour,
            replica,
            port,
        } = slot;
        let name = docker::replica_name(&self.app.name, service, colour, replica);
        // A job that ran (or runs) in this deploy is not started again: its exit is its result.
        if listed.iter().any(|l| {
            l.name == name
                && docker::runs(&l.config, c)
                && (l.state == "running" || (c.job && l.state == "exited"))
                && (c.port.is_none() || l.port == Some(port))
        }) {
            return Ok(false);
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
                restart: !c.job,
                alias: Some(format!("{service}-{}", colour.as_str())),
                command: None,
                env: self.env_of(c).await?,
                files: self.put_files(host, &name, c).await?,
            },
        );
        host.run_container(&name, &body).await.map_err(call)?;
        // Workers reach the live web service by its name on the live network; a web colour
        // joins it at its switch (`move_live_name`).
        if c.port.is_none() {
            host.connect(&docker::live_network(&self.app.name), &name, &[])
                .await
                .map_err(call)?;
        }
        Ok(true)
    }

    /// What `c` still waits for on `host` before it may start (`None`: nothing): a
    /// dependency not running yet (`service_started`), or whose Docker healthcheck has not
    /// passed yet (`service_healthy`). `started` are containers this pass started.
    pub(super) async fn waiting_for(
        &self,
        host: &Host,
        listed: &[Listed],
        started: &[ContainerName],
        c: &Container,
        colour: Colour,
    ) -> Result<Option<String>, TargetError> {
        for (dep, condition) in &c.depends_on {
            let (name, container) = match self.app.accessories.get(dep) {
                Some(a) => (docker::accessory_name(&self.app.name, dep), a),
                None => match self.app.services.get(dep) {
                    Some(s) => (docker::service_name(&self.app.name, dep, colour), s),
                    None => continue,
                },
            };
            if *condition == Condition::Completed {
                if started.contains(&name) {
                    return Ok(Some(format!("{dep} to complete")));
                }
                match self.health_of(host, &name, container, 0).await? {
                    Readiness::Ready(_) => continue,
                    Readiness::Failed(why) => return Err(TargetError::StepFailed(why)),
                    Readiness::Pending(_) => return Ok(Some(format!("{dep} to complete"))),
                }
            }
            let running = started.contains(&name)
                || listed
                    .iter()
                    .any(|l| l.name == name && l.state == "running");
            if !running {
                return Ok(Some(format!("{dep} to start")));
            }
            if *condition == Condition::Healthy
                && matches!(container.check, Check::Command(_))
                && !started.contains(&name)
            {
                match self.health_of(host, &name, container, 0).await? {
                    Readiness::Ready(_) => {}
                    Readiness::Failed(why) => return Err(TargetError::StepFailed(why)),
                    _ => return Ok(Some(format!("{dep} to be healthy"))),
                }
            } else if *condition == Condition::Healthy && started.contains(&name) {
                return Ok(Some(format!("{dep} to be healthy")));
            }
        }
        Ok(None)
    }

    /// Starts what may start now, in `depends_on` order: the accessories, then `services` of
    /// `colour`. Returns what the first one left waiting waits for (`None`: all started).
    pub(super) async fn start_in_order(
        &self,
        host: &Host,
        services: &[(&Name, &Container)],
        step: &HostStep,
    ) -> Result<Option<String>, TargetError> {
        let colour = step.new;
        let listed = host.containers(&self.app.name).await.map_err(call)?;
        let (mut started, mut waiting) = self.accessories(host, &listed).await?;
        for (s, c, k) in super::replicas(services) {
            match self.waiting_for(host, &listed, &started, c, colour).await? {
                None => {
                    let slot = Slot {
                        colour,
                        replica: k,
                        port: step.port_of(s, k),
                    };
                    if self.start_service(host, &listed, s, c, slot).await? {
                        started.push(docker::replica_name(&self.app.name, s, colour, k));
                    }
                }
                Some(w) => {
                    waiting.get_or_insert(format!("{s} waits for {w}"));
                }
            }
        }
        Ok(waiting)
    }

    /// Starts the accessories that are missing, stopped or changed (replaced in place: never
    /// two of one), in `depends_on` order, each once what it depends on is up. Returns the
    /// containers started and what the first one left waiting waits for.
    pub(super) async fn accessories(
        &self,
        host: &Host,
        listed: &[Listed],
    ) -> Result<(Vec<ContainerName>, Option<String>), TargetError> {
        let mut started = Vec::new();
        let mut waiting = None;
        for name in dependency_order(&self.app.accessories) {
            let c = &self.app.accessories[name];
            let cname = docker::accessory_name(&self.app.name, name);
            if listed
                .iter()
                .any(|l| l.name == cname && docker::runs(&l.config, c) && l.state == "running")
            {
                continue;
            }
            if let Some(w) = self
                .waiting_for(host, listed, &started, c, Colour::Blue)
                .await?
            {
                waiting.get_or_insert(format!("{name} waits for {w}"));
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
                    files: self.put_files(host, &cname, c).await?,
                },
            );
            if listed.iter().any(|l| l.name == cname) {
                host.replace_container(&cname, &body).await.map_err(call)?;
            } else {
                host.run_container(&cname, &body).await.map_err(call)?;
            }
            host.connect(&docker::live_network(&self.app.name), &cname, &[])
                .await
                .map_err(call)?;
            started.push(cname);
        }
        Ok((started, waiting))
    }

    /// Stops what the files no longer name, once a rollout succeeded: a removed service's
    /// colours (removed later with the app's other stopped colours) and a removed accessory's
    /// container (removed; its named volumes kept, as `docker compose down` keeps them).
    pub(super) async fn remove_orphans(&self, host: &Host) -> Result<(), TargetError> {
        let listed = host.containers(&self.app.name).await.map_err(call)?;
        let orphans: Vec<&Listed> = listed
            .iter()
            .filter(|l| match l.role.as_str() {
                "service" => !self.app.services.keys().any(|s| s.as_str() == l.service),
                "accessory" => !self.app.accessories.keys().any(|a| a.as_str() == l.service),
                _ => false,
            })
            .collect();
        let running: Vec<ContainerName> = orphans
            .iter()
            .filter(|l| l.state == "running")
            .map(|l| l.name.clone())
            .collect();
        self.stop(host, &running).await?;
        for l in orphans.iter().filter(|l| l.role == "accessory") {
            host.remove_container(&l.name).await.map_err(call)?;
        }
        Ok(())
    }

    /// Stops `names`, each as `docker stop` does: its stop signal, then its own grace period
    /// (`stop_grace_period`, 10 s when it has none).
    pub(super) async fn stop(
        &self,
        host: &Host,
        names: &[ContainerName],
    ) -> Result<(), TargetError> {
        if names.is_empty() {
            return Ok(());
        }
        host.sh(
            "docker stop",
            &format!(
                "docker stop -- {} >/dev/null 2>&1 || true",
                docker::join(names)
            ),
            None,
        )
        .await
        .map_err(call)
        .map(|_| ())
    }

    /// The containers of `services` in `colour` on `host`: every replica the files ask for,
    /// and any other replica of theirs running there (left by a larger `replicas` before).
    pub(super) async fn colour_names(
        &self,
        host: &Host,
        colour: Colour,
        services: &[(&Name, &Container)],
    ) -> Result<Vec<ContainerName>, TargetError> {
        let mut names: Vec<ContainerName> = super::replicas(services)
            .into_iter()
            .map(|(s, _, k)| docker::replica_name(&self.app.name, s, colour, k))
            .collect();
        for l in host.containers(&self.app.name).await.map_err(call)? {
            if l.role == "service"
                && l.colour == Some(colour)
                && services.iter().any(|(s, _)| s.as_str() == l.service)
                && !names.contains(&l.name)
            {
                names.push(l.name);
            }
        }
        Ok(names)
    }

    /// Removes the app's images beyond the newest `keep_images` per repository; an image a
    /// container uses (a live or kept colour, an accessory) keeps its tag.
    pub(super) async fn prune_images(&self, host: &Host) {
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
            // An image any container still uses keeps its tag, even when other tags name it
            // too (Docker would untag it, and the live colour would run an untagged image).
            let script = format!(
                "used=$(docker ps -aq | xargs -r docker inspect -f '{{{{.Image}}}}' 2>/dev/null)\n\
                 docker images --no-trunc --format '{{{{.Repository}}}}:{{{{.Tag}}}} {{{{.ID}}}}' -- {} | tail -n +{} | while read -r ref id; do\n\
                 case \"$used\" in *\"$id\"*) continue ;; esac\n\
                 docker rmi -- \"$ref\" >/dev/null 2>&1 || true\n\
                 done\n",
                quote(&repo),
                self.app.keep_images + 1
            );
            let _ = host.sh("prune images", &script, None).await;
        }
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
        super::files::remove_files(&app.name, host, &removed).await;
        Ok(removed)
    }
}
