//! `converge audit log|show|export|verify`: read the trail and check its hash chain.

use clap::Subcommand;

use super::{CliError, EXIT_ERROR, EXIT_OK, Format, GlobalArgs, output};
use crate::application::session;
use crate::audit::{self, Event};

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events, oldest first.
    Log {
        /// Only events at or after this time: RFC 3339, a date (2026-11-23) or an age (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only events about this address.
        #[arg(long)]
        address: Option<String>,
    },
    /// Show one event in full.
    Show {
        /// The event ID (its sequence number).
        id: i64,
    },
    /// Print every event as JSON lines (--format jsonl, default) or CSV (--format csv).
    Export,
    /// Check the hash chain: exit 0 intact, 1 broken (naming the first broken event).
    Verify,
}

pub(super) async fn run(g: &GlobalArgs, command: &AuditCommand) -> Result<i32, CliError> {
    let name = session::env_name(&g.settings)?;
    let store = session::open_state(&g.settings, &name).await?;
    let (events, head_seq, head_hash) = store.audit_chain().await?;
    match command {
        AuditCommand::Log { since, address } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let selected: Vec<&Event> = events
                .iter()
                .filter(|e| {
                    since.is_none_or(|s| {
                        chrono::DateTime::parse_from_rfc3339(&e.time).is_ok_and(|t| t >= s)
                    })
                })
                .filter(|e| {
                    address
                        .as_ref()
                        .is_none_or(|a| e.body.address.as_ref() == Some(a))
                })
                .collect();
            if g.format == Format::Json {
                output::json(&selected);
            } else if g.format == Format::Markdown {
                output::print(&log_markdown(&name, &selected));
            } else if selected.is_empty() {
                output::print("No audit events match.\n");
            } else {
                let mut out = String::new();
                for e in selected {
                    out.push_str(&log_line(e));
                    out.push('\n');
                }
                output::print(&out);
            }
        }
        AuditCommand::Show { id } => {
            let e = events.iter().find(|e| e.seq == *id).ok_or_else(|| {
                CliError::Usage(format!(
                    "no audit event {id} in {name} (events 1 to {head_seq})"
                ))
            })?;
            output::json(e);
        }
        AuditCommand::Export => match g.format {
            Format::Csv => output::print(&csv(&events)?),
            Format::Jsonl | Format::Text => {
                let mut out = String::new();
                for e in &events {
                    out.push_str(&serde_json::to_string(e).unwrap_or_default());
                    out.push('\n');
                }
                output::print(&out);
            }
            Format::Json => output::json(&events),
            Format::Markdown | Format::Dot | Format::Mermaid | Format::Raw => {
                return Err(CliError::Usage(
                    "audit export writes --format jsonl, csv or json".into(),
                ));
            }
        },
        AuditCommand::Verify => {
            return match audit::verify(&events, head_seq, &head_hash) {
                Ok(n) => {
                    output::print(&format!(
                        "Audit trail of {name} is intact: {n} events, head {}.\n",
                        short(&head_hash)
                    ));
                    Ok(EXIT_OK)
                }
                Err(broken) => {
                    output::print(&format!(
                        "Audit trail of {name} is BROKEN at event {}{}: {}.\n",
                        broken.seq,
                        broken.id.map(|id| format!(" ({id})")).unwrap_or_default(),
                        broken.reason
                    ));
                    Ok(EXIT_ERROR)
                }
            };
        }
    }
    Ok(EXIT_OK)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn log_line(e: &Event) -> String {
    let commit = if e.commit.is_empty() {
        String::new()
    } else {
        format!(" commit {}", &e.commit[..e.commit.len().min(7)])
    };
    let detail = e
        .body
        .detail
        .as_deref()
        .map(|d| format!(" — {d}"))
        .unwrap_or_default();
    format!(
        "#{:<5} {}  {:<10} {:<18} {:<14} {:<28} {}{commit}{detail}",
        e.seq,
        e.time,
        e.actor,
        e.body.operation,
        e.body.action,
        e.body.address.as_deref().unwrap_or("-"),
        e.body.outcome,
    )
}

fn parse_since(raw: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, CliError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .fixed_offset());
    }
    let (num, unit) = raw.split_at(
        raw.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .len(),
    );
    let n: i64 = num.parse().map_err(|_| bad_since(raw))?;
    let age = match unit {
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(bad_since(raw)),
    };
    Ok((chrono::Utc::now() - age).fixed_offset())
}

fn bad_since(raw: &str) -> CliError {
    CliError::Usage(format!(
        "--since {raw}: use RFC 3339 (2026-11-23T10:00:00Z), a date (2026-11-23) or an age (30m, 24h, 7d)"
    ))
}

fn csv(events: &[Event]) -> Result<String, CliError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let header = [
        "seq",
        "id",
        "time",
        "environment",
        "actor",
        "commit",
        "operation",
        "address",
        "action",
        "outcome",
        "detail",
        "before",
        "after",
        "prev_hash",
        "hash",
    ];
    let fail = |e: ::csv::Error| CliError::Failed(format!("cannot write CSV: {e}"));
    w.write_record(header).map_err(fail)?;
    for e in events {
        w.write_record([
            e.seq.to_string(),
            e.id.clone(),
            e.time.clone(),
            e.environment.clone(),
            e.actor.clone(),
            e.commit.clone(),
            e.body.operation.clone(),
            e.body.address.clone().unwrap_or_default(),
            e.body.action.clone(),
            e.body.outcome.clone(),
            e.body.detail.clone().unwrap_or_default(),
            e.body
                .before
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            e.body
                .after
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// GitHub Markdown of `audit log`: one row per event, oldest first.
fn log_markdown(env: &str, events: &[&Event]) -> String {
    use super::markdown::cell;
    let head = format!(
        "<!-- converge:audit:{env} -->\n### converge audit log: `{env}`\n\n{} events.\n\n",
        events.len()
    );
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                format!("#{}", e.seq),
                e.time.clone(),
                cell(&e.actor),
                format!("`{}`", e.commit.get(..7).unwrap_or(&e.commit)),
                cell(&e.body.operation),
                cell(&e.body.action),
                e.body
                    .address
                    .as_ref()
                    .map(|a| format!("`{a}`"))
                    .unwrap_or_default(),
                cell(&e.body.outcome),
                cell(e.body.detail.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    super::markdown::document(
        &head,
        &[
            "id",
            "time",
            "actor",
            "commit",
            "operation",
            "action",
            "address",
            "outcome",
            "detail",
        ],
        &rows,
        "",
        &format!("`converge audit export -e {env} --format jsonl`"),
    )
}
