//! `cost watch`'s use case: the judged day's cost per address (AWS Cost Explorer, Azure Cost
//! Management) against the days before it, with per-service rules from
//! `rollout.cost.anomaly`; anomalies are audited and posted to `notify.webhook`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};

use super::{Error, Settings, session};
use crate::audit::NewEvent;
use crate::config::Environment;
use crate::cost::anomaly::{self, CostData, Finding, Rule, Verdict};
use crate::model::{Lookup, Reference, Value};
use crate::state;

/// What one watch found.
#[derive(Debug)]
pub struct Watched {
    /// The environment watched.
    pub environment: String,
    /// The day judged.
    pub day: NaiveDate,
    /// The billing APIs read.
    pub sources: Vec<&'static str>,
    /// Days of the window the billing APIs returned nothing for.
    pub missing_days: Vec<NaiveDate>,
    /// Whether the judged day's figures are still estimates.
    pub estimated: bool,
    /// Every address judged, anomalies included.
    pub findings: Vec<Finding>,
}

impl Watched {
    /// How many findings are anomalies.
    pub fn anomalies(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Anomaly)
            .count()
    }
}

/// A duration in whole days (`7d`), at most ten years; `what` names the setting in errors.
pub fn whole_days(text: &str, what: &str) -> Result<i64, Error> {
    let d = crate::model::parse_duration(text).map_err(|e| Error::Usage(format!("{what}: {e}")))?;
    let days = d.as_secs() / 86_400;
    if days == 0 || d.as_secs() % 86_400 != 0 {
        return Err(Error::Usage(format!(
            "{what} is a whole number of days, like 7d; found `{text}`"
        )));
    }
    if days > crate::cost::anomaly::MAX_LOOKBACK_DAYS as u64 {
        return Err(Error::Usage(format!(
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
fn service_rules(env: &Environment, default: Rule) -> Result<BTreeMap<String, Rule>, Error> {
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

/// Judges `day` (yesterday, UTC, when `None`) of the settings' environment against `default`
/// and each service's own rule; audits and posts each anomaly.
pub async fn watch(s: &Settings, day: Option<NaiveDate>, default: Rule) -> Result<Watched, Error> {
    let name = session::env_name(s)?;
    let env = session::load(s, &name)?;
    let rules = service_rules(&env, default)?;
    let store = session::open_state(s, &name).await?;
    let registry = session::registry(s, &env).await;
    registry.ready().await.map_err(|source| Error::Provider {
        context: format!("{name}: signing in"),
        source,
    })?;
    let day = day.unwrap_or_else(|| chrono::Utc::now().date_naive() - Duration::days(1));
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
            .map_err(|source| Error::Provider {
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
            .map_err(|source| Error::Provider {
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

    let ctx = session::audit_context(s);
    let client = reqwest::Client::new();
    for f in findings.iter().filter(|f| f.verdict == Verdict::Anomaly) {
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
    Ok(Watched {
        environment: name,
        day,
        sources,
        missing_days: missing(&data, start, day),
        estimated: data.days_estimated.contains(&day),
        findings,
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
