//! The rollout engine: one pure step function over the persisted record, for every strategy
//! and every target. [`next`] takes the record and what the driver just observed and returns
//! the record to persist, the audit events to record and the one [`Step`] to carry out next.
//! It does no I/O and reads no clock of its own (the driver passes `now`).
//!
//! Guarantees:
//! - Intent before action: a step's record (its phase, step index and the weights it sets) is
//!   what the driver persists before it acts, so a run killed at any point resumes with
//!   [`Observation::Resumed`] and repeats the same step; every [`Step`] is idempotent on its
//!   target (weights set again, a task set found again, a promotion repeated).
//! - Traffic never goes backwards by itself: a resumed canary re-applies the step it recorded,
//!   never an earlier one.
//! - A failed gate, an abort, or a target's reported failure turns into [`Phase::RollingBack`]
//!   and [`Step::Restore`]; nothing else moves traffic back.
//!
//! Assumptions: the driver observes exactly one outcome per step it was given, and passes
//! requests and interrupts only while the rollout waits ([`Step::Evaluate`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::record::{GateResult, HookRun, Phase, RECORD_VERSION, Rollout, Status};
use super::spec::{HookStage, OnFail, OnTimeout, RolloutSpec, Strategy};
use crate::audit::EventKind;

/// What one gate found at one evaluation, before failures are counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `health.http`, `health.alarms`, `health.metrics.error_rate`, `health.command`.
    pub gate: String,
    /// What it saw.
    pub result: ProbeResult,
    /// What a failure does.
    pub on_fail: OnFail,
    /// Consecutive failures that fail the gate, for gates that count them (`health.http`);
    /// `None`: one failure fails it.
    pub threshold: Option<u32>,
}

/// One gate's raw result.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeResult {
    /// Healthy, with the figures judged ("" when the gate has none to show).
    Pass(String),
    /// Unhealthy, with what was seen.
    Fail(String),
    /// Nothing to judge (no datapoints with `no_data: wait`, a read that failed).
    NoData(String),
}

/// A request from another process (`rollout promote|abort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Skip the rest of the current bake.
    Promote,
    /// Go straight to 100%.
    PromoteFull,
    /// Roll back now.
    Abort,
}

impl Request {
    /// The request as stored in state (`promote`, `promote_full`, `abort`).
    pub fn parse(text: &str) -> Option<Request> {
        match text {
            "promote" => Some(Request::Promote),
            "promote_full" => Some(Request::PromoteFull),
            "abort" => Some(Request::Abort),
            _ => None,
        }
    }
}

/// What the driver saw since the last step.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The driver (re)starts from this record: a new rollout, a resume, or after a crash.
    Resumed,
    /// The last step completed on the target.
    Completed,
    /// The target reports that the last step failed in a way that calls for a rollback
    /// (a rolling deploy that ECS rolled back or that never became ready).
    Failed(String),
    /// The new revision is ready, with what shows it.
    Ready(String),
    /// The new revision is not ready yet, with what was seen.
    NotReady(String),
    /// The gates were evaluated.
    Gates(Vec<Probe>),
    /// Someone asked for something.
    Requested(Request),
    /// Ctrl-C or SIGTERM: stop at this safe point.
    Interrupted,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create the new revision beside the old one, taking no traffic.
    StartRevision,
    /// Set the traffic weights `[old, new]` (blue/green pre-traffic: the test listener to new).
    SetWeights([i32; 2]),
    /// Wait this long, then take requests and evaluate the gates.
    Evaluate {
        /// How long to wait first.
        after: Duration,
    },
    /// Rolling: update the service in place to the new revision.
    Deploy,
    /// Wait this long, then ask whether the new revision is ready.
    AwaitReady {
        /// How long to wait first.
        after: Duration,
    },
    /// Make the new revision primary at 100% and remove the old one.
    Promote,
    /// Put all traffic back on the old revision and remove the new one.
    Restore,
    /// Weights the target said are still being set: wait this long, then set them again.
    SetWeightsAgain {
        /// The weights.
        weights: [i32; 2],
        /// How long to wait first.
        after: Duration,
    },
    /// A promote the target said is under way: wait this long, then promote again.
    PromoteAgain {
        /// How long to wait first.
        after: Duration,
    },
    /// A restore the target said is under way: wait this long, then restore again.
    RestoreAgain {
        /// How long to wait first.
        after: Duration,
    },
    /// Take the declared backups (before the pre_traffic hooks) and record them.
    Backup,
    /// Start the recorded hook's one-off task (RunTask).
    StartHook,
    /// Wait this long, then look at the hook's task.
    AwaitHook {
        /// How long to wait first.
        after: Duration,
    },
    /// Stop the hook's task (it timed out).
    StopHook,
    /// At a pause: take a steering request if one is waiting (`Requested`), else observe
    /// `Completed`.
    TakeRequest,
    /// Nothing more: the rollout ended, or stopped resumably.
    Stop(Outcome),
}

