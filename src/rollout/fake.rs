//! An in-memory deploy target, for tests: a third target beside ECS and hosts, built only from
//! the seam (`Deploy` and `Target`), that drives the real driver and engine through canary,
//! blue/green in two batches, rollback, pause and promote, and a crash between acting and
//! saving, with SQLite state and no cloud or host.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;

use super::deploy::{Deploy, DeployError, Revisions};
use super::engine::{Probe, ProbeResult};
use super::record::Rollout;
use super::spec::{Hook, OnFail};
use super::target::{Readiness, Target, TargetError};
use super::{RolloutContext, RolloutError, RolloutRequest, RolloutSpec};
use crate::model::Value;
use crate::providers::{Applied, ProviderError};

/// What the fake "cloud" runs, and what the test scripts into it.
#[derive(Debug, Default)]
pub struct World {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The revision serving as primary.
    live: String,
    /// Revisions with instances running.
    running: BTreeSet<String>,
    /// Traffic on [old, new].
    weights: [i32; 2],
    /// Every action taken, in order.
    calls: Vec<String>,
    /// The gate fails once the new revision has at least this share.
    fail_gate_at: Option<i32>,
    /// The next `set_weights` acts and then fails, as a process killed before saving would.
    crash_after_weights: bool,
}

impl World {
    /// A world running `live`.
    pub fn running(live: &str) -> &'static World {
        let world = World::default();
        {
            let mut w = world.lock();
            w.live = live.to_string();
            w.running.insert(live.to_string());
            w.weights = [100, 0];
        }
        Box::leak(Box::new(world))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gate fails from this share of traffic on.
    pub fn fail_gate_at(&self, weight: i32) {
        self.lock().fail_gate_at = Some(weight);
    }

    /// The next weight change acts, then "crashes".
    pub fn crash_after_next_weights(&self) {
        self.lock().crash_after_weights = true;
    }

    /// The primary revision, the running ones and the weights.
    pub fn now(&self) -> (String, Vec<String>, [i32; 2]) {
        let w = self.lock();
        (
            w.live.clone(),
            w.running.iter().cloned().collect(),
            w.weights,
        )
    }

    /// Every action so far.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }
}

/// The fake kind's deploy capability.
#[derive(Debug)]
pub struct FakeDeploy(pub &'static World);

#[async_trait::async_trait]
impl Deploy for FakeDeploy {
    fn spec(&self, _: &Value) -> Result<RolloutSpec, DeployError> {
        Err(DeployError::msg(
            "the fake target's spec comes with the request",
        ))
    }

    fn update(&self, _: &Value, _: &Value) -> Result<Option<RolloutSpec>, DeployError> {
        Ok(None)
    }

    fn create(&self, _: &Value) -> Option<RolloutSpec> {
        None
    }

    fn target<'a>(
        &self,
        _: &'a RolloutContext<'a>,
        req: &'a RolloutRequest,
    ) -> Result<Box<dyn Target + 'a>, RolloutError> {
        Ok(Box::new(FakeTarget {
            world: self.0,
            desired: req.desired.get("revision").as_str().unwrap_or("").into(),
        }))
    }

    fn first_revision(&self, _: &Value, _: &Value) -> Option<String> {
        None
    }

    fn revisions(&self) -> Revisions {
        Revisions::Images
    }
}

/// A rollout of `desired` in a [`World`].
struct FakeTarget {
    world: &'static World,
    desired: String,
}

#[async_trait]
impl Target for FakeTarget {
    async fn begin(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        rec.old_revision = self.world.lock().live.clone();
        rec.new_revision = self.desired.clone();
        Ok(())
    }

    async fn start_revision(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        let mut w = self.world.lock();
        w.running.insert(rec.new_revision.clone());
        w.calls.push(format!("start {}", rec.new_revision));
        Ok(())
    }

    async fn set_weights(
        &self,
        rec: &Rollout,
        weights: [i32; 2],
    ) -> Result<Readiness, TargetError> {
        self.set_weights_now(rec, weights).await?;
        Ok(Readiness::Ready(String::new()))
    }

    async fn evaluate(&self, _: &Rollout) -> Result<Vec<Probe>, TargetError> {
        let w = self.world.lock();
        let failing = w.fail_gate_at.is_some_and(|at| w.weights[1] >= at);
        Ok(vec![Probe {
            gate: "health.fake".into(),
            result: if failing {
                ProbeResult::Fail(format!("errors at {}%", w.weights[1]))
            } else {
                ProbeResult::Pass(String::new())
            },
            on_fail: OnFail::Rollback,
            threshold: None,
        }])
    }

    async fn deploy(&self, rec: &mut Rollout) -> Result<(), TargetError> {
        let mut w = self.world.lock();
        w.live = rec.new_revision.clone();
        w.calls.push(format!("deploy {}", rec.new_revision));
        Ok(())
    }

    async fn ready(&self, _: &Rollout) -> Result<Readiness, TargetError> {
        Ok(Readiness::Ready("fake revision up".into()))
    }

