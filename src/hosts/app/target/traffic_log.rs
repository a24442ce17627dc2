//! Gates from what nginx saw (`rollout.health.metrics` of a host app): converge's access log
//! for the app (JSON lines its server block writes) read over SSH from the byte offset the
//! rollout recorded at its start, requests of the gate's window split by colour (the upstream
//! port that answered), and judged: `error_rate` is the new colour's share of 5xx answers,
//! `p95_latency` its 95th-percentile request time, against an absolute `max` (ms) and/or the old
//! colour's p95 (`max_ratio_to_baseline`). Fewer than `min_requests` is no data.

use chrono::{DateTime, Utc};

use super::{HostTarget, call};
use crate::hosts::app::docker::quote;
use crate::hosts::app::host::Host;
use crate::hosts::app::nginx;
use crate::rollout::engine::Probe;
use crate::rollout::gates::{Verdict, no_data};
use crate::rollout::record::Rollout;
use crate::rollout::spec::MetricGate;
use crate::rollout::target::TargetError;

/// The most of the log one look reads (its end), so a busy app costs a bounded read.
const READ_LIMIT: u64 = 4 << 20;
/// Past this size the log is moved aside at a rollout's start (nginx writes a new one from its
/// next reload), so it never grows without bound.
const ROTATE_AT: u64 = 64 << 20;

/// Requests one colour answered in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Requests.
    pub requests: u64,
    /// Of them, answered 5xx.
    pub errors: u64,
    /// Their request times, seconds.
    pub times: Vec<f64>,
}

impl Seen {
    /// The 95th-percentile request time, milliseconds.
    pub fn p95_ms(&self) -> Option<f64> {
        let mut t = self.times.clone();
        if t.is_empty() {
            return None;
        }
        t.sort_by(f64::total_cmp);
        let rank = ((t.len() as f64) * 0.95).ceil() as usize;
        Some(t[rank.clamp(1, t.len()) - 1] * 1000.0)
    }
}

/// Tallies the log `lines` since `since` by colour: (the new colour, on any of `new_ports`;
/// the old colour, on any of `old_ports`). Lines that are not converge's JSON (a torn first
/// line) are skipped.
pub fn tally(
    lines: &str,
    since: DateTime<Utc>,
    new_ports: &[u16],
    old_ports: &[u16],
) -> (Seen, Seen) {
    let (mut new, mut old) = (Seen::default(), Seen::default());
    for line in lines.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(time) = v["time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        if time < since {
            continue;
        }
        // A retried request names every upstream tried: the last one answered.
        let port = v["upstream"]
            .as_str()
            .and_then(|u| u.rsplit(", ").next())
            .and_then(|u| u.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        let seen = match port {
            Some(p) if new_ports.contains(&p) => &mut new,
            Some(p) if old_ports.contains(&p) => &mut old,
            _ => continue,
        };
        seen.requests += 1;
        if v["status"].as_u64().is_some_and(|s| s >= 500) {
            seen.errors += 1;
        }
        if let Some(t) = v["request_time"].as_f64() {
            seen.times.push(t);
        }
    }
    (new, old)
}

