//! `converge apply` and `converge destroy`: plan (or load a saved plan), confirm, execute.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use owo_colors::OwoColorize;
use tokio_util::sync::CancellationToken;

use super::plan::show;
use super::{CliError, EXIT_ERROR, EXIT_OK, Format, GlobalArgs, output};
use crate::application::apply_policy;
use crate::application::plan::{Planned, refresh_and_plan};
use crate::application::session;
use crate::apply::{self, Inputs, Outcome, Progress, Report};
use crate::plan::Plan;

/// Exit code after Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code of an apply whose rollouts stopped at a `pause` step ("paused, waiting for
/// promote"); nothing failed.
pub const EXIT_PAUSED: i32 = 3;

/// Flags of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Limit to ADDR and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// A plan saved with `converge plan --out FILE`.
    pub planfile: Option<PathBuf>,
    /// Roll out a revision that `rollout undo` went back from, although the files still name
    /// its images.
    #[arg(long)]
    pub redo: bool,
}

/// How one apply (or destroy) runs.
#[derive(Clone, Copy)]
struct Run<'a> {
    targets: &'a [String],
    auto_approve: bool,
    operation: &'a str,
    redo: bool,
}

/// Flags of `destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Destroy without asking.
    #[arg(long)]
    auto_approve: bool,
}

pub(super) async fn run(g: &GlobalArgs, args: &ApplyArgs) -> Result<i32, CliError> {
    let saved = match &args.planfile {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    let name = match (&saved, &g.env) {
        (Some(p), Some(e)) if &p.environment != e => {
            return Err(CliError::Refused(format!(
                "the plan file is for environment `{}`, not `{e}`",
                p.environment
            )));
        }
        (Some(p), _) => p.environment.clone(),
        (None, _) => session::env_name(&g.settings)?,
    };
    let env = session::load(&g.settings, &name)?;
    if let Some(saved) = &saved
        && let Err(stale) = saved.check_files(&env.files_hash)
    {
        return Err(CliError::Refused(format!(
            "{stale}; run `converge plan --env {name} --out FILE` again"
        )));
    }
    let store = session::open_state(&g.settings, &name).await?;
    let ctx = session::audit_context(&g.settings);
    let guard = session::lock(&g.settings, &name, store.as_ref(), "apply", &ctx).await?;
    let run = Run {
        targets: &args.targets,
        auto_approve: args.auto_approve,
        operation: "apply",
        redo: args.redo,
    };
    let result = locked_apply(g, &env, store.as_ref(), &ctx, saved.as_ref(), &run).await;
    guard.release(store.as_ref()).await?;
    result
}

pub(super) async fn destroy(g: &GlobalArgs, args: &DestroyArgs) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let env = session::load(&g.settings, &name)?;
    let store = session::open_state(&g.settings, &name).await?;
    let ctx = session::audit_context(&g.settings);
    let guard = session::lock(&g.settings, &name, store.as_ref(), "destroy", &ctx).await?;
    let run = Run {
        targets: &[],
        auto_approve: args.auto_approve,
        operation: "destroy",
        redo: false,
    };
    let result = locked_apply(g, &env, store.as_ref(), &ctx, None, &run).await;
    guard.release(store.as_ref()).await?;
    result
}

async fn locked_apply(
    g: &GlobalArgs,
    env: &crate::config::Environment,
    store: &dyn crate::state::StateStore,
    ctx: &crate::audit::Context,
    saved: Option<&Plan>,
    run: &Run<'_>,
) -> Result<i32, CliError> {
    let interrupt = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(interrupt.clone()));
    let result = interruptible_apply(g, env, store, ctx, saved, run, &interrupt).await;
    signals.abort();
    result
}

