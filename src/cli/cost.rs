//! `converge cost watch`: yesterday's cost per address (AWS Cost Explorer, Azure Cost
//! Management) against the days before it; anomalies named with the deployments behind them,
//! audited and posted to `notify.webhook`. Exit 0 none, 2 anomaly, 1 error.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate, Utc};
use clap::{Args, Subcommand};

use super::{CliError, EXIT_CHANGES, EXIT_OK, Format, GlobalArgs, output, session};
use crate::audit::NewEvent;
use crate::config::Environment;
use crate::cost::anomaly::{self, CostData, Finding, Rule, Verdict};
use crate::model::{Lookup, Reference, Value};
use crate::state;

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

fn whole_days(text: &str, what: &str) -> Result<i64, CliError> {
    let d =
        crate::model::parse_duration(text).map_err(|e| CliError::Usage(format!("{what}: {e}")))?;
    let days = d.as_secs() / 86_400;
    if days == 0 || d.as_secs() % 86_400 != 0 {
        return Err(CliError::Usage(format!(
            "{what} is a whole number of days, like 7d; found `{text}`"
        )));
    }
    if days > crate::cost::anomaly::MAX_LOOKBACK_DAYS as u64 {
        return Err(CliError::Usage(format!(
            "{what} is at most {}d (ten years of daily costs); found `{text}`",
            crate::cost::anomaly::MAX_LOOKBACK_DAYS
        )));
    }
    Ok(days as i64)
}

/// Literal values only: anomaly overrides do not reference other resources.
struct Literals;

impl Lookup for Literals {
    fn lookup(&self, _: &Reference) -> Value {
        Value::Unknown
    }
}

/// Per-address rules from `rollout.cost.anomaly`.
fn service_rules(env: &Environment, default: Rule) -> Result<BTreeMap<String, Rule>, CliError> {
    let mut rules = BTreeMap::new();
    for (address, resource) in &env.resources {
        let props = resource.properties.eval(&Literals);
        let anomaly = props.get("rollout").get("cost").get("anomaly");
        if anomaly.is_null() {
            continue;
        }
        let mut rule = default;
        if let Some(text) = anomaly.get("lookback").as_str() {
            rule.lookback_days =
                whole_days(text, &format!("{address}: rollout.cost.anomaly.lookback"))?;
        }
        if let Some(p) = anomaly
            .get("threshold")
            .as_str()
            .and_then(crate::model::parse_percent)
        {
            rule.threshold_percent = p;
        }
        if let Some(m) = anomaly.get("min_daily").as_f64() {
            rule.min_daily_usd = m;
        }
        rules.insert(address.to_string(), rule);
    }
    Ok(rules)
}

async fn watch(g: &GlobalArgs, args: &WatchArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json | Format::Markdown) {
        return Err(CliError::Usage(
            "cost watch prints --format text, json or markdown".into(),
        ));
    }
    let default = Rule {
        lookback_days: whole_days(&args.lookback, "--lookback")?,
        threshold_percent: crate::model::parse_percent(&args.threshold).ok_or_else(|| {
            CliError::Usage(format!(
                "--threshold is a percentage like 50%, found `{}`",
                args.threshold
            ))
        })?,
        min_daily_usd: args.min_daily,
    };
    let name = session::env_name(g)?;
    let env = session::load(g, &name)?;
    let rules = service_rules(&env, default)?;
    let store = session::open_state(g, &name).await?;
    let registry = session::registry(g, &env).await;
    registry
        .ready()
        .await
        .map_err(|source| CliError::Provider {
            context: format!("{name}: signing in"),
            source,
        })?;

    let day = args
        .day
        .unwrap_or_else(|| Utc::now().date_naive() - Duration::days(1));
    let longest = rules
        .values()
        .map(|r| r.lookback_days)
        .chain([default.lookback_days])
        .max()
        .unwrap_or(7);
    let (start, end) = (day - Duration::days(longest), day + Duration::days(1));
    let mut data = CostData::default();
    let mut sources = Vec::new();
    if let Some(aws) = registry.aws() {
        let d = aws
            .cost_explorer()
            .daily_cost(&name, start, end)
            .await
            .map_err(|source| CliError::Provider {
                context: format!("{name}: reading AWS Cost Explorer"),
                source,
            })?;
        data.merge(d);
        sources.push("AWS Cost Explorer");
    }
    if let Some(azure) = registry.azure() {
        let d = azure
            .daily_cost(&name, start, end)
            .await
            .map_err(|source| CliError::Provider {
                context: format!("{name}: reading Azure Cost Management"),
                source,
            })?;
        data.merge(d);
        sources.push("Azure Cost Management");
    }
    let expected: BTreeSet<String> = env
        .resources
        .iter()
        .filter(|(_, r)| r.kind.price.always_costs())
        .map(|(a, _)| a.to_string())
        .collect();
    let (events, _, _) = store.audit_chain().await?;
    let findings = anomaly::judge(&data, day, &expected, &rules, default, &events);
    let anomalies: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Anomaly)
        .collect();

    let ctx = session::audit_context(g);
    let client = reqwest::Client::new();
    for f in &anomalies {
        let mut ev = NewEvent::new(
            "cost watch",
            crate::audit::EventKind::CostAnomaly,
            "anomaly",
        )
        .address(&f.address)
        .detail(f.describe());
        ev.after = Some(serde_json::to_value(f).unwrap_or_default());
        store.commit(state::Change::None, ev, &ctx).await?;
        if let Some(url) = &env.notify_webhook {
            let payload = serde_json::json!({
                "text": format!("converge {name}: cost anomaly: {}", f.describe()),
                "event": "cost anomaly",
                "environment": name,
                "address": f.address,
                "day": f.day,
                "day_usd": f.day_usd,
                "baseline_usd": f.baseline_usd,
                "change_percent": f.change_percent,
                "estimated": f.estimated,
                "deployments": f.deployments,
            });
            crate::rollout::notify::webhook(&client, url, &payload).await;
        }
    }
    let report = Report {
        format_version: 1,
        environment: &name,
        day,
        sources,
        rule: default,
        missing_days: missing(&data, start, day),
        estimated: data.days_estimated.contains(&day),
        anomalies: anomalies.len(),
        findings: &findings,
    };
    let md = markdown(&report);
    match g.format {
        Format::Json => output::json(&report),
        Format::Markdown => output::print(&md),
        _ => output::print(&text(&report)),
    }
    super::github::step_summary(&md);
    Ok(if anomalies.is_empty() {
        EXIT_OK
    } else {
        EXIT_CHANGES
    })
}

/// Days of the window the billing APIs returned nothing for.
fn missing(data: &CostData, start: NaiveDate, day: NaiveDate) -> Vec<NaiveDate> {
    start
        .iter_days()
        .take_while(|d| *d <= day)
        .filter(|d| !data.days_present.contains(d))
        .collect()
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