/// The verdict of `gate` on what the two colours answered.
pub fn judge(gate: &MetricGate, new: &Seen, old: &Seen) -> Verdict {
    let window = humantime::format_duration(gate.window);
    let wanted = gate.min_requests.max(1);
    if new.requests < wanted {
        return no_data(
            gate,
            format!(
                "{} requests of the new colour in the last {window}, fewer than min_requests {wanted}",
                new.requests
            ),
        );
    }
    match gate.name.as_str() {
        "p95_latency" => {
            let p95 = new.p95_ms().unwrap_or(0.0);
            let baseline = (old.requests >= wanted).then(|| old.p95_ms()).flatten();
            let figures = format!(
                "p95 latency {p95:.0} ms over {} requests of the new colour in the last {window} (old colour: {})",
                new.requests,
                baseline.map_or("no baseline".to_string(), |b| format!("{b:.0} ms"))
            );
            if let Some(max) = gate.max.filter(|m| p95 > *m) {
                return Verdict::Fail(format!("{figures}, max {max:.0} ms"));
            }
            match (gate.max_ratio_to_baseline, baseline) {
                (Some(ratio), Some(b)) if b > 0.0 && p95 / b > ratio => Verdict::Fail(format!(
                    "{figures}: {:.2}× the old colour's, max {ratio:.2}×",
                    p95 / b
                )),
                (Some(_), None) if gate.max.is_none() => {
                    no_data(gate, format!("{figures}: nothing to compare with"))
                }
                _ => Verdict::Pass(figures),
            }
        }
        _ => {
            let rate = new.errors as f64 / new.requests as f64;
            let max = gate.max.unwrap_or(0.0);
            let figures = format!(
                "error rate {:.1}% ({} of {} requests of the new colour answered 5xx; old colour {} of {}) over the last {window}, max {:.1}%",
                rate * 100.0,
                new.errors,
                new.requests,
                old.errors,
                old.requests,
                max * 100.0
            );
            if rate > max {
                Verdict::Fail(figures)
            } else {
                Verdict::Pass(figures)
            }
        }
    }
}

