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
    /// The address it gets (declared in the files, or with --generate any free KEY).
    #[arg(required_unless_present = "all")]
    address: Option<String>,
    /// The cloud id: repository or role name, cluster name or ARN, CLUSTER/SERVICE.
    #[arg(required_unless_present = "all")]
    id: Option<String>,
    /// Write the resource's desired-state YAML (`ADDR: {type, properties}`) to FILE, a new file.
    #[arg(long, value_name = "FILE")]
    generate: Option<std::path::PathBuf>,
    /// The kind of an address the files do not declare yet (with --generate).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Adopt every live resource of KIND that state does not hold (with --generate).
    #[arg(long, value_name = "KIND", conflicts_with_all = ["address", "id", "kind"], requires = "generate")]
    all: Option<String>,
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
    if let Some(file) = &args.generate {
        let generated = match (&args.all, &args.address, &args.id) {
            (Some(kind), _, _) => state_ops::import_all(&g.settings, kind, file).await?,
            (None, Some(address), Some(id)) => {
                let address = super::address(address)?;
                state_ops::import_generate(&g.settings, &address, id, args.kind.as_deref(), file)
                    .await?
            }
            _ => {
                return Err(CliError::Usage(
                    "import needs ADDR ID, or --all KIND".into(),
                ));
            }
        };
        if g.format == Format::Json {
            output::json(&serde_json::json!({
                "environment": generated.environment,
                "file": file.display().to_string(),
                "imported": generated.adopted.iter().map(|(a, k, id)| serde_json::json!({"address": a, "kind": k, "id": id})).collect::<Vec<_>>(),
                "skipped": generated.skipped,
                "secret_variables": generated.secret_variables,
            }));
            return Ok(EXIT_OK);
        }
        let mut out = String::new();
        for (address, kind, id) in &generated.adopted {
            out.push_str(&format!("Imported {id} as {address} ({kind}).\n"));
        }
        for skipped in &generated.skipped {
            out.push_str(&format!("Left out {skipped}.\n"));
        }
        out.push_str(&format!(
            "Wrote {} resource{} to {}: paste it under `resources:` in environments/{}.yaml before the next apply; the next plan then adds only converge's tags, in place.\n",
            generated.adopted.len(),
            if generated.adopted.len() == 1 { "" } else { "s" },
            file.display(),
            generated.environment
        ));
        if !generated.secret_variables.is_empty() {
            out.push_str(&format!(
                "Secrets are referenced, never written: declare {} as sensitive variables.\n",
                generated.secret_variables.join(", ")
            ));
        }
        output::print(&out);
        return Ok(EXIT_OK);
    }
    if args.kind.is_some() {
        return Err(CliError::Usage("--kind goes with --generate".into()));
    }
    let (Some(address), Some(id)) = (&args.address, &args.id) else {
        return Err(CliError::Usage("import needs ADDR ID".into()));
    };
    let address = super::address(address)?;
    let imported = state_ops::import(&g.settings, &address, id).await?;
    output::print(&format!(
        "Imported {} as {address}. Run `converge plan --env {}` to see how it differs from the files.\n",
        imported.remote_id, imported.environment
    ));
    Ok(EXIT_OK)
}
