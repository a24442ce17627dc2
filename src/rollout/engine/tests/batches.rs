//! Batches of hosts as transitions of `next`: a later blue/green batch is started, waited for
//! (its own `ready_timeout`, cut short by an interrupt and resumed), hooked with its `per_host`
//! pre_traffic hooks and only then switched; recreate deploys and waits batch by batch.

use super::*;
use crate::rollout::spec::Hook;

/// Blue/green over three batches (`[0, 34, 67, 100]`), at the first batch's bake.
fn at_first_batch(s: &RolloutSpec) -> Rollout {
    let mut rec = fresh(s);
    step(&mut rec, s, Observation::Resumed, 0);
    step(&mut rec, s, Observation::Completed, 0);
    step(&mut rec, s, ready(), 0);
    step(&mut rec, s, Observation::Completed, 0);
    let t = step(&mut rec, s, Observation::Gates(vec![]), 0);
    assert_eq!(t.step, Step::SetWeights([66, 34]));
    step(&mut rec, s, Observation::Completed, 1);
    rec
}

fn three_batches() -> RolloutSpec {
    let mut s = spec(Strategy::BlueGreen);
    s.steps = vec![34, 67, 100];
    s.bake = Duration::ZERO;
    s
}

fn hook(cmd: &str, per_host: bool) -> Hook {
    Hook {
        run: vec![cmd.into()],
        container: None,
        timeout: Duration::from_secs(60),
        per_host,
    }
}

#[test]
fn a_later_batch_is_started_and_ready_before_its_switch_and_traffic_waits_meanwhile() {
    let s = three_batches();
    let mut rec = at_first_batch(&s);
    let t = step(&mut rec, &s, Observation::Gates(vec![]), 2);
    // The intent is the batch's step; the weights stay where the first batch put them.
    assert_eq!(
        (t.step, rec.phase, rec.step, rec.weights),
        (Step::StartRevision, Phase::Batch, 2, [66, 34])
    );
    let t = step(&mut rec, &s, Observation::Completed, 3);
    assert_eq!(
        t.step,
        Step::AwaitReady {
            after: Duration::ZERO
        }
    );
    assert_eq!(rec.ready_started.as_deref(), Some(stamp(at(3)).as_str()));
    // Not ready yet: the driver looks again after `interval`, within ready_timeout.
    let t = step(&mut rec, &s, Observation::NotReady("starting".into()), 4);
    assert_eq!(t.step, Step::AwaitReady { after: s.interval });
    assert_eq!(rec.weights, [66, 34]);
    let t = step(&mut rec, &s, ready(), 20);
    assert_eq!(actions(&t), [EventKind::RolloutReady]);
    assert_eq!(
        (t.step.clone(), rec.phase, rec.step),
        (Step::SetWeights([33, 67]), Phase::Baking, 2)
    );
    assert!(t.events[0].detail.starts_with("batch 2: "));
    // The last batch: started, ready, then the full switch and termination_wait.
    step(&mut rec, &s, Observation::Completed, 21);
    let t = step(&mut rec, &s, Observation::Gates(vec![]), 22);
    assert_eq!(
        (t.step, rec.phase, rec.step),
        (Step::StartRevision, Phase::Batch, 3)
    );
    step(&mut rec, &s, Observation::Completed, 23);
    let t = step(&mut rec, &s, ready(), 24);
    assert_eq!(
        (t.step, rec.phase),
        (Step::SetWeights([0, 100]), Phase::TerminationWait)
    );
}

#[test]
fn a_batch_not_ready_by_its_own_ready_timeout_rolls_back_every_switched_host() {
    let s = three_batches();
    let mut rec = at_first_batch(&s);
    step(&mut rec, &s, Observation::Gates(vec![]), 2);
    // The first batch's wait does not count against this one: its clock starts now.
    step(&mut rec, &s, Observation::Completed, 200);
    let t = step(&mut rec, &s, Observation::NotReady("502".into()), 300);
    assert_eq!(t.step, Step::AwaitReady { after: s.interval });
    let t = step(&mut rec, &s, Observation::NotReady("502".into()), 320);
    assert_eq!(
        (t.step.clone(), rec.phase),
        (Step::Restore, Phase::RollingBack)
    );
    assert_eq!(actions(&t), [EventKind::RolloutNotReady]);
    assert!(rec.reason.as_deref().unwrap().contains("batch 2: 502"));
}

#[test]
fn an_interrupt_in_a_batch_wait_stops_resumably_and_a_resume_waits_for_the_same_batch() {
    let s = three_batches();
    let mut rec = at_first_batch(&s);
    step(&mut rec, &s, Observation::Gates(vec![]), 2);
    step(&mut rec, &s, Observation::Completed, 3);
    let t = step(&mut rec, &s, Observation::Interrupted, 5);
    assert_eq!(t.step, Step::Stop(Outcome::Interrupted));
    assert_eq!((rec.phase, rec.status), (Phase::Batch, Status::Running));
    // The next apply: the same batch, its deadline kept from the first wait.
    let t = step(&mut rec, &s, Observation::Resumed, 60);
    assert_eq!(
        t.step,
        Step::AwaitReady {
            after: Duration::ZERO
        }
    );
    assert_eq!(rec.ready_started.as_deref(), Some(stamp(at(3)).as_str()));
    // Killed before the batch was even started: a resume starts it (the target finds what
    // it already started).
    let mut early = at_first_batch(&s);
    step(&mut early, &s, Observation::Gates(vec![]), 2);
    let t = step(&mut early, &s, Observation::Resumed, 9);
    assert_eq!((t.step, early.phase), (Step::StartRevision, Phase::Batch));
}

