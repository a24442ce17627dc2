//! Progressive delivery (DESIGN §5): one engine for every strategy (`engine.rs`, a pure
//! `next(record, observation) -> step`), a driver that persists and acts (`driver.rs`), and
//! targets behind a trait (`target.rs`), which a kind provides through its `Deploy`
//! capability (`deploy.rs`; ECS in `providers/aws/ecs/`, hosts in `hosts/app/`), with
//! health and cost gates and automatic rollback.
//!
//! Guarantees: the cost gate runs before anything changes; a failed gate puts all traffic
//! back on the old revision within one interval; every step, gate result, request and
//! rollback is persisted and audited, so `rollout resume` continues after a crash from the
//! step where it stopped and never leaves two primaries.

pub mod deploy;
pub mod driver;
pub mod engine;
pub mod error;
#[cfg(test)]
pub mod fake;
pub mod gates;
pub mod notify;
pub mod record;
pub mod schema;
pub mod spec;
pub mod target;

pub use deploy::Deploy;
pub use driver::{RolloutContext, RolloutRequest, expire_pause, run};
pub use error::RolloutError;
pub use record::{Phase, Rollout, Status, UndecodableRecord};
pub use spec::RolloutSpec;

use std::collections::BTreeMap;

/// Services pinned by `rollout undo` (plain data in `model::pin`, which the plan reads).
pub use crate::model::pin::{Pins, images, still_pinned};

/// The pins in `store`: each service whose latest rollout is an undo that succeeded.
pub async fn pins(store: &dyn crate::state::StateStore) -> Result<Pins, PinsError> {
    let mut out = BTreeMap::new();
    for r in store.rollouts().await? {
        let rec = Rollout::decode(&r.address, &r.body)?;
        if let Some(pin) = rec.pin() {
            out.insert(r.address.clone(), pin.clone());
        }
    }
    Ok(out)
}

/// Why the pins could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PinsError {
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A record cannot be read.
    #[error(transparent)]
    Undecodable(#[from] UndecodableRecord),
}
