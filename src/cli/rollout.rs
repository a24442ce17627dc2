//! `converge rollout status|promote|abort|resume|history`: see and steer rollouts. Status, promote
//! and abort need no write lock (they work while the apply running the rollout holds it);
//! the controller acts on a request within one gate interval.

use clap::Subcommand;
use owo_colors::OwoColorize;

use super::apply::ApplyArgs;
use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::session;
use crate::application::steer::{self, Requested, Steer};
use crate::model::Address;
use crate::rollout::Rollout;
use crate::state;

/// `rollout` subcommands.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Where each rollout is: step, weights, gate results, time left in the bake.
    Status {
        /// Only this service.
        address: Option<String>,
    },
    /// Skip the rest of the current bake, or go on past a pause (a paused rollout continues
    /// in this process); with --full, straight to 100%.
    Promote {
        /// The service.
        address: String,
        /// Straight to 100%.
        #[arg(long)]
        full: bool,
    },
    /// Roll back now: all traffic to the old revision; the apply running it exits 1.
    Abort {
        /// The service.
        address: String,
    },
    /// Continue a rollout a killed or interrupted run left (takes the write lock).
    Resume {
        /// The service.
        address: String,
    },
    /// Every revision the service ran, oldest first: images, time, actor, commit and outcome
    /// (from the audit trail, which must verify).
    History {
        /// The service.
        address: String,
    },
    /// Go back to a revision the service ran before (the previous one, or --to), through its
    /// own strategy and gates (takes the write lock); apply then refuses the files' revision
    /// until they name other images, or with `apply --redo`.
    Undo {
        /// The service.
        address: String,
        /// The revision: `N`, `family:N` or the task definition ARN (a host app: an image
        /// tag or reference it ran).
        #[arg(long, value_name = "REVISION")]
        to: Option<String>,
    },
}

pub(super) async fn run(g: &GlobalArgs, command: &RolloutCommand) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let store = session::open_state(&g.settings, &name).await?;
    match command {
        RolloutCommand::Status { address } => {
            let only = address.as_deref().map(super::address).transpose()?;
            let rollouts: Vec<(Rollout, Option<String>)> = store
                .rollouts()
                .await?
                .into_iter()
                .filter(|r| only.as_ref().is_none_or(|a| *a == r.address))
                .map(|r| Ok((Rollout::decode(&r.address, &r.body)?, r.request)))
                .collect::<Result<_, crate::rollout::UndecodableRecord>>()?;
            if let (Some(a), true) = (&only, rollouts.is_empty()) {
                return Err(CliError::Failed(format!(
                    "no rollout recorded for {a} in {name}"
                )));
            }
            if g.format == Format::Json {
                let items = rollouts
                    .iter()
                    .map(|(r, request)| {
                        let mut v = r.status_json().map_err(|e| {
                            CliError::Failed(format!(
                                "the rollout record of {} does not print as JSON: {e}",
                                r.address
                            ))
                        })?;
                        v["bake_left_seconds"] = serde_json::json!(r.bake_left());
                        v["pending_request"] = serde_json::json!(request);
                        Ok(v)
                    })
                    .collect::<Result<Vec<_>, CliError>>()?;
                output::json(&serde_json::json!({ "environment": name, "rollouts": items }));
            } else if g.format == Format::Markdown {
                output::print(&status_markdown(&name, &rollouts));
            } else if rollouts.is_empty() {
                output::print(&format!("No rollouts recorded in {name}.\n"));
            } else {
                let text: String = rollouts
                    .iter()
                    .map(|(r, q)| status_text(r, q.as_deref()))
                    .collect();
                output::print(&text);
            }
            Ok(EXIT_OK)
        }
        RolloutCommand::Promote { address, full } => {
            let what = if *full {
                Steer::PromoteFull
            } else {
                Steer::Promote
            };
            steer(g, store, &super::address(address)?, what).await
        }
        RolloutCommand::Abort { address } => {
            steer(g, store, &super::address(address)?, Steer::Abort).await
        }
        RolloutCommand::History { address } => {
            let a = super::address(address)?;
            super::history::run(g, &name, store.as_ref(), &a).await
        }
        RolloutCommand::Undo { address, to } => {
            let a = super::address(address)?;
            drop(store);
            let done = crate::application::undo::run(&g.settings, &a, to.as_deref()).await?;
            output::print(&format!("{done}\n"));
            Ok(EXIT_OK)
        }
        RolloutCommand::Resume { address } => {
            let a = super::address(address)?;
            let unfinished = steer::is_unfinished(store.as_ref(), &a).await?;
            if !unfinished {
                return Err(CliError::Failed(format!(
                    "no unfinished rollout at {a} in {name}; `converge rollout status` shows them"
                )));
            }
            drop(store);
            continue_here(g, &a).await
        }
    }
}