/// How a run of the driver ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The new revision is primary.
    Succeeded,
    /// Traffic went back to the old revision.
    RolledBack {
        /// Why.
        reason: String,
        /// Seconds from the decision to traffic restored.
        seconds: f64,
        /// Asked for (abort, superseded) rather than a gate's.
        aborted: bool,
    },
    /// Stopped at a safe point; `rollout resume` continues.
    Interrupted,
    /// Not ready by `ready_timeout`; `on_timeout: leave` left the deployment to the target.
    Left {
        /// What was last seen.
        reason: String,
    },
    /// At a pause, waiting for `rollout promote` until the record's `pause_until`.
    Paused,
}

/// An audit event (and webhook notification) a transition produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened (`rollout start`, `rollout step`, `gate failed`, `rollback`, ...).
    pub action: EventKind,
    /// `ok`, `failed` or `alert`.
    pub outcome: &'static str,
    /// What happened, for people.
    pub detail: String,
}

/// The result of [`next`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The record to persist before acting.
    pub record: Rollout,
    /// Events to record once it is persisted.
    pub events: Vec<Event>,
    /// What to do.
    pub step: Step,
}

/// The steps of `spec` as the record keeps them: canary weights ending at 100; for
/// blue/green the pre-traffic 0 and then the switch (`[0, 100]`), or one switch per batch of
/// hosts (`[0, 50, 100]`); `[100]` for rolling.
pub fn record_steps(spec: &RolloutSpec) -> Vec<i32> {
    match spec.strategy {
        Strategy::Canary => spec.steps.clone(),
        Strategy::BlueGreen => std::iter::once(0)
            .chain(spec.steps.iter().copied().filter(|w| *w > 0))
            .chain((spec.steps.last() != Some(&100)).then_some(100))
            .collect(),
        // Rolling in batches (hosts, recreate): one step per batch.
        Strategy::Rolling if spec.steps.len() > 1 => spec.steps.clone(),
        Strategy::Rolling => vec![100],
    }
}

/// A new record for a rollout of `spec`, in [`Phase::Starting`].
pub fn new_record(spec: &RolloutSpec, id: String, address: String, now: DateTime<Utc>) -> Rollout {
    let time = stamp(now);
    Rollout {
        version: RECORD_VERSION,
        id,
        address,
        strategy: spec.strategy.as_str().into(),
        status: Status::Running,
        phase: Phase::Starting,
        steps: record_steps(spec),
        step: 0,
        weights: [100, 0],
        old_revision: String::new(),
        new_revision: String::new(),
        bake_started: None,
        bake_seconds: 0.0,
        gates: Vec::new(),
        reason: None,
        rollback_seconds: None,
        rollback_started: None,
        ready_started: None,
        traffic_started: None,
        hook: None,
        paused_at: None,
        pause_until: None,
        undo: None,
        target: Default::default(),
        hooks_started: false,
        backups: Vec::new(),
        backups_pruned: Vec::new(),
        aborting: false,
        failures: Default::default(),
        desired_hash: String::new(),
        started_at: time.clone(),
        updated_at: time,
        finished_at: None,
    }
}

