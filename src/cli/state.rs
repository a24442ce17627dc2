//! `converge state list|show|rm` and `converge import`: inspect and repair state.

use clap::{Args, Subcommand};

use super::{CliError, EXIT_OK, Format, GlobalArgs, output, session};
use crate::audit::NewEvent;
use crate::model::Address;
use crate::plan::render::property_lines;
use crate::providers::ImportRequest;
use crate::state::{self, ResourceState, ResourceStatus};

/// `state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List managed resources.
    List,
    /// Show one resource as last applied.
    Show {
        /// Its address.
        address: String,
    },
    /// Forget a resource without deleting it in the cloud.
    Rm {
        /// Its address.
        address: String,
    },
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The address it gets (declared in the files).
    address: String,
    /// The cloud id: repository or role name, cluster name or ARN, CLUSTER/SERVICE.
    id: String,
}

fn parse_address(raw: &str) -> Result<Address, CliError> {
    Address::parse(raw)
        .ok_or_else(|| CliError::Usage(format!("`{raw}` is not an address (KEY or INSTANCE.KEY)")))
}

pub(super) async fn run(g: &GlobalArgs, command: &StateCommand) -> Result<i32, CliError> {
    let name = session::env_name(g)?;
    let store = session::open_state(g, &name).await?;
    let resources = store.resources().await?;
    match command {
        StateCommand::List => {
            if g.format == Format::Json {
                output::json(&resources);
            } else if resources.is_empty() {
                output::print(&format!("No resources in the state of {name}.\n"));
            } else {
                let width = resources
                    .iter()
                    .map(|r| r.address.as_str().len())
                    .max()
                    .unwrap_or(0);
                let mut out = String::new();
                for r in &resources {
                    let flag = if r.status.in_flight() {
                        format!(
                            "  ({}: an apply stopped mid-operation; the next plan re-reads it)",
                            r.status.as_str()
                        )
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "{:width$}  {:22}  {}{flag}\n",
                        r.address.as_str(),
                        r.kind,
                        r.remote_id
                    ));
                }
                output::print(&out);
            }
        }
        StateCommand::Show { address } => {
            let address = parse_address(address)?;
            let r = find(&resources, &address, &name)?;
            if g.format == Format::Json {
                output::json(r);
            } else {
                output::print(&format!(
                    "# {} ({})\nid: {}\ndepends_on: [{}]\n\n# properties\n{}\n# outputs\n{}",
                    r.address,
                    r.kind,
                    r.remote_id,
                    r.dependencies
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    property_lines(&r.properties, &[]),
                    property_lines(&r.outputs, &[]),
                ));
            }
        }
        StateCommand::Rm { address } => {
            let address = parse_address(address)?;
            let r = find(&resources, &address, &name)?.clone();
            let ctx = session::audit_context(g);
            let guard = session::lock(g, &name, store.as_ref(), "state rm", &ctx).await?;
            let mut event = NewEvent::new("state rm", crate::audit::EventKind::Forget, "ok")
                .address(&address)
                .detail(format!(
                    "removed from state; {} {} still exists in the cloud",
                    r.kind, r.remote_id
                ));
            event.before = Some(r.properties.to_display_json());
            let result = store
                .commit(state::Change::Remove(address.clone()), event, &ctx)
                .await;
            guard.release(store.as_ref()).await?;
            result?;
            output::print(&format!(
                "Removed {address} from the state of {name}; the {} itself was not touched.\n",
                r.kind
            ));
        }
    }
    Ok(EXIT_OK)
}

fn find<'a>(
    resources: &'a [ResourceState],
    address: &Address,
    env: &str,
) -> Result<&'a ResourceState, CliError> {
    resources
        .iter()
        .find(|r| &r.address == address)
        .ok_or_else(|| CliError::Usage(format!("no resource {address} in the state of {env}")))
}

pub(super) async fn import(g: &GlobalArgs, args: &ImportArgs) -> Result<i32, CliError> {
    let name = session::env_name(g)?;
    let env = session::load(g, &name)?;
    let address = parse_address(&args.address)?;
    let resource = env.resources.get(&address).ok_or_else(|| {
        CliError::Usage(format!(
            "{address} is not declared in the files of {name}: declare it first, then import"
        ))
    })?;
    let store = session::open_state(g, &name).await?;
    let ctx = session::audit_context(g);
    let guard = session::lock(g, &name, store.as_ref(), "import", &ctx).await?;
    let result = async {
        if store.resources().await?.iter().any(|r| r.address == address) {
            return Err(CliError::Refused(format!("{address} is already managed; `converge state rm {address}` first")));
        }
        let registry = session::registry(g, &env).await;
        let provider = registry.for_kind(resource.kind).map_err(|source| CliError::Provider { context: format!("importing {address}"), source })?;
        let found = provider
            .import(ImportRequest { address: address.clone(), kind: resource.kind, id: args.id.clone() })
            .await
            .map_err(|source| CliError::Provider { context: format!("importing {address}"), source })?;
        let Some((applied, live)) = found else {
            return Err(CliError::Failed(format!("no {} with id `{}` exists", resource.kind.kind, args.id)));
        };
        let properties = resource.kind.normalize(&live.properties);
        let mut event = NewEvent::new("import", crate::audit::EventKind::Import, "ok").address(&address).detail(format!("adopted {}", applied.remote_id));
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
        store.commit(state::Change::Put(stored), event, &ctx).await?;
        output::print(&format!(
            "Imported {} as {address}. Run `converge plan --env {name}` to see how it differs from the files.\n",
            applied.remote_id
        ));
        Ok(EXIT_OK)
    }
    .await;
    guard.release(store.as_ref()).await?;
    result
}
