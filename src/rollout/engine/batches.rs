//! Batches of hosts as engine transitions. Blue/green in batches: the first batch starts
//! with the revision and switches at step 1; each later batch is started beside the old
//! revision ([`Step::StartRevision`] in [`Phase::Batch`]), waited for until `ready_timeout`
//! ([`Step::AwaitReady`], which the driver schedules and Ctrl-C cuts short), has its
//! `per_host` pre_traffic hooks run on its own hosts, and only then is switched
//! ([`Step::SetWeights`]). Rolling in batches (recreate): one deploy and one readiness wait
//! per batch. The target never waits: every wait here is a step the driver schedules.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::hooks::enter_hook;
use super::{
    Observation, Phase, RolloutSpec, Step, Transition, enter_traffic_phase, event, not_ready, stamp,
};
use crate::audit::EventKind;
use crate::rollout::spec::HookStage;

/// Starts the batch of step `index` (its switch comes after it is ready): the intent is
/// persisted first, so a resume starts (or finds) the same batch again.
pub(super) fn enter(t: &mut Transition, index: usize) {
    let rec = &mut t.record;
    rec.phase = Phase::Batch;
    rec.step = index;
    rec.bake_started = None;
    rec.ready_started = None;
    t.step = Step::StartRevision;
}

/// A batch being started, waited for and hooked.
pub(super) fn batch(
    t: &mut Transition,
    spec: &RolloutSpec,
    observed: &Observation,
    now: DateTime<Utc>,
) {
    let started = t.record.ready_started.is_some();
    match observed {
        Observation::Completed if !started => {
            t.record.ready_started = Some(stamp(now));
            t.step = Step::AwaitReady {
                after: Duration::ZERO,
            };
        }
        Observation::Ready(detail) => {
            t.record.ready_started = None;
            t.events.push(event(
                EventKind::RolloutReady,
                "ok",
                format!("batch {}: {detail}", t.record.step),
            ));
            t.record.hooks_started = true;
            enter_hook(t, spec, HookStage::PreTraffic, 0, true, now);
        }
        Observation::NotReady(detail) => {
            not_ready(t, spec, &format!("batch {}: {detail}", t.record.step), now)
        }
        // Resumed (or anything else): start the batch again (it is found, not doubled), or
        // look again at the one being waited for.
        _ if started => {
            t.step = Step::AwaitReady {
                after: Duration::ZERO,
            }
        }
        _ => t.step = Step::StartRevision,
    }
}

/// The batch is ready and hooked: its switch (the last batch's is the full switch, then the
/// old revision is kept for `termination_wait`).
pub(super) fn switch(t: &mut Transition) {
    let rec = &t.record;
    let index = rec.step;
    if index + 1 >= rec.steps.len() {
        enter_traffic_phase(t, Phase::TerminationWait, index, [0, 100]);
    } else {
        let weight = rec.steps[index];
        enter_traffic_phase(t, Phase::Baking, index, [100 - weight, weight]);
    }
}

/// Rolling in batches: the batch that was just ready is done; the next one deploys.
pub(super) fn next_rolling(t: &mut Transition) {
    let rec = &mut t.record;
    rec.step += 1;
    rec.weights = [100 - rec.steps[rec.step], rec.steps[rec.step]];
    rec.phase = Phase::Deploying;
    rec.ready_started = None;
    t.step = Step::Deploy;
}