/// The next step of the rollout `rec` of `spec`, given what was just observed at `now`.
pub fn next(
    rec: &Rollout,
    spec: &RolloutSpec,
    observed: &Observation,
    now: DateTime<Utc>,
) -> Transition {
    let mut t = Transition {
        record: rec.clone(),
        events: Vec::new(),
        step: Step::Stop(Outcome::Interrupted),
    };
    t.record.updated_at = stamp(now);
    t.record.version = RECORD_VERSION;
    if !rec.status.unfinished() || rec.phase == Phase::Done {
        t.step = Step::Stop(ended(rec));
        return t;
    }
    match observed {
        Observation::Interrupted => {
            t.step = Step::Stop(Outcome::Interrupted);
            return t;
        }
        Observation::Requested(Request::Abort) if rec.phase != Phase::RollingBack => {
            roll_back(
                &mut t,
                "aborted with `converge rollout abort`".into(),
                true,
                now,
            );
            return t;
        }
        Observation::Failed(reason)
            if rec.phase != Phase::RollingBack && !rolling_back_hook(rec) =>
        {
            let reason = match &rec.hook {
                Some(h) if rec.phase == Phase::Hook => {
                    t.events
                        .push(event(EventKind::HookFailed, "failed", reason.clone()));
                    format!("{} hook {} failed: {reason}", h.stage.as_str(), h.index + 1)
                }
                _ => reason.clone(),
            };
            roll_back(&mut t, reason, false, now);
            return t;
        }
        _ => {}
    }
    match rec.phase {
        Phase::Starting => match observed {
            Observation::Completed => {
                t.events.push(event(
                    EventKind::RolloutStart,
                    "ok",
                    format!("{}: {}", spec.summary(), rec.new_revision),
                ));
                match spec.strategy {
                    Strategy::Canary | Strategy::BlueGreen => await_ready(&mut t, now),
                    Strategy::Rolling => enter_pre_traffic(&mut t, spec, now),
                }
            }
            _ => t.step = Step::StartRevision,
        },
        Phase::Baking | Phase::PreTraffic | Phase::TerminationWait => {
            traffic(&mut t, spec, observed, now)
        }
        Phase::Deploying => match observed {
            Observation::Completed => await_ready(&mut t, now),
            _ => t.step = Step::Deploy,
        },
        Phase::Ready => ready(&mut t, spec, observed, now),
        Phase::Finishing => match observed {
            Observation::Completed => finish(&mut t, now),
            // Under way (a host's old nginx workers still drain): again after a short wait.
            Observation::NotReady(_) => {
                t.step = Step::PromoteAgain {
                    after: settle(spec),
                }
            }
            _ => t.step = Step::Promote,
        },
        Phase::RollingBack => match observed {
            Observation::Completed => {
                t.record.rollback_seconds = Some(since(&t.record.rollback_started, now));
                // on_rollback undoes what pre_traffic hooks or traffic did: a revision that
                // never got that far (not ready, refused) has nothing to undo.
                if t.record.hooks_started || t.record.traffic_started.is_some() {
                    enter_hooks(&mut t, spec, HookStage::OnRollback, now)
                } else {
                    restored(&mut t, now)
                }
            }
            // Under way (the old colour starting again): again after a short wait.
            Observation::NotReady(_) => {
                t.step = Step::RestoreAgain {
                    after: settle(spec),
                }
            }
            _ => t.step = Step::Restore,
        },
        Phase::Hook => hook(&mut t, spec, observed, now),
        Phase::Backup => match observed {
            Observation::Ready(detail) => {
                t.events
                    .push(event(EventKind::RolloutBackup, "ok", detail.clone()));
                enter_hooks(&mut t, spec, HookStage::PreTraffic, now)
            }
            _ => t.step = Step::Backup,
        },
        Phase::Batch => batches::batch(&mut t, spec, observed, now),
        Phase::Paused => paused(&mut t, spec, observed, now),
        Phase::Done => unreachable!("handled above"),
    }
    t
}

/// Where a ready new revision goes before any traffic moves: its declared backups first when
/// it has pre_traffic hooks (migrations) to protect, then those hooks.
fn enter_pre_traffic(t: &mut Transition, spec: &RolloutSpec, now: DateTime<Utc>) {
    if spec.backup && !spec.hooks.pre_traffic.is_empty() {
        t.record.phase = Phase::Backup;
        t.record.bake_started = None;
        t.step = Step::Backup;
    } else {
        enter_hooks(t, spec, HookStage::PreTraffic, now)
    }
}

