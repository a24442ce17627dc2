//! The GitHub-flavoured Markdown view of a plan (DESIGN §9): a hidden marker, the summary and
//! cost line, a table of every change with replacements and deletions first, then one
//! `<details>` block per resource holding a ```diff of its properties; never longer than
//! GitHub's comment limit, the rest cut with a note.

use similar::{ChangeTag, TextDiff};

use super::render::{money, sides, signed, summary_line};
use super::{Action, Change, Plan};

/// GitHub's limit on a comment, an issue body and a step summary block.
pub const GITHUB_LIMIT: usize = 65_536;

/// The hidden line that finds a plan comment again on the pull request.
pub fn marker(environment: &str) -> String {
    format!("<!-- converge:plan:{environment} -->")
}

/// Text built up to a character budget; what no longer fits is counted, not written.
pub struct Capped {
    out: String,
    /// Characters in `out` (not bytes: GitHub counts characters).
    chars: usize,
    limit: usize,
    /// Blocks left out.
    pub dropped: usize,
}

impl Capped {
    /// An empty text that may grow to `limit` characters, keeping `reserve` for a closing note.
    pub fn new(limit: usize, reserve: usize) -> Capped {
        Capped {
            out: String::new(),
            chars: 0,
            limit: limit.saturating_sub(reserve),
            dropped: 0,
        }
    }

