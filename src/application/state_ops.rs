//! Repairing state by hand: adopting a live resource (`import`, optionally writing its
//! desired-state YAML), forgetting one without deleting it (`state rm`) and moving one
//! (`state mv`); each under the write lock and audited.

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
        let (applied, properties) = read_live(&registry, address, resource.kind, id).await?;
        record_import(
            store.as_ref(),
            &ctx,
            ResourceState {
                address: address.clone(),
                kind: resource.kind.kind.to_string(),
                remote_id: applied.remote_id.clone(),
                properties,
                outputs: applied.outputs,
                dependencies: resource.depends_on.iter().cloned().collect(),
                status: ResourceStatus::Applied,
            },
            "",
        )
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

/// Reads the live resource `id` of `kind` for `address`: what to record (its remote id and
/// outputs) and its normalized properties.
async fn read_live(
    registry: &crate::providers::Registry,
    address: &Address,
    kind: &'static crate::model::schema::KindSchema,
    id: &str,
) -> Result<(crate::providers::Applied, crate::model::Value), Error> {
    let context = format!("importing {address}");
    let provider = registry.for_kind(kind).map_err(|source| Error::Provider {
        context: context.clone(),
        source,
    })?;
    let found = provider
        .import(ImportRequest {
            address: address.clone(),
            kind,
            id: id.to_string(),
        })
        .await
        .map_err(|source| Error::Provider { context, source })?;
    let Some((applied, live)) = found else {
        return Err(Error::Failed(format!(
            "no {} with id `{id}` exists",
            kind.kind
        )));
    };
    Ok((applied, kind.normalize(&live.properties)))
}

