//! nginx in front of the colours: health checks through the SSH tunnel, the switch (write,
//! `nginx -t`, reload, new workers seen) and the drain of the old workers.

use super::*;

/// How long a reload has to show new nginx workers.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

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

impl HostTarget<'_> {
    /// One look at the health of replica `replica` of `service`'s `colour` on `host`.
    pub(super) async fn health(
        &self,
        host: &Host,
        service: &Name,
        c: &Container,
        colour: Colour,
        replica: u16,
        port: u16,
    ) -> Result<Readiness, TargetError> {
        let name = docker::replica_name(&self.app.name, service, colour, replica);
        self.health_of(host, &name, c, port).await
    }

    /// One look at the health of container `name` (of settings `c`, its port `port` on the
    /// host's loopback) on `host`.
    pub(super) async fn health_of(
        &self,
        host: &Host,
        name: &ContainerName,
        c: &Container,
        port: u16,
    ) -> Result<Readiness, TargetError> {
        let name = name.clone();
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
        // A job is done once it exited 0; any other exit fails the deploy.
        if c.job && status == "exited" && code == "0" {
            return Ok(Readiness::Ready(format!("{name} completed")));
        }
        if c.job && status == "running" {
            return Ok(Readiness::Pending(format!("{name} is still running")));
        }
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

    /// Points converge's nginx file at `colour`'s web services on `ports` (checked with `nginx -t`; the previous
    /// file is put back on failure) and reloads. It counts only once new workers are seen:
    /// [`reload_pending`](Self::reload_pending) looks, and the engine asks again until then.
    pub(super) async fn switch(
        &self,
        i: usize,
        host: &Host,
        colour: Colour,
        ports: &nginx::Ports,
    ) -> Result<(), TargetError> {
        let file = nginx::render(&self.app.name, &self.app.nginx, colour, ports);
        self.install(i, host, &file).await?;
        self.move_live_name(host, colour).await
    }

    /// Points each web service's name (`web`) on the app's live network at `colour`: the old
    /// colour's alias goes first, so the name never resolves to both colours (for a moment it
    /// resolves to neither, and a client's retry finds the new one).
    pub(super) async fn move_live_name(
        &self,
        host: &Host,
        colour: Colour,
    ) -> Result<(), TargetError> {
        // Only workers and accessories are on the live network: with neither, nobody resolves
        // the name, and a switch costs no more than nginx's reload.
        if !self.app.uses_live_network() {
            return Ok(());
        }
        let live = docker::live_network(&self.app.name);
        let early = self.early();
        for old in self.colour_names(host, colour.other(), &early).await? {
            host.disconnect(&live, &old).await.map_err(call)?;
        }
        for (service, _, k) in super::replicas(&early) {
            let new = docker::replica_name(&self.app.name, service, colour, k);
            host.connect(&live, &new, &[service.as_str()])
                .await
                .map_err(call)?;
        }
        Ok(())
    }

    /// A canary step on host `i`: nginx splits requests between the old and the new colour
    /// by weight (checked, reloaded and counted as [`switch`](Self::switch) is).
    pub(super) async fn split(
        &self,
        i: usize,
        host: &Host,
        old: nginx::Share<'_>,
        new: nginx::Share<'_>,
    ) -> Result<(), TargetError> {
        let file = nginx::render_split(&self.app.name, &self.app.nginx, old, new);
        self.install(i, host, &file).await
    }

    /// The canary colour and its percent converge's nginx file on `host` names, if split.
    pub(super) async fn split_on(&self, host: &Host) -> Result<Option<(Colour, i32)>, TargetError> {
        Ok(self.routes(host).await?.1)
    }

    /// What converge's nginx file on `host` routes to, from one read: the live colour and,
    /// during a canary step, the canary colour and its percent.
    pub(super) async fn routes(
        &self,
        host: &Host,
    ) -> Result<(Option<Colour>, Option<(Colour, i32)>), TargetError> {
        let file = host.nginx_file(&self.app).await.map_err(call)?;
        let file = file.as_deref();
        Ok((
            file.and_then(nginx::live_colour),
            file.and_then(nginx::split),
        ))
    }

    /// Installs `file` as converge's nginx file on host `i` (see [`switch`](Self::switch)).
    async fn install(&self, i: usize, host: &Host, file: &str) -> Result<(), TargetError> {
        let before = host.nginx_workers(&self.app).await.map_err(call)?;
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
        self.reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(i, (before, Instant::now()));
        Ok(())
    }

    /// One look for the new nginx workers of host `i`'s last reload: `None` once seen (or
    /// when no reload waits), what is awaited while not; a failed step 10 s after the reload
    /// with none (the reload failed).
    pub(super) async fn reload_pending(
        &self,
        i: usize,
        host: &Host,
    ) -> Result<Option<String>, TargetError> {
        let Some((before, at)) = self
            .reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&i)
            .cloned()
        else {
            return Ok(None);
        };
        let now = host.nginx_workers(&self.app).await.map_err(call)?;
        let seen = now.iter().any(|p| !before.contains(p));
        if seen || at.elapsed() > RELOAD_DEADLINE {
            self.reloads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&i);
        }
        match seen {
            true => Ok(None),
            false if at.elapsed() > RELOAD_DEADLINE => Err(TargetError::StepFailed(format!(
                "nginx on {} started no new workers within {}s of the reload (the reload failed)",
                host.label(),
                RELOAD_DEADLINE.as_secs()
            ))),
            false => Ok(Some(format!(
                "waiting for nginx's new workers on {}",
                host.label()
            ))),
        }
    }

    /// One look at host `i`'s nginx workers from before its last switch: what is still
    /// draining (they hold connections to the colour switched away from), or `None` once they
    /// have exited or `drain_timeout` has passed since the switch. Never waits: the engine
    /// looks again.
    pub(super) async fn draining(&self, i: usize, host: &Host) -> Option<String> {
        let (before, since) = self
            .old_workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&i)
            .cloned()?;
        if since.elapsed() < self.app.drain_timeout {
            let now = host.nginx_workers(&self.app).await.unwrap_or_default();
            if now.iter().any(|p| before.contains(p)) {
                return Some(format!(
                    "nginx's old workers on {} still hold connections (drain_timeout {})",
                    host.label(),
                    humantime::format_duration(self.app.drain_timeout)
                ));
            }
        }
        self.old_workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&i);
        None
    }
}