/// Starts (or, when a resumed record already started it, keeps) the wait for readiness.
fn await_ready(t: &mut Transition, now: DateTime<Utc>) {
    t.record.phase = Phase::Ready;
    t.record.bake_started = None;
    if t.record.ready_started.is_none() {
        t.record.ready_started = Some(stamp(now));
    }
    t.step = Step::AwaitReady {
        after: Duration::ZERO,
    };
}

/// The wait for readiness: on, until the target says ready (then traffic may move, or a
/// rolling deploy is done), failed (roll back), or `ready_timeout` passes (roll back, or leave
/// it with `on_timeout: leave`). The deadline counts from the first wait, across resumes.
fn ready(t: &mut Transition, spec: &RolloutSpec, observed: &Observation, now: DateTime<Utc>) {
    match observed {
        Observation::Ready(detail) => {
            t.events
                .push(event(EventKind::RolloutReady, "ok", detail.clone()));
            t.record.ready_started = None;
            match spec.strategy {
                Strategy::Rolling if t.record.step + 1 < t.record.steps.len() => {
                    batches::next_rolling(t)
                }
                Strategy::Rolling => enter_hooks(t, spec, HookStage::PostTraffic, now),
                Strategy::Canary | Strategy::BlueGreen => enter_pre_traffic(t, spec, now),
            }
        }
        Observation::NotReady(detail) => not_ready(t, spec, detail, now),
        _ => await_ready(t, now),
    }
}

/// Not ready yet: another look after `interval`, or past `ready_timeout` (counted from
/// `ready_started`) a rollback, or with `on_timeout: leave` the deployment left as it is.
fn not_ready(t: &mut Transition, spec: &RolloutSpec, detail: &str, now: DateTime<Utc>) {
    let elapsed = Duration::from_secs_f64(since(&t.record.ready_started, now));
    if elapsed < spec.ready_timeout {
        t.step = Step::AwaitReady {
            after: spec.interval.min(spec.ready_timeout - elapsed),
        };
        return;
    }
    let reason = format!(
        "not ready after ready_timeout {}: {detail}",
        humantime::format_duration(spec.ready_timeout)
    );
    match spec.on_timeout {
        OnTimeout::Rollback => {
            t.events
                .push(event(EventKind::RolloutNotReady, "failed", reason.clone()));
            roll_back(t, reason, false, now);
        }
        OnTimeout::Leave => {
            let reason = format!("{reason}; on_timeout: leave, so it is left deploying");
            t.events
                .push(event(EventKind::RolloutNotReady, "failed", reason.clone()));
            let rec = &mut t.record;
            rec.status = Status::Left;
            rec.phase = Phase::Done;
            rec.reason = Some(reason);
            rec.finished_at = Some(stamp(now));
            t.step = Step::Stop(ended(rec));
        }
    }
}

/// How a finished record ended.
fn ended(rec: &Rollout) -> Outcome {
    match rec.status {
        Status::Succeeded => Outcome::Succeeded,
        Status::Running => Outcome::Interrupted,
        Status::Paused => Outcome::Paused,
        Status::Left => Outcome::Left {
            reason: rec.reason.clone().unwrap_or_default(),
        },
        Status::RolledBack | Status::Aborted => Outcome::RolledBack {
            reason: rec.reason.clone().unwrap_or_default(),
            seconds: rec.rollback_seconds.unwrap_or_default(),
            aborted: rec.status == Status::Aborted,
        },
    }
}