/// Records `what` for the rollout at `address`, and continues it here when it is paused.
async fn steer(
    g: &GlobalArgs,
    store: Box<dyn state::StateStore>,
    address: &Address,
    what: Steer,
) -> Result<i32, CliError> {
    let requested = steer::request(&g.settings, store.as_ref(), address, what).await?;
    drop(store);
    match requested {
        Requested::ContinueHere => continue_here(g, address).await,
        Requested::Asked(words) => {
            output::print(&format!("{words}\n"));
            Ok(EXIT_OK)
        }
    }
}

/// Runs the rollout at `address` in this process (a paused one has no process of its own):
/// an apply of that address, which takes the write lock; its exit code (0 done, 1 rolled
/// back or failed, 3 paused again).
async fn continue_here(g: &GlobalArgs, address: &Address) -> Result<i32, CliError> {
    super::apply::run(
        g,
        &ApplyArgs {
            auto_approve: true,
            targets: vec![address.to_string()],
            planfile: None,
            redo: false,
        },
    )
    .await
}

fn status_text(r: &Rollout, request: Option<&str>) -> String {
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let status = match r.status {
        crate::rollout::Status::Running | crate::rollout::Status::Paused => {
            status.yellow().to_string()
        }
        crate::rollout::Status::Succeeded => status.green().to_string(),
        _ => status.red().to_string(),
    };
    let short = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_string();
    let mut out = format!(
        "{}  {}  {status}  step {} of {} ({}% new / {}% old), {}",
        r.address.bold(),
        r.strategy,
        r.step + 1,
        r.steps.len(),
        r.weights[1],
        r.weights[0],
        r.phase
    );
    if let Some(left) = r.bake_left().filter(|_| r.status.unfinished()) {
        out.push_str(&format!(", {left:.0}s left in the bake"));
    }
    out.push('\n');
    out.push_str(&format!(
        "    old {} → new {}  (since {}, updated {})\n",
        short(&r.old_revision),
        short(&r.new_revision),
        r.started_at,
        r.updated_at
    ));
    for g in r.latest_gates() {
        out.push_str(&format!(
            "    {}: {}{}\n",
            g.gate,
            g.outcome,
            if g.detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", g.detail)
            }
        ));
    }
    if let (crate::rollout::Status::Paused, Some(until)) = (r.status, &r.pause_until) {
        out.push_str(&format!(
            "    paused: `converge rollout promote {}` continues it; rolled back after {until}\n",
            r.address
        ));
    }
    if let Some(reason) = &r.reason {
        out.push_str(&format!("    reason: {reason}\n"));
    }
    if let Some(s) = r.rollback_seconds {
        out.push_str(&format!("    traffic restored in {s:.2}s\n"));
    }
    if let Some(q) = request {
        out.push_str(&format!("    pending request: {q}\n"));
    }
    out
}

/// GitHub Markdown of `rollout status`: one row per service, then each one's gates.
fn status_markdown(env: &str, rollouts: &[(Rollout, Option<String>)]) -> String {
    let head = format!("<!-- converge:rollouts:{env} -->\n### converge rollouts: `{env}`\n\n");
    if rollouts.is_empty() {
        return format!("{head}No rollouts recorded.\n");
    }
    let rows: Vec<Vec<String>> = rollouts
        .iter()
        .map(|(r, request)| {
            let text = status_text(r, request.as_deref());
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("").to_string();
            let rest: Vec<String> = lines
                .map(|l| super::markdown::cell(l.trim()))
                .filter(|l| !l.is_empty())
                .collect();
            vec![
                format!("`{}`", r.address),
                super::markdown::cell(first.trim_start_matches(&r.address.to_string()).trim()),
                rest.join("<br>"),
            ]
        })
        .collect();
    super::markdown::document(
        &head,
        &["service", "rollout", "details"],
        &rows,
        "",
        &format!("`converge rollout status -e {env}`"),
    )
}
