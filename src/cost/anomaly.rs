//! `cost watch`'s judgement, with no I/O: daily cost per address from the billing APIs, the
//! latest complete day against the mean of the window before it, and the deployments of that
//! address in the window (from the audit trail) that may explain a spike.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::audit::{Event, EventKind};

/// The tag that groups billing data by address.
pub const ADDRESS_TAG: &str = crate::config::ADDRESS_TAG;

/// Daily cost rows as a billing API returned them.
#[derive(Debug, Clone, Default)]
pub struct CostData {
    /// Days the API returned data for (even when no address had cost that day).
    pub days_present: BTreeSet<NaiveDate>,
    /// Days whose figures are not final yet (Cost Explorer's `Estimated`).
    pub days_estimated: BTreeSet<NaiveDate>,
    /// USD per address per day; `""` holds cost without the address tag.
    pub usd: BTreeMap<String, BTreeMap<NaiveDate, f64>>,
}

impl CostData {
    /// Adds `usd` to an address's day (rows of several pages or currencies add up).
    pub fn add(&mut self, address: &str, day: NaiveDate, usd: f64) {
        self.days_present.insert(day);
        *self
            .usd
            .entry(address.to_string())
            .or_default()
            .entry(day)
            .or_default() += usd;
    }

    /// Merges another source's rows (AWS and Azure for one environment).
    pub fn merge(&mut self, other: CostData) {
        self.days_present.extend(other.days_present);
        self.days_estimated.extend(other.days_estimated);
        for (address, days) in other.usd {
            for (day, usd) in days {
                self.add(&address, day, usd);
            }
        }
    }
}

/// The longest lookback window `cost watch` takes: ten years of days, far inside what date
/// arithmetic can represent (a larger one used to overflow it).
pub const MAX_LOOKBACK_DAYS: i64 = 3650;

/// When a day is an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    /// Days in the baseline window before the judged day.
    pub lookback_days: i64,
    /// Percent above the baseline mean.
    pub threshold_percent: f64,
    /// USD a day above the baseline mean, at least.
    pub min_daily_usd: f64,
}

impl Default for Rule {
    fn default() -> Rule {
        Rule {
            lookback_days: 7,
            threshold_percent: 50.0,
            min_daily_usd: 1.0,
        }
    }
}

/// What was concluded about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Above the baseline by more than the threshold and the minimum.
    Anomaly,
    /// Within the rule.
    Normal,
    /// No figure for the judged day: nothing can be said (never read as $0).
    NoData,
    /// A figure for the judged day but none for the days before it.
    NoBaseline,
}

/// A deployment of the address in the window, from the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    /// The audit event's sequence number.
    pub event: i64,
    /// RFC 3339 time.
    pub time: String,
    /// `create`, `update`, `replace`, `rollout complete`...
    pub action: String,
    /// The image tag or task definition deployed, when the event says.
    pub revision: Option<String>,
    /// Who.
    pub actor: String,
    /// From which commit.
    pub commit: String,
}

/// One address's finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The address (`(untagged)` for cost without the tag).
    pub address: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The judged day.
    pub day: NaiveDate,
    /// Its cost, `None` when the API had no data for it.
    pub day_usd: Option<f64>,
    /// Mean of the baseline days that have data.
    pub baseline_usd: Option<f64>,
    /// Percent change against the baseline (`None` without one, or from $0).
    pub change_percent: Option<f64>,
    /// Baseline days the API had no data for.
    pub missing_days: Vec<NaiveDate>,
    /// True when the judged day's figures are not final.
    pub estimated: bool,
    /// The rule applied.
    pub rule: Rule,
    /// Deployments of the address in the window, newest first.
    pub deployments: Vec<Deployment>,
    /// Why there is no figure, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_data_reason: Option<String>,
}

/// `+108%`; a change that rounds to nothing is `+0%`, never `-0%`.
pub fn percent(p: f64) -> String {
    let rounded = p.round();
    if rounded == 0.0 {
        "+0%".to_string()
    } else {
        format!("{rounded:+.0}%")
    }
}

fn money(usd: f64) -> String {
    format!("${usd:.2}")
}