/// A phase that holds traffic and bakes: set its weights (again, after a resume), then bake.
fn traffic(t: &mut Transition, spec: &RolloutSpec, observed: &Observation, now: DateTime<Utc>) {
    let rec = t.record.clone();
    match observed {
        // Resumed: the weights may or may not have been set before the crash: set them
        // (again) and bake the step from its start.
        Observation::Resumed
        | Observation::Failed(_)
        | Observation::Interrupted
        | Observation::Ready(_) => {
            t.record.bake_started = None;
            t.step = Step::SetWeights(rec.weights);
        }
        // Under way (nginx's new workers not seen yet): again after a short wait.
        Observation::NotReady(_) => {
            t.record.bake_started = None;
            t.step = Step::SetWeightsAgain {
                weights: rec.weights,
                after: settle(spec),
            };
        }
        Observation::Completed if rec.bake_started.is_none() => {
            t.record.bake_started = Some(stamp(now));
            if t.record.traffic_started.is_none() {
                t.record.traffic_started = Some(stamp(now));
            }
            t.record.bake_seconds = bake_length(spec, rec.phase).as_secs_f64();
            t.events.push(step_event(spec, &rec));
            t.step = Step::Evaluate {
                after: Duration::ZERO,
            };
        }
        Observation::Completed => {
            t.step = Step::Evaluate {
                after: spec.interval,
            }
        }
        Observation::Requested(Request::Promote) => {
            t.events.push(event(
                EventKind::RolloutPromote,
                "ok",
                "bake skipped: promoted to the next step".into(),
            ));
            advance(t, spec, now);
        }
        Observation::Requested(Request::PromoteFull) => {
            t.events.push(event(
                EventKind::RolloutPromote,
                "ok",
                "promoted straight to 100%".into(),
            ));
            t.record.step = t.record.steps.len() - 1;
            t.record.bake_started = None;
            enter_hooks(t, spec, HookStage::PostTraffic, now);
        }
        Observation::Requested(Request::Abort) => unreachable!("handled by next"),
        Observation::Gates(probes) => {
            if let Some(reason) = judge(t, probes, now) {
                t.events
                    .push(event(EventKind::GateFailed, "failed", reason.clone()));
                roll_back(t, reason, false, now);
                return;
            }
            let length = bake_length(spec, rec.phase);
            let elapsed = rec
                .bake_started
                .as_deref()
                .and_then(parse_stamp)
                .map(|s| (now - s).to_std().unwrap_or_default())
                .unwrap_or_default();
            if elapsed >= length {
                advance(t, spec, now);
            } else {
                t.step = Step::Evaluate {
                    after: spec.interval.min(length - elapsed),
                };
            }
        }
    }
}

/// Records each probe's verdict (counting consecutive failures where the gate counts them);
/// returns the reason to roll back when a gate failed with `on_fail: rollback`.
fn judge(t: &mut Transition, probes: &[Probe], now: DateTime<Utc>) -> Option<String> {
    let mut rollback = None;
    for p in probes {
        let (outcome, detail) = match &p.result {
            ProbeResult::Pass(seen) => {
                t.record.failures.remove(&p.gate);
                ("pass", seen.clone())
            }
            ProbeResult::NoData(text) => ("no_data", text.clone()),
            ProbeResult::Fail(text) => {
                let (failed, detail) = match p.threshold {
                    Some(threshold) => {
                        let count = t.record.failures.entry(p.gate.clone()).or_insert(0);
                        *count += 1;
                        let detail = format!(
                            "{count} consecutive failure{}, last: {text}",
                            if *count == 1 { "" } else { "s" }
                        );
                        (*count >= threshold, detail)
                    }
                    None => (true, text.clone()),
                };
                match (failed, p.on_fail) {
                    (false, _) => ("pending", detail),
                    (true, OnFail::Alert) => ("alert", detail),
                    (true, OnFail::Rollback) => ("fail", detail),
                }
            }
        };
        t.record.push_gate(GateResult {
            time: stamp(now),
            gate: p.gate.clone(),
            outcome: outcome.into(),
            detail: detail.clone(),
        });
        match outcome {
            "fail" if rollback.is_none() => rollback = Some(format!("{}: {detail}", p.gate)),
            "alert" => t.events.push(event(
                EventKind::GateAlert,
                "alert",
                format!("{}: {detail}", p.gate),
            )),
            _ => {}
        }
        if rollback.is_some() {
            break;
        }
    }
    rollback
}