/// Records an adopted resource in state with its `import` audit event.
async fn record_import(
    store: &dyn state::StateStore,
    ctx: &crate::audit::Context,
    row: ResourceState,
    note: &str,
) -> Result<(), Error> {
    let mut event = NewEvent::new("import", crate::audit::EventKind::Import, "ok")
        .address(&row.address)
        .detail(format!("adopted {}{note}", row.remote_id));
    event.after = Some(row.properties.to_display_json());
    store.commit(state::Change::Put(row), event, ctx).await?;
    Ok(())
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

/// What `import --generate` adopted and wrote.
#[derive(Debug)]
pub struct GeneratedImports {
    /// The environment they now belong to.
    pub environment: String,
    /// Each adopted resource: address, kind and cloud id.
    pub adopted: Vec<(Address, String, String)>,
    /// Live resources left out, with why (another environment manages them).
    pub skipped: Vec<String>,
    /// Sensitive variables the generated YAML references.
    pub secret_variables: Vec<String>,
}

/// Adopts the live resource `id` at `address` (declared or not: `kind` names the kind of an
/// undeclared one) and writes its desired-state YAML to `file`, which must not exist yet.
pub async fn import_generate(
    s: &Settings,
    address: &Address,
    id: &str,
    kind: Option<&str>,
    file: &std::path::Path,
) -> Result<GeneratedImports, Error> {
    let name = session::env_name(s)?;
    let env = session::load(s, &name)?;
    let kind = match (env.resources.get(address), kind) {
        (Some(declared), None) => declared.kind,
        (Some(declared), Some(k)) if k == declared.kind.kind => declared.kind,
        (Some(declared), Some(k)) => {
            return Err(Error::Usage(format!(
                "{address} is declared as a {}, not a {k}",
                declared.kind.kind
            )));
        }
        (None, Some(k)) => known_kind(k)?,
        (None, None) => {
            return Err(Error::Usage(format!(
                "{address} is not declared in the files of {name}: say its kind with --kind KIND"
            )));
        }
    };
    generate(
        s,
        &env,
        vec![(address.clone(), kind, id.to_string())],
        file,
        false,
    )
    .await
}

/// Adopts every live resource of `kind` that state does not hold (and no other environment
/// manages, by its `converge:environment` tag), at addresses made from their names, and writes
/// their desired-state YAML to `file`.
pub async fn import_all(
    s: &Settings,
    kind: &str,
    file: &std::path::Path,
) -> Result<GeneratedImports, Error> {
    let name = session::env_name(s)?;
    let env = session::load(s, &name)?;
    let kind = known_kind(kind)?;
    let registry = session::registry(s, &env).await;
    let provider = registry.for_kind(kind).map_err(|source| Error::Provider {
        context: format!("listing every {}", kind.kind),
        source,
    })?;
    let ids = provider
        .list(kind)
        .await
        .map_err(|source| Error::Provider {
            context: format!("listing every {}", kind.kind),
            source,
        })?;
    let store = session::open_state(s, &name).await?;
    let held = store.resources().await?;
    let mut taken: std::collections::BTreeSet<String> = held
        .iter()
        .map(|r| r.address.to_string())
        .chain(env.resources.keys().map(ToString::to_string))
        .collect();
    let targets = ids
        .into_iter()
        .filter(|id| {
            !held
                .iter()
                .any(|r| r.kind == kind.kind && &r.remote_id == id)
        })
        .map(|id| {
            let address = address_for(&id, &mut taken);
            (address, kind, id)
        })
        .collect();
    generate(s, &env, targets, file, true).await
}

fn known_kind(kind: &str) -> Result<&'static crate::model::schema::KindSchema, Error> {
    crate::kinds::lookup(kind).ok_or_else(|| {
        Error::Usage(format!(
            "unknown kind `{kind}` (kinds: {})",
            crate::kinds::schemas()
                .map(|k| k.kind)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// An address from a cloud name (`team/api` → `team_api`), unique among `taken`.
fn address_for(id: &str, taken: &mut std::collections::BTreeSet<String>) -> Address {
    let tail = id.rsplit([':', '/']).find(|p| !p.is_empty()).unwrap_or(id);
    let base: String = id
        .strip_prefix("arn:")
        .map_or(id, |_| tail)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = if base.is_empty() {
        "imported".to_string()
    } else {
        base
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    Address::root(&candidate)
}

async fn generate(
    s: &Settings,
    env: &crate::config::Environment,
    targets: Vec<(Address, &'static crate::model::schema::KindSchema, String)>,
    file: &std::path::Path,
    skip_others: bool,
) -> Result<GeneratedImports, Error> {
    if file.exists() {
        return Err(Error::Usage(format!(
            "{} exists: --generate writes a new file (move it away, or name another)",
            file.display()
        )));
    }
    for (address, _, _) in &targets {
        if address.as_str().contains('.') {
            return Err(Error::Usage(format!(
                "{address}: generated configuration is for the environment's own resources (KEY, not INSTANCE.KEY)"
            )));
        }
    }
    let name = env.name.clone();
    let store = session::open_state(s, &name).await?;
    let ctx = session::audit_context(s);
    let guard = session::lock(s, &name, store.as_ref(), "import", &ctx).await?;
    let result = async {
        let registry = session::registry(s, env).await;
        let held = store.resources().await?;
        let mut out = GeneratedImports {
            environment: name.clone(),
            adopted: Vec::new(),
            skipped: Vec::new(),
            secret_variables: Vec::new(),
        };
        let mut yaml = String::new();
        for (address, kind, id) in targets {
            if held.iter().any(|r| r.address == address) {
                return Err(Error::Refused(format!(
                    "{address} is already managed; `converge state rm {address}` first"
                )));
            }
            let (applied, properties) = read_live(&registry, &address, kind, &id).await?;
            let owner = properties
                .get("tags")
                .get(crate::config::ENVIRONMENT_TAG)
                .as_str()
                .map(str::to_string);
            if skip_others && owner.as_deref().is_some_and(|o| o != name) {
                out.skipped.push(format!(
                    "{id} (managed by environment {})",
                    owner.unwrap_or_default()
                ));
                continue;
            }
            let generated = crate::config::generate::declaration(&address, kind, &properties);
            record_import(
                store.as_ref(),
                &ctx,
                ResourceState {
                    address: address.clone(),
                    kind: kind.kind.to_string(),
                    remote_id: applied.remote_id.clone(),
                    properties,
                    outputs: applied.outputs,
                    dependencies: Vec::new(),
                    status: ResourceStatus::Applied,
                },
                " (configuration generated)",
            )
            .await?;
            yaml.push_str(&generated.yaml);
            out.secret_variables.extend(generated.secret_variables);
            out.adopted
                .push((address, kind.kind.to_string(), applied.remote_id));
        }
        let mut header = format!(
            "# Generated by `converge import` from the live resources of {name}: paste under `resources:` in\n# environments/{name}.yaml before the next apply (state holds them now; undeclared, a plan would delete them).\n"
        );
        if !out.secret_variables.is_empty() {
            header.push_str(&format!(
                "# Secrets are never written: declare these sensitive variables and pass them with CONVERGE_VAR_*:\n#   variables: {{ {} }}\n",
                out.secret_variables
                    .iter()
                    .map(|v| format!("{v}: {{ sensitive: true }}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        std::fs::write(file, format!("{header}{yaml}")).map_err(|e| {
            Error::Failed(format!(
                "cannot write {}: {e} (the resources are in state already; write it again with `converge state show`)",
                file.display()
            ))
        })?;
        Ok(out)
    }
    .await;
    guard.release(store.as_ref()).await?;
    result
}