impl Finding {
    /// One line for people, e.g. `api: $41.20/day vs $19.80/day baseline (+108%) since rollout
    /// of sha-abc123 by alice on 2026-11-21 14:02 (commit abc1234)`.
    pub fn describe(&self) -> String {
        let mut line = match (self.verdict, self.day_usd, self.baseline_usd) {
            (Verdict::NoData, _, _) => format!(
                "{}: {}",
                self.address,
                self.no_data_reason
                    .clone()
                    .unwrap_or_else(|| format!("no cost data for {}", self.day))
            ),
            (Verdict::NoBaseline, Some(d), _) => format!(
                "{}: {}/day, no baseline in the {} days before",
                self.address,
                money(d),
                self.rule.lookback_days
            ),
            (_, Some(d), Some(b)) => {
                let change = match self.change_percent {
                    Some(p) => percent(p),
                    None => "new cost".to_string(),
                };
                format!(
                    "{}: {}/day vs {}/day baseline ({change})",
                    self.address,
                    money(d),
                    money(b)
                )
            }
            _ => format!("{}: {}", self.address, self.day),
        };
        if self.verdict == Verdict::Anomaly
            && let Some(d) = self.deployments.first()
        {
            let what = match (&d.revision, d.action.starts_with("rollout")) {
                (Some(r), true) => format!("rollout of {r}"),
                (Some(r), false) => format!("{} to {r}", d.action),
                (None, _) => d.action.clone(),
            };
            let when = d.time.get(..16).unwrap_or(&d.time).replace('T', " ");
            line.push_str(&format!(" since {what} by {} on {when}", d.actor));
            if !d.commit.is_empty() {
                line.push_str(&format!(" (commit {})", &d.commit[..d.commit.len().min(7)]));
            }
        }
        if self.estimated {
            line.push_str(" [estimated: not final yet]");
        }
        if !self.missing_days.is_empty() {
            let days: Vec<String> = self.missing_days.iter().map(|d| d.to_string()).collect();
            line.push_str(&format!(" [no data for {}]", days.join(", ")));
        }
        line
    }
}

/// Judges `day` for every address in `data` and every address in `expected` (priced resources,
/// which should have cost), with `rules` overriding `default` per address.
pub fn judge(
    data: &CostData,
    day: NaiveDate,
    expected: &BTreeSet<String>,
    rules: &BTreeMap<String, Rule>,
    default: Rule,
    events: &[Event],
) -> Vec<Finding> {
    let addresses: BTreeSet<&String> = data.usd.keys().chain(expected.iter()).collect();
    let empty = BTreeMap::new();
    let mut findings = Vec::new();
    for address in addresses {
        let rule = rules.get(address).copied().unwrap_or(default);
        let series = data.usd.get(address).unwrap_or(&empty);
        let present = |d: &NaiveDate| data.days_present.contains(d);
        // An address with no row at all in the window is not known to cost $0: its tag may
        // simply not be a cost allocation tag (yet).
        let untracked = series.is_empty();
        let day_usd =
            (present(&day) && !untracked).then(|| series.get(&day).copied().unwrap_or(0.0));
        let baseline_days: Vec<NaiveDate> = (1..=rule.lookback_days)
            .map(|i| day - Duration::days(i))
            .collect();
        let with_data: Vec<f64> = baseline_days
            .iter()
            .filter(|d| present(d))
            .map(|d| series.get(d).copied().unwrap_or(0.0))
            .collect();
        let mut missing_days: Vec<NaiveDate> =
            baseline_days.into_iter().filter(|d| !present(d)).collect();
        missing_days.sort();
        let baseline_usd =
            (!with_data.is_empty()).then(|| with_data.iter().sum::<f64>() / with_data.len() as f64);
        let change_percent = match (day_usd, baseline_usd) {
            (Some(d), Some(b)) if b > 0.0 => Some((d - b) / b * 100.0),
            _ => None,
        };
        let verdict = match (day_usd, baseline_usd) {
            (None, _) => Verdict::NoData,
            (Some(_), None) => Verdict::NoBaseline,
            (Some(d), Some(b)) => {
                let above = d - b >= rule.min_daily_usd
                    && (b == 0.0 || d > b * (1.0 + rule.threshold_percent / 100.0));
                if above {
                    Verdict::Anomaly
                } else {
                    Verdict::Normal
                }
            }
        };
        let name = if address.is_empty() {
            "(untagged)".to_string()
        } else {
            address.clone()
        };
        let since = day - Duration::days(rule.lookback_days);
        findings.push(Finding {
            deployments: deployments(events, address, since, day),
            address: name,
            verdict,
            day,
            day_usd,
            baseline_usd,
            change_percent,
            missing_days,
            estimated: data.days_estimated.contains(&day),
            rule,
            no_data_reason: (untracked && present(&day)).then(|| {
                format!(
                    "no cost recorded under its {ADDRESS_TAG} tag in the window (is the tag activated for cost allocation?)"
                )
            }),
        });
    }
    findings
}

/// The address's successful deployments from `since` to the end of `day`, newest first. The
/// `update` an apply records right after the rollout that carried it is the same deployment:
/// the rollout is kept.
fn deployments(
    events: &[Event],
    address: &str,
    since: NaiveDate,
    day: NaiveDate,
) -> Vec<Deployment> {
    let from = since.to_string();
    let until = (day + Duration::days(1)).to_string();
    let mut previous: Option<&Event> = None;
    let mut found: Vec<Deployment> = Vec::new();
    for e in events.iter().filter(|e| {
        e.body.address.as_deref() == Some(address)
            && e.body.outcome == "ok"
            && e.body.kind().is_some_and(EventKind::deploys)
    }) {
        let carried_by_rollout = e.body.kind() == Some(EventKind::Update)
            && previous.is_some_and(|p| {
                p.body.kind().is_some_and(EventKind::carries_a_revision) && p.commit == e.commit
            });
        let in_window = e.time.as_str() >= from.as_str() && e.time.as_str() < until.as_str();
        if in_window && !carried_by_rollout {
            found.push(Deployment {
                event: e.seq,
                time: e.time.clone(),
                action: e.body.action.clone(),
                revision: e.body.after.as_ref().and_then(revision_of),
                actor: e.actor.clone(),
                commit: e.commit.clone(),
            });
        }
        previous = Some(e);
    }
    found.reverse();
    found
}

