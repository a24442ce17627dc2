//! Hooks as one-off containers of the new image: which hosts run a hook, starting it once
//! (a resumed run waits on the container it started), and its state.

use super::*;

impl HostTarget<'_> {
    /// The container name of hook `index` of `stage` in the rollout `rec` (the same on every
    /// host, so a resumed run finds the one it started).
    pub(super) fn hook_name(&self, rec: &Rollout, stage: HookStage, index: usize) -> ContainerName {
        docker::hook_name(&self.app.name, &rec.id, stage.as_str(), index)
    }

    /// The hosts a hook runs on: the first, or with `per_host` every host the rollout reached
    /// by this stage (pre_traffic: the first batch; a later batch runs its own before its
    /// switch, as the engine's batch phase asks).
    pub(super) fn hook_hosts(&self, rec: &Rollout, hook: &Hook, stage: HookStage) -> Vec<usize> {
        if !hook.per_host {
            return vec![0];
        }
        if rec.hook.as_ref().is_some_and(|h| h.batch) {
            return self.batch_hosts(rec).collect();
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
    pub(super) async fn start_hook_on(
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
                files: self.put_files(&host, name, c).await?,
            },
        );
        host.run_container(name, &body).await.map_err(call)
    }

    /// One look at hook container `name` on host `i`: running, exited 0 (removed), or failed
    /// (with its last lines; removed).
    pub(super) async fn hook_state_on(
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
}
