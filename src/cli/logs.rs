//! `converge logs ADDR [--host H] [--service S] [--lines N]`: the last lines of a host app's
//! containers, read over SSH, with the app's secrets masked.

use super::{CliError, GlobalArgs, output};
use crate::application::session;
use crate::hosts::app::host::Host;
use crate::hosts::app::spec::AppSpec;

/// `converge logs` arguments.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The host app.
    address: String,
    /// Only this host (its address, or `address:port`).
    #[arg(long)]
    host: Option<String>,
    /// Only this service or accessory.
    #[arg(long)]
    service: Option<String>,
    /// Lines per container.
    #[arg(long, default_value_t = 50)]
    lines: usize,
}

/// Prints the containers' last lines, host by host.
pub(super) async fn run(g: &GlobalArgs, args: &LogsArgs) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let address = super::address(&args.address)?;
    let env = session::load(&g.settings, &name)?;
    let store = session::open_state(&g.settings, &name).await?;
    let stored = store.resources().await?;
    let row = stored
        .iter()
        .find(|r| r.address == address && r.kind == crate::hosts::app::schema::SCHEMA.kind)
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no host app {address} in the state of {name}: apply it first"
            ))
        })?;
    let desired = session::host_desired(&env, &address);
    let props = row
        .properties
        .clone()
        .with_entry("ssh", desired.get("ssh").clone());
    let app = AppSpec::from_properties(&props, &g.root)
        .map_err(|e| CliError::Failed(format!("{address}: {e}")))?;
    // What to mask comes from the files, with the secret versions state pins (the Secrets
    // Manager values the containers run with); state itself keeps only digests.
    let files = session::resolved(&env, &*store, &address).await?;
    let masker = match AppSpec::from_properties(&files, &g.root) {
        Ok(from_files) => crate::hosts::app::target::masker_for(
            &from_files,
            &files,
            &session::registry(&g.settings, &env).await,
        )
        .await
        .map_err(|e| {
            CliError::Failed(format!("{address}: reading its secrets to mask them: {e}"))
        })?,
        Err(_) => crate::model::secret::Masker::new(desired.sensitive_texts()),
    };
    let mut shown = 0;
    for target in &app.hosts {
        let label = target.label();
        if let Some(h) = &args.host
            && h != target.address.as_str()
            && *h != label
        {
            continue;
        }
        let host = Host::open(&app, target, &g.settings.hosts)
            .await
            .map_err(|e| CliError::Failed(format!("{address}: {e}")))?;
        let listed = host
            .containers(&app.name)
            .await
            .map_err(|e| CliError::Failed(format!("{address}: {e}")))?;
        for c in listed.iter().filter(|c| c.role != "hook") {
            if args.service.as_ref().is_some_and(|s| *s != c.service) {
                continue;
            }
            let lines = host.logs(&c.name, args.lines, &masker).await;
            output::print(&format!(
                "==> {} on {label} ({}) <==\n{lines}\n",
                c.name, c.state
            ));
            shown += 1;
        }
    }
    if shown == 0 {
        return Err(CliError::Failed(format!(
            "{address}: no container matched on its hosts"
        )));
    }
    Ok(super::EXIT_OK)
}
