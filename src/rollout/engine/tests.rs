//! Every transition of the engine, with no cloud: each strategy's steps, gate verdicts and
//! consecutive-failure counting, promote, promote --full, abort, interrupts, resume after a
//! crash at each phase, rollback, and records written by the release before the engine.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::rollout::spec::{Health, HookStage, OnFail, OnTimeout, RolloutSpec, Strategy};

fn spec(strategy: Strategy) -> RolloutSpec {
    RolloutSpec {
        strategy,
        ready_timeout: Duration::from_secs(120),
        on_timeout: OnTimeout::Rollback,
        wait: true,
        steps: match strategy {
            Strategy::Canary => vec![10, 50, 100],
            Strategy::BlueGreen | Strategy::Rolling => vec![100],
        },
        bake: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        termination_wait: Duration::from_secs(300),
        listener_arn: "listener".into(),
        target_groups: vec!["blue".into(), "green".into()],
        test_listener_arn: None,
        health: Health::default(),
        max_run_rate_increase: None,
        webhook: None,
        hooks: Default::default(),
        backup: false,
        pauses: Vec::new(),
        pause_timeout: Duration::from_secs(3600),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn fresh(spec: &RolloutSpec) -> Rollout {
    let mut r = new_record(spec, "id".into(), "api".into(), at(0));
    r.old_revision = "arn:td/api:1".into();
    r.new_revision = "arn:td/api:2".into();
    r
}

fn http(result: ProbeResult) -> Probe {
    Probe {
        gate: "health.http".into(),
        result,
        on_fail: OnFail::Rollback,
        threshold: Some(3),
    }
}

fn once(gate: &str, result: ProbeResult, on_fail: OnFail) -> Probe {
    Probe {
        gate: gate.into(),
        result,
        on_fail,
        threshold: None,
    }
}

/// Applies `observed` at `t` seconds and returns the transition, keeping its record.
fn step(rec: &mut Rollout, spec: &RolloutSpec, observed: Observation, t: i64) -> Transition {
    let tr = next(rec, spec, &observed, at(t));
    *rec = tr.record.clone();
    tr
}

fn actions(t: &Transition) -> Vec<EventKind> {
    t.events.iter().map(|e| e.action).collect()
}

fn ready() -> Observation {
    Observation::Ready("task set steady".into())
}

/// Brings a canary to the start of its first bake.
fn baking(spec: &RolloutSpec) -> Rollout {
    let mut rec = fresh(spec);
    step(&mut rec, spec, Observation::Resumed, 0);
    step(&mut rec, spec, Observation::Completed, 0);
    step(&mut rec, spec, ready(), 0);
    step(&mut rec, spec, Observation::Completed, 0);
    rec
}

#[test]
fn a_new_rollout_starts_its_revision_and_persists_each_step_before_acting() {
    let s = spec(Strategy::Canary);
    let mut rec = fresh(&s);
    let t = step(&mut rec, &s, Observation::Resumed, 0);
    assert_eq!(t.step, Step::StartRevision);
    assert_eq!(rec.phase, Phase::Starting);

    let t = step(&mut rec, &s, Observation::Completed, 1);
    assert_eq!(actions(&t), [EventKind::RolloutStart]);
    // No weight moves before the new revision is ready.
    assert_eq!(
        (t.step, rec.phase, rec.weights),
        (
            Step::AwaitReady {
                after: Duration::ZERO
            },
            Phase::Ready,
            [100, 0]
        )
    );
    let t = step(&mut rec, &s, ready(), 1);
    assert_eq!(actions(&t), [EventKind::RolloutReady]);
    assert_eq!(t.step, Step::SetWeights([90, 10]));
    // The intent is in the record that is saved before the weights move.
    assert_eq!(
        (rec.phase, rec.step, rec.weights),
        (Phase::Baking, 0, [90, 10])
    );
    assert_eq!(rec.bake_started, None);

    let t = step(&mut rec, &s, Observation::Completed, 2);
    assert_eq!(actions(&t), [EventKind::RolloutStep]);
    assert_eq!(
        t.events[0].detail,
        "step 1 of 3: 10% of traffic on the new revision"
    );
    assert_eq!(
        t.step,
        Step::Evaluate {
            after: Duration::ZERO
        }
    );
    assert!(rec.bake_started.is_some());
    assert_eq!(rec.bake_seconds, 60.0);
}

#[test]
fn a_canary_bakes_each_step_then_promotes() {
    let s = spec(Strategy::Canary);
    let mut rec = baking(&s);
    let pass = || Observation::Gates(vec![http(ProbeResult::Pass(String::new()))]);
    // Inside the bake: evaluate again after one interval (or what is left of the bake).
    assert_eq!(
        step(&mut rec, &s, pass(), 0).step,
        Step::Evaluate {
            after: Duration::from_secs(10)
        }
    );
    assert_eq!(
        step(&mut rec, &s, pass(), 55).step,
        Step::Evaluate {
            after: Duration::from_secs(5)
        }
    );
    // The bake is over: the next step's weights.
    assert_eq!(
        step(&mut rec, &s, pass(), 60).step,
        Step::SetWeights([50, 50])
    );
    assert_eq!((rec.step, rec.weights), (1, [50, 50]));
    step(&mut rec, &s, Observation::Completed, 61);
    assert_eq!(
        step(&mut rec, &s, pass(), 121).step,
        Step::SetWeights([0, 100])
    );
    step(&mut rec, &s, Observation::Completed, 122);
    let t = step(&mut rec, &s, pass(), 182);
    assert_eq!(t.step, Step::Promote);
    assert_eq!(rec.phase, Phase::Finishing);
    let t = step(&mut rec, &s, Observation::Completed, 183);
    assert_eq!(t.step, Step::Stop(Outcome::Succeeded));
    assert_eq!(actions(&t), [EventKind::RolloutComplete]);
    assert_eq!(
        t.events[0].detail,
        "api:2 is primary at 100%; api:1 removed"
    );
    assert_eq!(
        (rec.status, rec.phase, rec.weights),
        (Status::Succeeded, Phase::Done, [0, 100])
    );
    assert_eq!(rec.gates.iter().filter(|g| g.outcome == "pass").count(), 5);
}

#[test]
fn consecutive_failures_are_counted_reset_by_a_pass_and_fail_at_the_threshold() {
    let s = spec(Strategy::Canary);
    let mut rec = baking(&s);
    let fail = || Observation::Gates(vec![http(ProbeResult::Fail("500 from /health".into()))]);
    for n in 1..=2 {
        let t = step(&mut rec, &s, fail(), n);
        assert!(
            matches!(t.step, Step::Evaluate { .. }),
            "failure {n} is pending"
        );
        assert_eq!(rec.gates.last().unwrap().outcome, "pending");
    }
    assert_eq!(rec.failures["health.http"], 2);
    step(
        &mut rec,
        &s,
        Observation::Gates(vec![http(ProbeResult::Pass(String::new()))]),
        3,
    );
    assert!(
        !rec.failures.contains_key("health.http"),
        "a pass resets the count"
    );
    step(&mut rec, &s, fail(), 4);
    step(&mut rec, &s, fail(), 5);
    let t = step(&mut rec, &s, fail(), 6);
    assert_eq!(t.step, Step::Restore);
    assert_eq!(actions(&t), [EventKind::GateFailed]);
    let reason = "health.http: 3 consecutive failures, last: 500 from /health";
    assert_eq!(rec.reason.as_deref(), Some(reason));
    assert_eq!((rec.phase, rec.aborting), (Phase::RollingBack, false));
    assert_eq!(rec.rollback_started.as_deref(), Some(stamp(at(6)).as_str()));

    let t = step(&mut rec, &s, Observation::Completed, 8);
    assert_eq!(
        t.step,
        Step::Stop(Outcome::RolledBack {
            reason: reason.into(),
            seconds: 2.0,
            aborted: false
        })
    );
    assert_eq!(actions(&t), [EventKind::Rollback]);
    assert_eq!(
        t.events[0].detail,
        format!("{reason}; all traffic back on api:1 in 2.00s")
    );
    assert_eq!(
        (rec.status, rec.weights, rec.rollback_seconds),
        (Status::RolledBack, [100, 0], Some(2.0))
    );
}

#[test]
fn gates_without_a_count_fail_at_once_alerts_go_on_and_no_data_waits() {
    let s = spec(Strategy::Canary);
    let mut rec = baking(&s);
    let t = step(
        &mut rec,
        &s,
        Observation::Gates(vec![
            once(
                "health.metrics.p95_latency",
                ProbeResult::Fail("p95 3.1× baseline".into()),
                OnFail::Alert,
            ),
            once(
                "health.metrics.error_rate",
                ProbeResult::NoData("no datapoints yet".into()),
                OnFail::Rollback,
            ),
        ]),
        1,
    );
    assert!(matches!(t.step, Step::Evaluate { .. }));
    assert_eq!(actions(&t), [EventKind::GateAlert]);
    let outcomes: Vec<&str> = rec.gates.iter().map(|g| g.outcome.as_str()).collect();
    assert_eq!(outcomes, ["alert", "no_data"]);
    let t = step(
        &mut rec,
        &s,
        Observation::Gates(vec![once(
            "health.alarms",
            ProbeResult::Fail("alarm api-5xx is in ALARM".into()),
            OnFail::Rollback,
        )]),
        2,
    );
    assert_eq!(t.step, Step::Restore);
    assert_eq!(
        rec.reason.as_deref(),
        Some("health.alarms: alarm api-5xx is in ALARM")
    );
}

#[test]
fn promote_skips_a_bake_promote_full_goes_to_100_and_abort_rolls_back() {
    let s = spec(Strategy::Canary);
    let mut rec = baking(&s);
    let t = step(&mut rec, &s, Observation::Requested(Request::Promote), 1);
    assert_eq!(actions(&t), [EventKind::RolloutPromote]);
    assert_eq!(t.step, Step::SetWeights([50, 50]));

    let mut full = baking(&s);
    let t = step(
        &mut full,
        &s,
        Observation::Requested(Request::PromoteFull),
        1,
    );
    assert_eq!(t.events[0].detail, "promoted straight to 100%");
    assert_eq!((t.step, full.phase), (Step::Promote, Phase::Finishing));

    let t = step(&mut rec, &s, Observation::Requested(Request::Abort), 2);
    assert_eq!(t.step, Step::Restore);
    assert!(rec.aborting);
    let t = step(&mut rec, &s, Observation::Completed, 3);
    assert!(matches!(
        t.step,
        Step::Stop(Outcome::RolledBack { aborted: true, .. })
    ));
    assert_eq!(rec.status, Status::Aborted);
    assert_eq!(
        rec.reason.as_deref(),
        Some("aborted with `converge rollout abort`")
    );
}

#[test]
fn an_interrupt_stops_resumably_without_changing_where_it_is() {
    let s = spec(Strategy::Canary);
    let mut rec = baking(&s);
    let before = (rec.phase, rec.step, rec.weights);
    let t = step(&mut rec, &s, Observation::Interrupted, 5);
    assert_eq!(t.step, Step::Stop(Outcome::Interrupted));
    assert_eq!(
        (rec.phase, rec.step, rec.weights, rec.status),
        (before.0, before.1, before.2, Status::Running)
    );
}

#[test]
fn resume_repeats_the_recorded_step_at_every_phase_and_never_goes_back() {
    let s = spec(Strategy::Canary);
    let cases = [
        (Phase::Starting, 0, [100, 0], Step::StartRevision),
        (Phase::Baking, 1, [50, 50], Step::SetWeights([50, 50])),
        (Phase::PreTraffic, 0, [100, 0], Step::SetWeights([100, 0])),
        (
            Phase::TerminationWait,
            1,
            [0, 100],
            Step::SetWeights([0, 100]),
        ),
        (Phase::Deploying, 0, [100, 0], Step::Deploy),
        (
            Phase::Ready,
            0,
            [100, 0],
            Step::AwaitReady {
                after: Duration::ZERO,
            },
        ),
        (Phase::Finishing, 2, [0, 100], Step::Promote),
        (Phase::RollingBack, 1, [50, 50], Step::Restore),
    ];
    for (phase, index, weights, expected) in cases {
        let mut rec = fresh(&s);
        rec.phase = phase;
        rec.step = index;
        rec.weights = weights;
        rec.bake_started = Some(stamp(at(0)));
        let t = step(&mut rec, &s, Observation::Resumed, 30);
        assert_eq!(t.step, expected, "resumed at {phase}");
        assert!(
            t.events.is_empty(),
            "a resume records nothing by itself: {phase}"
        );
        if matches!(
            phase,
            Phase::Baking | Phase::PreTraffic | Phase::TerminationWait
        ) {
            assert_eq!(
                rec.bake_started, None,
                "{phase}: the bake restarts once the weights are set"
            );
        }
    }
    let mut done = fresh(&s);
    done.phase = Phase::Done;
    done.status = Status::Succeeded;
    assert_eq!(
        step(&mut done, &s, Observation::Resumed, 0).step,
        Step::Stop(Outcome::Succeeded)
    );
}

#[test]
fn blue_green_in_batches_switches_one_batch_at_a_time_and_bakes_after_the_last() {
    let mut s = spec(Strategy::BlueGreen);
    s.steps = vec![50, 100];
    s.bake = Duration::ZERO;
    let mut rec = fresh(&s);
    assert_eq!(rec.steps, [0, 50, 100]);
    step(&mut rec, &s, Observation::Resumed, 0);
    step(&mut rec, &s, Observation::Completed, 0);
    let t = step(&mut rec, &s, ready(), 0);
    assert_eq!(t.step, Step::SetWeights([100, 0]));
    step(&mut rec, &s, Observation::Completed, 0);
    let t = step(&mut rec, &s, Observation::Gates(vec![]), 0);
    assert_eq!(
        (t.step, rec.phase, rec.step),
        (Step::SetWeights([50, 50]), Phase::Baking, 1)
    );
    step(&mut rec, &s, Observation::Completed, 1);
    // One look of the gates, then the next batch is started and made ready before its
    // switch (batches.rs covers that phase): the old revision is still kept.
    let t = step(
        &mut rec,
        &s,
        Observation::Gates(vec![http(ProbeResult::Pass(String::new()))]),
        1,
    );
    assert_eq!(
        (t.step, rec.phase, rec.step, rec.weights),
        (Step::StartRevision, Phase::Batch, 2, [50, 50])
    );
    step(&mut rec, &s, Observation::Completed, 1);
    let t = step(&mut rec, &s, ready(), 2);
    assert_eq!(
        (t.step, rec.phase, rec.step),
        (Step::SetWeights([0, 100]), Phase::TerminationWait, 2)
    );
    step(&mut rec, &s, Observation::Completed, 2);
    let t = step(&mut rec, &s, Observation::Gates(vec![]), 3);
    assert_eq!(t.step, Step::Evaluate { after: s.interval });
    // A failure in the second batch rolls every switched host back.
    let t = step(
        &mut rec,
        &s,
        Observation::Failed("host 2 unhealthy".into()),
        4,
    );
    assert_eq!((t.step, rec.phase), (Step::Restore, Phase::RollingBack));
}

#[test]
fn blue_green_checks_at_0_switches_at_once_then_waits_before_promoting() {
    let s = spec(Strategy::BlueGreen);
    let mut rec = fresh(&s);
    assert_eq!(rec.steps, [0, 100]);
    step(&mut rec, &s, Observation::Resumed, 0);
    step(&mut rec, &s, Observation::Completed, 0);
    let t = step(&mut rec, &s, ready(), 0);
    assert_eq!(
        (t.step, rec.phase),
        (Step::SetWeights([100, 0]), Phase::PreTraffic)
    );
    let t = step(&mut rec, &s, Observation::Completed, 0);
    assert_eq!(t.events[0].detail, "pre-traffic checks at 0%");
    let pass = || Observation::Gates(vec![http(ProbeResult::Pass(String::new()))]);
    let t = step(&mut rec, &s, pass(), 60);
    assert_eq!(t.step, Step::SetWeights([0, 100]));
    assert_eq!((rec.phase, rec.step), (Phase::TerminationWait, 1));
    let t = step(&mut rec, &s, Observation::Completed, 61);
    assert_eq!(actions(&t), [EventKind::RolloutSwitch]);
    assert_eq!(
        rec.bake_seconds, 300.0,
        "the old revision is kept termination_wait"
    );
    assert!(matches!(
        step(&mut rec, &s, pass(), 200).step,
        Step::Evaluate { .. }
    ));
    assert_eq!(step(&mut rec, &s, pass(), 361).step, Step::Promote);
    // A gate failing after the switch rolls back too.
    let mut late = fresh(&s);
    late.phase = Phase::TerminationWait;
    late.weights = [0, 100];
    late.bake_started = Some(stamp(at(0)));
    let t = step(
        &mut late,
        &s,
        Observation::Gates(vec![once(
            "health.alarms",
            ProbeResult::Fail("x".into()),
            OnFail::Rollback,
        )]),
        5,
    );
    assert_eq!(t.step, Step::Restore);
}

#[test]
fn rolling_deploys_waits_for_readiness_and_rolls_back_on_a_reported_failure() {
    let s = spec(Strategy::Rolling);
    let mut rec = fresh(&s);
    assert_eq!(rec.steps, [100]);
    step(&mut rec, &s, Observation::Resumed, 0);
    let t = step(&mut rec, &s, Observation::Completed, 0);
    assert_eq!((t.step, rec.phase), (Step::Deploy, Phase::Deploying));
    let t = step(&mut rec, &s, Observation::Completed, 1);
    assert_eq!(
        (t.step, rec.phase),
        (
            Step::AwaitReady {
                after: Duration::ZERO
            },
            Phase::Ready
        )
    );
    let t = step(
        &mut rec,
        &s,
        Observation::NotReady("1 of 2 running".into()),
        2,
    );
    assert_eq!(
        t.step,
        Step::AwaitReady {
            after: Duration::from_secs(10)
        }
    );
    let t = step(&mut rec, &s, ready(), 12);
    assert_eq!(t.step, Step::Stop(Outcome::Succeeded));
    assert_eq!(
        actions(&t),
        [EventKind::RolloutReady, EventKind::RolloutComplete]
    );
    assert_eq!(t.events[1].detail, "api:2 is primary at 100%");

    let mut failed = fresh(&s);
    failed.phase = Phase::Ready;
    let t = step(
        &mut failed,
        &s,
        Observation::Failed("deployment FAILED: tasks failed to start".into()),
        3,
    );
    assert_eq!(t.step, Step::Restore);
    assert_eq!(
        failed.reason.as_deref(),
        Some("deployment FAILED: tasks failed to start")
    );
}

/// A record as the release before the engine wrote it (captured from a real canary against
/// moto), in each of the phases it could be left in.
const V1_RECORD: &str = r#"{"address":"api","bake_seconds":2.0,"bake_started":"2026-12-01T10:48:38.041Z","cluster":"ro","desired_hash":"69d231cb8b840a57580ba10e9a976ac2891bb3663f9296520f5385421b6e3250","finished_at":null,"gates":[{"time":"2026-12-01T10:48:38.100Z","gate":"health.http","outcome":"pass","detail":""}],"id":"885a67ba-6ef9-4f38-b006-8ba67cd4dc4c","listener_arn":"arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/ro-alb/5e250e3befbe47d8/68a84f3f8b704e67","load_balancer":"app/ro-alb/5e250e3befbe47d8","new":{"target_group":"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ro-green/108f2478de4ed6bd","task_definition":"arn:aws:ecs:us-east-1:123456789012:task-definition/ro-api:2","task_set":"arn:aws:ecs:us-east-1:123456789012:task-set/ro/ro-api/ecs-svc/382425147677215381"},"old":{"target_group":"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ro-blue/44189208aa69c9ee","task_definition":"arn:aws:ecs:us-east-1:123456789012:task-definition/ro-api:1","task_set":"arn:aws:ecs:us-east-1:123456789012:task-set/ro/ro-api/ecs-svc/304080765410142969"},"phase":"PHASE","reason":null,"rollback_seconds":null,"service":"ro-api","started_at":"2026-12-01T10:48:37.995Z","status":"running","step":1,"steps":[10,50,100],"strategy":"canary","updated_at":"2026-12-01T10:48:40.047Z","weights":[50,50]}"#;

#[test]
fn records_written_before_the_engine_decode_and_resume_at_every_phase() {
    let s = spec(Strategy::Canary);
    let address = crate::model::Address::root("api");
    for (phase, expected) in [
        ("starting", Step::StartRevision),
        ("baking", Step::SetWeights([50, 50])),
        ("finishing", Step::Promote),
        ("rolling_back", Step::Restore),
    ] {
        let body: serde_json::Value =
            serde_json::from_str(&V1_RECORD.replace("PHASE", phase)).unwrap();
        let rec = Rollout::decode(&address, &body).unwrap_or_else(|e| panic!("{phase}: {e}"));
        assert_eq!(rec.version, RECORD_VERSION, "{phase}: upgraded on decode");
        assert_eq!(rec.target.tag(), Some("ecs"), "{phase}");
        assert_eq!(rec.phase.as_str(), phase);
        let t = next(&rec, &s, &Observation::Resumed, at(0));
        assert_eq!(t.step, expected, "{phase}");
        assert_eq!(
            t.record.version, RECORD_VERSION,
            "rewritten in the new format"
        );
        // `rollout status --format json` keeps every field it documents.
        let written = t.record.status_json().unwrap();
        for key in ["old", "new", "steps", "weights", "gates", "service_arn"] {
            assert!(written.get(key).is_some(), "{phase}: field {key} kept");
        }
        assert_eq!(written["old"]["task_set"], body["old"]["task_set"]);
        assert_eq!(written["new"]["target_group"], body["new"]["target_group"]);
        assert_eq!(written["phase"], phase);
    }
    let bg: serde_json::Value = serde_json::from_str(
        &V1_RECORD
            .replace("PHASE", "pre_traffic")
            .replace(r#""strategy":"canary""#, r#""strategy":"blue_green""#)
            .replace(r#""steps":[10,50,100]"#, r#""steps":[0,100]"#)
            .replace(r#""step":1"#, r#""step":0"#)
            .replace(r#""weights":[50,50]"#, r#""weights":[100,0]"#),
    )
    .unwrap();
    let rec = Rollout::decode(&address, &bg).unwrap();
    let t = next(
        &rec,
        &spec(Strategy::BlueGreen),
        &Observation::Resumed,
        at(0),
    );
    assert_eq!(t.step, Step::SetWeights([100, 0]));
    let done: serde_json::Value = serde_json::from_str(
        &V1_RECORD
            .replace("PHASE", "done")
            .replace(r#""status":"running""#, r#""status":"rolled_back""#)
            .replace(
                r#""reason":null"#,
                r#""reason":"health.http: 2 consecutive failures""#,
            )
            .replace(r#""rollback_seconds":null"#, r#""rollback_seconds":0.25"#),
    )
    .unwrap();
    let rec = Rollout::decode(&address, &done).unwrap();
    assert!(matches!(
        next(&rec, &s, &Observation::Resumed, at(0)).step,
        Step::Stop(Outcome::RolledBack { aborted: false, .. })
    ));
    let bad = serde_json::json!({"phase": "warp_speed"});
    assert!(Rollout::decode(&address, &bad).is_err());
}

#[test]
fn not_ready_by_ready_timeout_rolls_back_or_is_left_and_the_deadline_survives_a_resume() {
    let s = spec(Strategy::Canary);
    let mut rec = fresh(&s);
    step(&mut rec, &s, Observation::Resumed, 0);
    step(&mut rec, &s, Observation::Completed, 0);
    let pending = || Observation::NotReady("new task set STABILIZING: 0 of 2 tasks running".into());
    assert_eq!(
        step(&mut rec, &s, pending(), 115).step,
        Step::AwaitReady {
            after: Duration::from_secs(5)
        },
        "the last wait is cut to the deadline"
    );
    // A crash and resume keeps the deadline of the first wait.
    step(&mut rec, &s, Observation::Resumed, 118);
    let t = step(&mut rec, &s, pending(), 121);
    assert_eq!(t.step, Step::Restore);
    assert_eq!(actions(&t), [EventKind::RolloutNotReady]);
    assert_eq!(rec.weights, [100, 0], "traffic never moved");
    assert!(
        rec.reason.as_deref().unwrap().starts_with(
            "not ready after ready_timeout 2m: new task set STABILIZING: 0 of 2 tasks running"
        ),
        "{:?}",
        rec.reason
    );

    let mut leave = spec(Strategy::Rolling);
    leave.on_timeout = OnTimeout::Leave;
    let mut rec = fresh(&leave);
    step(&mut rec, &leave, Observation::Resumed, 0);
    step(&mut rec, &leave, Observation::Completed, 0);
    step(&mut rec, &leave, Observation::Completed, 0);
    let t = step(
        &mut rec,
        &leave,
        Observation::NotReady("IN_PROGRESS".into()),
        120,
    );
    assert!(
        matches!(&t.step, Step::Stop(Outcome::Left { reason }) if reason.contains("left deploying"))
    );
    assert_eq!((rec.status, rec.phase), (Status::Left, Phase::Done));
}

#[test]
fn metrics_count_from_the_first_whole_minute_after_traffic_first_moved() {
    let s = spec(Strategy::Canary);
    let mut rec = fresh(&s);
    step(&mut rec, &s, Observation::Resumed, 0);
    step(&mut rec, &s, Observation::Completed, 0);
    step(&mut rec, &s, ready(), 0);
    assert_eq!(
        rec.traffic_started, None,
        "no traffic before the weights are set"
    );
    step(&mut rec, &s, Observation::Completed, 75);
    assert_eq!(
        rec.traffic_started.as_deref(),
        Some("2026-12-01T12:01:15.000Z")
    );
    let since: DateTime<Utc> = rec.metrics_since().unwrap().into();
    assert_eq!(since, at(120), "12:01:15 counts from 12:02:00");
    // The next step keeps the first time the revision took traffic.
    step(&mut rec, &s, Observation::Requested(Request::Promote), 80);
    step(&mut rec, &s, Observation::Completed, 81);
    assert_eq!(
        rec.traffic_started.as_deref(),
        Some("2026-12-01T12:01:15.000Z")
    );
    let mut exact = fresh(&s);
    exact.traffic_started = Some(stamp(at(60)));
    assert_eq!(
        DateTime::<Utc>::from(exact.metrics_since().unwrap()),
        at(60)
    );
}

fn with_hooks() -> RolloutSpec {
    let mut s = spec(Strategy::Canary);
    let hook = |cmd: &str| crate::rollout::spec::Hook {
        run: vec![cmd.into()],
        container: None,
        timeout: Duration::from_secs(60),
        per_host: false,
    };
    s.hooks.pre_traffic = vec![hook("migrate")];
    s.hooks.post_traffic = vec![hook("smoke")];
    s.hooks.on_rollback = vec![hook("downgrade")];
    s
}

/// A canary of `s` at its pre-traffic hook, its task started as `task`.
fn at_pre_hook(s: &RolloutSpec) -> Rollout {
    let mut rec = fresh(s);
    step(&mut rec, s, Observation::Resumed, 0);
    step(&mut rec, s, Observation::Completed, 0);
    let t = step(&mut rec, s, ready(), 1);
    assert_eq!((t.step, rec.phase), (Step::StartHook, Phase::Hook));
    rec.hook.as_mut().unwrap().run = "task/1".into();
    let t = step(&mut rec, s, Observation::Completed, 2);
    assert_eq!(actions(&t), [EventKind::HookStart]);
    rec
}

/// Declared backups are their own phase between readiness and the first pre_traffic hook: a
/// resumed run takes them again (nothing recorded yet), success records a `rollout backup`
/// event and starts the hook, a failure rolls back with no hook run, not even on_rollback.
#[test]
fn backups_come_before_the_first_hook_and_a_failure_runs_no_hook() {
    let mut s = with_hooks();
    s.backup = true;
    let start = |s: &RolloutSpec| {
        let mut rec = fresh(s);
        step(&mut rec, s, Observation::Resumed, 0);
        step(&mut rec, s, Observation::Completed, 0);
        let t = step(&mut rec, s, ready(), 1);
        assert_eq!((t.step, rec.phase), (Step::Backup, Phase::Backup));
        rec
    };
    let mut rec = start(&s);
    let t = step(&mut rec, &s, Observation::Resumed, 2);
    assert_eq!(t.step, Step::Backup, "a resumed run takes them again");
    let t = step(&mut rec, &s, Observation::Ready("db: 42 bytes".into()), 3);
    assert_eq!(actions(&t), [EventKind::RolloutBackup]);
    assert_eq!((t.step, rec.phase), (Step::StartHook, Phase::Hook));

    let mut failing = start(&s);
    let t = step(
        &mut failing,
        &s,
        Observation::Failed("the backup of accessory `db` failed".into()),
        2,
    );
    assert_eq!(t.step, Step::Restore);
    assert!(!failing.hooks_started);
    assert_eq!(
        failing.reason.as_deref(),
        Some("the backup of accessory `db` failed")
    );
    let t = step(&mut failing, &s, Observation::Completed, 3);
    assert_eq!(actions(&t), [EventKind::Rollback], "no on_rollback hook");
    assert_eq!(failing.status, Status::RolledBack);

    // Without pre_traffic hooks there is nothing to protect: no backup phase.
    let mut plain = spec(Strategy::Canary);
    plain.backup = true;
    let mut rec = fresh(&plain);
    step(&mut rec, &plain, Observation::Resumed, 0);
    step(&mut rec, &plain, Observation::Completed, 0);
    let t = step(&mut rec, &plain, ready(), 1);
    assert_ne!(t.step, Step::Backup);
}

#[test]
fn pre_traffic_hooks_run_before_any_weight_moves_and_a_failure_rolls_back() {
    let s = with_hooks();
    let mut rec = at_pre_hook(&s);
    assert_eq!(rec.weights, [100, 0]);
    let t = step(&mut rec, &s, Observation::NotReady("RUNNING".into()), 3);
    assert!(matches!(t.step, Step::AwaitHook { .. }));
    // A crash now: the recorded task is waited on, never started again.
    let t = step(&mut rec, &s, Observation::Resumed, 4);
    assert_eq!(
        t.step,
        Step::AwaitHook {
            after: Duration::ZERO
        }
    );
    let t = step(&mut rec, &s, Observation::Ready("exited 0".into()), 5);
    assert_eq!(actions(&t), [EventKind::HookOk]);
    assert_eq!(t.step, Step::SetWeights([90, 10]));

    let mut failing = at_pre_hook(&s);
    let t = step(
        &mut failing,
        &s,
        Observation::Failed("exit code 1".into()),
        3,
    );
    assert_eq!(t.step, Step::Restore);
    assert_eq!(failing.weights, [100, 0], "no traffic moved");
    assert_eq!(
        failing.reason.as_deref(),
        Some("pre_traffic hook 1 failed: exit code 1")
    );
    // Traffic back, then the on_rollback hook, then done.
    let t = step(&mut failing, &s, Observation::Completed, 4);
    assert_eq!(t.step, Step::StartHook);
    assert_eq!(failing.hook.as_ref().unwrap().stage, HookStage::OnRollback);
    failing.hook.as_mut().unwrap().run = "task/2".into();
    step(&mut failing, &s, Observation::Completed, 5);
    let t = step(
        &mut failing,
        &s,
        Observation::Failed("exit code 2".into()),
        6,
    );
    assert_eq!(
        actions(&t),
        [EventKind::HookFailed, EventKind::Rollback],
        "an on_rollback failure is recorded, the rollback goes on"
    );
    assert_eq!(failing.status, Status::RolledBack);
    assert_eq!(
        failing.rollback_seconds,
        Some(1.0),
        "traffic was back at the restore, before the on_rollback hook"
    );
}

#[test]
fn a_hook_past_its_timeout_is_stopped_before_the_rollback() {
    let s = with_hooks();
    let mut rec = at_pre_hook(&s);
    let t = step(&mut rec, &s, Observation::NotReady("RUNNING".into()), 63);
    assert_eq!(t.step, Step::StopHook);
    assert!(rec.hook.as_ref().unwrap().timed_out);
    let t = step(&mut rec, &s, Observation::Completed, 64);
    assert_eq!(t.step, Step::Restore);
    assert!(
        rec.reason
            .as_deref()
            .unwrap()
            .contains("timed out after 1m; its task task/1 was stopped")
    );
}

#[test]
fn post_traffic_hooks_run_at_100_before_the_old_revision_is_removed() {
    let s = with_hooks();
    let mut rec = at_pre_hook(&s);
    step(&mut rec, &s, Observation::Ready("exited 0".into()), 3);
    step(&mut rec, &s, Observation::Completed, 3);
    let t = step(
        &mut rec,
        &s,
        Observation::Requested(Request::PromoteFull),
        4,
    );
    assert_eq!((t.step, rec.phase), (Step::StartHook, Phase::Hook));
    assert_eq!(rec.hook.as_ref().unwrap().stage, HookStage::PostTraffic);
    rec.hook.as_mut().unwrap().run = "task/3".into();
    step(&mut rec, &s, Observation::Completed, 5);
    let t = step(&mut rec, &s, Observation::Ready("exited 0".into()), 6);
    assert_eq!(t.step, Step::Promote);
}

/// A canary `[10, pause, 50, 100]` at the end of its first bake.
fn at_pause() -> (RolloutSpec, Rollout) {
    let mut s = spec(Strategy::Canary);
    s.pauses = vec![0];
    let mut rec = baking(&s);
    let t = step(
        &mut rec,
        &s,
        Observation::Gates(vec![http(ProbeResult::Pass(String::new()))]),
        60,
    );
    assert_eq!(t.step, Step::Stop(Outcome::Paused));
    assert_eq!(actions(&t), [EventKind::RolloutPaused]);
    (s, rec)
}

#[test]
fn a_pause_holds_traffic_and_stops_until_promote_continues_it() {
    let (s, mut rec) = at_pause();
    assert_eq!(
        (rec.status, rec.phase, rec.weights),
        (Status::Paused, Phase::Paused, [90, 10])
    );
    assert!(rec.status.unfinished());
    assert_eq!(rec.pause_until.as_deref(), Some(stamp(at(3660)).as_str()));
    // Another run (apply with the same files) looks for a promote once, then stops again.
    let t = step(&mut rec, &s, Observation::Resumed, 100);
    assert_eq!(t.step, Step::TakeRequest);
    let t = step(&mut rec, &s, Observation::Completed, 100);
    assert_eq!(t.step, Step::Stop(Outcome::Paused));
    assert_eq!(rec.status, Status::Paused);
    // Promote: on to the next step, running again.
    step(&mut rec, &s, Observation::Resumed, 200);
    let t = step(&mut rec, &s, Observation::Requested(Request::Promote), 200);
    assert_eq!(actions(&t), [EventKind::RolloutPromote]);
    assert_eq!(t.step, Step::SetWeights([50, 50]));
    assert_eq!(
        (rec.status, rec.step, rec.pause_until.clone()),
        (Status::Running, 1, None)
    );
}

#[test]
fn a_pause_past_its_timeout_rolls_back_even_when_a_promote_comes_too_late() {
    let (s, mut rec) = at_pause();
    assert!(!rec.pause_expired(at(3659)));
    assert!(rec.pause_expired(at(3660)));
    let t = step(&mut rec, &s, Observation::Resumed, 3700);
    assert_eq!(t.step, Step::Restore);
    assert_eq!(actions(&t), [EventKind::RolloutPauseExpired]);
    assert!(rec.reason.as_deref().unwrap().contains("pause_timeout 1h"));
    assert_eq!(rec.status, Status::Running);
    let t = step(&mut rec, &s, Observation::Completed, 3701);
    assert_eq!(rec.status, Status::RolledBack);
    assert!(matches!(t.step, Step::Stop(Outcome::RolledBack { .. })));
}

#[test]
fn promote_full_at_a_pause_goes_to_100_and_abort_rolls_back() {
    let (s, mut rec) = at_pause();
    let t = step(
        &mut rec,
        &s,
        Observation::Requested(Request::PromoteFull),
        70,
    );
    assert_eq!(t.step, Step::Promote);
    assert_eq!(rec.status, Status::Running);
    let (s, mut rec) = at_pause();
    let t = step(&mut rec, &s, Observation::Requested(Request::Abort), 70);
    assert_eq!(t.step, Step::Restore);
    step(&mut rec, &s, Observation::Completed, 71);
    assert_eq!(rec.status, Status::Aborted);
}

#[test]
fn pause_steps_parse_and_a_leading_pause_is_refused() {
    let parse = |steps: serde_json::Value| {
        let v = crate::model::Value::from_json(&serde_json::json!({
            "rollout": {"strategy": "canary", "steps": steps, "traffic": {"listener_arn": "l", "target_groups": ["a", "b"]}}
        }));
        crate::providers::aws::ecs::spec::rollout_spec(&v)
    };
    let s = parse(serde_json::json!([10, "pause", 50, 100])).unwrap();
    assert_eq!((s.steps, s.pauses), (vec![10, 50, 100], vec![0]));
    assert_eq!(s.pause_timeout, Duration::from_secs(24 * 3600));
    assert!(parse(serde_json::json!(["pause", 50])).is_err());
}

#[test]
fn weights_a_promote_or_a_restore_under_way_are_asked_again_after_a_wait_the_driver_schedules() {
    // Promote: a host's old nginx workers still drain.
    let s = spec(Strategy::BlueGreen);
    let mut rec = fresh(&s);
    rec.phase = Phase::Finishing;
    let t = step(&mut rec, &s, Observation::Resumed, 0);
    assert_eq!(t.step, Step::Promote);
    let t = step(&mut rec, &s, Observation::NotReady("draining".into()), 1);
    assert_eq!(
        t.step,
        Step::PromoteAgain {
            after: Duration::from_millis(250)
        }
    );
    assert_eq!(rec.phase, Phase::Finishing);
    // Ctrl-C during that wait: stopped resumably; the next run promotes again.
    let t = step(&mut rec, &s, Observation::Interrupted, 1);
    assert_eq!(t.step, Step::Stop(Outcome::Interrupted));
    let t = step(&mut rec, &s, Observation::Resumed, 5);
    assert_eq!(t.step, Step::Promote);
    let t = step(&mut rec, &s, Observation::Completed, 6);
    assert_eq!(t.step, Step::Stop(Outcome::Succeeded));

    // Weights: nginx's new workers are not seen yet; the same weights again, shortly.
    let c = spec(Strategy::Canary);
    let mut rec = baking(&c);
    rec.bake_started = None;
    let weights = rec.weights;
    let t = step(&mut rec, &c, Observation::NotReady("new workers".into()), 2);
    assert_eq!(
        t.step,
        Step::SetWeightsAgain {
            weights,
            after: Duration::from_millis(250)
        }
    );
    assert_eq!(
        (rec.phase, rec.bake_started.as_deref()),
        (Phase::Baking, None)
    );

    // Restore: the old colour is starting again.
    let mut rec = fresh(&s);
    rec.phase = Phase::RollingBack;
    rec.rollback_started = Some(stamp(at(0)));
    let t = step(&mut rec, &s, Observation::NotReady("starting".into()), 1);
    assert_eq!(
        t.step,
        Step::RestoreAgain {
            after: Duration::from_millis(250)
        }
    );
    // Restored; nothing had started (no hook, no traffic), so the rollback is done.
    let t = step(&mut rec, &s, Observation::Completed, 2);
    assert!(
        matches!(&t.step, Step::Stop(Outcome::RolledBack { seconds, .. }) if *seconds == 2.0),
        "{:?}",
        t.step
    );
}

mod batches;
mod records;
