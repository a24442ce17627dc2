//! The text view of a plan: a `similar` unified diff of each resource's properties.
//!
//! Output carries ANSI styles; the CLI writes it through `anstream`, which strips them when
//! colour is off (not a TTY, `--no-color`, `NO_COLOR`).

use std::fmt::Write;

use owo_colors::OwoColorize;
use similar::{ChangeTag, TextDiff};

use super::{Action, Change, Plan};
use crate::model::grammar::escape_controls;
use crate::model::{SENSITIVE_TEXT, UNKNOWN_TEXT, Value};

/// The whole plan for people, the policies' verdict last.
pub fn text(plan: &Plan) -> String {
    let mut out = changes_text(plan);
    out.push_str(&policy_text(plan));
    out
}

/// What the policies said, for people: `Policy: 1 denied, 1 warned (2 policies)`, then a line
/// per message.
pub fn policy_text(plan: &Plan) -> String {
    let Some(v) = &plan.policy else {
        return String::new();
    };
    let mut out = format!(
        "\nPolicy: {} denied, {} warned ({} polic{}, namespace {})\n",
        v.denials.len(),
        v.warnings.len(),
        v.policies.len(),
        if v.policies.len() == 1 { "y" } else { "ies" },
        v.namespace
    );
    for d in &v.denials {
        let _ = writeln!(out, "  {}", format!("DENY {}", d.line()).red());
    }
    for w in &v.warnings {
        let _ = writeln!(out, "  {}", format!("WARN {}", w.line()).yellow());
    }
    if !v.exceptions.is_empty() {
        let _ = writeln!(out, "  excepted: {}", v.exceptions.join(", "));
    }
    out
}

fn changes_text(plan: &Plan) -> String {
    let mut out = String::new();
    let changes: Vec<&Change> = plan.changes.iter().filter(|c| c.is_shown()).collect();
    if changes.is_empty() && plan.output_changes.is_empty() {
        let _ = writeln!(
            out,
            "No changes. Live infrastructure in {} matches the configuration.",
            plan.environment
        );
        return out;
    }
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "No changes to resources in {}; only outputs change.\n",
            plan.environment
        );
    } else {
        let _ = writeln!(
            out,
            "converge will perform these actions in {}:\n",
            plan.environment
        );
    }
    for change in changes {
        out.push_str(&change_text(change));
        out.push('\n');
    }
    if !plan.output_changes.is_empty() {
        let _ = writeln!(out, "Changes to outputs:");
        out.push_str(&output_lines(plan, true));
        out.push('\n');
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out.push_str(&cost_line(plan));
    out
}

/// The plan's output changes, one line each: `  + url = "https://…"`, `  ~ name = "a" → "b"`,
/// `  - old`; coloured by action when `colour`.
pub fn output_lines(plan: &Plan, colour: bool) -> String {
    let shown = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| escape_controls(&v.to_display_json().to_string()))
            .unwrap_or_default()
    };
    let mut out = String::new();
    for o in &plan.output_changes {
        let line = match o.action {
            Action::Create => format!("+ {} = {}", o.name, shown(&o.after)),
            Action::Delete => format!("- {}", o.name),
            _ => format!("~ {} = {} → {}", o.name, shown(&o.before), shown(&o.after)),
        };
        let line = match (colour, o.action) {
            (false, _) => line,
            (true, Action::Create) => line.green().to_string(),
            (true, Action::Delete) => line.red().to_string(),
            (true, _) => line.yellow().to_string(),
        };
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// `$54.06`.
pub fn money(v: f64) -> String {
    format!("${v:.2}")
}

/// `+$54.06` / `-$27.03`.
pub fn signed(v: f64) -> String {
    if v < 0.0 {
        format!("-${:.2}", -v)
    } else {
        format!("+${v:.2}")
    }
}

/// `Cost: $412.80/mo → $466.86/mo (+$54.06, +13.1%)`, then what has no figure.
pub fn cost_line(plan: &Plan) -> String {
    let c = &plan.cost;
    let percent = c.percent.map(|p| format!(", {p:+.1}%")).unwrap_or_default();
    let mut out = format!(
        "Cost: {}/mo → {}/mo ({}{percent})\n",
        money(c.before_monthly),
        money(c.after_monthly),
        signed(c.difference)
    );
    if !c.unpriced.is_empty() {
        out.push_str(&format!("  not in the totals: {}\n", c.unpriced.join(", ")));
    }
    out
}

/// `$54.06/mo → $108.12/mo (+$54.06)` for a change with figures on both sides.
fn change_cost(change: &Change) -> Option<String> {
    let (b, a) = (change.cost.before_monthly?, change.cost.after_monthly?);
    if b == 0.0 && a == 0.0 {
        return None;
    }
    Some(format!(
        "{}/mo → {}/mo ({})",
        money(b),
        money(a),
        signed(a - b)
    ))
}

/// `Plan: A to add, C to change, R to replace, D to destroy.`
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary;
    let forget = match s.forget {
        0 => String::new(),
        n => format!(", {n} to forget"),
    };
    let moved = match s.moved {
        0 => String::new(),
        n => format!(", {n} to move"),
    };
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy{forget}{moved}.",
        s.add, s.change, s.replace, s.destroy
    )
}

