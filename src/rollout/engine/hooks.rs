//! Lifecycle hooks as transitions of `next`: each hook of a stage (`pre_traffic`,
//! `post_traffic`, `on_rollback`) started once, looked at until it exits or passes its
//! timeout (then stopped), and where its stage leads afterwards. A failed `on_rollback` hook is
//! recorded, never rolled back.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;

/// Whether `rec` runs an on_rollback hook (whose failure is recorded, never rolled back).
pub(super) fn rolling_back_hook(rec: &Rollout) -> bool {
    rec.phase == Phase::Hook
        && rec
            .hook
            .as_ref()
            .is_some_and(|h| h.stage == HookStage::OnRollback)
}

/// Starts the first hook of `stage`, or, with none, goes where the stage leads.
pub(super) fn enter_hooks(
    t: &mut Transition,
    spec: &RolloutSpec,
    stage: HookStage,
    now: DateTime<Utc>,
) {
    enter_hook(t, spec, stage, 0, false, now)
}

/// Enters hook `index` of `stage` (with `batch`, the next `per_host` one: a later batch of
/// hosts runs only those, on its own hosts), or where the stage leads when none is left.
pub(super) fn enter_hook(
    t: &mut Transition,
    spec: &RolloutSpec,
    stage: HookStage,
    index: usize,
    batch: bool,
    now: DateTime<Utc>,
) {
    let hooks = spec.hooks.of(stage);
    let index = match batch {
        true => (index..hooks.len())
            .find(|i| hooks[*i].per_host)
            .unwrap_or(hooks.len()),
        false => index,
    };
    if index >= hooks.len() {
        t.record.hook = None;
        if batch {
            return batches::switch(t);
        }
        return after_hooks(t, spec, stage, now);
    }
    t.record.phase = Phase::Hook;
    t.record.bake_started = None;
    if stage == HookStage::PreTraffic {
        t.record.hooks_started = true;
    }
    t.record.hook = Some(HookRun {
        stage,
        index,
        run: String::new(),
        started_at: None,
        timed_out: false,
        detail: String::new(),
        batch,
    });
    t.step = Step::StartHook;
}

/// Where a stage's hooks lead once they all passed.
pub(super) fn after_hooks(
    t: &mut Transition,
    spec: &RolloutSpec,
    stage: HookStage,
    now: DateTime<Utc>,
) {
    match (stage, spec.strategy) {
        (HookStage::PreTraffic, Strategy::Rolling) => {
            t.record.phase = Phase::Deploying;
            t.step = Step::Deploy;
        }
        (HookStage::PreTraffic, Strategy::Canary) => enter_canary_step(t, 0),
        (HookStage::PreTraffic, Strategy::BlueGreen) => {
            enter_traffic_phase(t, Phase::PreTraffic, 0, [100, 0])
        }
        (HookStage::PostTraffic, Strategy::Rolling) => finish(t, now),
        (HookStage::PostTraffic, _) => {
            t.record.phase = Phase::Finishing;
            t.step = Step::Promote;
        }
        (HookStage::OnRollback, _) => restored(t, now),
    }
}

/// A hook's task: started (its ARN recorded before anything waits on it), watched until it
/// stops, stopped at its timeout. Success goes to the stage's next hook; a failure or timeout
/// rolls back (on_rollback hooks are recorded and the rollback goes on).
pub(super) fn hook(
    t: &mut Transition,
    spec: &RolloutSpec,
    observed: &Observation,
    now: DateTime<Utc>,
) {
    let Some(run) = t.record.hook.clone() else {
        // A hook phase without its record cannot be resumed as a hook: go back.
        roll_back(t, "a hook's record was lost".into(), false, now);
        return;
    };
    let Some(spec_hook) = spec.hooks.of(run.stage).get(run.index).cloned() else {
        enter_hook(t, spec, run.stage, run.index + 1, run.batch, now);
        return;
    };
    let label = format!(
        "{} hook {} ({})",
        run.stage.as_str(),
        run.index + 1,
        spec_hook.run.join(" ")
    );
    let on_rollback = run.stage == HookStage::OnRollback;
    match observed {
        Observation::Completed if run.timed_out => {
            let reason = format!(
                "{label} timed out after {}; its task {} was stopped",
                humantime::format_duration(spec_hook.timeout),
                run.run
            );
            t.events
                .push(event(EventKind::HookFailed, "failed", reason.clone()));
            if on_rollback {
                enter_hook(t, spec, run.stage, run.index + 1, run.batch, now);
            } else {
                roll_back(t, reason, false, now);
            }
        }
        Observation::Completed => {
            if let Some(h) = &mut t.record.hook {
                h.started_at = Some(stamp(now));
            }
            t.events.push(event(
                EventKind::HookStart,
                "ok",
                format!("{label}: task {}", run.run),
            ));
            t.step = Step::AwaitHook {
                after: Duration::ZERO,
            };
        }
        Observation::Ready(detail) => {
            t.events
                .push(event(EventKind::HookOk, "ok", format!("{label}: {detail}")));
            enter_hook(t, spec, run.stage, run.index + 1, run.batch, now);
        }
        Observation::Failed(reason) => {
            // Only on_rollback hooks get here (the others roll back in `next`).
            t.events.push(event(
                EventKind::HookFailed,
                "failed",
                format!("{label}: {reason}"),
            ));
            enter_hook(t, spec, run.stage, run.index + 1, run.batch, now);
        }
        Observation::NotReady(detail) => {
            let elapsed = since(&run.started_at, now);
            if let Some(h) = &mut t.record.hook {
                h.detail = detail.clone();
            }
            if elapsed >= spec_hook.timeout.as_secs_f64() {
                if let Some(h) = &mut t.record.hook {
                    h.timed_out = true;
                }
                t.step = Step::StopHook;
            } else {
                let left = spec_hook.timeout.as_secs_f64() - elapsed;
                t.step = Step::AwaitHook {
                    after: spec.interval.min(Duration::from_secs_f64(left.max(0.0))),
                };
            }
        }
        // Resumed (or anything else): carry on from what the record says.
        _ if run.timed_out => t.step = Step::StopHook,
        _ if run.run.is_empty() => t.step = Step::StartHook,
        _ => {
            t.step = Step::AwaitHook {
                after: Duration::ZERO,
            }
        }
    }
}
