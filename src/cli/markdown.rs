//! Markdown pieces the commands share: escaped table cells, tables cut at GitHub's limit.

use crate::plan::markdown::{Capped, GITHUB_LIMIT};

/// A table cell: pipes escaped, newlines flattened.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// `head` then a table of `rows`, cut at GitHub's limit with a note saying how many rows are
/// missing and where to see them all (`whole`).
pub fn document(
    head: &str,
    headers: &[&str],
    rows: &[Vec<String>],
    tail: &str,
    whole: &str,
) -> String {
    let mut text = Capped::new(GITHUB_LIMIT, 300 + tail.len());
    text.push(head);
    if !rows.is_empty() {
        text.push(&format!(
            "| {} |\n|{}\n",
            headers.join(" | "),
            "---|".repeat(headers.len())
        ));
        for row in rows {
            text.push(&format!("| {} |\n", row.join(" | ")));
        }
    }
    let mut out = text.finish(|dropped| {
        format!("\n> [!NOTE]\n> Cut at {GITHUB_LIMIT} characters (GitHub's limit): {dropped} more row(s). All of them: {whole}.\n")
    });
    out.push_str(tail);
    out
}