/// The image tag an event's `after` deploys (first container), else its task definition.
fn revision_of(after: &serde_json::Value) -> Option<String> {
    let image = after
        .get("images")
        .and_then(|i| i.get(0))
        .or_else(|| after.pointer("/task/containers/0/image"))
        .and_then(|i| i.as_str());
    if let Some(image) = image {
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or(image);
        if !tag.contains('/') {
            return Some(tag.to_string());
        }
    }
    after
        .get("task_definition")
        .and_then(|t| t.as_str())
        .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::NewEvent;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn week(values: &[(&str, f64)]) -> CostData {
        let mut data = CostData::default();
        for (d, usd) in values {
            data.add("api.service", day(d), *usd);
        }
        data
    }

    fn rollout(time: &str, seq: i64) -> Event {
        let mut body = NewEvent::new("apply", crate::audit::EventKind::RolloutComplete, "ok")
            .address("api.service");
        body.after = Some(
            serde_json::json!({"images": ["123.dkr.ecr.us-east-1.amazonaws.com/api:sha-abc123"]}),
        );
        Event {
            seq,
            id: String::new(),
            time: time.into(),
            environment: "prod".into(),
            actor: "alice".into(),
            commit: "abc1234def".into(),
            body,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_spike_is_named_with_the_rollout_that_preceded_it() {
        let mut values: Vec<(String, f64)> =
            (15..=21).map(|d| (format!("2026-11-{d}"), 19.80)).collect();
        values.push(("2026-11-22".into(), 41.20));
        let data = week(
            &values
                .iter()
                .map(|(d, v)| (d.as_str(), *v))
                .collect::<Vec<_>>(),
        );
        let events = vec![
            rollout("2026-11-10T09:00:00Z", 3),
            rollout("2026-11-21T14:02:31Z", 9),
        ];
        let f = judge(
            &data,
            day("2026-11-22"),
            &BTreeSet::new(),
            &BTreeMap::new(),
            Rule::default(),
            &events,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].verdict, Verdict::Anomaly);
        assert_eq!(
            f[0].deployments.len(),
            1,
            "the rollout before the window is not blamed"
        );
        assert_eq!(
            f[0].describe(),
            "api.service: $41.20/day vs $19.80/day baseline (+108%) since rollout of sha-abc123 by alice on 2026-11-21 14:02 (commit abc1234)"
        );
    }

    #[test]
    fn flat_weeks_small_rises_and_missing_days_are_not_anomalies() {
        let flat = week(&[
            ("2026-11-20", 10.0),
            ("2026-11-21", 10.0),
            ("2026-11-22", 10.4),
        ]);
        let f = judge(
            &flat,
            day("2026-11-22"),
            &BTreeSet::new(),
            &BTreeMap::new(),
            Rule::default(),
            &[],
        );
        assert_eq!(f[0].verdict, Verdict::Normal);
        assert_eq!(f[0].missing_days.len(), 5, "{:?}", f[0].missing_days);
        // +100% but only $0.50 more a day: below the $1 minimum.
        let cheap = week(&[("2026-11-21", 0.5), ("2026-11-22", 1.0)]);
        let f = judge(
            &cheap,
            day("2026-11-22"),
            &BTreeSet::new(),
            &BTreeMap::new(),
            Rule::default(),
            &[],
        );
        assert_eq!(f[0].verdict, Verdict::Normal);
        // No data for the judged day: said so, not read as $0.
        let stale = week(&[("2026-11-21", 10.0)]);
        let expected = BTreeSet::from(["worker.service".to_string()]);
        let f = judge(
            &stale,
            day("2026-11-22"),
            &expected,
            &BTreeMap::new(),
            Rule::default(),
            &[],
        );
        assert!(
            f.iter()
                .all(|f| f.verdict == Verdict::NoData && f.day_usd.is_none())
        );
        assert_eq!(
            f[1].describe().split(" [").next().unwrap(),
            "worker.service: no cost data for 2026-11-22"
        );
    }

    #[test]
    fn a_per_service_threshold_overrides_the_default() {
        let data = week(&[("2026-11-21", 10.0), ("2026-11-22", 14.0)]);
        let strict = BTreeMap::from([(
            "api.service".to_string(),
            Rule {
                threshold_percent: 20.0,
                ..Rule::default()
            },
        )]);
        let f = judge(
            &data,
            day("2026-11-22"),
            &BTreeSet::new(),
            &BTreeMap::new(),
            Rule::default(),
            &[],
        );
        assert_eq!(
            f[0].verdict,
            Verdict::Normal,
            "+40% is under the default 50%"
        );
        let f = judge(
            &data,
            day("2026-11-22"),
            &BTreeSet::new(),
            &strict,
            Rule::default(),
            &[],
        );
        assert_eq!(
            f[0].verdict,
            Verdict::Anomaly,
            "+40% is over the service's 20%"
        );
    }
}