    async fn promote(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        self.promote_now(rec).await?;
        Ok(Readiness::Ready(String::new()))
    }

    async fn restore(&self, rec: &Rollout) -> Result<Readiness, TargetError> {
        self.restore_now(rec).await?;
        Ok(Readiness::Ready(String::new()))
    }

    async fn start_hook(&self, _: &mut Rollout, _: &Hook) -> Result<(), TargetError> {
        Ok(())
    }

    async fn hook_status(&self, _: &Rollout, _: &Hook) -> Result<Readiness, TargetError> {
        Ok(Readiness::Ready("exited 0".into()))
    }

    async fn stop_hook(&self, _: &Rollout) -> Result<(), TargetError> {
        Ok(())
    }

    fn applied(&self, rec: &Rollout) -> Result<Applied, TargetError> {
        Ok(Applied {
            remote_id: "fake".into(),
            outputs: [("revision".to_string(), Value::str(&rec.new_revision))]
                .into_iter()
                .collect(),
        })
    }
}

impl FakeTarget {
    /// See [`Target`]'s method of the same name, without its answer.
    async fn set_weights_now(&self, _: &Rollout, weights: [i32; 2]) -> Result<(), TargetError> {
        let mut w = self.world.lock();
        w.weights = weights;
        w.calls
            .push(format!("weights {}/{}", weights[0], weights[1]));
        if std::mem::take(&mut w.crash_after_weights) {
            return Err(TargetError::Call(ProviderError::Api {
                operation: "set_weights".into(),
                message: "the process died after acting".into(),
            }));
        }
        Ok(())
    }

    /// See [`Target`]'s method of the same name, without its answer.
    async fn promote_now(&self, rec: &Rollout) -> Result<(), TargetError> {
        let mut w = self.world.lock();
        w.live = rec.new_revision.clone();
        w.running.remove(&rec.old_revision);
        w.weights = [0, 100];
        w.calls.push(format!("promote {}", rec.new_revision));
        Ok(())
    }

