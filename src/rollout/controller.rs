//! The rollout controller: moves traffic step by step (canary) or in one switch (blue/green),
//! evaluates gates every interval, acts on promote/abort requests from other processes, rolls
//! back by itself, and persists and audits every change so a killed run can be resumed.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::gates::{GateContext, Gates, Verdict};
use super::record::{GateResult, Revision, Rollout, Status, now};
use super::spec::{OnFail, RolloutSpec, Strategy};
use crate::audit::{self, NewEvent};
use crate::model::{Address, Value};
use crate::providers::aws::AwsProvider;
use crate::providers::aws::elb::arn_suffix;
use crate::providers::{Applied, ProviderError};
use crate::state::{self, StateStore};

/// What the controller needs besides the request.
pub struct RolloutContext<'a> {
    /// Where progress, requests and audit events go.
    pub store: &'a dyn StateStore,
    /// Actor and commit.
    pub audit: &'a audit::Context,
    /// ECS, ELB and CloudWatch.
    pub aws: &'a AwsProvider,
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
}

enum BakeEnd {
    Done,
    PromoteFull,
    Rollback(Rollback),
}

/// Why and since when traffic must go back to the old revision.
struct Rollback {
    reason: String,
    aborted: bool,
    since: Instant,
}

/// A hash of what a rollout rolls out, to match a record with a later run.
pub fn desired_hash(desired: &Value) -> String {
    let text = serde_json::to_string(&desired.to_plain_json()).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).reveal().as_str().unwrap_or("").to_string()
}

/// Runs (or continues) the rollout of `req`; returns the service as applied on success, an
/// error saying which gate failed and why after a rollback.
pub async fn run(ctx: &RolloutContext<'_>, req: &RolloutRequest) -> Result<Applied, ProviderError> {
    let hash = desired_hash(&req.desired);
    let existing = load(ctx, &req.address).await?;
    let mut rec = match existing {
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
        Some(r) if r.status.unfinished() => {
            abandon(ctx, req, r).await?;
            start(ctx, req, hash).await?
        }
        _ => start(ctx, req, hash).await?,
    };
    drive(ctx, req, &mut rec).await
}

async fn load(
    ctx: &RolloutContext<'_>,
    address: &Address,
) -> Result<Option<Rollout>, ProviderError> {
    let stored = ctx.store.rollouts().await.map_err(state_err)?;
    stored
        .into_iter()
        .find(|r| &r.address == address)
        .map(|r| Rollout::decode(&r.address, &r.body))
        .transpose()
        .map_err(|e| ProviderError::Invalid(e.to_string()))
}

fn state_err(e: state::StateError) -> ProviderError {
    ProviderError::Invalid(format!("state: {e}"))
}

async fn save(ctx: &RolloutContext<'_>, rec: &mut Rollout) -> Result<(), ProviderError> {
    rec.updated_at = now();
    let address = Address::parse(&rec.address).unwrap_or_else(|| Address::root(&rec.address));
    let body = serde_json::to_value(&*rec).unwrap_or_default();
    ctx.store
        .save_rollout(&address, &body)
        .await
        .map_err(state_err)
}

