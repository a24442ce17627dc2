//! What most commands share: the environment's files, its state, providers and audit context.

use std::collections::BTreeMap;

use super::{Error, Settings};
use crate::audit::{self, NewEvent};
use crate::config::{self, Environment, VarOverrides};
use crate::providers::{ProviderOptions, Registry};
use crate::state::{self, LockInfo, StateStore};

/// The environment name: `--env`, or an error naming the choices.
pub fn env_name(g: &Settings) -> Result<String, Error> {
    if let Some(e) = &g.env {
        return Ok(e.clone());
    }
    let known = config::list_environments(&g.root).unwrap_or_default();
    Err(Error::Usage(format!(
        "this command needs --env NAME (environments: {})",
        if known.is_empty() {
            "none found under environments/".to_string()
        } else {
            known.join(", ")
        }
    )))
}

/// Variable values from `--var` and `CONVERGE_VAR_*`.
pub fn overrides(g: &Settings) -> Result<VarOverrides, Error> {
    let mut cli = BTreeMap::new();
    for v in &g.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--var {v}: write --var KEY=VALUE")))?;
        cli.insert(k.trim().to_string(), val.to_string());
    }
    let env = std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix("CONVERGE_VAR_").map(|k| (k.to_string(), v)))
        .collect();
    Ok(VarOverrides {
        cli,
        env,
        without_secrets: false,
    })
}

/// Loads and validates one environment's files, with the project's price table.
pub fn load(g: &Settings, name: &str) -> Result<Environment, Error> {
    load_with(g, name, overrides(g)?)
}

/// As [`load`], a sensitive variable without a value taken as unknown (`validate`: a pull
/// request from a fork gets no secrets).
pub fn load_without_secrets(g: &Settings, name: &str) -> Result<Environment, Error> {
    let mut given = overrides(g)?;
    given.without_secrets = true;
    load_with(g, name, given)
}

fn load_with(g: &Settings, name: &str, given: VarOverrides) -> Result<Environment, Error> {
    let mut env = config::load(&g.root, name, &given)?;
    let (prices, _) = crate::cost::PriceTable::for_project(&g.root)?;
    env.prices = std::sync::Arc::new(prices);
    Ok(env)
}

/// Opens the environment's state, with its state key installed for secret digests.
pub async fn open_state(g: &Settings, name: &str) -> Result<Box<dyn StateStore>, Error> {
    super::state_key::install(g, name)?;
    Ok(state::open(&g.root, name, g.state_url.as_deref()).await?)
}

/// Refuses state holding secret digests made under a key this run does not hold (another
/// runner's): planning with it would see every secret as changed.
pub fn check_digests(stored: &[state::ResourceState]) -> Result<(), Error> {
    let keyring = crate::model::digest::keyring();
    for r in stored {
        for digest in r.properties.digests() {
            if let Err(e) = keyring.needs_upgrade(digest) {
                return Err(Error::Refused(format!("{}: {e}", r.address)));
            }
        }
    }
    Ok(())
}

/// Builds the providers the environment configures.
pub async fn registry(g: &Settings, env: &Environment) -> Registry {
    Registry::for_environment(
        &env.providers,
        &ProviderOptions {
            parallelism: g.parallelism.max(1),
            calls: Default::default(),
        },
    )
    .await
    .with_hosts(crate::hosts::app::HostProvider::new(
        host_logins(env),
        g.hosts.clone(),
    ))
}

/// Each host app's `ssh` block as the files give it (its key from a variable), for reads:
/// state keeps only the key's digest.
fn host_logins(
    env: &Environment,
) -> std::collections::BTreeMap<crate::model::Address, crate::model::Value> {
    env.resources
        .values()
        .filter(|r| r.kind.provider() == "host")
        .map(|r| {
            (
                r.address.clone(),
                host_desired(env, &r.address).get("ssh").clone(),
            )
        })
        .collect()
}

/// A host app's properties as the files give them, with what other resources output left
/// unknown (enough for its `ssh` block and its secrets); null when it is not in the files.
pub fn host_desired(env: &Environment, address: &crate::model::Address) -> crate::model::Value {
    struct Unknown;
    impl crate::model::Lookup for Unknown {
        fn lookup(&self, _: &crate::model::Reference) -> crate::model::Value {
            crate::model::Value::Unknown
        }
    }
    env.resources
        .get(address)
        .map(|r| r.desired(&Unknown, &env.name))
        .unwrap_or_default()
}

/// A resource's properties as the files give them now (secrets revealed), other resources'
/// outputs as state records them (what is not applied yet stays unknown).
pub async fn resolved(
    env: &Environment,
    store: &dyn StateStore,
    address: &crate::model::Address,
) -> Result<crate::model::Value, Error> {
    let resource = env.resources.get(address).ok_or_else(|| {
        Error::Usage(format!(
            "{address} is not in {}'s files; apply removes it",
            env.name
        ))
    })?;
    let outputs: std::collections::BTreeMap<_, _> = store
        .resources()
        .await?
        .into_iter()
        .map(|s| (s.address, s.outputs))
        .collect();
    let ctx = crate::apply::ApplyContext {
        env,
        outputs: &outputs,
    };
    Ok(resource.kind.normalize(&resource.desired(&ctx, &env.name)))
}