/// First Ctrl-C (or SIGTERM, as CI runners send on cancel): start no new step, let the ones in
/// flight finish and be recorded, release the lock, exit 130. Second: exit 130 at once; every
/// step in flight is marked so in state, and the next plan re-reads it.
async fn watch_signals(interrupt: CancellationToken) {
    let mut first = true;
    loop {
        wait_for_signal().await;
        if first {
            output::status(
                "Interrupted: starting nothing new; waiting for the operations in flight to finish and be saved (Ctrl-C again to stop at once).",
            );
            interrupt.cancel();
            first = false;
        } else {
            output::status(
                "Stopping at once: operations in flight are marked in state; the next plan re-reads them.",
            );
            std::process::exit(EXIT_INTERRUPTED);
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn interruptible_apply(
    g: &GlobalArgs,
    env: &crate::config::Environment,
    store: &dyn crate::state::StateStore,
    ctx: &crate::audit::Context,
    saved: Option<&Plan>,
    run: &Run<'_>,
    interrupt: &CancellationToken,
) -> Result<i32, CliError> {
    let Run {
        targets,
        auto_approve,
        operation,
        redo,
    } = *run;
    let policies = crate::application::policy::load(&g.settings)?;
    let registry = session::registry(&g.settings, env).await;
    crate::application::pauses::expire(
        &g.settings,
        env,
        store,
        &registry,
        crate::application::pauses::Lock::Held,
    )
    .await?;
    let Planned {
        mut plan,
        state,
        live,
        pins,
        promotion,
    } = refresh_and_plan(
        &g.settings,
        env,
        store,
        &registry,
        targets,
        operation == "destroy",
    )
    .await?;
    apply_policy::audit_accepted_host_keys(
        &g.settings,
        registry.hosts().options(),
        store,
        ctx,
        operation,
    )
    .await?;
    plan.policy =
        crate::application::policy::judge(&g.settings, policies.as_ref(), &plan, store, operation)
            .await?;
    output::policy_annotations(env, plan.policy.as_ref());
    if interrupt.is_cancelled() {
        output::status("Interrupted before anything was changed.");
        return Ok(EXIT_INTERRUPTED);
    }
    if let Some(saved) = saved
        && let Err(stale) = saved.check_against(&plan)
    {
        return Err(CliError::Refused(format!(
            "{stale}; run `converge plan --env {} --out FILE` again",
            env.name
        )));
    }
    let unpromoted =
        apply_policy::unpromoted(&g.settings, &promotion, store, ctx, operation).await?;
    let inputs = Inputs {
        env,
        state: &state,
        live: &live,
        store,
        registry: &registry,
        audit: ctx,
        operation,
        parallelism: g.parallelism,
        interrupt,
        notice: &|line: &str| output::status(line),
        pins: &pins,
        redo,
        unpromoted: &unpromoted,
    };
    let settled = apply::settle_in_flight(&plan, &inputs).await?;
    let upgraded = apply::upgrade_digests(&plan, &inputs).await?;
    if upgraded > 0 && g.format == Format::Text {
        output::status(&format!("{upgraded} secret digests upgraded"));
    }
    if settled > 0 && g.format == Format::Text {
        output::status(&format!(
            "Recorded {settled} resources an interrupted apply had left in flight; they exist as desired."
        ));
    }
    if g.format == Format::Text {
        show(&plan, Format::Text);
    }
    if let Some(denied) = plan
        .policy
        .as_ref()
        .and_then(|v| crate::application::policy::refusal(&env.name, v))
    {
        return Err(denied);
    }
    if operation != "destroy" {
        session::check_budget(&g.settings, env, &plan, store, operation).await?;
    }
    if !plan.has_changes() {
        let md = report_markdown(&plan, &Report::default(), operation);
        match g.format {
            Format::Json => output::json(&report_json(&plan, &Report::default())),
            Format::Markdown => output::print(&md),
            _ => {}
        }
        super::github::step_summary(&md);
        return Ok(EXIT_OK);
    }
    if saved.is_none() && !auto_approve {
        confirm(operation, &env.name)?;
    }
    let text = g.format == Format::Text;
    let moved = apply::record_moves(&plan, &inputs).await?;
    if moved > 0 && text {
        output::status(&format!(
            "Moved {moved} resource{} in state (no cloud call).",
            if moved == 1 { "" } else { "s" }
        ));
    }
    let report = apply::execute(&plan, &inputs, |p| {
        if text {
            print_progress(&p);
        }
    })
    .await?;
    apply_policy::audit_accepted_host_keys(
        &g.settings,
        registry.hosts().options(),
        store,
        ctx,
        operation,
    )
    .await?;
    // Outputs follow a whole apply; a `--target` one leaves them as they were (as a partial
    // apply leaves the rest of the environment).
    if report.nothing_failed() && !interrupt.is_cancelled() && targets.is_empty() {
        apply::record_outputs(&inputs, operation == "destroy").await?;
    }
    let (done, failed, skipped) = report.counts();
    let md = report_markdown(&plan, &report, operation);
    if report.interrupted() || interrupt.is_cancelled() {
        if text {
            output::print(&format!(
                "\n{}\n",
                format!(
                    "Interrupted: {done} done, {failed} failed, {skipped} not started. Everything done is saved in state; run `converge apply --env {}` again to finish.",
                    env.name
                )
                .yellow()
            ));
        } else if g.format == Format::Markdown {
            output::print(&md);
        } else {
            output::json(&report_json(&plan, &report));
        }
        super::github::step_summary(&md);
        return Ok(EXIT_INTERRUPTED);
    }
    if text {
        let paused = match report.paused() {
            0 => String::new(),
            n => format!(", {n} paused (waiting for `converge rollout promote`)"),
        };
        let line = format!(
            "{} complete: {done} done, {failed} failed, {skipped} skipped{paused}.",
            if operation == "destroy" {
                "Destroy"
            } else {
                "Apply"
            }
        );
        output::print(&format!(
            "\n{}\n",
            if failed > 0 {
                line.red().to_string()
            } else if !paused.is_empty() {
                line.yellow().to_string()
            } else {
                line.green().to_string()
            }
        ));
    } else if g.format == Format::Markdown {
        output::print(&md);
    } else {
        output::json(&report_json(&plan, &report));
    }
    super::github::step_summary(&md);
    Ok(if report.succeeded() {
        EXIT_OK
    } else if report.nothing_failed() {
        EXIT_PAUSED
    } else {
        EXIT_ERROR
    })
}

fn print_progress(p: &Progress<'_>) {
    match p {
        Progress::Started(step) => output::status(&format!("{}: {}...", step.address, step.verb())),
        Progress::Finished(r) => {
            let line = match &r.outcome {
                Outcome::Done => format!(
                    "{}: {} done ({:.1}s)",
                    r.step.address,
                    r.step.verb(),
                    r.elapsed.as_secs_f64()
                )
                .green()
                .to_string(),
                Outcome::Failed(e) => format!("{}: {} FAILED: {e}", r.step.address, r.step.verb())
                    .red()
                    .to_string(),
                Outcome::Skipped { because } => format!(
                    "{}: skipped, it depends on {because}, which failed",
                    r.step.address
                )
                .yellow()
                .to_string(),
                Outcome::Interrupted => format!("{}: not started (interrupted)", r.step.address)
                    .yellow()
                    .to_string(),
                Outcome::Paused(e) => e.yellow().to_string(),
            };
            output::status(&line);
        }
    }
}

fn report_json(plan: &Plan, report: &Report) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = report
        .steps
        .iter()
        .map(|s| {
            let (outcome, detail) = match &s.outcome {
                Outcome::Done => ("done", None),
                Outcome::Failed(e) => ("failed", Some(e.clone())),
                Outcome::Skipped { because } => (
                    "skipped",
                    Some(format!("depends on {because}, which failed")),
                ),
                Outcome::Interrupted => ("not_started", Some("interrupted".to_string())),
                Outcome::Paused(e) => ("paused", Some(e.clone())),
            };
            serde_json::json!({
                "address": s.step.address,
                "action": s.step.action,
                "step": s.step.verb(),
                "outcome": outcome,
                "detail": detail,
                "seconds": s.elapsed.as_secs_f64(),
            })
        })
        .collect();
    let (done, failed, skipped) = report.counts();
    serde_json::json!({
        "format_version": crate::plan::FORMAT_VERSION,
        "environment": plan.environment,
        "plan": plan.summary,
        "steps": steps,
        "summary": {"done": done, "failed": failed, "skipped": skipped, "paused": report.paused()},
        "succeeded": report.succeeded(),
        "interrupted": report.interrupted(),
    })
}

/// GitHub Markdown of an apply: the outcome, a row per step (failures first), the cost line.
fn report_markdown(plan: &Plan, report: &Report, operation: &str) -> String {
    use super::markdown::cell;
    let json = report_json(plan, report);
    let env = &plan.environment;
    let (done, failed, skipped) = report.counts();
    let mut head =
        format!("<!-- converge:{operation}:{env} -->\n### converge {operation}: `{env}`\n\n");
    head.push_str(&if !plan.has_changes() {
        "**No changes.** Nothing to apply.\n".to_string()
    } else if report.interrupted() {
        format!("**Interrupted:** {done} done, {failed} failed, {skipped} not started; everything done is saved in state.\n\n")
    } else if failed > 0 {
        format!(":x: **{done} done, {failed} failed, {skipped} skipped.**\n\n")
    } else if report.paused() > 0 {
        format!(
            ":pause_button: **{done} done, {} paused, waiting for `converge rollout promote`.**\n\n",
            report.paused()
        )
    } else {
        format!(":white_check_mark: **{done} done.**\n\n")
    });
    let mut steps: Vec<&serde_json::Value> =
        json["steps"].as_array().into_iter().flatten().collect();
    steps.sort_by_key(|s| match s["outcome"].as_str() {
        Some("failed") => 0,
        Some("skipped") | Some("not_started") => 1,
        _ => 2,
    });
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let outcome = match s["outcome"].as_str().unwrap_or("") {
                "failed" => ":x: failed".to_string(),
                "done" => "done".to_string(),
                other => other.replace('_', " "),
            };
            vec![
                format!("`{}`", s["address"].as_str().unwrap_or("")),
                s["step"].as_str().unwrap_or("").to_string(),
                outcome,
                format!("{:.1}s", s["seconds"].as_f64().unwrap_or(0.0)),
                cell(s["detail"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    let tail = if plan.has_changes() {
        format!("\n{}", crate::plan::render::cost_line(plan))
    } else {
        String::new()
    };
    super::markdown::document(
        &head,
        &["address", "step", "outcome", "time", "detail"],
        &rows,
        &tail,
        &format!("`converge audit log -e {env}`"),
    )
}

fn read_plan(path: &PathBuf) -> Result<Plan, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read plan file {}: {e}", path.display())))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a converge plan file: {e}",
            path.display()
        ))
    })?;
    if plan.format_version != crate::plan::FORMAT_VERSION {
        return Err(CliError::Usage(format!(
            "{} has plan format {}, this converge reads {}",
            path.display(),
            plan.format_version,
            crate::plan::FORMAT_VERSION
        )));
    }
    Ok(plan)
}

/// Asks on the terminal; without one, refuses (CI must say --auto-approve).
fn confirm(operation: &str, env: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Refused(format!(
            "{operation} needs approval: stdin is not a terminal, so pass --auto-approve (or apply a saved plan file)"
        )));
    }
    let mut stderr = anstream::stderr();
    let _ = write!(
        stderr,
        "\nDo you want to {operation} these changes in {env}? Only 'yes' is accepted: "
    );
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::Refused(format!(
            "{operation} cancelled: nothing was changed"
        )))
    }
}