/// The bake is over (or skipped): the next step, the switch, or the promotion (after the
/// post-traffic hooks).
fn advance(t: &mut Transition, spec: &RolloutSpec, now: DateTime<Utc>) {
    let rec = t.record.clone();
    match (spec.strategy, rec.phase) {
        (Strategy::Canary, Phase::Baking) if spec.pauses.contains(&rec.step) => {
            enter_pause(t, spec, now)
        }
        (Strategy::Canary, Phase::Baking | Phase::Paused) if rec.step + 1 < rec.steps.len() => {
            enter_canary_step(t, rec.step + 1)
        }
        // Blue/green in batches of hosts: each batch switched in turn (baking `bake`, one
        // look of the gates with none), the old revision kept until the last one is.
        (Strategy::BlueGreen, Phase::PreTraffic | Phase::Baking) => {
            let next = rec.step + 1;
            if next >= 2 {
                // A batch after the first: started and made ready before its switch.
                batches::enter(t, next)
            } else if next + 1 >= rec.steps.len() {
                enter_traffic_phase(t, Phase::TerminationWait, rec.steps.len() - 1, [0, 100])
            } else {
                let weight = rec.steps[next];
                enter_traffic_phase(t, Phase::Baking, next, [100 - weight, weight])
            }
        }
        _ => {
            t.record.bake_started = None;
            enter_hooks(t, spec, HookStage::PostTraffic, now);
        }
    }
}

/// Holds traffic where it is and stops: `rollout promote` continues, `pause_timeout` (checked
/// by the next converge command that touches the environment) rolls back.
fn enter_pause(t: &mut Transition, spec: &RolloutSpec, now: DateTime<Utc>) {
    let until = now + chrono::Duration::from_std(spec.pause_timeout).unwrap_or_default();
    let rec = &mut t.record;
    rec.phase = Phase::Paused;
    rec.status = Status::Paused;
    rec.bake_started = None;
    rec.paused_at = Some(stamp(now));
    rec.pause_until = Some(stamp(until));
    t.events.push(event(
        EventKind::RolloutPaused,
        "ok",
        format!(
            "step {} of {}: {}% of traffic on the new revision; waiting for `converge rollout promote {}` until {} (pause_timeout {}), then it rolls back",
            rec.step + 1,
            rec.steps.len(),
            rec.weights[1],
            rec.address,
            stamp(until),
            humantime::format_duration(spec.pause_timeout)
        ),
    ));
    t.step = Step::Stop(Outcome::Paused);
}

/// At a pause: a promote continues (the next step, or straight to 100%); past `pause_until`
/// it rolls back; otherwise it looks once for a request and stops, still paused.
fn paused(t: &mut Transition, spec: &RolloutSpec, observed: &Observation, now: DateTime<Utc>) {
    let resume = |t: &mut Transition| {
        t.record.status = Status::Running;
        t.record.paused_at = None;
        t.record.pause_until = None;
    };
    match observed {
        Observation::Requested(Request::Promote) => {
            resume(t);
            t.events.push(event(
                EventKind::RolloutPromote,
                "ok",
                "promoted past the pause".into(),
            ));
            advance(t, spec, now);
        }
        Observation::Requested(Request::PromoteFull) => {
            resume(t);
            t.events.push(event(
                EventKind::RolloutPromote,
                "ok",
                "promoted past the pause straight to 100%".into(),
            ));
            t.record.step = t.record.steps.len() - 1;
            enter_hooks(t, spec, HookStage::PostTraffic, now);
        }
        _ if t.record.pause_expired(now) => {
            let reason = format!(
                "paused longer than pause_timeout {} without `converge rollout promote`",
                humantime::format_duration(spec.pause_timeout)
            );
            resume(t);
            t.events.push(event(
                EventKind::RolloutPauseExpired,
                "failed",
                reason.clone(),
            ));
            roll_back(t, reason, false, now);
        }
        Observation::Completed => t.step = Step::Stop(Outcome::Paused),
        _ => t.step = Step::TakeRequest,
    }
}

/// How long to wait before repeating a promote or restore that is under way.
fn settle(spec: &RolloutSpec) -> Duration {
    spec.interval.min(Duration::from_millis(250))
}

/// Seconds from the stamp `from` (absent: none) to `now`.
fn since(from: &Option<String>, now: DateTime<Utc>) -> f64 {
    from.as_deref()
        .and_then(parse_stamp)
        .map(|s| (now - s).num_milliseconds() as f64 / 1000.0)
        .unwrap_or_default()
        .max(0.0)
}

fn enter_canary_step(t: &mut Transition, index: usize) {
    let weight = t.record.steps[index];
    enter_traffic_phase(t, Phase::Baking, index, [100 - weight, weight]);
}

