//! Progressive delivery for ECS services (DESIGN §5): canary and blue/green rollouts under the
//! EXTERNAL deployment controller, with health and cost gates and automatic rollback.
//!
//! Guarantees: the cost gate runs before anything changes; a failed gate puts all traffic
//! back on the old revision within one interval; every step, gate result, request and
//! rollback is persisted and audited, so `rollout resume` continues after a crash from the
//! step where it stopped and never leaves two primaries.

pub mod controller;
pub mod gates;
pub mod notify;
pub mod record;
pub mod schema;
pub mod spec;

pub use controller::{RolloutContext, RolloutRequest, run};
pub use record::{Rollout, Status, UndecodableRecord};
pub use spec::{RolloutSpec, needs_new_revision};
