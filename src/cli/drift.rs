//! `converge drift`: live state against the last applied state; exit 2 when anything drifted.

use owo_colors::OwoColorize;

use super::{CliError, EXIT_CHANGES, EXIT_OK, Format, GlobalArgs, output};
use crate::application::drift;
use crate::plan::drift::Drifted;

pub(super) async fn run(g: &GlobalArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json | Format::Markdown) {
        return Err(CliError::Usage(
            "drift prints --format text, json or markdown".into(),
        ));
    }
    let checked = drift::check(&g.settings).await?;
    let (name, drifted) = (&checked.environment, &checked.drifted);
    let summary = markdown(name, checked.checked, drifted);
    match g.format {
        Format::Json => output::json(&serde_json::json!({
            "format_version": crate::plan::FORMAT_VERSION,
            "environment": name,
            "resources_checked": checked.checked,
            "drift": !drifted.is_empty(),
            "drifted": drifted,
        })),
        Format::Markdown => output::print(&summary),
        _ => output::print(&text(name, checked.checked, drifted)),
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
