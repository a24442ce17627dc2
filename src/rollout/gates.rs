//! How a gate's figures are judged, the same way for every target every interval: the verdict,
//! and the error-rate and p95 rules, where "no data" is never a silent pass (`no_data:
//! fail|pass|wait`). Reading the figures is the target's (CloudWatch for ECS services).

use super::engine::{Probe, ProbeResult};
use super::spec::{MetricGate, NoData, OnFail};

/// What one gate concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Healthy, with the figures judged ("" when there are none to show).
    Pass(String),
    /// Failed: the gate's `on_fail` applies.
    Fail(String),
    /// Nothing to judge yet (no datapoints, `no_data: wait`).
    NoData(String),
}

impl Probe {
    /// A probe of a gate that fails at its first failure.
    pub fn once(gate: &str, verdict: Verdict, on_fail: OnFail) -> Probe {
        Probe {
            gate: gate.to_string(),
            result: match verdict {
                Verdict::Pass(seen) => ProbeResult::Pass(seen),
                Verdict::Fail(t) => ProbeResult::Fail(t),
                Verdict::NoData(t) => ProbeResult::NoData(t),
            },
            on_fail,
            threshold: None,
        }
    }
}

/// Judges an error rate: 5xx / requests over the window against `max`.
pub fn judge_error_rate(errors: Option<f64>, requests: Option<f64>, gate: &MetricGate) -> Verdict {
    let window = humantime::format_duration(gate.window);
    match requests {
        Some(r) if r > 0.0 => {
            let rate = errors.unwrap_or(0.0) / r;
            let max = gate.max.unwrap_or(0.0);
            let text = format!(
                "error rate {:.1}% ({} of {} requests) over the last {window}, max {:.1}%",
                rate * 100.0,
                errors.unwrap_or(0.0),
                r,
                max * 100.0
            );
            if rate > max {
                Verdict::Fail(text)
            } else {
                Verdict::Pass(text)
            }
        }
        _ => no_data(
            gate,
            format!("no requests reached the new revision in the last {window}"),
        ),
    }
}

/// Judges p95 latency of the new revision against the old one's.
pub fn judge_p95(new: Option<f64>, baseline: Option<f64>, gate: &MetricGate) -> Verdict {
    match (new, baseline) {
        (Some(n), Some(b)) if b > 0.0 => {
            let ratio = n / b;
            let max = gate.max_ratio_to_baseline.unwrap_or(f64::INFINITY);
            let text = format!(
                "p95 latency {:.0} ms is {ratio:.2}× the old revision's {:.0} ms, max {max:.2}×",
                n * 1000.0,
                b * 1000.0
            );
            if ratio > max {
                Verdict::Fail(text)
            } else {
                Verdict::Pass(text)
            }
        }
        (None, _) => no_data(
            gate,
            "no p95 latency datapoints for the new revision".into(),
        ),
        _ => no_data(gate, "no p95 latency baseline from the old revision".into()),
    }
}

/// What missing data means for `gate` (`no_data`: fail, pass, or wait).
pub fn no_data(gate: &MetricGate, what: String) -> Verdict {
    match gate.no_data {
        NoData::Fail => Verdict::Fail(format!("{what} (no_data: fail)")),
        NoData::Pass => Verdict::Pass(format!("{what} (no_data: pass)")),
        NoData::Wait => Verdict::NoData(what),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gate(name: &str, no_data: NoData) -> MetricGate {
        MetricGate {
            name: name.into(),
            max: Some(0.05),
            max_ratio_to_baseline: Some(2.0),
            window: Duration::from_secs(180),
            min_requests: 0,
            no_data,
            on_fail: OnFail::Rollback,
        }
    }

    #[test]
    fn error_rate_fails_above_max_and_no_data_is_never_a_silent_pass() {
        let g = gate("error_rate", NoData::Wait);
        assert!(
            matches!(judge_error_rate(Some(1.0), Some(100.0), &g), Verdict::Pass(t) if t.contains("1.0% (1 of 100 requests)"))
        );
        assert!(
            matches!(judge_error_rate(Some(12.0), Some(100.0), &g), Verdict::Fail(t) if t.contains("12.0%"))
        );
        assert!(matches!(
            judge_error_rate(None, None, &g),
            Verdict::NoData(_)
        ));
        assert!(matches!(
            judge_error_rate(None, Some(0.0), &gate("error_rate", NoData::Fail)),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge_error_rate(None, None, &gate("error_rate", NoData::Pass)),
            Verdict::Pass(t) if t.ends_with("(no_data: pass)")
        ));
    }

    #[test]
    fn p95_is_judged_against_the_old_revision() {
        let g = gate("p95_latency", NoData::Wait);
        assert!(
            matches!(judge_p95(Some(0.3), Some(0.2), &g), Verdict::Pass(t) if t.contains("1.50×"))
        );
        assert!(
            matches!(judge_p95(Some(0.5), Some(0.2), &g), Verdict::Fail(t) if t.contains("2.50×"))
        );
        assert!(matches!(judge_p95(None, Some(0.2), &g), Verdict::NoData(_)));
        assert!(matches!(
            judge_p95(Some(0.2), None, &gate("p95_latency", NoData::Fail)),
            Verdict::Fail(_)
        ));
    }
}