/// What a change does, after its address: `will be updated in place`, `has moved`...
pub fn what(change: &Change) -> &'static str {
    match change.action {
        Action::NoOp if change.moved_from.is_some() => "has moved (nothing else changes)",
        Action::NoOp => "is unchanged",
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::Forget => "will be removed from state (kept in the cloud)",
    }
}

/// The address as a heading shows it: `api → backend.api (moved)` for a moved resource.
pub fn shown_address(change: &Change) -> String {
    match &change.moved_from {
        Some(from) => format!("{from} → {} (moved)", change.address),
        None => change.address.to_string(),
    }
}

/// The heading line of a change, coloured by action.
pub fn heading(change: &Change) -> String {
    let line = format!(
        "{} {} ({}) {}",
        if change.action == Action::NoOp && change.moved_from.is_some() {
            "→"
        } else {
            change.action.symbol()
        },
        shown_address(change),
        change.kind,
        what(change)
    );
    match change.action {
        Action::Create => line.green().to_string(),
        Action::Update => line.yellow().to_string(),
        Action::Replace => line.magenta().to_string(),
        Action::Delete => line.red().to_string(),
        Action::Forget => line.cyan().to_string(),
        Action::NoOp if change.moved_from.is_some() => line.cyan().to_string(),
        Action::NoOp => line,
    }
}

/// One change: heading, note, then its property diff.
pub fn change_text(change: &Change) -> String {
    let mut out = match change_cost(change) {
        Some(cost) => format!("  {}  {}\n", heading(change).bold(), cost.dimmed()),
        None => format!("  {}\n", heading(change).bold()),
    };
    if let Some(note) = &change.note {
        let _ = writeln!(out, "      # {}", escape_controls(note));
    }
    if let Some(rollout) = &change.rollout {
        let _ = writeln!(out, "      {}", format!("~ rollout {rollout}").yellow());
    }
    let (before, after) = sides(change);
    let diff = TextDiff::from_lines(&before, &after);
    match change.action {
        Action::Create | Action::Delete => {
            let sign = if change.action == Action::Create {
                "+"
            } else {
                "-"
            };
            for line in diff_source(change, &before, &after).lines() {
                let styled = format!("{sign} {line}");
                let styled = if sign == "+" {
                    styled.green().to_string()
                } else {
                    styled.red().to_string()
                };
                let _ = writeln!(out, "      {styled}");
            }
        }
        _ => {
            for group in diff.grouped_ops(3) {
                for op in group {
                    for c in diff.iter_changes(&op) {
                        let line = c.value().trim_end_matches('\n');
                        let styled = match c.tag() {
                            ChangeTag::Delete => format!("- {line}").red().to_string(),
                            ChangeTag::Insert => format!("+ {line}").green().to_string(),
                            ChangeTag::Equal => format!("  {line}").dimmed().to_string(),
                        };
                        let _ = writeln!(out, "      {styled}");
                    }
                }
            }
        }
    }
    out
}

/// A change's properties before and after as lines, replacement-forcing keys marked.
pub fn sides(change: &Change) -> (String, String) {
    let replace_keys: Vec<&str> = change.replace_because.iter().map(String::as_str).collect();
    let before = change
        .before
        .as_ref()
        .map(|v| property_lines(v, &[]))
        .unwrap_or_default();
    let after = change
        .after
        .as_ref()
        .map(|v| {
            let v = match &change.before {
                Some(b) => mark_changed_secrets(v, b),
                None => v.clone(),
            };
            property_lines(&v, &replace_keys)
        })
        .unwrap_or_default();
    (before, after)
}

