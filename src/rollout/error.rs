//! Why a rollout did not succeed, typed; rendered once at the edge.

use super::target::TargetError;
use crate::state::StateError;

impl RolloutError {
    /// Whether the service is known to serve its old revision (rolled back, aborted, or
    /// refused before anything moved), so nothing is left in flight.
    pub fn left_old_revision(&self) -> bool {
        matches!(
            self,
            RolloutError::GateFailed { .. }
                | RolloutError::Aborted { .. }
                | RolloutError::Refused { .. }
        )
    }
}

impl RolloutError {
    /// Whether the rollout's own events already told its webhook how it ended (rolled back,
    /// aborted, paused), or someone stopped it by hand (interrupted): an apply then posts no
    /// "apply failed" of its own.
    pub fn already_notified(&self) -> bool {
        matches!(
            self,
            RolloutError::GateFailed { .. }
                | RolloutError::Aborted { .. }
                | RolloutError::Paused { .. }
                | RolloutError::Interrupted { .. }
        )
    }
}

/// A rollout's failure.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// A gate failed (or a target reported a failure) and traffic went back to the old revision.
    #[error(
        "rollout rolled back: {reason} (traffic restored to the old revision in {seconds:.2}s)"
    )]
    GateFailed {
        /// The service.
        address: String,
        /// Which gate and why.
        reason: String,
        /// Seconds from the decision to traffic restored.
        seconds: f64,
    },
    /// The service's first revision failed: there was no older one to go back to, so the
    /// service is left as the target has it.
    #[error(
        "{reason}; it was the service's first revision, so there is none to go back to: fix the revision and apply again"
    )]
    FirstRevisionFailed {
        /// The service.
        address: String,
        /// Why it failed.
        reason: String,
    },
    /// `rollout abort` (or a newer revision) rolled it back.
    #[error("rollout aborted: {reason} (traffic restored to the old revision in {seconds:.2}s)")]
    Aborted {
        /// The service.
        address: String,
        /// Why.
        reason: String,
        /// Seconds from the request to traffic restored.
        seconds: f64,
    },
    /// A check before anything changed (the cost gate, the alarms) refused the revision.
    #[error("{address}: rollout refused by the {gate} before any traffic moved: {detail}")]
    Refused {
        /// The service.
        address: String,
        /// `cost gate` or `alarm check`.
        gate: &'static str,
        /// Both run rates and the limit.
        detail: String,
    },
    /// The new revision was not ready by `ready_timeout`, and `on_timeout: leave` left it.
    #[error("{address}: {reason}")]
    NotReady {
        /// The service.
        address: String,
        /// What was last seen.
        reason: String,
    },
    /// Ctrl-C or SIGTERM stopped it at a safe point.
    #[error(
        "{address}: rollout interrupted at step {step} of {steps} ({weight}% on the new revision); `converge rollout resume {address}` continues it"
    )]
    Interrupted {
        /// The service.
        address: String,
        /// 1-based step.
        step: usize,
        /// Steps in all.
        steps: usize,
        /// Percent on the new revision.
        weight: i32,
    },
    /// At a `pause` step: traffic holds until `rollout promote` (this is not a failure; apply
    /// exits 3).
    #[error(
        "{address}: paused, waiting for promote at step {step} of {steps} ({weight}% on the new revision): `converge rollout promote {address}` continues it; after {until} the next converge command rolls it back"
    )]
    Paused {
        /// The service.
        address: String,
        /// 1-based step.
        step: usize,
        /// Steps in all.
        steps: usize,
        /// Percent on the new revision.
        weight: i32,
        /// When `pause_timeout` runs out (RFC 3339).
        until: String,
    },
    /// A call to the target failed; the record is kept, and a resume repeats the step.
    #[error("{address}: {source}")]
    Target {
        /// The service.
        address: String,
        /// The target's error, with its cause.
        #[source]
        source: TargetError,
    },
    /// The state backend failed.
    #[error("{address}: state: {source}")]
    State {
        /// The service.
        address: String,
        /// The state error.
        #[source]
        source: StateError,
    },
    /// The stored record cannot be read.
    #[error(transparent)]
    Undecodable(#[from] super::record::UndecodableRecord),
}
