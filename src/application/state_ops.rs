//! Repairing state by hand: adopting a live resource (`import`) and forgetting one without
//! deleting it (`state rm`); each under the write lock and audited.

use super::{Error, Settings, session};
use crate::audit::NewEvent;
use crate::model::Address;
use crate::providers::ImportRequest;
use crate::state::{self, ResourceState, ResourceStatus};

/// What an import adopted.
#[derive(Debug)]
pub struct Imported {
    /// The environment it now belongs to.
    pub environment: String,
    /// Its id in the cloud.
    pub remote_id: String,
}

/// Adopts the live resource `id` at `address`, which the files must declare.
pub async fn import(s: &Settings, address: &Address, id: &str) -> Result<Imported, Error> {
    let name = session::env_name(s)?;
    let env = session::load(s, &name)?;
    let resource = env.resources.get(address).ok_or_else(|| {
        Error::Usage(format!(
            "{address} is not declared in the files of {name}: declare it first, then import"
        ))
    })?;
    let store = session::open_state(s, &name).await?;
    let ctx = session::audit_context(s);
    let guard = session::lock(s, &name, store.as_ref(), "import", &ctx).await?;
    let result = async {
        if store
            .resources()
            .await?
            .iter()
            .any(|r| &r.address == address)
        {
            return Err(Error::Refused(format!(
                "{address} is already managed; `converge state rm {address}` first"
            )));
        }
        let registry = session::registry(s, &env).await;
        let provider = registry
            .for_kind(resource.kind)
            .map_err(|source| Error::Provider {
                context: format!("importing {address}"),
                source,
            })?;
        let found = provider
            .import(ImportRequest {
                address: address.clone(),
                kind: resource.kind,
                id: id.to_string(),
            })
            .await
            .map_err(|source| Error::Provider {
                context: format!("importing {address}"),
                source,
            })?;
        let Some((applied, live)) = found else {
            return Err(Error::Failed(format!(
                "no {} with id `{}` exists",
                resource.kind.kind, id
            )));
        };
        let properties = resource.kind.normalize(&live.properties);
        let mut event = NewEvent::new("import", crate::audit::EventKind::Import, "ok")
            .address(address)
            .detail(format!("adopted {}", applied.remote_id));
        event.after = Some(properties.to_display_json());
        let stored = ResourceState {
            address: address.clone(),
            kind: resource.kind.kind.to_string(),
            remote_id: applied.remote_id.clone(),
            properties,
            outputs: applied.outputs,
            dependencies: resource.depends_on.iter().cloned().collect(),
            status: ResourceStatus::Applied,
        };
        store
            .commit(state::Change::Put(stored), event, &ctx)
            .await?;
        Ok(Imported {
            environment: name.clone(),
            remote_id: applied.remote_id,
        })
    }
    .await;
    guard.release(store.as_ref()).await?;
    result
}

/// Forgets `address` in `env`'s state without touching the cloud; its kind.
pub async fn forget(s: &Settings, env: &str, address: &Address) -> Result<String, Error> {
    let store = session::open_state(s, env).await?;
    let ctx = session::audit_context(s);
    let guard = session::lock(s, env, store.as_ref(), "state rm", &ctx).await?;
    let result = async {
        let resources = store.resources().await?;
        let r = resources
            .iter()
            .find(|r| &r.address == address)
            .ok_or_else(|| Error::Usage(format!("no resource {address} in the state of {env}")))?;
        let mut event = NewEvent::new("state rm", crate::audit::EventKind::Forget, "ok")
            .address(address)
            .detail(format!(
                "removed from state; {} {} still exists in the cloud",
                r.kind, r.remote_id
            ));
        event.before = Some(r.properties.to_display_json());
        store
            .commit(state::Change::Remove(address.clone()), event, &ctx)
            .await?;
        Ok(r.kind.clone())
    }
    .await;
    guard.release(store.as_ref()).await?;
    result
}

/// Moves `from` to `to` in `env`'s state (its row and its rollout record) without a cloud
/// call, as a `moved` refactor would: the next plan updates the resource's `converge:address`
/// tag in place. `to` must be free in state; its kind stays.
pub async fn move_resource(
    s: &Settings,
    env: &str,
    from: &Address,
    to: &Address,
) -> Result<String, Error> {
    let store = session::open_state(s, env).await?;
    let ctx = session::audit_context(s);
    let guard = session::lock(s, env, store.as_ref(), "state mv", &ctx).await?;
    let result = async {
        if from == to {
            return Err(Error::Usage(format!("{from} is already at {to}")));
        }
        let resources = store.resources().await?;
        let r = resources
            .iter()
            .find(|r| &r.address == from)
            .ok_or_else(|| Error::Usage(format!("no resource {from} in the state of {env}")))?;
        if let Some(taken) = resources.iter().find(|r| &r.address == to) {
            return Err(Error::Usage(format!(
                "{to} is already in the state of {env} (a {}): move or remove it first",
                taken.kind
            )));
        }
        let mut event = NewEvent::new("state mv", crate::audit::EventKind::Move, "ok")
            .address(to)
            .detail(format!(
                "moved from {from} to {to}; {} {} unchanged in the cloud",
                r.kind, r.remote_id
            ));
        event.before = Some(serde_json::json!({ "address": from.as_str() }));
        event.after = Some(serde_json::json!({ "address": to.as_str() }));
        store
            .commit(
                state::Change::Move(vec![(from.clone(), to.clone())]),
                event,
                &ctx,
            )
            .await?;
        Ok(r.kind.clone())
    }
    .await;
    guard.release(store.as_ref()).await?;
    result
}