    /// See [`Target`]'s method of the same name, without its answer.
    async fn restore_now(&self, rec: &Rollout) -> Result<(), TargetError> {
        let mut w = self.world.lock();
        w.weights = [100, 0];
        w.running.remove(&rec.new_revision);
        w.calls.push(format!("restore {}", rec.old_revision));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::audit::EventKind;
    use crate::model::Address;
    use crate::rollout::spec::{Health, OnTimeout, Strategy};
    use crate::state::StateStore;

    fn spec(strategy: Strategy, steps: &[i32]) -> RolloutSpec {
        RolloutSpec {
            strategy,
            ready_timeout: Duration::from_secs(5),
            on_timeout: OnTimeout::Rollback,
            wait: true,
            steps: steps.to_vec(),
            bake: Duration::from_millis(30),
            interval: Duration::from_millis(10),
            termination_wait: Duration::from_millis(30),
            listener_arn: String::new(),
            target_groups: Vec::new(),
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

    /// State in a temporary SQLite file, and the request to roll `world` out to `revision`.
    struct Fixture {
        _dir: tempfile::TempDir,
        store: Box<dyn StateStore>,
        audit: crate::audit::Context,
        interrupt: CancellationToken,
        registry: crate::providers::Registry,
    }

    impl Fixture {
        async fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::state::open(dir.path(), "t", None).await.unwrap();
            Fixture {
                _dir: dir,
                store,
                audit: crate::audit::Context {
                    actor: "tester".into(),
                    commit: String::new(),
                },
                interrupt: CancellationToken::new(),
                registry: Default::default(),
            }
        }

        async fn roll(
            &self,
            world: &'static World,
            spec: &RolloutSpec,
            revision: &str,
        ) -> Result<Applied, RolloutError> {
            let deploy: &'static FakeDeploy = Box::leak(Box::new(FakeDeploy(world)));
            let req = RolloutRequest::new(
                deploy,
                Address::parse("app").unwrap(),
                "fake".into(),
                (Value::Null, Value::Null),
                [("revision".to_string(), Value::str(revision))]
                    .into_iter()
                    .collect(),
                spec.clone(),
            );
            let report = |_: &str| {};
            let ctx = RolloutContext {
                store: self.store.as_ref(),
                audit: &self.audit,
                registry: &self.registry,
                operation: "apply",
                interrupt: &self.interrupt,
                region: String::new(),
                prices: crate::cost::PriceTable::shipped(),
                environment: "t".into(),
                report: &report,
            };
            crate::rollout::run(&ctx, &req).await
        }

        async fn events(&self) -> Vec<EventKind> {
            let (events, _, _) = self.store.audit_chain().await.unwrap();
            events.iter().filter_map(|e| e.body.kind()).collect()
        }
    }

    fn weights(calls: &[String]) -> Vec<&str> {
        calls
            .iter()
            .filter_map(|c| c.strip_prefix("weights "))
            .collect()
    }

    #[tokio::test]
    async fn a_canary_walks_every_step_then_promotes() {
        let f = Fixture::new().await;
        let world = World::running("v1");
        let applied = f
            .roll(world, &spec(Strategy::Canary, &[10, 50, 100]), "v2")
            .await
            .expect("the canary succeeds");
        assert_eq!(applied.outputs.get("revision").as_str(), Some("v2"));
        assert_eq!(weights(&world.calls()), ["90/10", "50/50", "0/100"]);
        assert_eq!(world.now(), ("v2".into(), vec!["v2".into()], [0, 100]));
        let events = f.events().await;
        assert_eq!(events.first(), Some(&EventKind::RolloutStart));
        assert_eq!(events.last(), Some(&EventKind::RolloutComplete));
        assert_eq!(
            events
                .iter()
                .filter(|k| **k == EventKind::RolloutStep)
                .count(),
            3
        );
    }

    #[tokio::test]
    async fn blue_green_in_two_batches_switches_half_then_all() {
        let f = Fixture::new().await;
        let world = World::running("v1");
        f.roll(world, &spec(Strategy::BlueGreen, &[50, 100]), "v2")
            .await
            .expect("the blue/green succeeds");
        // Pre-traffic checks at 0% first, then each batch's switch.
        assert_eq!(weights(&world.calls()), ["100/0", "50/50", "0/100"]);
        assert_eq!(world.now().0, "v2");
    }

    #[tokio::test]
    async fn a_failing_gate_rolls_back_to_the_old_revision() {
        let f = Fixture::new().await;
        let world = World::running("v1");
        world.fail_gate_at(50);
        let err = f
            .roll(world, &spec(Strategy::Canary, &[10, 50, 100]), "v2")
            .await
            .expect_err("the gate fails at 50%");
        assert!(
            matches!(&err, RolloutError::GateFailed { reason, .. } if reason.contains("errors at 50%")),
            "{err}"
        );
        assert_eq!(world.now(), ("v1".into(), vec!["v1".into()], [100, 0]));
        assert!(world.calls().contains(&"restore v1".to_string()));
        let events = f.events().await;
        assert!(events.contains(&EventKind::GateFailed), "{events:?}");
        assert_eq!(events.last(), Some(&EventKind::Rollback));
    }

    #[tokio::test]
    async fn a_pause_holds_traffic_until_promote() {
        let f = Fixture::new().await;
        let world = World::running("v1");
        let mut spec = spec(Strategy::Canary, &[10, 50, 100]);
        spec.pauses = vec![0];
        let err = f.roll(world, &spec, "v2").await.expect_err("it pauses");
        assert!(
            matches!(
                err,
                RolloutError::Paused {
                    step: 1,
                    weight: 10,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(world.now().2, [90, 10], "traffic stays at the paused step");
        // Running the same rollout again stays paused, and moves nothing.
        let again = f.roll(world, &spec, "v2").await.expect_err("still paused");
        assert!(matches!(again, RolloutError::Paused { .. }), "{again}");
        assert_eq!(weights(&world.calls()), ["90/10"]);
        let address = Address::parse("app").unwrap();
        assert!(f.store.request_rollout(&address, "promote").await.unwrap());
        f.roll(world, &spec, "v2")
            .await
            .expect("promoted, it finishes");
        assert_eq!(world.now().0, "v2");
        let events = f.events().await;
        assert!(events.contains(&EventKind::RolloutPaused), "{events:?}");
        assert!(events.contains(&EventKind::RolloutPromote), "{events:?}");
        assert_eq!(events.last(), Some(&EventKind::RolloutComplete));
    }

    #[tokio::test]
    async fn a_crash_between_acting_and_saving_resumes_the_same_step() {
        let f = Fixture::new().await;
        let world = World::running("v1");
        world.crash_after_next_weights();
        let spec = spec(Strategy::Canary, &[10, 50, 100]);
        let err = f.roll(world, &spec, "v2").await.expect_err("the crash");
        assert!(matches!(err, RolloutError::Target { .. }), "{err}");
        assert_eq!(world.now().2, [90, 10], "it acted before it died");
        let first_id = {
            let rows = f.store.rollouts().await.unwrap();
            Rollout::decode(&rows[0].address, &rows[0].body).unwrap().id
        };
        f.roll(world, &spec, "v2")
            .await
            .expect("the next run converges");
        // The step is repeated (idempotently), never started from 0% or run twice as new.
        assert_eq!(
            weights(&world.calls()),
            ["90/10", "90/10", "50/50", "0/100"]
        );
        assert_eq!(
            world
                .calls()
                .iter()
                .filter(|c| c.starts_with("start "))
                .count(),
            1,
            "the new revision was started once"
        );
        let rows = f.store.rollouts().await.unwrap();
        let rec = Rollout::decode(&rows[0].address, &rows[0].body).unwrap();
        assert_eq!(rec.id, first_id, "the same rollout resumed");
        assert_eq!(world.now().0, "v2");
    }
}