impl HostTarget<'_> {
    /// The size of converge's access log on `host` (0 when there is none), moving it aside
    /// first when it passed [`ROTATE_AT`].
    pub(super) async fn log_size(&self, host: &Host) -> Result<u64, TargetError> {
        if !self.app.nginx.server {
            return Ok(0);
        }
        let f = quote(&nginx::access_log(&self.app.name, &self.app.nginx));
        let out = host
            .sh(
                "access log size",
                &format!(
                    "f={f}\ns=$(stat -c %s -- \"$f\" 2>/dev/null || echo 0)\nif [ \"$s\" -gt {ROTATE_AT} ]; then mv -f -- \"$f\" \"$f.1\"; s=0; fi\necho \"$s\"\n"
                ),
                None,
            )
            .await
            .map_err(call)?;
        // An answer from the host: a size, or the reason it is not one (never a default).
        out.trim().parse().map_err(|_| {
            TargetError::StepFailed(format!(
                "the size of the access log on {} is not a number: `{}`",
                host.label(),
                crate::model::grammar::escape_controls(out.trim())
            ))
        })
    }

    /// What the log on `host` holds past `offset` (its last [`READ_LIMIT`] bytes at most;
    /// the whole file when it is shorter than `offset`, i.e. was moved aside since).
    async fn log_since(&self, host: &Host, offset: u64) -> Result<String, TargetError> {
        let f = quote(&nginx::access_log(&self.app.name, &self.app.nginx));
        host.sh(
            "access log",
            &format!(
                "f={f}\ns=$(stat -c %s -- \"$f\" 2>/dev/null || echo 0)\nif [ \"$s\" -ge {offset} ]; then tail -c +{} -- \"$f\" | tail -c {READ_LIMIT}; else tail -c {READ_LIMIT} -- \"$f\"; fi\n",
                offset + 1
            ),
            None,
        )
        .await
        .map_err(call)
    }

    /// The metric gates, judged from the access logs of the hosts serving the new colour.
    pub(super) async fn log_gates(&self, rec: &Rollout) -> Result<Vec<Probe>, TargetError> {
        let gates = &self.spec.health.metrics;
        if gates.is_empty() || rec.weights[1] == 0 {
            return Ok(Vec::new());
        }
        let record = self.record(rec)?;
        let now = Utc::now();
        let mut lines: Vec<(String, Vec<u16>, Vec<u16>)> = Vec::new();
        for (i, step) in record.hosts.iter().enumerate().take(self.switched(rec)) {
            let host = self.host(i).await?;
            lines.push((
                self.log_since(&host, step.log_offset).await?,
                step.ports.values().flatten().copied().collect(),
                step.old_ports.values().flatten().copied().collect(),
            ));
        }
        Ok(gates
            .iter()
            .map(|gate| {
                let since = now - chrono::Duration::from_std(gate.window).unwrap_or_default();
                let (mut new, mut old) = (Seen::default(), Seen::default());
                for (text, ports, old_ports) in &lines {
                    let (n, o) = tally(text, since, ports, old_ports);
                    new.requests += n.requests;
                    new.errors += n.errors;
                    new.times.extend(n.times);
                    old.requests += o.requests;
                    old.errors += o.errors;
                    old.times.extend(o.times);
                }
                Probe::once(
                    &format!("health.metrics.{}", gate.name),
                    judge(gate, &new, &old),
                    gate.on_fail,
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rollout::spec::{NoData, OnFail};

    fn gate(name: &str, max: Option<f64>, ratio: Option<f64>, min: u64) -> MetricGate {
        MetricGate {
            name: name.into(),
            max,
            max_ratio_to_baseline: ratio,
            window: Duration::from_secs(180),
            min_requests: min,
            no_data: NoData::Wait,
            on_fail: OnFail::Rollback,
        }
    }

    fn line(time: &str, port: u16, status: u16, seconds: f64) -> String {
        format!(
            r#"{{"time":"{time}","status":{status},"upstream":"127.0.0.1:{port}","upstream_status":"{status}","request_time":{seconds},"upstream_response_time":"{seconds}"}}"#
        )
    }

    #[test]
    fn requests_are_split_by_colour_and_window_and_torn_lines_are_skipped() {
        let log = [
            "ime\":\"torn\"}".to_string(),
            line("2026-12-04T10:00:00+00:00", 20001, 500, 0.1),
            line("2026-12-04T10:05:00+00:00", 20001, 500, 0.2),
            line("2026-12-04T10:05:01+00:00", 20001, 200, 0.4),
            line("2026-12-04T10:05:02+00:00", 20000, 200, 0.1),
            line("2026-12-04T10:05:03+00:00", 29999, 200, 0.1),
        ]
        .join("\n");
        let since = DateTime::parse_from_rfc3339("2026-12-04T10:04:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let (new, old) = tally(&log, since, &[20001], &[20000]);
        assert_eq!((new.requests, new.errors), (2, 1));
        assert_eq!((old.requests, old.errors), (1, 0));
        assert_eq!(new.p95_ms(), Some(400.0));
    }

    #[test]
    fn error_rate_and_p95_are_judged_with_their_figures_and_too_few_requests_are_no_data() {
        let seen = |requests, errors, ms: f64| Seen {
            requests,
            errors,
            times: vec![ms / 1000.0; requests as usize],
        };
        let rate = gate("error_rate", Some(0.05), None, 10);
        // A pass keeps the figures it judged (rollout status and the audit trail show them).
        assert!(matches!(
            judge(&rate, &seen(100, 3, 10.0), &seen(100, 0, 10.0)),
            Verdict::Pass(w) if w.contains("3.0% (3 of 100 requests")
        ));
        let Verdict::Fail(why) = judge(&rate, &seen(30, 10, 10.0), &seen(60, 0, 10.0)) else {
            panic!("a third failing must fail");
        };
        assert!(why.contains("33.3% (10 of 30 requests"), "{why}");
        assert!(why.contains("old colour 0 of 60"), "{why}");
        assert!(matches!(
            judge(&rate, &seen(9, 9, 10.0), &Seen::default()),
            Verdict::NoData(w) if w.contains("fewer than min_requests 10")
        ));
        let p95 = gate("p95_latency", Some(250.0), Some(2.0), 1);
        assert!(matches!(
            judge(&p95, &seen(20, 0, 100.0), &seen(20, 0, 80.0)),
            Verdict::Pass(w) if w.contains("p95 latency 100 ms over 20 requests")
        ));
        assert!(matches!(
            judge(&p95, &seen(20, 0, 300.0), &seen(20, 0, 280.0)),
            Verdict::Fail(w) if w.contains("max 250 ms")
        ));
        assert!(matches!(
            judge(&p95, &seen(20, 0, 200.0), &seen(20, 0, 50.0)),
            Verdict::Fail(w) if w.contains("4.00×")
        ));
    }
}
