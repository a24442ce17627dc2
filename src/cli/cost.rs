//! `converge cost watch`: yesterday's cost per address (AWS Cost Explorer, Azure Cost
//! Management) against the days before it; anomalies named with the deployments behind them,
//! audited and posted to `notify.webhook`. Exit 0 none, 2 anomaly, 1 error.

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use super::{CliError, EXIT_CHANGES, EXIT_OK, Format, GlobalArgs, output};
use crate::application::cost_watch;
use crate::cost::anomaly::{self, Finding, Rule, Verdict};

/// `cost` subcommands.
#[derive(Debug, Subcommand)]
pub enum CostCommand {
    /// Compare the latest complete day's cost per address with the days before it.
    Watch(WatchArgs),
}

/// `cost watch` flags.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Baseline window before the judged day, in whole days (`7d`).
    #[arg(long, default_value = "7d")]
    lookback: String,
    /// A day this far above the baseline mean is an anomaly (`50%`).
    #[arg(long, default_value = "50%")]
    threshold: String,
    /// And at least this many USD a day above it.
    #[arg(long, default_value_t = 1.0)]
    min_daily: f64,
    /// The day to judge (default: yesterday, UTC, the latest complete day).
    #[arg(long, value_name = "YYYY-MM-DD")]
    day: Option<NaiveDate>,
}

pub(super) async fn run(g: &GlobalArgs, command: &CostCommand) -> Result<i32, CliError> {
    match command {
        CostCommand::Watch(a) => watch(g, a).await,
    }
}

async fn watch(g: &GlobalArgs, args: &WatchArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json | Format::Markdown) {
        return Err(CliError::Usage(
            "cost watch prints --format text, json or markdown".into(),
        ));
    }
    let default = Rule {
        lookback_days: cost_watch::whole_days(&args.lookback, "--lookback")?,
        threshold_percent: crate::model::parse_percent(&args.threshold).ok_or_else(|| {
            CliError::Usage(format!(
                "--threshold is a percentage like 50%, found `{}`",
                args.threshold
            ))
        })?,
        min_daily_usd: args.min_daily,
    };
    let watched = cost_watch::watch(&g.settings, args.day, default).await?;
    let report = Report {
        format_version: 1,
        environment: &watched.environment,
        day: watched.day,
        sources: watched.sources.clone(),
        rule: default,
        missing_days: watched.missing_days.clone(),
        estimated: watched.estimated,
        anomalies: watched.anomalies(),
        findings: &watched.findings,
    };
    let md = markdown(&report);
    match g.format {
        Format::Json => output::json(&report),
        Format::Markdown => output::print(&md),
        _ => output::print(&text(&report)),
    }
    super::github::step_summary(&md);
    Ok(if report.anomalies == 0 {
        EXIT_OK
    } else {
        EXIT_CHANGES
    })
}

/// What `cost watch` found (`--format json`).
#[derive(serde::Serialize)]
struct Report<'a> {
    format_version: u32,
    environment: &'a str,
    day: NaiveDate,
    sources: Vec<&'static str>,
    rule: Rule,
    missing_days: Vec<NaiveDate>,
    estimated: bool,
    anomalies: usize,
    findings: &'a [Finding],
}

fn heading(r: &Report) -> String {
    format!(
        "Cost watch for {}: {} against the {} days before it (anomaly: above +{}% and +${:.2}/day), from {}",
        r.environment,
        r.day,
        r.rule.lookback_days,
        r.rule.threshold_percent,
        r.rule.min_daily_usd,
        if r.sources.is_empty() {
            "no billing source".to_string()
        } else {
            r.sources.join(" and ")
        }
    )
}

fn notes(r: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    if !r.missing_days.is_empty() {
        let days: Vec<String> = r.missing_days.iter().map(|d| d.to_string()).collect();
        notes.push(format!(
            "No cost data for {}: those days are left out of baselines, not counted as $0.",
            days.join(", ")
        ));
    }
    if r.estimated {
        notes.push(format!(
            "Figures for {} are estimated (not final yet) and may still change.",
            r.day
        ));
    }
    notes
}

fn text(r: &Report) -> String {
    let mut out = format!("{}\n\n", heading(r));
    let order = [
        Verdict::Anomaly,
        Verdict::NoData,
        Verdict::NoBaseline,
        Verdict::Normal,
    ];
    for verdict in order {
        for f in r.findings.iter().filter(|f| f.verdict == verdict) {
            let mark = match verdict {
                Verdict::Anomaly => "!",
                Verdict::NoData | Verdict::NoBaseline => "?",
                Verdict::Normal => " ",
            };
            out.push_str(&format!("  {mark} {}\n", f.describe()));
        }
    }
    if r.findings.is_empty() {
        out.push_str("  (no cost data for this environment's addresses)\n");
    }
    out.push('\n');
    for n in notes(r) {
        out.push_str(&format!("{n}\n"));
    }
    out.push_str(&match r.anomalies {
        0 => "No cost anomaly.\n".to_string(),
        1 => "1 cost anomaly.\n".to_string(),
        n => format!("{n} cost anomalies.\n"),
    });
    out
}

fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("${v:.2}"))
        .unwrap_or_else(|| "no data".into())
}

/// GitHub-flavoured Markdown: anomalies first, a table of every address, the notes.
fn markdown(r: &Report) -> String {
    let mut out = format!(
        "<!-- converge:cost-watch:{} -->\n### converge cost watch: {}\n\n{}\n\n",
        r.environment,
        r.environment,
        heading(r)
    );
    if r.anomalies > 0 {
        out.push_str(&format!(
            "**{} anomal{}**\n\n",
            r.anomalies,
            if r.anomalies == 1 { "y" } else { "ies" }
        ));
        for f in r.findings.iter().filter(|f| f.verdict == Verdict::Anomaly) {
            out.push_str(&format!(
                "- :warning: {}\n",
                f.describe().replace('|', "\\|")
            ));
        }
        out.push('\n');
    } else {
        out.push_str("No cost anomaly.\n\n");
    }
    out.push_str(
        "| address | day | baseline | change | deployments in window |\n|---|---:|---:|---:|---|\n",
    );
    for f in r.findings {
        let change = match (f.verdict, f.change_percent) {
            (Verdict::NoData, _) => "no data".to_string(),
            (Verdict::NoBaseline, _) => "no baseline".to_string(),
            (_, Some(p)) => anomaly::percent(p),
            (_, None) => "new cost".to_string(),
        };
        let flag = if f.verdict == Verdict::Anomaly {
            " :warning:"
        } else {
            ""
        };
        let deployments: Vec<String> = f
            .deployments
            .iter()
            .map(|d| {
                format!(
                    "{} {} by {}",
                    d.action,
                    d.revision.as_deref().unwrap_or(""),
                    d.actor
                )
            })
            .collect();
        out.push_str(&format!(
            "| `{}`{flag} | {}{} | {} | {change} | {} |\n",
            f.address,
            cell(f.day_usd),
            if f.estimated { " (est.)" } else { "" },
            cell(f.baseline_usd),
            deployments.join("; ").replace('|', "\\|")
        ));
    }
    let notes = notes(r);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&format!("> {n}\n"));
        }
    }
    out
}
