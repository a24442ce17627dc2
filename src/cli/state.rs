//! `converge state list|show|rm` and `converge import`: inspect and repair state.

use clap::{Args, Subcommand};

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::{session, state_ops};
use crate::model::Address;
use crate::plan::render::property_lines;
use crate::state::ResourceState;

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
    /// Move a resource (and its rollout record) to another address, without a cloud call.
    Mv {
        /// Its address now.
        from: String,
        /// Its new address (free in state).
        to: String,
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

pub(super) async fn run(g: &GlobalArgs, command: &StateCommand) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let store = session::open_state(&g.settings, &name).await?;
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
            let address = super::address(address)?;
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
            let address = super::address(address)?;
            drop(store);
            let kind = state_ops::forget(&g.settings, &name, &address).await?;
            output::print(&format!(
                "Removed {address} from the state of {name}; the {kind} itself was not touched.\n"
            ));
        }
        StateCommand::Mv { from, to } => {
            let (from, to) = (super::address(from)?, super::address(to)?);
            drop(store);
            let kind = state_ops::move_resource(&g.settings, &name, &from, &to).await?;
            output::print(&format!(
                "Moved {from} to {to} in the state of {name}; the {kind} itself was not touched. The next plan updates its converge:address tag in place.\n"
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
    let address = super::address(&args.address)?;
    let imported = state_ops::import(&g.settings, &address, &args.id).await?;
    output::print(&format!(
        "Imported {} as {address}. Run `converge plan --env {}` to see how it differs from the files.\n",
        imported.remote_id, imported.environment
    ));
    Ok(EXIT_OK)
}
