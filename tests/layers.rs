//! The layer order of `src/` (docs/layout.md), held: a module may import only modules of its
//! own layer or below. The upward imports that exist today are listed in `KNOWN_UPWARD` and
//! may only go away: a new one fails this test, and so does a listed one that is gone (so the
//! list is kept honest).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of `src/`, lowest layer first (modules of one layer may import each
/// other).
const LAYERS: &[&[&str]] = &[
    &["model"],
    &["audit"],
    &["state"],
    &["config"],
    &["graph"],
    &["plan", "cost"],
    &["policy"],
    &["rollout"],
    &["providers", "hosts", "promotion"],
    &["kinds"],
    &["refresh", "apply"],
    &["application"],
    &["cli"],
];

/// Upward imports that predate this test (`from -> to`): debt to pay, never to grow.
const KNOWN_UPWARD: &[(&str, &str)] = &[
    ("config", "cost"),
    ("config", "graph"),
    ("config", "kinds"),
    ("plan", "kinds"),
    ("hosts", "kinds"),
    ("providers", "kinds"),
    ("rollout", "providers"),
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `crate::X` a module's non-test code names, by top-level module.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
            if matches!(module.as_str(), "lib" | "main") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Tests may reach anywhere; only the code that ships is layered.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name != module && !name.is_empty() {
                    out.entry(module.clone()).or_default().insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_above_its_own_beyond_the_known_debt() {
    let mut upward = BTreeSet::new();
    for (from, tos) in imports() {
        let from_layer =
            layer(&from).unwrap_or_else(|| panic!("src/{from} is in no layer of LAYERS"));
        for to in tos {
            let to_layer = layer(&to).unwrap_or_else(|| panic!("src/{to} is in no layer"));
            if to_layer > from_layer {
                upward.insert((from.clone(), to));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports against the layer order (docs/layout.md): {new:?}"
    );
    let paid: Vec<_> = known.difference(&upward).collect();
    assert!(
        paid.is_empty(),
        "these upward imports are gone: remove them from KNOWN_UPWARD: {paid:?}"
    );
}