/// Stands, inside the view only, for a secret whose value changed: shown `(sensitive, changed)`,
/// so the diff has a line for it (two `(sensitive)` lines would look equal), never a digest.
const CHANGED_SECRET: &str = "\u{0}converge:sensitive-changed";

/// `after` with each secret that differs from `before` replaced by [`CHANGED_SECRET`].
fn mark_changed_secrets(after: &Value, before: &Value) -> Value {
    match (after, before) {
        (Value::Sensitive(_) | Value::Redacted(_), b) if !after.same_as(b) => {
            Value::String(CHANGED_SECRET.into())
        }
        (Value::Map(a), Value::Map(b)) => Value::Map(
            a.iter()
                .map(|(k, v)| {
                    let v = match b.get(k) {
                        Some(bk) => mark_changed_secrets(v, bk),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Value::List(a), Value::List(b)) => Value::List(
            a.iter()
                .enumerate()
                .map(|(i, v)| match b.get(i) {
                    Some(bi) => mark_changed_secrets(v, bi),
                    None => v.clone(),
                })
                .collect(),
        ),
        (a, _) => a.clone(),
    }
}

fn diff_source<'a>(change: &Change, before: &'a str, after: &'a str) -> &'a str {
    if change.action == Action::Create {
        after
    } else {
        before
    }
}

/// Properties as YAML-like lines (`key: value`, nested by indentation), null fields left out;
/// top-level keys in `forcing` are marked `# forces replacement`.
pub fn property_lines(value: &Value, forcing: &[&str]) -> String {
    let mut out = String::new();
    if let Some(map) = value.as_map() {
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            let mark = if forcing.contains(&k.as_str()) {
                "   # forces replacement"
            } else {
                ""
            };
            write_entry(&mut out, 0, k, v, mark);
        }
    }
    out
}

fn write_entry(out: &mut String, indent: usize, key: &str, v: &Value, mark: &str) {
    let pad = "  ".repeat(indent);
    // A key is text from a file or a cloud: a newline in it must not start a line of its own.
    let key = escape_controls(key);
    let key = key.as_str();
    match v {
        Value::Map(m) if !m.is_empty() => {
            let _ = writeln!(out, "{pad}{key}:{mark}");
            for (k, v) in m.iter().filter(|(_, v)| !v.is_null()) {
                write_entry(out, indent + 1, k, v, "");
            }
        }
        Value::List(l) if !l.is_empty() => {
            let _ = writeln!(out, "{pad}{key}:{mark}");
            for item in l {
                write_item(out, indent + 1, item);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{key}: {}{mark}", scalar(other));
        }
    }
}

fn write_item(out: &mut String, indent: usize, v: &Value) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Map(m) if !m.is_empty() => {
            let mut first = true;
            for (k, v) in m.iter().filter(|(_, v)| !v.is_null()) {
                let mut entry = String::new();
                write_entry(&mut entry, indent + 1, k, v, "");
                let entry = entry.trim_start_matches(&format!("{pad}  ")).to_string();
                let prefix = if first {
                    format!("{pad}- ")
                } else {
                    format!("{pad}  ")
                };
                let _ = write!(out, "{prefix}{entry}");
                first = false;
            }
        }
        other => {
            let _ = writeln!(out, "{pad}- {}", scalar(other));
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Unknown => UNKNOWN_TEXT.to_string(),
        Value::Sensitive(_) | Value::Redacted(_) => SENSITIVE_TEXT.to_string(),
        Value::String(s) if s == CHANGED_SECRET => "(sensitive, changed)".to_string(),
        Value::Map(_) => "{}".into(),
        Value::List(_) => "[]".into(),
        other => other.to_plain_json().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key from a file or a cloud cannot start a line of its own (a forged `Plan:` line in a
    /// pull-request comment): control characters are escaped in every rendering of properties.
    #[test]
    fn a_newline_in_a_key_cannot_forge_a_line() {
        let v = Value::from_json(&serde_json::json!({
            "tags": { "team\nPlan: 0 to add, 0 to change": "x\ny" }
        }));
        let text = property_lines(&v, &[]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("team\\nPlan: 0 to add"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("Plan:")), "{text}");
    }
}
