//! Progressive delivery (DESIGN §5): one engine for every strategy (`engine.rs`, a pure
//! `next(record, observation) -> step`), a driver that persists and acts (`driver.rs`), and
//! targets behind a trait (`target.rs`; ECS task sets behind ALB weights in `ecs.rs`), with
//! health and cost gates and automatic rollback.
//!
//! Guarantees: the cost gate runs before anything changes; a failed gate puts all traffic
//! back on the old revision within one interval; every step, gate result, request and
//! rollback is persisted and audited, so `rollout resume` continues after a crash from the
//! step where it stopped and never leaves two primaries.

pub mod driver;
pub mod ecs;
pub mod engine;
pub mod error;
pub mod gates;
pub mod notify;
pub mod record;
pub mod schema;
pub mod spec;
pub mod target;

pub use driver::{RolloutContext, RolloutRequest, expire_pause, run};
pub use error::RolloutError;
pub use record::{Phase, Rollout, Status, UndecodableRecord};
pub use spec::{RolloutSpec, needs_new_revision};
