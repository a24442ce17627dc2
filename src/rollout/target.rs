//! What the rollout driver needs from the thing it rolls out: the [`Target`] trait. ECS task
//! sets behind ALB listener weights are the first implementation (`ecs.rs`); containers on
//! hosts behind nginx are the next. The engine never sees a target; the driver never decides.

use async_trait::async_trait;

use super::engine::Probe;
use super::record::Rollout;
use super::spec::Hook;
use crate::providers::{Applied, ProviderError};

/// Why a target could not do a step.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    /// A check that runs before anything changes refused the new revision (the cost gate, an
    /// alarm already in ALARM).
    #[error("{gate}: {detail}")]
    Refused {
        /// `cost gate`, `alarm check`.
        gate: &'static str,
        /// Which check and why, with the figures.
        detail: String,
        /// Before figures for the audit event.
        before: serde_json::Value,
        /// After figures for the audit event.
        after: serde_json::Value,
    },
    /// A cloud or host call failed (the record stays as it was: resume repeats the step).
    #[error(transparent)]
    Call(#[from] ProviderError),
    /// The step was refused in a way that calls for a rollback, not a retry (nginx rejected
    /// the new file, or its reload started no new workers).
    #[error("{0}")]
    StepFailed(String),
    /// The record's target part cannot be read or written.
    #[error(transparent)]
    Record(#[from] crate::rollout::record::RecordError),
    /// The target cannot do this step for this strategy.
    #[error("{0}")]
    Unsupported(String),
}

/// What one look at the new revision found.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Ready, with what shows it.
    Ready(String),
    /// Not yet, with what was seen.
    Pending(String),
    /// It will not become ready (ECS failed or rolled back the deployment), with why.
    Failed(String),
}

/// A rollout target. Every method is idempotent: the driver repeats a step after a crash.
#[async_trait]
pub trait Target: Send + Sync {
    /// Fills a new record with what runs now (the old revision, the listener's load balancer)
    /// and runs the checks that must pass before anything changes (the cost gate).
    async fn begin(&self, rec: &mut Rollout) -> Result<(), TargetError>;
    /// Creates the new revision beside the old one, taking no traffic (reusing one a killed
    /// run left behind), and records it in `rec`.
    async fn start_revision(&self, rec: &mut Rollout) -> Result<(), TargetError>;
    /// Sends `[old, new]` percent of traffic to the two revisions (and, before a blue/green
    /// switch, the test listener to the new one).
    /// `Ready` once done, `Pending` while the change is under way without waiting (nginx's new
    /// workers not seen yet): the engine asks again shortly.
    async fn set_weights(&self, rec: &Rollout, weights: [i32; 2])
    -> Result<Readiness, TargetError>;
    /// Evaluates every gate once against the new revision (an error only when the record
    /// cannot say what to evaluate; a gate that cannot be read is a probe's `no_data`).
    async fn evaluate(&self, rec: &Rollout) -> Result<Vec<Probe>, TargetError>;
    /// Rolling: moves the service in place onto the new revision (creating the service when
    /// it does not exist yet).
    async fn deploy(&self, rec: &mut Rollout) -> Result<(), TargetError>;
    /// Whether the new revision is ready to take traffic (or, rolling, done): one look.
    async fn ready(&self, rec: &Rollout) -> Result<Readiness, TargetError>;
    /// Makes the new revision primary at 100% and removes the old one: `Ready` when done, or
    /// `Pending` when it is under way without waiting (connections still draining), and the
    /// engine asks again shortly.
    async fn promote(&self, rec: &Rollout) -> Result<Readiness, TargetError>;
    /// Puts all traffic back on the old revision and removes the new one: `Ready` when done,
    /// or `Pending` when it is under way (the old revision starting again).
    async fn restore(&self, rec: &Rollout) -> Result<Readiness, TargetError>;
    /// Takes the backups the target declares before the pre_traffic hooks run and records
    /// them in `rec.backups`: `Ready` with what was taken, `Failed` (rolls back before any
    /// hook) with which one and why. A target without backups has nothing to take.
    async fn backup(&self, _rec: &mut Rollout) -> Result<Readiness, TargetError> {
        Ok(Readiness::Ready("no backups declared".into()))
    }
    /// Starts `hook` as a one-off task of the new revision and records its id in `rec.hook`
    /// (idempotent: a retried start of the same hook of the same rollout starts nothing new).
    async fn start_hook(&self, rec: &mut Rollout, hook: &Hook) -> Result<(), TargetError>;
    /// One look at the recorded hook's task: running, exited 0, or failed (with its exit code,
    /// stopped reason and the end of its log).
    async fn hook_status(&self, rec: &Rollout, hook: &Hook) -> Result<Readiness, TargetError>;
    /// Stops the recorded hook's task.
    async fn stop_hook(&self, rec: &Rollout) -> Result<(), TargetError>;
    /// What a succeeded rollout leaves in state for the resource (id and outputs).
    fn applied(&self, rec: &Rollout) -> Result<Applied, TargetError>;
}