/// Persists the intent (phase, step, weights) before the weights are set.
fn enter_traffic_phase(t: &mut Transition, phase: Phase, index: usize, weights: [i32; 2]) {
    t.record.phase = phase;
    t.record.step = index;
    t.record.weights = weights;
    t.record.bake_started = None;
    t.step = Step::SetWeights(weights);
}

fn bake_length(spec: &RolloutSpec, phase: Phase) -> Duration {
    match phase {
        Phase::TerminationWait => spec.termination_wait,
        _ => spec.bake,
    }
}

/// The event that says a traffic phase has begun (its weights are set).
fn step_event(spec: &RolloutSpec, rec: &Rollout) -> Event {
    match rec.phase {
        Phase::PreTraffic => event(
            EventKind::RolloutStep,
            "ok",
            "pre-traffic checks at 0%".into(),
        ),
        Phase::TerminationWait => event(
            EventKind::RolloutSwitch,
            "ok",
            format!(
                "100% of traffic on the new revision; the old one is kept {}",
                humantime::format_duration(spec.termination_wait)
            ),
        ),
        _ => event(
            EventKind::RolloutStep,
            "ok",
            format!(
                "step {} of {}: {}% of traffic on the new revision",
                rec.step + 1,
                rec.steps.len(),
                rec.weights[1]
            ),
        ),
    }
}

fn roll_back(t: &mut Transition, reason: String, aborted: bool, now: DateTime<Utc>) {
    t.record.status = Status::Running;
    t.record.paused_at = None;
    t.record.pause_until = None;
    t.record.phase = Phase::RollingBack;
    t.record.hook = None;
    t.record.rollback_seconds = None;
    t.record.reason = Some(reason);
    t.record.aborting = aborted;
    t.record.rollback_started = Some(stamp(now));
    t.record.bake_started = None;
    t.step = Step::Restore;
}

fn restored(t: &mut Transition, now: DateTime<Utc>) {
    let rec = &mut t.record;
    // Traffic was restored when the restore completed (on_rollback hooks may have run since).
    let seconds = rec
        .rollback_seconds
        .unwrap_or_else(|| since(&rec.rollback_started, now));
    rec.status = if rec.aborting {
        Status::Aborted
    } else {
        Status::RolledBack
    };
    rec.phase = Phase::Done;
    rec.weights = [100, 0];
    rec.rollback_seconds = Some(seconds);
    rec.finished_at = Some(stamp(now));
    let reason = rec.reason.clone().unwrap_or_default();
    let old = last_segment(&rec.old_revision).to_string();
    let detail = if old.is_empty() {
        format!("{reason}; it was the service's first revision, so there was none to go back to")
    } else if rec.strategy == "rolling" {
        format!("{reason}; the service runs {old} again, {seconds:.2}s after the decision")
    } else {
        format!("{reason}; all traffic back on {old} in {seconds:.2}s")
    };
    t.events.push(event(EventKind::Rollback, "ok", detail));
    t.step = Step::Stop(ended(&t.record));
}

fn finish(t: &mut Transition, now: DateTime<Utc>) {
    let rec = &mut t.record;
    rec.status = Status::Succeeded;
    rec.phase = Phase::Done;
    rec.weights = [0, 100];
    rec.step = rec.steps.len() - 1;
    rec.bake_started = None;
    rec.finished_at = Some(stamp(now));
    let detail = if rec.old_revision.is_empty() || rec.strategy == "rolling" {
        format!("{} is primary at 100%", last_segment(&rec.new_revision))
    } else {
        format!(
            "{} is primary at 100%; {} removed",
            last_segment(&rec.new_revision),
            last_segment(&rec.old_revision)
        )
    };
    t.events
        .push(event(EventKind::RolloutComplete, "ok", detail));
    t.step = Step::Stop(Outcome::Succeeded);
}

fn event(action: EventKind, outcome: &'static str, detail: String) -> Event {
    Event {
        action,
        outcome,
        detail,
    }
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A time as records keep it: RFC 3339 with milliseconds.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

mod batches;
mod hooks;

use hooks::{enter_hooks, hook, rolling_back_hook};
#[cfg(test)]
mod tests;
