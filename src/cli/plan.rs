//! `converge plan`: refresh, diff, print; save with --out; --detailed-exitcode for CI.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::{CliError, EXIT_CHANGES, EXIT_OK, Format, GlobalArgs, output, session};
use crate::audit::NewEvent;
use crate::config::Environment;
use crate::model::Address;
use crate::model::LiveMap;
use crate::plan::{self, Plan, PlanOptions};
use crate::providers::Registry;
use crate::state::{self, ResourceState, StateStore};

/// Flags of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan to FILE for `converge apply FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Limit the plan to ADDR and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<String>,
    /// Post the plan as one sticky comment per environment on the pull request (GitHub);
    /// `--comment=required` fails the command when the API call fails.
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "warn")]
    comment: Option<super::github::CommentMode>,
    /// The pull request to comment on (default: from GITHUB_EVENT_PATH).
    #[arg(long, value_name = "N")]
    pr: Option<u64>,
}

/// Everything a plan was computed from, kept for apply.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// State when planned.
    pub state: Vec<ResourceState>,
    /// Live state when planned.
    pub live: LiveMap,
    /// Services `rollout undo` pinned to an earlier revision.
    pub pins: crate::rollout::Pins,
    /// The promotion verdict on each service change that brings new images.
    pub promotion: BTreeMap<Address, crate::promotion::Verdict>,
}

/// Parses `--target` addresses, checking they exist in the files or in state.
pub fn targets(
    raw: &[String],
    env: &Environment,
    state: &[ResourceState],
) -> Result<Vec<Address>, CliError> {
    raw.iter()
        .map(|t| {
            let a = Address::parse(t)
                .ok_or_else(|| CliError::Usage(format!("--target {t}: not an address")))?;
            if env.resources.contains_key(&a) || state.iter().any(|s| s.address == a) {
                Ok(a)
            } else {
                Err(CliError::Usage(format!(
                    "--target {t}: no resource at that address in {}",
                    env.name
                )))
            }
        })
        .collect()
}

/// Reads state, refreshes live state and computes the plan (with the promotion verdicts).
pub async fn refresh_and_plan(
    g: &GlobalArgs,
    env: &Environment,
    store: &dyn StateStore,
    registry: &Registry,
    raw_targets: &[String],
    destroy: bool,
) -> Result<Planned, CliError> {
    let serial = store.serial().await?;
    let state = store.resources().await?;
    session::check_digests(&state)?;
    let targets = targets(raw_targets, env, &state)?;
    let live = session::refresh(registry, &env.name, &state).await?;
    let pins = crate::rollout::pins(store).await?;
    let mut plan = plan::compute(
        env,
        &state,
        &live,
        serial,
        &PlanOptions {
            targets,
            destroy,
            pins: pins.clone(),
        },
    );
    let promotion = super::promotion::verdicts(g, env, &plan, registry).await?;
    for change in plan.changes.iter_mut() {
        if let Some(v) = promotion.get(&change.address) {
            let note = v.note();
            change.note = Some(match change.note.take() {
                Some(before) => format!("{before}; {note}"),
                None => note,
            });
        }
    }
    Ok(Planned {
        plan,
        state,
        live,
        pins,
        promotion,
    })
}

/// Prints a plan in the chosen format.
pub fn show(plan: &Plan, format: Format) {
    match format {
        Format::Json => output::json(plan),
        Format::Markdown => output::print(&plan::markdown::markdown(
            plan,
            None,
            plan::markdown::GITHUB_LIMIT,
        )),
        _ => output::print(&plan::render::text(plan)),
    }
}

pub(super) async fn run(g: &GlobalArgs, args: &PlanArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json | Format::Markdown) {
        return Err(CliError::Usage(
            "plan prints --format text, json or markdown".into(),
        ));
    }
    let name = session::env_name(g)?;
    let env = session::load(g, &name)?;
    for w in &env.warnings {
        output::status(&format!("warning: {w}"));
    }
    for n in &env.notes {
        output::status(&format!("note: {n}"));
    }
    let store = session::open_state(g, &name).await?;
    let registry = session::registry(g, &env).await;
    super::pauses::expire(
        g,
        &env,
        store.as_ref(),
        &registry,
        super::pauses::Lock::Take,
    )
    .await?;
    let planned =
        refresh_and_plan(g, &env, store.as_ref(), &registry, &args.targets, false).await?;
    let out_name = args.out.as_ref().map(|p| p.display().to_string());
    let markdown = plan::markdown::markdown(
        &planned.plan,
        out_name.as_deref(),
        plan::markdown::GITHUB_LIMIT,
    );
    match g.format {
        Format::Markdown => output::print(&markdown),
        other => show(&planned.plan, other),
    }
    super::github::step_summary(&markdown);
    if let Some(mode) = args.comment {
        super::github::comment(
            mode,
            args.pr,
            &plan::markdown::marker(&planned.plan.environment),
            &markdown,
        )
        .await?;
    }
    session::check_budget(g, &env, &planned.plan, store.as_ref(), "plan").await?;
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&planned.plan)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        std::fs::write(out, json)
            .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", out.display())))?;
        if g.format == Format::Text {
            output::status(&format!(
                "Saved the plan to {}. Apply it with: converge apply {}",
                out.display(),
                out.display()
            ));
        }
    }
    let s = planned.plan.summary;
    let event = NewEvent::new("plan", crate::audit::EventKind::Plan, "ok").detail(format!(
        "{} to add, {} to change, {} to replace, {} to destroy (serial {})",
        s.add, s.change, s.replace, s.destroy, planned.plan.serial
    ));
    store
        .commit(state::Change::None, event, &session::audit_context(g))
        .await?;
    Ok(if args.detailed_exitcode && planned.plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
