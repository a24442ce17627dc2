//! `converge plan`: refresh, diff, print; save with --out; --detailed-exitcode for CI.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, EXIT_CHANGES, EXIT_OK, Format, GlobalArgs, output};
use crate::application::plan::refresh_and_plan;
use crate::application::session;
use crate::audit::NewEvent;
use crate::plan::diagram::GraphView;
use crate::plan::{self, Plan};
use crate::state;

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
    /// The Markdown plan (and the PR comment) draws a Mermaid diagram of what changes when at
    /// most N resources change (0: never).
    #[arg(long, value_name = "N", default_value_t = 20)]
    graph_max: usize,
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
    let name = session::env_name(&g.settings)?;
    let env = session::load(&g.settings, &name)?;
    for w in &env.warnings {
        output::status(&format!("warning: {w}"));
    }
    for n in &env.notes {
        output::status(&format!("note: {n}"));
    }
    let policies = crate::application::policy::load(&g.settings)?;
    let store = session::open_state(&g.settings, &name).await?;
    let registry = session::registry(&g.settings, &env).await;
    crate::application::pauses::expire(
        &g.settings,
        &env,
        store.as_ref(),
        &registry,
        crate::application::pauses::Lock::Take,
    )
    .await?;
    let mut planned = refresh_and_plan(
        &g.settings,
        &env,
        store.as_ref(),
        &registry,
        &args.targets,
        false,
    )
    .await?;
    planned.plan.policy = crate::application::policy::judge(
        &g.settings,
        policies.as_ref(),
        &planned.plan,
        store.as_ref(),
        "plan",
    )
    .await?;
    output::policy_annotations(&env, planned.plan.policy.as_ref());
    let out_name = args.out.as_ref().map(|p| p.display().to_string());
    let changed = planned.plan.changes.iter().filter(|c| c.is_shown()).count();
    let diagram = (changed > 0 && changed <= args.graph_max).then(|| {
        GraphView::of(&env)
            .with_plan(&planned.plan)
            .changed_only()
            .mermaid()
    });
    let markdown = plan::markdown::markdown_with_diagram(
        &planned.plan,
        out_name.as_deref(),
        plan::markdown::GITHUB_LIMIT,
        diagram.as_deref(),
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
    if let Some(denied) = planned
        .plan
        .policy
        .as_ref()
        .and_then(|v| crate::application::policy::refusal(&env.name, v))
    {
        return Err(denied);
    }
    session::check_budget(&g.settings, &env, &planned.plan, store.as_ref(), "plan").await?;
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
        .commit(
            state::Change::None,
            event,
            &session::audit_context(&g.settings),
        )
        .await?;
    Ok(if args.detailed_exitcode && planned.plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
