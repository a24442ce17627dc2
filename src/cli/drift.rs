//! `converge drift`: live state against the last applied state; exit 2 when anything drifted.

use owo_colors::OwoColorize;

use super::{CliError, EXIT_CHANGES, EXIT_OK, Format, GlobalArgs, output, session};
use crate::audit::NewEvent;
use crate::plan::drift::Drifted;
use crate::state::{self, StateStore};

pub(super) async fn run(g: &GlobalArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json | Format::Markdown) {
        return Err(CliError::Usage(
            "drift prints --format text, json or markdown".into(),
        ));
    }
    let name = session::env_name(g)?;
    let env = session::load(g, &name)?;
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
    let stored = store.resources().await?;
    session::check_digests(&stored)?;
    let live = session::refresh(&registry, &name, &stored).await?;
    let pins = crate::rollout::pins(store.as_ref()).await?;
    let (drifted, undone): (Vec<Drifted>, Vec<Drifted>) =
        crate::plan::drift::compute(&stored, &live)
            .into_iter()
            .partition(|d| {
                crate::model::Address::parse(&d.address).is_none_or(|a| !pins.contains_key(&a))
            });
    for d in &undone {
        if let Some(pin) =
            crate::model::Address::parse(&d.address).and_then(|a| pins.get(&a).cloned())
        {
            output::status(&format!(
                "{}: {} (`rollout undo`, not drift)",
                d.address,
                pin.describe()
            ));
        }
    }
    record(store.as_ref(), &drifted, &session::audit_context(g)).await?;
    let summary = markdown(&name, stored.len(), &drifted);
    match g.format {
        Format::Json => output::json(&serde_json::json!({
            "format_version": crate::plan::FORMAT_VERSION,
            "environment": name,
            "resources_checked": stored.len(),
            "drift": !drifted.is_empty(),
            "drifted": drifted,
        })),
        Format::Markdown => output::print(&summary),
        _ => output::print(&text(&name, stored.len(), &drifted)),
    }
    super::github::step_summary(&summary);
    Ok(if drifted.is_empty() {
        EXIT_OK
    } else {
        EXIT_CHANGES
    })
}

/// GitHub Markdown: what the nightly job puts in its issue and step summary.
fn markdown(env: &str, checked: usize, drifted: &[Drifted]) -> String {
    use super::markdown::cell;
    let mut head = format!("<!-- converge:drift:{env} -->\n### converge drift: `{env}`\n\n");
    if drifted.is_empty() {
        head.push_str(&format!(
            "**No drift.** {checked} resources match their last applied state.\n"
        ));
        return head;
    }
    head.push_str(&format!(
        "**Drift: {} of {checked} resources changed outside converge.** `converge apply -e {env}` puts them back; `converge plan -e {env}` shows how.\n\n",
        drifted.len()
    ));
    let rows: Vec<Vec<String>> = drifted
        .iter()
        .map(|d| {
            let fields: Vec<String> = d
                .fields
                .iter()
                .map(|f| {
                    format!(
                        "`{}`: `{}` → `{}`",
                        f.name,
                        compact(&f.last_applied),
                        compact(&f.live)
                    )
                })
                .collect();
            let status = match d.status {
                "deleted" => ":warning: deleted",
                "interrupted" => ":warning: left in flight",
                other => other,
            };
            vec![
                format!("`{}`", d.address),
                d.kind.clone(),
                status.to_string(),
                cell(&fields.join("<br>")),
            ]
        })
        .collect();
    super::markdown::document(
        &head,
        &["address", "kind", "status", "last applied → live"],
        &rows,
        "",
        &format!("`converge drift -e {env} --format json`"),
    )
}

fn text(env: &str, checked: usize, drifted: &[Drifted]) -> String {
    if drifted.is_empty() {
        return format!("No drift in {env}: {checked} resources match their last applied state.\n");
    }
    let mut out = format!(
        "Drift in {env}: {} of {checked} resources changed outside converge.\n\n",
        drifted.len()
    );
    for d in drifted {
        if d.status == "deleted" {
            out.push_str(&format!(
                "  {}\n",
                format!("- {} ({}) was deleted outside converge", d.address, d.kind).red()
            ));
            continue;
        }
        if d.status == "interrupted" {
            out.push_str(&format!(
                "  {}\n",
                format!(
                    "! {} ({}) was left in flight by an interrupted apply",
                    d.address, d.kind
                )
                .yellow()
            ));
            continue;
        }
        out.push_str(&format!(
            "  {}\n",
            format!("~ {} ({}) changed outside converge", d.address, d.kind).yellow()
        ));
        for f in &d.fields {
            out.push_str(&format!(
                "      {}: {} -> {}\n",
                f.name,
                compact(&f.last_applied),
                compact(&f.live)
            ));
        }
    }
    out.push_str("\nRun `converge apply` to restore the desired state.\n");
    out
}

fn compact(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

async fn record(
    store: &dyn StateStore,
    drifted: &[Drifted],
    ctx: &crate::audit::Context,
) -> Result<(), CliError> {
    if drifted.is_empty() {
        store
            .commit(
                state::Change::None,
                NewEvent::new("drift", crate::audit::EventKind::DriftCheck, "none"),
                ctx,
            )
            .await?;
    }
    for d in drifted {
        let mut event =
            NewEvent::new("drift", crate::audit::EventKind::Drift, "drift").address(&d.address);
        if d.status == "deleted" {
            event.detail = Some("deleted outside converge".into());
        } else if d.status == "interrupted" {
            event.detail = Some("left in flight by an interrupted apply".into());
        } else {
            event.before = Some(
                d.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.last_applied.clone()))
                    .collect(),
            );
            event.after = Some(
                d.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.live.clone()))
                    .collect(),
            );
            event.detail = Some(format!(
                "changed outside converge: {}",
                d.fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        store.commit(state::Change::None, event, ctx).await?;
    }
    Ok(())
}
