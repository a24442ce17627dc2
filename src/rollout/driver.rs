//! The rollout driver: runs the engine's steps against a [`Target`]. It persists each
//! transition before acting on it, records its audit events (and webhook notifications), waits
//! where the engine says, and turns what it sees (a step done, gate results, a steering request
//! from another process, Ctrl-C) into the engine's next observation. It decides nothing.
//!
//! Guarantees: every `.await` on the target happens after the record that names the step is
//! saved, so a run killed anywhere is resumed by the next `apply` or `rollout resume` with the
//! same step; Ctrl-C stops at the next wait, resumably.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::engine::{self, Event, Observation, Outcome, Request, Step};
use super::error::RolloutError;
use super::record::{Phase, Rollout};
use super::spec::{Hook, RolloutSpec};
use super::target::{Readiness, Target, TargetError};
use crate::audit::{self, EventKind, NewEvent};
use crate::model::{Address, Value};
use crate::providers::Applied;
use crate::state::{self, StateStore};

/// What the driver needs besides the request.
pub struct RolloutContext<'a> {
    /// Where progress, requests and audit events go.
    pub store: &'a dyn StateStore,
    /// Actor and commit.
    pub audit: &'a audit::Context,
    /// The environment's providers, which targets drive (an environment without AWS has
    /// rollouts only on hosts).
    pub registry: &'a crate::providers::Registry,
    /// The command (`apply`, `rollout resume`).
    pub operation: &'a str,
    /// Ctrl-C: stop at the next safe point, resumable.
    pub interrupt: &'a CancellationToken,
    /// Region of the price table for the cost gate.
    pub region: String,
    /// The price table (the project's `prices.json`, else the shipped one).
    pub prices: &'a crate::cost::PriceTable,
    /// Environment name.
    pub environment: String,
    /// Progress lines for people.
    pub report: &'a (dyn Fn(&str) + Send + Sync),
}

impl<'a> RolloutContext<'a> {
    /// The context for rollouts of `env` run by `operation`: its region, price table and name.
    pub fn for_environment(
        env: &'a crate::config::Environment,
        store: &'a dyn StateStore,
        audit: &'a audit::Context,
        registry: &'a crate::providers::Registry,
        operation: &'a str,
        interrupt: &'a CancellationToken,
        report: &'a (dyn Fn(&str) + Send + Sync),
    ) -> RolloutContext<'a> {
        RolloutContext {
            store,
            audit,
            registry,
            operation,
            interrupt,
            region: env
                .providers
                .aws
                .as_ref()
                .map(|a| a.region.clone())
                .unwrap_or_default(),
            prices: &env.prices,
            environment: env.name.clone(),
            report,
        }
    }
}

/// A service update that needs a new revision under a rollout.
#[derive(Debug, Clone)]
pub struct RolloutRequest {
    /// The service.
    pub address: Address,
    /// Its cloud id.
    pub remote_id: String,
    /// Live properties now.
    pub prior: Value,
    /// Outputs now.
    pub prior_outputs: Value,
    /// Desired properties.
    pub desired: Value,
    /// Its rollout settings.
    pub spec: RolloutSpec,
    /// `rollout undo`: roll out this registered task definition instead of registering the
    /// desired task, and record the pin.
    pub undo: Option<super::record::Undo>,
    /// The kind's deploy capability, which builds the target.
    pub deploy: &'static dyn super::Deploy,
}

impl RolloutRequest {
    /// The rollout of `address` from `prior` to `desired` under `spec`, run by `deploy`.
    pub fn new(
        deploy: &'static dyn super::Deploy,
        address: Address,
        remote_id: String,
        (prior, prior_outputs): (Value, Value),
        desired: Value,
        spec: RolloutSpec,
    ) -> RolloutRequest {
        RolloutRequest {
            address,
            remote_id,
            prior,
            prior_outputs,
            desired,
            spec,
            undo: None,
            deploy,
        }
    }

    /// The same rollout as an undo, recording `pin`.
    pub fn undoing(mut self, pin: super::record::Undo) -> RolloutRequest {
        self.undo = Some(pin);
        self
    }