/// Records an audit event and posts it to the webhook.
async fn event(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &Rollout,
    action: &str,
    outcome: &str,
    detail: String,
) -> Result<(), ProviderError> {
    let mut ev = NewEvent::new(ctx.operation, action, outcome)
        .address(&req.address)
        .detail(detail.clone());
    ev.before = Some(serde_json::json!({ "task_definition": rec.old.task_definition }));
    let images: Vec<&str> = req
        .desired
        .get("task")
        .get("containers")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.get("image").as_str())
        .collect();
    ev.after = Some(serde_json::json!({
        "task_definition": rec.new.task_definition,
        "images": images,
        "weights": { "old": rec.weights[0], "new": rec.weights[1] },
        "rollout": rec.id,
    }));
    ctx.store
        .commit(state::Change::None, ev, ctx.audit)
        .await
        .map_err(state_err)?;
    (ctx.report)(&format!("{}: {action}: {detail}", req.address));
    if let Some(url) = &req.spec.webhook {
        let payload = serde_json::json!({
            "text": format!("converge {} {}: {action} — {detail}", ctx.environment, req.address),
            "event": action,
            "outcome": outcome,
            "environment": ctx.environment,
            "address": req.address.to_string(),
            "rollout": rec.id,
            "strategy": rec.strategy,
            "step": rec.step + 1,
            "steps": rec.steps,
            "weights": { "old": rec.weights[0], "new": rec.weights[1] },
            "old_revision": rec.old.task_definition,
            "new_revision": rec.new.task_definition,
            "reason": rec.reason,
            "actor": ctx.audit.actor,
            "commit": ctx.audit.commit,
        });
        if action == "gate failed" {
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

/// Cost gate, then the new revision's task set on the idle target group at 0% traffic.
async fn start(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    hash: String,
) -> Result<Rollout, ProviderError> {
    let spec = &req.spec;
    let cluster = text(&req.desired, "cluster");
    let service = text(&req.desired, "name");
    let ecs = ctx.aws.ecs();
    let sets = ecs.task_sets(&cluster, &service).await?;
    let primary = sets
        .iter()
        .find(|s| s.status == "PRIMARY")
        .cloned()
        .ok_or_else(|| {
            ProviderError::Invalid(format!(
                "{}: the service has no primary task set",
                req.address
            ))
        })?;
    let idle = spec
        .target_groups
        .iter()
        .find(|g| **g != primary.target_group)
        .cloned()
        .unwrap_or_default();
    let load_balancer = ctx
        .aws
        .elb()
        .listener_load_balancer(&spec.listener_arn)
        .await?;
    let mut rec = Rollout {
        id: uuid::Uuid::new_v4().to_string(),
        address: req.address.to_string(),
        strategy: spec.strategy.as_str().into(),
        status: Status::Running,
        phase: "starting".into(),
        steps: match spec.strategy {
            Strategy::Canary => spec.steps.clone(),
            Strategy::BlueGreen => vec![0, 100],
        },
        step: 0,
        weights: [100, 0],
        old: Revision {
            task_set: primary.id.clone(),
            task_definition: primary.task_definition.clone(),
            target_group: primary.target_group.clone(),
        },
        new: Revision {
            task_set: String::new(),
            task_definition: String::new(),
            target_group: idle.clone(),
        },
        listener_arn: spec.listener_arn.clone(),
        load_balancer: arn_suffix(&load_balancer),
        cluster: last_segment(&cluster).to_string(),
        service: service.clone(),
        bake_started: None,
        bake_seconds: 0.0,
        gates: Vec::new(),
        reason: None,
        rollback_seconds: None,
        desired_hash: hash,
        started_at: now(),
        updated_at: now(),
        finished_at: None,
    };
    if let Some(max) = spec.max_run_rate_increase {
        cost_gate(ctx, req, &mut rec, max).await?;
    }
    rec.new.task_definition = ecs.register(req.desired.get("task")).await?;
    save(ctx, &mut rec).await?;
    event(
        ctx,
        req,
        &rec,
        "rollout start",
        "ok",
        format!("{}: {}", spec.summary(), rec.new.task_definition),
    )
    .await?;
    // A task set left by a run killed before it saved: reuse it if it is this revision on
    // the idle group, remove it otherwise.
    for orphan in sets.iter().filter(|s| s.status != "PRIMARY") {
        if orphan.task_definition == rec.new.task_definition && orphan.target_group == idle {
            rec.new.task_set = orphan.id.clone();
        } else {
            ecs.delete_task_set(&cluster, &service, &orphan.id).await?;
        }
    }
    if rec.new.task_set.is_empty() {
        rec.new.task_set = ecs
            .create_task_set(
                &cluster,
                &service,
                &rec.new.task_definition,
                &idle,
                &req.desired,
            )
            .await?;
    }
    save(ctx, &mut rec).await?;
    Ok(rec)
}

/// Refuses, before anything changes, a revision whose run rate grows more than allowed.
async fn cost_gate(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &mut Rollout,
    max: f64,
) -> Result<(), ProviderError> {
    let Some(price) = ctx.prices.fargate(&ctx.region) else {
        return Err(ProviderError::Invalid(format!(
            "{}: cost gate: converge has no Fargate price for region {}, so max_run_rate_increase cannot be checked",
            req.address, ctx.region
        )));
    };
    let count = |p: &Value| p.get("desired_count").as_f64().unwrap_or(1.0);
    let old = crate::cost::fargate_monthly(&price, req.prior.get("task"), count(&req.prior));
    let new = crate::cost::fargate_monthly(&price, req.desired.get("task"), count(&req.desired));
    let increase = if old > 0.0 {
        (new - old) / old * 100.0
    } else {
        0.0
    };
    let detail = format!(
        "run rate ${old:.2}/month → ${new:.2}/month ({increase:+.1}%), limit +{max}% (Fargate prices of {} as of {})",
        ctx.region, ctx.prices.aws.as_of
    );
    if increase > max {
        rec.reason = Some(format!("cost gate: {detail}"));
        let mut ev = NewEvent::new(ctx.operation, "rollout refused", "failed")
            .address(&req.address)
            .detail(format!("cost gate: {detail}"));
        ev.before = Some(serde_json::json!({ "monthly_usd": old }));
        ev.after = Some(serde_json::json!({ "monthly_usd": new }));
        ctx.store
            .commit(state::Change::None, ev, ctx.audit)
            .await
            .map_err(state_err)?;
        return Err(ProviderError::Invalid(format!(
            "{}: rollout refused by the cost gate before any traffic moved: {detail}",
            req.address
        )));
    }
    rec.push_gate(GateResult {
        time: now(),
        gate: "cost".into(),
        outcome: "pass".into(),
        detail,
    });
    Ok(())
}

async fn set_weights(
    ctx: &RolloutContext<'_>,
    rec: &mut Rollout,
    new_weight: i32,
) -> Result<(), ProviderError> {
    let weights = vec![
        (rec.old.target_group.clone(), 100 - new_weight),
        (rec.new.target_group.clone(), new_weight),
    ];
    ctx.aws
        .elb()
        .set_weights(&rec.listener_arn, &weights)
        .await?;
    rec.weights = [100 - new_weight, new_weight];
    Ok(())
}

async fn drive(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &mut Rollout,
) -> Result<Applied, ProviderError> {
    let spec = &req.spec;
    let mut gates = Gates::new(&spec.health, ctx.aws);
    match spec.strategy {
        Strategy::Canary => {
            let mut i = rec.step;
            while i < rec.steps.len() {
                let weight = rec.steps[i];
                rec.step = i;
                set_weights(ctx, rec, weight).await?;
                rec.phase = "baking".into();
                save(ctx, rec).await?;
                event(
                    ctx,
                    req,
                    rec,
                    "rollout step",
                    "ok",
                    format!(
                        "step {} of {}: {weight}% of traffic on the new revision",
                        i + 1,
                        rec.steps.len()
                    ),
                )
                .await?;
                match bake(ctx, req, rec, &mut gates, spec.bake).await? {
                    BakeEnd::Done => i += 1,
                    // Straight to 100% with no further bake: `finish` moves the weights.
                    BakeEnd::PromoteFull => {
                        rec.step = rec.steps.len() - 1;
                        break;
                    }
                    BakeEnd::Rollback(r) => return rollback(ctx, req, rec, r).await,
                }
            }
        }
        Strategy::BlueGreen => {
            if rec.step == 0 {
                set_weights(ctx, rec, 0).await?;
                if let Some(test) = &spec.test_listener_arn {
                    ctx.aws
                        .elb()
                        .set_weights(
                            test,
                            &[
                                (rec.new.target_group.clone(), 100),
                                (rec.old.target_group.clone(), 0),
                            ],
                        )
                        .await?;
                }
                rec.phase = "pre_traffic".into();
                save(ctx, rec).await?;
                event(
                    ctx,
                    req,
                    rec,
                    "rollout step",
                    "ok",
                    "pre-traffic checks at 0%".into(),
                )
                .await?;
                if let BakeEnd::Rollback(r) = bake(ctx, req, rec, &mut gates, spec.bake).await? {
                    return rollback(ctx, req, rec, r).await;
                }
                rec.step = 1;
                set_weights(ctx, rec, 100).await?;
                rec.phase = "termination_wait".into();
                save(ctx, rec).await?;
                event(
                    ctx,
                    req,
                    rec,
                    "rollout switch",
                    "ok",
                    format!(
                        "100% of traffic on the new revision; the old one is kept {}",
                        humantime::format_duration(spec.termination_wait)
                    ),
                )
                .await?;
            }
            if let BakeEnd::Rollback(r) =
                bake(ctx, req, rec, &mut gates, spec.termination_wait).await?
            {
                return rollback(ctx, req, rec, r).await;
            }
        }
    }
    finish(ctx, req, rec).await
}

/// Evaluates gates every interval for `length`, acting on requests and Ctrl-C.
async fn bake(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &mut Rollout,
    gates: &mut Gates<'_>,
    length: Duration,
) -> Result<BakeEnd, ProviderError> {
    let spec = &req.spec;
    rec.bake_started = Some(now());
    rec.bake_seconds = length.as_secs_f64();
    save(ctx, rec).await?;
    let started = Instant::now();
    loop {
        if ctx.interrupt.is_cancelled() {
            save(ctx, rec).await?;
            return Err(ProviderError::Invalid(format!(
                "{}: rollout interrupted at step {} of {} ({}% on the new revision); `converge rollout resume {}` continues it",
                req.address,
                rec.step + 1,
                rec.steps.len(),
                rec.weights[1],
                req.address
            )));
        }
        match ctx
            .store
            .take_rollout_request(&req.address)
            .await
            .map_err(state_err)?
        {
            Some(r) if r == "abort" => {
                return Ok(BakeEnd::Rollback(Rollback {
                    reason: "aborted with `converge rollout abort`".into(),
                    aborted: true,
                    since: Instant::now(),
                }));
            }
            Some(r) if r == "promote" || r == "promote_full" => {
                event(
                    ctx,
                    req,
                    rec,
                    "rollout promote",
                    "ok",
                    if r == "promote" {
                        "bake skipped: promoted to the next step".into()
                    } else {
                        "promoted straight to 100%".into()
                    },
                )
                .await?;
                return Ok(if r == "promote" {
                    BakeEnd::Done
                } else {
                    BakeEnd::PromoteFull
                });
            }
            _ => {}
        }
        let gctx = GateContext {
            address: req.address.to_string(),
            task_definition: rec.new.task_definition.clone(),
            target_group: rec.new.target_group.clone(),
            target_group_suffix: arn_suffix(&rec.new.target_group),
            baseline_suffix: arn_suffix(&rec.old.target_group),
            load_balancer_suffix: rec.load_balancer.clone(),
            step: rec.step + 1,
            weight: rec.weights[1],
        };
        for o in gates.evaluate(&gctx).await {
            let (outcome, detail) = match &o.verdict {
                Verdict::Pass => ("pass", String::new()),
                Verdict::Pending(t) => ("pending", t.clone()),
                Verdict::NoData(t) => ("no_data", t.clone()),
                Verdict::Fail(t) if o.on_fail == OnFail::Alert => ("alert", t.clone()),
                Verdict::Fail(t) => ("fail", t.clone()),
            };
            rec.push_gate(GateResult {
                time: now(),
                gate: o.gate.clone(),
                outcome: outcome.into(),
                detail: detail.clone(),
            });
            match outcome {
                "fail" => {
                    let since = Instant::now();
                    let reason = format!("{}: {detail}", o.gate);
                    event(ctx, req, rec, "gate failed", "failed", reason.clone()).await?;
                    return Ok(BakeEnd::Rollback(Rollback {
                        reason,
                        aborted: false,
                        since,
                    }));
                }
                "alert" => {
                    event(
                        ctx,
                        req,
                        rec,
                        "gate alert",
                        "alert",
                        format!("{}: {detail}", o.gate),
                    )
                    .await?;
                }
                _ => {}
            }
        }
        save(ctx, rec).await?;
        let elapsed = started.elapsed();
        if elapsed >= length {
            return Ok(BakeEnd::Done);
        }
        tokio::time::sleep(spec.interval.min(length - elapsed)).await;
    }
}

/// All traffic back to the old revision, the new task set removed, the reason on record;
/// returns the message the step fails with.
async fn restore(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &mut Rollout,
    Rollback {
        reason,
        aborted,
        since,
    }: Rollback,
) -> Result<String, ProviderError> {
    rec.phase = "rolling_back".into();
    rec.reason = Some(reason.clone());
    save(ctx, rec).await?;
    set_weights(ctx, rec, 0).await?;
    let restored = since.elapsed().as_secs_f64();
    let cluster = text(&req.desired, "cluster");
    let service = text(&req.desired, "name");
    let ecs = ctx.aws.ecs();
    ecs.make_primary(&cluster, &service, &rec.old.task_set)
        .await?;
    if !rec.new.task_set.is_empty() {
        ecs.delete_task_set(&cluster, &service, &rec.new.task_set)
            .await?;
    }
    rec.status = if aborted {
        Status::Aborted
    } else {
        Status::RolledBack
    };
    rec.phase = "done".into();
    rec.rollback_seconds = Some(restored);
    rec.bake_started = None;
    rec.finished_at = Some(now());
    save(ctx, rec).await?;
    event(
        ctx,
        req,
        rec,
        "rollback",
        "ok",
        format!(
            "{reason}; all traffic back on {} in {restored:.2}s",
            last_segment(&rec.old.task_definition)
        ),
    )
    .await?;
    Ok(format!(
        "rollout {}: {reason} (traffic restored to the old revision in {restored:.2}s)",
        if aborted { "aborted" } else { "rolled back" }
    ))
}

/// Restores the old revision, then fails the step with why (the apply exits 1).
async fn rollback(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &mut Rollout,
    why: Rollback,
) -> Result<Applied, ProviderError> {
    Err(ProviderError::Invalid(restore(ctx, req, rec, why).await?))
}

/// The new revision becomes primary and the old task set goes.
async fn finish(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    rec: &mut Rollout,
) -> Result<Applied, ProviderError> {
    let cluster = text(&req.desired, "cluster");
    let service = text(&req.desired, "name");
    let ecs = ctx.aws.ecs();
    rec.phase = "finishing".into();
    save(ctx, rec).await?;
    if rec.weights != [0, 100] {
        set_weights(ctx, rec, 100).await?;
    }
    ecs.make_primary(&cluster, &service, &rec.new.task_set)
        .await?;
    if !rec.old.task_set.is_empty() {
        ecs.delete_task_set(&cluster, &service, &rec.old.task_set)
            .await?;
    }
    rec.status = Status::Succeeded;
    rec.phase = "done".into();
    rec.bake_started = None;
    rec.finished_at = Some(now());
    save(ctx, rec).await?;
    event(
        ctx,
        req,
        rec,
        "rollout complete",
        "ok",
        format!(
            "{} is primary at 100%; {} removed",
            last_segment(&rec.new.task_definition),
            last_segment(&rec.old.task_definition)
        ),
    )
    .await?;
    let mut outputs = req.prior_outputs.clone();
    if let Value::Map(m) = &mut outputs {
        m.insert(
            "task_definition_arn".into(),
            Value::str(&rec.new.task_definition),
        );
    }
    Ok(Applied {
        remote_id: req.remote_id.clone(),
        outputs,
    })
}

/// A rollout of other desired properties left unfinished: roll it back before a new one.
async fn abandon(
    ctx: &RolloutContext<'_>,
    req: &RolloutRequest,
    mut rec: Rollout,
) -> Result<(), ProviderError> {
    (ctx.report)(&format!(
        "{}: an unfinished rollout of another revision is rolled back first",
        req.address
    ));
    let superseded = Rollback {
        reason: "superseded by a newer revision before it finished".into(),
        aborted: true,
        since: Instant::now(),
    };
    restore(ctx, req, &mut rec, superseded).await.map(|_| ())
}
