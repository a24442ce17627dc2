//! `converge rollout history ADDR`: every revision a service ran, from the audit trail (which
//! must verify), oldest first.

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::model::Address;
use crate::state::StateStore;

/// Prints the history of `address` from `store`'s verified audit trail.
pub(super) async fn run(
    g: &GlobalArgs,
    env: &str,
    store: &dyn StateStore,
    address: &Address,
) -> Result<i32, CliError> {
    let revisions = crate::application::history::verified(env, store, address).await?;
    if g.format == Format::Json {
        output::json(&serde_json::json!({
            "environment": env,
            "address": address.to_string(),
            "revisions": revisions,
        }));
        return Ok(EXIT_OK);
    }
    if revisions.is_empty() {
        output::print(&format!("No revisions of {address} recorded in {env}.\n"));
        return Ok(EXIT_OK);
    }
    let mut text = format!("{address} in {env}, oldest first:\n");
    for r in &revisions {
        text.push_str(&format!(
            "  {:<24} {:<12} {}  {} by {}{}\n      {}\n",
            r.revision,
            r.outcome,
            r.time,
            r.images.join(", "),
            r.actor,
            if r.commit.is_empty() {
                String::new()
            } else {
                format!(" (commit {})", &r.commit[..r.commit.len().min(12)])
            },
            r.detail
        ));
        for b in &r.backups {
            text.push_str(&format!(
                "      backup of {} on {} before it: {} ({} bytes, sha256 {})\n",
                b.accessory, b.host, b.path, b.size, b.sha256
            ));
        }
    }
    output::print(&text);
    Ok(EXIT_OK)
}