    /// The hash that ties a record to this request (an undo's includes where it goes).
    fn hash(&self) -> String {
        match &self.undo {
            Some(u) => desired_hash(
                &self
                    .desired
                    .clone()
                    .with_entry("undo_to", Value::str(&u.to)),
            ),
            None => desired_hash(&self.desired),
        }
    }
}

/// A hash of what a rollout rolls out, to match a record with a later run: over the stored
/// form, in which secrets are keyed digests (never over revealed values).
pub fn desired_hash(desired: &Value) -> String {
    let text = serde_json::to_string(desired).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Runs (or continues) the rollout of `req` on the target its kind builds; returns the
/// resource as applied on success, the typed reason otherwise.
pub async fn run(ctx: &RolloutContext<'_>, req: &RolloutRequest) -> Result<Applied, RolloutError> {
    let target = req.deploy.target(ctx, req)?;
    drive(ctx, req, target.as_ref()).await
}

/// Rolls back the rollout of `req` if it is paused past its `pause_timeout` (any command
/// that touches the environment calls this first); a promote that came too late is dropped.
/// Returns whether it rolled one back.
pub async fn expire_pause(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
) -> Result<bool, RolloutError> {
    let Some(rec) = load(ctx, &req.address).await? else {
        return Ok(false);
    };
    if !rec.pause_expired(chrono::Utc::now()) {
        return Ok(false);
    }
    ctx.store
        .take_rollout_request(&req.address)
        .await
        .map_err(|e| state_err(req, e))?;
    let target = req.deploy.target(ctx, req)?;
    match run_steps(ctx, req, target.as_ref(), rec).await {
        Ok(_) | Err(RolloutError::GateFailed { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Runs (or continues) the rollout of `req` on `target`.
pub async fn drive(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    target: &dyn Target,
) -> Result<Applied, RolloutError> {
    let hash = req.hash();
    let rec = match load(ctx, &req.address).await? {
        Some(r) if r.status.unfinished() && r.desired_hash == hash => {
            (ctx.report)(&format!(
                "{}: resuming the rollout at step {} of {} ({}% on the new revision)",
                req.address,
                r.step + 1,
                r.steps.len(),
                r.weights[1]
            ));
            r
        }
        Some(mut r) if r.status.unfinished() => {
            (ctx.report)(&format!(
                "{}: an unfinished rollout of another revision is rolled back first",
                req.address
            ));
            if r.phase != Phase::RollingBack {
                r.phase = Phase::RollingBack;
                r.reason = Some("superseded by a newer revision before it finished".into());
                r.aborting = true;
                r.rollback_started = Some(engine::stamp(chrono::Utc::now()));
            }
            match run_steps(ctx, req, target, r).await {
                // Rolled back as asked: the new rollout starts from the old revision.
                Ok(_) | Err(RolloutError::Aborted { .. }) => {}
                Err(e) => return Err(e),
            }
            start(ctx, req, target, hash).await?
        }
        _ => start(ctx, req, target, hash).await?,
    };
    let rec = run_steps(ctx, req, target, rec).await?;
    target.applied(&rec).map_err(|source| RolloutError::Target {
        address: req.address.to_string(),
        source,
    })
}

/// A new record, filled by the target and past its pre-checks (the cost gate), saved.
async fn start(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    target: &dyn Target,
    hash: String,
) -> Result<Rollout, RolloutError> {
    let mut rec = engine::new_record(
        &req.spec,
        uuid::Uuid::new_v4().to_string(),
        req.address.to_string(),
        chrono::Utc::now(),
    );
    rec.desired_hash = hash;
    match target.begin(&mut rec).await {
        Ok(()) => {
            if let Some(undo) = &req.undo {
                // A registered revision is rolled out as it is (a host app's revision is
                // the colour its target picked).
                if matches!(
                    req.deploy.revisions(),
                    super::deploy::Revisions::Registered { .. }
                ) {
                    rec.new_revision = undo.to.clone();
                }
                rec.undo = Some(undo.clone());
            }
            Ok(rec)
        }
        Err(TargetError::Refused {
            gate,
            detail,
            before,
            after,
        }) => {
            let mut ev = NewEvent::new(
                ctx.operation,
                crate::audit::EventKind::RolloutRefused,
                "failed",
            )
            .address(&req.address)
            .detail(format!("{gate}: {detail}"));
            ev.before = Some(before);
            ev.after = Some(after);
            ctx.store
                .commit(state::Change::None, ev, ctx.audit)
                .await
                .map_err(|e| state_err(req, e))?;
            Err(RolloutError::Refused {
                address: req.address.to_string(),
                gate,
                detail,
            })
        }
        Err(source) => Err(RolloutError::Target {
            address: req.address.to_string(),
            source,
        }),
    }
}

/// Steps the engine until it stops; returns the final record when it succeeded.
async fn run_steps(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    target: &dyn Target,
    mut rec: Rollout,
) -> Result<Rollout, RolloutError> {
    let failed = |source: TargetError| RolloutError::Target {
        address: req.address.to_string(),
        source,
    };
    let mut observed = Observation::Resumed;
    loop {
        let t = engine::next(&rec, &req.spec, &observed, chrono::Utc::now());
        rec = t.record;
        save(ctx, req, &rec).await?;
        for e in &t.events {
            event(ctx, req, &rec, e).await?;
        }
        observed = match t.step {
            Step::StartRevision => {
                target.start_revision(&mut rec).await.map_err(failed)?;
                Observation::Completed
            }
            Step::SetWeights(weights) => match target.set_weights(&rec, weights).await {
                Ok(r) => settled(r),
                Err(TargetError::StepFailed(reason)) => Observation::Failed(reason),
                Err(e) => return Err(failed(e)),
            },
            Step::SetWeightsAgain { weights, after } => match wait(ctx, after).await {
                true => Observation::Interrupted,
                false => match target.set_weights(&rec, weights).await {
                    Ok(r) => settled(r),
                    Err(TargetError::StepFailed(reason)) => Observation::Failed(reason),
                    Err(e) => return Err(failed(e)),
                },
            },
            Step::Evaluate { after } => wait_then_observe(ctx, req, target, &rec, after).await?,
            Step::Deploy => {
                target.deploy(&mut rec).await.map_err(failed)?;
                Observation::Completed
            }
            Step::AwaitReady { after } => {
                // Interrupted: one last look, so a deploy that is already done is recorded
                // as done (Ctrl-C lets steps in flight finish); otherwise stop resumably.
                let interrupted = wait(ctx, after).await;
                match target.ready(&rec).await.map_err(failed)? {
                    Readiness::Ready(detail) => Observation::Ready(detail),
                    Readiness::Failed(reason) => Observation::Failed(reason),
                    Readiness::Pending(_) if interrupted => Observation::Interrupted,
                    Readiness::Pending(detail) => Observation::NotReady(detail),
                }
            }
            Step::Promote => settled(target.promote(&rec).await.map_err(failed)?),
            Step::Restore => settled(target.restore(&rec).await.map_err(failed)?),
            Step::PromoteAgain { after } => match wait(ctx, after).await {
                true => Observation::Interrupted,
                false => settled(target.promote(&rec).await.map_err(failed)?),
            },
            Step::RestoreAgain { after } => match wait(ctx, after).await {
                true => Observation::Interrupted,
                false => settled(target.restore(&rec).await.map_err(failed)?),
            },
            Step::Backup => match target.backup(&mut rec).await {
                Ok(Readiness::Ready(detail)) => Observation::Ready(detail),
                Ok(Readiness::Failed(reason) | Readiness::Pending(reason))
                | Err(TargetError::StepFailed(reason)) => Observation::Failed(reason),
                Err(e) => return Err(failed(e)),
            },
            Step::StartHook => {
                let hook = current_hook(&req.spec, &rec);
                target.start_hook(&mut rec, &hook).await.map_err(failed)?;
                Observation::Completed
            }
            Step::AwaitHook { after } => {
                let interrupted = wait(ctx, after).await;
                let hook = current_hook(&req.spec, &rec);
                match target.hook_status(&rec, &hook).await.map_err(failed)? {
                    Readiness::Ready(detail) => Observation::Ready(detail),
                    Readiness::Failed(reason) => Observation::Failed(reason),
                    Readiness::Pending(_) if interrupted => Observation::Interrupted,
                    Readiness::Pending(detail) => Observation::NotReady(detail),
                }
            }
            Step::StopHook => {
                target.stop_hook(&rec).await.map_err(failed)?;
                Observation::Completed
            }
            Step::TakeRequest => match take_request(ctx, req).await? {
                Some(r) => Observation::Requested(r),
                None => Observation::Completed,
            },
            Step::Stop(outcome) => {
                let address = req.address.to_string();
                return match outcome {
                    Outcome::Succeeded => Ok(rec),
                    Outcome::RolledBack {
                        reason,
                        aborted: false,
                        ..
                    } if rec.old_revision.is_empty() => {
                        Err(RolloutError::FirstRevisionFailed { address, reason })
                    }
                    Outcome::RolledBack {
                        reason,
                        seconds,
                        aborted: false,
                    } => Err(RolloutError::GateFailed {
                        address,
                        reason,
                        seconds,
                    }),
                    Outcome::RolledBack {
                        reason, seconds, ..
                    } => Err(RolloutError::Aborted {
                        address,
                        reason,
                        seconds,
                    }),
                    Outcome::Left { reason } => Err(RolloutError::NotReady { address, reason }),
                    Outcome::Paused => Err(RolloutError::Paused {
                        address,
                        step: rec.step + 1,
                        steps: rec.steps.len(),
                        weight: rec.weights[1],
                        until: rec.pause_until.clone().unwrap_or_default(),
                    }),
                    Outcome::Interrupted => Err(RolloutError::Interrupted {
                        address,
                        step: rec.step + 1,
                        steps: rec.steps.len(),
                        weight: rec.weights[1],
                    }),
                };
            }
        };
    }
}

/// Waits `after` (cut short by Ctrl-C), then takes a steering request or evaluates the gates.
async fn wait_then_observe(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    target: &dyn Target,
    rec: &Rollout,
    after: Duration,
) -> Result<Observation, RolloutError> {
    if wait(ctx, after).await {
        return Ok(Observation::Interrupted);
    }
    if let Some(r) = take_request(ctx, req).await? {
        return Ok(Observation::Requested(r));
    }
    let probes = target
        .evaluate(rec)
        .await
        .map_err(|source| RolloutError::Target {
            address: req.address.to_string(),
            source,
        })?;
    Ok(Observation::Gates(probes))
}

/// The steering request waiting for this rollout, taken (cleared) from state.
async fn take_request(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
) -> Result<Option<Request>, RolloutError> {
    let request = ctx
        .store
        .take_rollout_request(&req.address)
        .await
        .map_err(|e| state_err(req, e))?;
    Ok(request.as_deref().and_then(Request::parse))
}

/// The hook the record says is running (the engine only asks for one it recorded).
fn current_hook(spec: &RolloutSpec, rec: &Rollout) -> Hook {
    rec.hook
        .as_ref()
        .and_then(|h| spec.hooks.of(h.stage).get(h.index))
        .cloned()
        .unwrap_or(Hook {
            run: Vec::new(),
            container: None,
            timeout: Duration::ZERO,
            per_host: false,
        })
}

/// What a promote or restore answered: done, or under way (the engine schedules it again).
fn settled(readiness: Readiness) -> Observation {
    match readiness {
        Readiness::Ready(_) => Observation::Completed,
        Readiness::Pending(detail) => Observation::NotReady(detail),
        Readiness::Failed(reason) => Observation::Failed(reason),
    }
}

/// Waits `after`, cut short by Ctrl-C; whether it was interrupted.
async fn wait(ctx: &RolloutContext<'_>, after: Duration) -> bool {
    if !after.is_zero() {
        tokio::select! {
            _ = ctx.interrupt.cancelled() => {}
            _ = tokio::time::sleep(after) => {}
        }
    }
    ctx.interrupt.is_cancelled()
}

async fn load(
    ctx: &RolloutContext<'_>,
    address: &Address,
) -> Result<Option<Rollout>, RolloutError> {
    let stored = ctx
        .store
        .rollouts()
        .await
        .map_err(|e| RolloutError::State {
            address: address.to_string(),
            source: e,
        })?;
    Ok(stored
        .into_iter()
        .find(|r| &r.address == address)
        .map(|r| Rollout::decode(&r.address, &r.body))
        .transpose()?)
}

fn state_err(req: &RolloutRequest, source: state::StateError) -> RolloutError {
    RolloutError::State {
        address: req.address.to_string(),
        source,
    }
}

async fn save(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &Rollout,
) -> Result<(), RolloutError> {
    let body = serde_json::to_value(rec).map_err(|e| RolloutError::Target {
        address: req.address.to_string(),
        source: TargetError::StepFailed(format!("the rollout record does not serialize: {e}")),
    })?;
    ctx.store
        .save_rollout(&req.address, &body)
        .await
        .map_err(|e| state_err(req, e))
}

/// Records an audit event and posts it to the webhook.
async fn event(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &Rollout,
    e: &Event,
) -> Result<(), RolloutError> {
    let images: Vec<String> = match &req.undo {
        Some(u) => u.to_images.clone(),
        None => super::images(&req.desired),
    };
    // What promotion compares across environments: the manifest digests (best effort: a
    // failed lookup leaves the reference to compare by).
    let digests = match e.action {
        EventKind::RolloutComplete => req.deploy.digests(ctx.registry, &images).await,
        _ => None,
    };
    let ev = NewEvent::new(ctx.operation, e.action, e.outcome)
        .address(&req.address)
        .detail(e.detail.clone())
        .revision(
            Some(&rec.old_revision),
            &audit::Revision {
                task_definition: rec.new_revision.clone(),
                images,
                weights: Some(audit::Weights {
                    old: rec.weights[0],
                    new: rec.weights[1],
                }),
                rollout: rec.id.clone(),
                digests,
                backups: match e.action {
                    EventKind::RolloutBackup => rec.backups.clone(),
                    _ => Vec::new(),
                },
                pruned: match e.action {
                    EventKind::RolloutBackup => rec.backups_pruned.clone(),
                    _ => Vec::new(),
                },
            },
        );
    ctx.store
        .commit(state::Change::None, ev, ctx.audit)
        .await
        .map_err(|err| state_err(req, err))?;
    (ctx.report)(&format!("{}: {}: {}", req.address, e.action, e.detail));
    if let Some(url) = &req.spec.webhook {
        let payload = serde_json::json!({
            "text": format!("converge {} {}: {} — {}", ctx.environment, req.address, e.action, e.detail),
            "event": e.action.as_str(),
            "outcome": e.outcome,
            "environment": ctx.environment,
            "address": req.address.to_string(),
            "rollout": rec.id,
            "strategy": rec.strategy,
            "step": rec.step + 1,
            "steps": rec.steps,
            "weights": { "old": rec.weights[0], "new": rec.weights[1] },
            "old_revision": rec.old_revision,
            "new_revision": rec.new_revision,
            "reason": rec.reason,
            "rollback_seconds": rec.rollback_seconds,
            // What the gates judged last, with their figures (one entry per gate).
            "gates": rec.latest_gates(),
            "actor": ctx.audit.actor,
            "commit": ctx.audit.commit,
        });
        if e.action == EventKind::GateFailed {
            // Never let a slow webhook delay the rollback that follows.
            let url = url.clone();
            tokio::spawn(async move {
                super::notify::webhook(&reqwest::Client::new(), &url, &payload).await;
            });
        } else {
            super::notify::webhook(&reqwest::Client::new(), url, &payload).await;
        }
    }
    Ok(())
}