/// The actor and commit for audit events.
pub fn audit_context(g: &Settings) -> audit::Context {
    audit::Context::detect(&g.root)
}

/// A held write lock, renewed in the background until released.
pub struct LockGuard {
    id: String,
    renew: tokio::task::JoinHandle<()>,
}

/// Takes the environment's write lock, waiting up to `--lock-timeout` for another holder
/// (failing with the holder's name after that), and auditing the takeover of a stale lock.
pub async fn lock(
    g: &Settings,
    env: &str,
    store: &dyn StateStore,
    operation: &str,
    ctx: &audit::Context,
) -> Result<LockGuard, Error> {
    let info = LockInfo::for_this_process(&ctx.actor, operation, state::locking::LEASE);
    let waiting = |lock: &LockInfo| {
        g.say(&format!(
            "waiting up to {} for the lock on {env}, held by {}",
            humantime::format_duration(g.lock_timeout),
            lock.describe()
        ))
    };
    let taken_over = match state::locking::acquire(store, &info, g.lock_timeout, waiting).await {
        Ok(previous) => previous,
        Err(state::StateError::Locked { env, lock }) => {
            return Err(Error::Refused(format!(
                "environment `{env}` is locked by {}{}; wait for it to finish, retry with --lock-timeout 5m, or if its holder is gone run `converge lock force-unlock --env {env}`",
                lock.describe(),
                if g.lock_timeout.is_zero() {
                    String::new()
                } else {
                    format!(" (waited {})", humantime::format_duration(g.lock_timeout))
                }
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(stale) = taken_over {
        let reason = store
            .stale_reason(&stale)
            .await
            .unwrap_or_else(|| "its holder is gone".into());
        g.say(&format!(
            "warning: took over a stale lock held by {} ({reason})",
            stale.describe()
        ));
        let event = NewEvent::new(operation, crate::audit::EventKind::LockTakeover, "ok")
            .detail(format!("stale lock of {} ({reason})", stale.describe()));
        store.commit(state::Change::None, event, ctx).await?;
    }
    // Renew the lease on a connection of its own, so a long step never lets it lapse.
    let renew_store = state::open(&g.root, env, g.state_url.as_deref()).await?;
    let renew = state::locking::renew_in_background(renew_store, info.id.clone());
    Ok(LockGuard { id: info.id, renew })
}

impl LockGuard {
    /// Releases the lock.
    pub async fn release(self, store: &dyn StateStore) -> Result<(), Error> {
        self.renew.abort();
        store.unlock(&self.id).await?;
        Ok(())
    }
}

/// Refreshes live state with a spinner; read errors are printed per address, then one error.
pub async fn refresh(
    g: &Settings,
    registry: &Registry,
    env: &str,
    stored: &[state::ResourceState],
) -> Result<crate::model::LiveMap, Error> {
    registry.ready().await.map_err(|source| Error::Provider {
        context: format!("{env}: signing in"),
        source,
    })?;
    let bar =
        g.ui.spinner(&format!("Refreshing {} resources in {env}", stored.len()));
    let before = registry.calls().total();
    let started = std::time::Instant::now();
    let (live, errors) = crate::refresh::refresh(registry, stored).await;
    bar.finish_and_clear();
    let calls = registry.calls().total() - before;
    tracing::info!(
        "refresh: {} resources in {:.2}s, cloud API calls: {calls} ({:.3} per resource); {}",
        stored.len(),
        started.elapsed().as_secs_f64(),
        calls as f64 / stored.len().max(1) as f64,
        registry.calls().summary()
    );
    if errors.is_empty() {
        return Ok(live);
    }
    for (address, e) in &errors {
        g.say(&format!("error: refreshing {address}: {e}"));
    }
    Err(Error::Failed(format!(
        "could not read {} resources from the cloud",
        errors.len()
    )))
}

/// Fails a plan over budget unless `--allow-over-budget REASON`, which is audited.
pub async fn check_budget(
    g: &Settings,
    env: &Environment,
    plan: &crate::plan::Plan,
    store: &dyn StateStore,
    operation: &str,
) -> Result<(), Error> {
    let problems = match &plan.budget {
        Some(verdict) if !verdict.within => verdict.problems.clone(),
        _ => return Ok(()),
    };
    match &g.allow_over_budget {
        Some(reason) => {
            g.say(&format!(
                "warning: over budget ({}); allowed: {reason}",
                problems.join("; ")
            ));
            let event = NewEvent::new(operation, crate::audit::EventKind::BudgetOverride, "ok")
                .detail(format!("{}; reason: {reason}", problems.join("; ")));
            store
                .commit(state::Change::None, event, &audit_context(g))
                .await?;
            Ok(())
        }
        None => Err(Error::Refused(format!(
            "{} is over budget: {}. Change the files, or pass --allow-over-budget \"REASON\" (recorded in the audit trail)",
            env.name,
            problems.join("; ")
        ))),
    }
}
