//! `pause_timeout`, enforced: a rollout paused at a `pause` step has no process of its own, so
//! the next converge command that touches the environment (plan, apply, drift, rollout
//! promote) rolls back each one paused past its deadline before it does anything else.

use tokio_util::sync::CancellationToken;

use super::{Error, Settings, session};
use crate::config::Environment;
use crate::providers::Registry;
use crate::rollout::{Rollout, RolloutContext, RolloutRequest};
use crate::state::StateStore;

/// Whether the caller already holds the environment's write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// It does (apply).
    Held,
    /// It does not: take it for the rollbacks (plan, drift).
    Take,
}

/// Rolls back every rollout of `env` paused past its `pause_timeout`.
pub async fn expire(
    g: &Settings,
    env: &Environment,
    store: &dyn StateStore,
    registry: &Registry,
    lock: Lock,
) -> Result<(), Error> {
    let now = chrono::Utc::now();
    let expired: Vec<Rollout> = store
        .rollouts()
        .await?
        .into_iter()
        .map(|r| Rollout::decode(&r.address, &r.body))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|r| r.pause_expired(now))
        .collect();
    if expired.is_empty() {
        return Ok(());
    }
    let audit = session::audit_context(g);
    let guard = match lock {
        Lock::Take => Some(session::lock(g, &env.name, store, "pause timeout", &audit).await?),
        Lock::Held => None,
    };
    let result = roll_back(g, env, store, registry, &audit, &expired).await;
    if let Some(guard) = guard {
        guard.release(store).await?;
    }
    result
}

async fn roll_back(
    g: &Settings,
    env: &Environment,
    store: &dyn StateStore,
    registry: &Registry,
    audit: &crate::audit::Context,
    expired: &[Rollout],
) -> Result<(), Error> {
    let stored = store.resources().await?;
    let interrupt = CancellationToken::new();
    let report = |line: &str| g.say(line);
    let ctx = RolloutContext::for_environment(
        env,
        store,
        audit,
        registry,
        "pause timeout",
        &interrupt,
        &report,
    );
    for rec in expired {
        let Some(row) = stored.iter().find(|s| s.address.as_str() == rec.address) else {
            continue;
        };
        let deploy = crate::kinds::find(&row.kind)
            .and_then(|k| k.deploy)
            .ok_or_else(|| {
                Error::Failed(format!(
                    "{}: a paused rollout of {}, a kind that does not roll out",
                    rec.address, row.kind
                ))
            })?;
        let spec = deploy
            .spec(&row.properties)
            .map_err(|e| Error::Failed(format!("{}: {e}", rec.address)))?;
        g.say(&format!(
            "{}: paused past its pause_timeout (until {}): rolling back",
            rec.address,
            rec.pause_until.as_deref().unwrap_or("?")
        ));
        let req = RolloutRequest::new(
            deploy,
            row.address.clone(),
            row.remote_id.clone(),
            (row.properties.clone(), row.outputs.clone()),
            row.properties.clone(),
            spec,
        );
        crate::rollout::expire_pause(&ctx, &req)
            .await
            .map_err(|e| Error::Failed(e.to_string()))?;
    }
    Ok(())
}
