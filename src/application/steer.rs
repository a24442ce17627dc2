//! Steering a rollout (`rollout promote|abort|resume`): a request recorded in state for the
//! process running the rollout, which acts on it within one gate interval. A paused rollout has
//! no process of its own, so the caller continues it.

use super::{Error, Settings, session};
use crate::audit::{EventKind, NewEvent};
use crate::model::Address;
use crate::rollout::{Rollout, Status};
use crate::state::{self, StateStore};

/// What is asked of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// Skip the rest of the current bake, or go on past a pause.
    Promote,
    /// Go straight to 100%.
    PromoteFull,
    /// Roll back now.
    Abort,
}

impl Steer {
    /// The request as state records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Steer::Promote => "promote",
            Steer::PromoteFull => "promote_full",
            Steer::Abort => "abort",
        }
    }

    /// The audit event of the request.
    fn event(self) -> EventKind {
        match self {
            Steer::Promote => EventKind::PromoteRequested,
            Steer::PromoteFull => EventKind::PromoteFullRequested,
            Steer::Abort => EventKind::AbortRequested,
        }
    }

    /// What the request asks, in words (`go straight to 100%`).
    fn asks(self, paused: bool) -> &'static str {
        match self {
            Steer::Promote if paused => "go on past the pause",
            Steer::Promote => "skip the rest of the current bake",
            Steer::PromoteFull => "go straight to 100%",
            Steer::Abort => "roll back now",
        }
    }
}

/// Who acts on a recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// The rollout is paused: the caller continues it (an apply of its address).
    ContinueHere,
    /// The process running it acts within one gate interval; the words say what was asked.
    Asked(String),
}

/// The status of the rollout recorded at `address`, if any (a record that cannot be read is
/// an error).
pub async fn status_of(store: &dyn StateStore, address: &Address) -> Result<Option<Status>, Error> {
    for r in store.rollouts().await? {
        if &r.address == address {
            return Ok(Some(Rollout::decode(&r.address, &r.body)?.status));
        }
    }
    Ok(None)
}

/// Whether `address` has a rollout still running or paused.
pub async fn is_unfinished(store: &dyn StateStore, address: &Address) -> Result<bool, Error> {
    Ok(status_of(store, address)
        .await?
        .is_some_and(|s| s.unfinished()))
}

/// Records `what` for the rollout at `address` and audits it.
pub async fn request(
    s: &Settings,
    store: &dyn StateStore,
    address: &Address,
    what: Steer,
) -> Result<Requested, Error> {
    let status = status_of(store, address).await?;
    let running = status.is_some_and(|s| s.unfinished());
    let paused = status == Some(Status::Paused);
    if !running || !store.request_rollout(address, what.as_str()).await? {
        return Err(Error::Failed(format!(
            "no running rollout at {address}; `converge rollout status` shows them"
        )));
    }
    store
        .commit(
            state::Change::None,
            NewEvent::new("rollout", what.event(), "ok").address(address),
            &session::audit_context(s),
        )
        .await?;
    let asked = what.asks(paused);
    if paused {
        s.say(&format!(
            "{address} is paused: continuing its rollout here to {asked}."
        ));
        Ok(Requested::ContinueHere)
    } else {
        Ok(Requested::Asked(format!(
            "Asked the controller of {address} to {asked}; it acts within one gate interval."
        )))
    }
}
