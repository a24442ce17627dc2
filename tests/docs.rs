//! The README is an entry page that stays true: at most 300 lines, every relative link (and its
//! `#anchor`) in it and in `docs/` resolves, and its tour's environment file validates.
//! (The kinds and commands tables are checked against the code by unit tests in `src/kinds.rs`
//! and `src/cli/mod.rs`.)

mod support;

use std::path::{Path, PathBuf};

use support::Project;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown pages: the README and every file directly in `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 10, "docs/ holds one page per topic: {docs:?}");
    pages.extend(docs);
    pages
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a page's headings make (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every `](target)` link of a page, outside code blocks, with its line number.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut in_code = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find(')').expect("a link closes on its line");
            out.push((n + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        for (line, target) in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                resolved.exists(),
                "{}:{line}: link {target:?} names {} which does not exist",
                page.display(),
                resolved.display()
            );
            if let Some(anchor) = anchor {
                let found = anchors(&read(&resolved));
                assert!(
                    found.iter().any(|a| a == anchor),
                    "{}:{line}: link {target:?}: no heading makes #{anchor} (there are {found:?})",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} relative links found");
}

#[test]
fn readme_is_an_entry_page_that_starts_with_the_two_commands() {
    let readme = read(&repo().join("README.md"));
    let lines = readme.lines().count();
    assert!(lines <= 300, "README.md has {lines} lines (at most 300)");
    let first_code = readme.find("```sh\n").expect("a shell block");
    let block = &readme[first_code..];
    let block = &block[..block[6..].find("```").unwrap() + 6];
    assert!(block.contains("scripts/demo.sh") && block.contains("scripts/test.sh"));
    for topic in [
        "files-and-kinds",
        "commands",
        "state",
        "rollouts",
        "hosts",
        "azure",
        "cost",
        "pipeline",
        "security",
        "layout",
    ] {
        let page = format!("docs/{topic}.md");
        assert!(readme.contains(&format!("]({page}")), "README links {page}");
    }
}

#[test]
fn the_tour_environment_validates() {
    let readme = read(&repo().join("README.md"));
    let start = readme.find("```yaml\n").expect("the tour's YAML") + 8;
    let yaml = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(yaml.contains("type: aws.ecs_service") && yaml.contains("strategy: canary"));
    let p = Project::empty();
    p.write("environments/staging.yaml", yaml);
    let run = p.converge(&["validate"]).expect(0);
    assert!(
        run.stdout().contains("staging"),
        "validate names the environment: {}",
        run.stdout()
    );
}

/// The README's policy examples are the project's own `policies/*.rego`, which
/// `tests/policy.rs` runs, so the examples stay true.
#[test]
fn the_readme_policies_are_the_projects_own() {
    let readme = read(&repo().join("README.md"));
    let blocks: Vec<&str> = readme
        .split("```rego\n")
        .skip(1)
        .map(|b| &b[..b.find("```").unwrap()])
        .collect();
    assert_eq!(blocks.len(), 4, "the four example policies");
    let files: Vec<String> = std::fs::read_dir(repo().join("policies"))
        .unwrap()
        .map(|e| read(&e.unwrap().path()))
        .collect();
    for block in blocks {
        assert!(
            files.iter().any(|f| f == block),
            "README's policy is not a file of policies/:\n{block}"
        );
    }
}
