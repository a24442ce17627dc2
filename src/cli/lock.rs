//! `converge lock status|force-unlock`: see and break the environment's write lock.

use clap::Subcommand;

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::session;
use crate::audit::NewEvent;
use crate::state;

/// `lock` subcommands.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the lock, since when, and whether it looks stale.
    Status,
    /// Remove the lock, whoever holds it (audited).
    ForceUnlock,
}

pub(super) async fn run(g: &GlobalArgs, command: &LockCommand) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let store = session::open_state(&g.settings, &name).await?;
    match command {
        LockCommand::Status => {
            let lock = store.lock_status().await?;
            let stale = match &lock {
                Some(l) => store.stale_reason(l).await,
                None => None,
            };
            if g.format == Format::Json {
                output::json(
                    &serde_json::json!({ "environment": name, "locked": lock.is_some(), "lock": lock, "stale": stale }),
                );
            } else {
                match lock {
                    None => output::print(&format!("{name} is not locked.\n")),
                    Some(l) => {
                        let stale = stale
                            .map(|r| format!(" It looks stale: {r}."))
                            .unwrap_or_default();
                        output::print(&format!("{name} is locked by {}.{stale}\n", l.describe()));
                    }
                }
            }
        }
        LockCommand::ForceUnlock => {
            let ctx = session::audit_context(&g.settings);
            let removed = store.force_unlock().await?;
            let detail = match &removed {
                Some(l) => format!("broke the lock of {}", l.describe()),
                None => "no lock was held".to_string(),
            };
            store
                .commit(
                    state::Change::None,
                    NewEvent::new("lock force-unlock", crate::audit::EventKind::Unlock, "ok")
                        .detail(detail.clone()),
                    &ctx,
                )
                .await?;
            output::print(&format!("{name}: {detail}.\n"));
        }
    }
    Ok(EXIT_OK)
}