#[test]
fn a_batch_runs_only_its_per_host_pre_traffic_hooks_then_switches() {
    let mut s = three_batches();
    s.hooks.pre_traffic = vec![hook("migrate", false), hook("warm cache", true)];
    let mut rec = fresh(&s);
    step(&mut rec, &s, Observation::Resumed, 0);
    step(&mut rec, &s, Observation::Completed, 0);
    // The first batch runs both hooks before any traffic.
    let t = step(&mut rec, &s, ready(), 0);
    assert_eq!(t.step, Step::StartHook);
    assert_eq!(
        rec.hook.as_ref().map(|h| (h.index, h.batch)),
        Some((0, false))
    );
    for hook_index in 0..2 {
        step(&mut rec, &s, Observation::Completed, 1);
        let t = step(&mut rec, &s, Observation::Ready("exit 0".into()), 2);
        if hook_index == 0 {
            assert_eq!(t.step, Step::StartHook);
        }
    }
    step(&mut rec, &s, Observation::Completed, 3);
    step(&mut rec, &s, Observation::Gates(vec![]), 3);
    step(&mut rec, &s, Observation::Completed, 4);
    step(&mut rec, &s, Observation::Gates(vec![]), 5);
    step(&mut rec, &s, Observation::Completed, 6);
    // Batch 2 is ready: only the per_host hook runs, marked as the batch's.
    let t = step(&mut rec, &s, ready(), 7);
    assert_eq!((t.step, rec.phase), (Step::StartHook, Phase::Hook));
    let run = rec.hook.clone().unwrap();
    assert_eq!(
        (run.stage, run.index, run.batch),
        (HookStage::PreTraffic, 1, true)
    );
    // (The target records what it started, as `start_hook` does.)
    rec.hook.as_mut().unwrap().run = "warm-cache on host 3".into();
    step(&mut rec, &s, Observation::Completed, 8);
    // A crash while it runs resumes the same hook of the same batch.
    let t = step(&mut rec, &s, Observation::Resumed, 9);
    assert_eq!(
        t.step,
        Step::AwaitHook {
            after: Duration::ZERO
        }
    );
    let t = step(&mut rec, &s, Observation::Ready("exit 0".into()), 10);
    assert_eq!(
        (t.step, rec.phase, rec.step, rec.hook.is_none()),
        (Step::SetWeights([33, 67]), Phase::Baking, 2, true)
    );
    // A batch hook that fails rolls back.
    step(&mut rec, &s, Observation::Completed, 11);
    step(&mut rec, &s, Observation::Gates(vec![]), 12);
    step(&mut rec, &s, Observation::Completed, 13);
    step(&mut rec, &s, ready(), 14);
    step(&mut rec, &s, Observation::Completed, 15);
    let t = step(&mut rec, &s, Observation::Failed("exit 3".into()), 16);
    assert_eq!((t.step, rec.phase), (Step::Restore, Phase::RollingBack));
    assert!(
        rec.reason
            .as_deref()
            .unwrap()
            .contains("pre_traffic hook 2")
    );
}

#[test]
fn recreate_in_batches_deploys_and_waits_for_each_batch_in_turn() {
    let mut s = spec(Strategy::Rolling);
    s.steps = vec![50, 100];
    let mut rec = fresh(&s);
    assert_eq!(rec.steps, [50, 100]);
    step(&mut rec, &s, Observation::Resumed, 0);
    let t = step(&mut rec, &s, Observation::Completed, 0);
    assert_eq!(
        (t.step, rec.phase, rec.step),
        (Step::Deploy, Phase::Deploying, 0)
    );
    step(&mut rec, &s, Observation::Completed, 1);
    let t = step(&mut rec, &s, ready(), 5);
    assert_eq!(
        (t.step, rec.phase, rec.step, rec.weights),
        (Step::Deploy, Phase::Deploying, 1, [0, 100])
    );
    assert_eq!(rec.ready_started, None);
    step(&mut rec, &s, Observation::Completed, 6);
    // The second batch has its own ready_timeout.
    let t = step(&mut rec, &s, Observation::NotReady("starting".into()), 100);
    assert_eq!(t.step, Step::AwaitReady { after: s.interval });
    let t = step(&mut rec, &s, ready(), 110);
    assert_eq!(
        (t.step, rec.phase, rec.status),
        (
            Step::Stop(Outcome::Succeeded),
            Phase::Done,
            Status::Succeeded
        )
    );
}
