//! `converge backups ADDR`: the backups converge took of a host app's accessories before its
//! migrations and still keeps, from the verified audit trail, newest first.

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::session;

/// `converge backups` arguments.
#[derive(Debug, clap::Args)]
pub struct BackupsArgs {
    /// The host app.
    address: String,
}

/// Prints the kept backups of the app.
pub(super) async fn run(g: &GlobalArgs, args: &BackupsArgs) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let address = super::address(&args.address)?;
    let store = session::open_state(&g.settings, &name).await?;
    let backups = crate::application::backups::verified(&name, store.as_ref(), &address).await?;
    if g.format == Format::Json {
        output::json(&serde_json::json!({
            "environment": name,
            "address": address.to_string(),
            "backups": backups,
        }));
        return Ok(EXIT_OK);
    }
    if backups.is_empty() {
        output::print(&format!("No backups of {address} recorded in {name}.\n"));
        return Ok(EXIT_OK);
    }
    let mut text = format!("Backups of {address} in {name}, newest first:\n");
    for b in &backups {
        text.push_str(&format!(
            "  {}  {:<12} {:<22} {} bytes  sha256 {}\n      {}  (before revision {}, rollout {})\n",
            b.time, b.accessory, b.host, b.size, b.sha256, b.path, b.revision, b.rollout
        ));
    }
    output::print(&text);
    Ok(EXIT_OK)
}