    /// Appends `block` whole when it fits (and nothing was dropped before); else counts it.
    pub fn push(&mut self, block: &str) -> bool {
        let size = block.chars().count();
        if self.dropped == 0 && self.chars + size <= self.limit {
            self.out.push_str(block);
            self.chars += size;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// The text, with `note` appended when something was dropped.
    pub fn finish(mut self, note: impl FnOnce(usize) -> String) -> String {
        if self.dropped > 0 {
            self.out.push_str(&note(self.dropped));
        }
        self.out
    }
}

/// Table order: what destroys something first, then changes, then additions.
fn rank(action: Action) -> u8 {
    match action {
        Action::Replace => 0,
        Action::Delete => 1,
        Action::Forget => 2,
        Action::Update => 3,
        Action::Create => 4,
        Action::NoOp => 5,
    }
}

fn action_cell(c: &Change) -> String {
    let cell = action_only(c);
    match &c.moved_from {
        Some(from) if c.action == Action::NoOp => format!("moved from `{from}`"),
        Some(from) => format!("{cell}, moved from `{from}`"),
        None => cell,
    }
}

fn action_only(c: &Change) -> String {
    match c.action {
        Action::Replace => format!(
            ":warning: **replace** ({})",
            c.replace_because
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Delete => ":warning: **destroy**".to_string(),
        Action::Forget => "forget (kept in the cloud)".to_string(),
        Action::Update if c.rollout.is_some() => "update (rollout)".to_string(),
        Action::Update => "update".to_string(),
        Action::Create => "create".to_string(),
        Action::NoOp => "no change".to_string(),
    }
}

fn cost_cell(c: &Change) -> String {
    match (c.cost.before_monthly, c.cost.after_monthly) {
        (Some(b), Some(a)) if b == 0.0 && a == 0.0 => "free".to_string(),
        (Some(b), Some(a)) if (a - b).abs() < 0.005 => format!("{}/mo", money(a)),
        (Some(b), Some(a)) => format!("{} → {} ({})", money(b), money(a), signed(a - b)),
        _ => c
            .cost
            .note
            .clone()
            .unwrap_or_else(|| "no price".into())
            .replace('|', "\\|"),
    }
}

/// The ```diff body of one change.
fn diff(change: &Change) -> String {
    let (before, after) = sides(change);
    let mut out = String::new();
    for c in TextDiff::from_lines(&before, &after).iter_all_changes() {
        let sign = match c.tag() {
            ChangeTag::Delete => '-',
            ChangeTag::Insert => '+',
            ChangeTag::Equal => ' ',
        };
        out.push(sign);
        out.push(' ');
        // A fence inside a value must not end the code block.
        out.push_str(&c.value().trim_end_matches('\n').replace("```", "ʼʼʼ"));
        out.push('\n');
    }
    out
}

fn details(change: &Change) -> String {
    let mut out = format!(
        "<details><summary><code>{} {}</code> ({}) {}",
        change.action.symbol(),
        html(&super::render::shown_address(change)),
        change.kind,
        super::render::what(change)
    );
    if let (Some(b), Some(a)) = (change.cost.before_monthly, change.cost.after_monthly)
        && (b != 0.0 || a != 0.0)
    {
        out.push_str(&format!(
            " — {}/mo → {}/mo ({})",
            money(b),
            money(a),
            signed(a - b)
        ));
    }
    out.push_str("</summary>\n\n");
    if let Some(note) = &change.note {
        out.push_str(&format!(
            "> {}\n\n",
            html(&crate::model::grammar::escape_controls(note))
        ));
    }
    if let Some(rollout) = &change.rollout {
        out.push_str(&format!("**Rollout:** {rollout}\n\n"));
    }
    out.push_str("```diff\n");
    out.push_str(&diff(change));
    out.push_str("```\n\n</details>\n");
    out
}

/// The policies' verdict: denials as a caution, warnings as a warning, each with its policy
/// file, rule and resource.
fn policy_markdown(plan: &Plan) -> String {
    let Some(v) = &plan.policy else {
        return String::new();
    };
    let line = |f: &crate::plan::policy::PolicyFinding| {
        let at = f
            .address
            .as_ref()
            .map(|a| format!(" (`{a}`)"))
            .unwrap_or_default();
        format!(
            "> - `{}` **{}**: {}{at}\n",
            f.policy,
            f.rule,
            html(&crate::model::grammar::escape_controls(&f.msg))
        )
    };
    let mut out = String::new();
    if !v.denials.is_empty() {
        out.push_str(&format!(
            "> [!CAUTION]\n> **Denied by policy** ({} message(s)): this plan cannot be applied.\n>\n",
            v.denials.len()
        ));
        v.denials.iter().for_each(|d| out.push_str(&line(d)));
        out.push('\n');
    }
    if !v.warnings.is_empty() {
        out.push_str("> [!WARNING]\n> **Policy warnings**\n>\n");
        v.warnings.iter().for_each(|w| out.push_str(&line(w)));
        out.push('\n');
    }
    if v.denials.is_empty() && v.warnings.is_empty() {
        out.push_str(&format!(
            "<sub>Policy: {} polic{} passed (namespace `{}`).</sub>\n\n",
            v.policies.len(),
            if v.policies.len() == 1 { "y" } else { "ies" },
            v.namespace
        ));
    }
    out
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The text view's cost line, e.g. `Cost: $412.80/mo → $466.86/mo (+$54.06, +13.1%)`, without
/// its unpriced list (the Markdown gives that its own line).
fn cost_line(plan: &Plan) -> String {
    super::render::cost_line(plan)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The plan as Markdown of at most `limit` characters; `plan_file` is named in the note when
/// the output is cut (else the command that prints it whole).
pub fn markdown(plan: &Plan, plan_file: Option<&str>, limit: usize) -> String {
    markdown_with_diagram(plan, plan_file, limit, None)
}

/// [`markdown`] with `diagram` (a Mermaid flowchart of what changes) under the table.
pub fn markdown_with_diagram(
    plan: &Plan,
    plan_file: Option<&str>,
    limit: usize,
    diagram: Option<&str>,
) -> String {
    let mut changes: Vec<&Change> = plan.changes.iter().filter(|c| c.is_shown()).collect();
    changes.sort_by_key(|c| rank(c.action));
    let mut head = format!(
        "{}\n### converge plan: `{}`\n\n",
        marker(&plan.environment),
        plan.environment
    );
    if changes.is_empty() && plan.output_changes.is_empty() {
        head.push_str(&format!(
            "**No changes.** Live infrastructure in `{}` matches the configuration.\n\n{}\n",
            plan.environment,
            cost_line(plan)
        ));
        head.push_str(&policy_markdown(plan));
        return head;
    }
    head.push_str(&format!(
        "**{}** {}\n\n",
        summary_line(plan),
        cost_line(plan)
    ));
    let destructive: Vec<String> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Replace | Action::Delete))
        .map(|c| format!("`{}`", c.address))
        .collect();
    if !destructive.is_empty() {
        head.push_str(&format!(
            "> [!WARNING]\n> This plan replaces or destroys {}: {}\n\n",
            destructive.len(),
            destructive.join(", ")
        ));
    }
    if !plan.cost.unpriced.is_empty() {
        head.push_str(&format!(
            "<sub>Not in the cost totals: {}</sub>\n\n",
            plan.cost.unpriced.join(", ").replace('|', "\\|")
        ));
    }
    let note = |dropped: usize| {
        let whole = match plan_file {
            Some(f) => format!("the plan file `{f}`"),
            None => format!(
                "`converge plan -e {}` (text or `--format json`)",
                plan.environment
            ),
        };
        format!(
            "\n> [!NOTE]\n> Cut at {GITHUB_LIMIT} characters (GitHub's limit): {dropped} more block(s) not shown. The whole plan: {whole}.\n"
        )
    };
    head.push_str(&policy_markdown(plan));
    let mut text = Capped::new(limit, 400);
    text.push(&head);
    text.push("| | address | kind | action | monthly cost |\n|---|---|---|---|---|\n");
    for c in &changes {
        text.push(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            c.action.symbol(),
            c.address,
            c.kind,
            action_cell(c),
            cost_cell(c)
        ));
    }
    text.push("\n");
    if let Some(d) = diagram {
        text.push(&format!(
            "<details><summary>What changes, and what it depends on</summary>\n\n```mermaid\n{d}```\n\n</details>\n\n"
        ));
    }
    if !plan.output_changes.is_empty() {
        text.push(&format!(
            "**Changes to outputs:**\n\n```diff\n{}```\n\n",
            super::render::output_lines(plan, false)
                .lines()
                .map(|l| format!("{}\n", l.trim_start()))
                .collect::<String>()
                .replace("```", "ʼʼʼ")
        ));
    }
    for c in &changes {
        text.push(&details(c));
    }
    text.finish(note)
}
