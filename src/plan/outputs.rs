//! Outputs (`outputs:` in the environment file): their values from state after apply, and
//! what a plan changes of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::config::OutputDecl;
use crate::model::{Address, Lookup, Reference, ResourceState, Value, value_at};
use crate::state::StoredOutput;

/// One output a plan changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    /// Its name.
    pub name: String,
    /// `create`, `update` or `delete`.
    pub action: Action,
    /// Its value now (`null` for a new one); `(sensitive)` for a sensitive one.
    #[serde(with = "super::display_value")]
    pub before: Option<Value>,
    /// Its value after apply (`null` when removed; `(known after apply)` where not known yet).
    #[serde(with = "super::display_value")]
    pub after: Option<Value>,
    /// Whether it is sensitive.
    pub sensitive: bool,
}

/// Resolves references against state as it stands: a resource's recorded properties, else its
/// recorded outputs (what `converge output` and apply's end evaluate outputs with).
pub struct StateLookup<'a> {
    rows: BTreeMap<&'a Address, &'a ResourceState>,
}

impl<'a> StateLookup<'a> {
    /// A lookup over `state`.
    pub fn new(state: &'a [ResourceState]) -> StateLookup<'a> {
        StateLookup {
            rows: state.iter().map(|r| (&r.address, r)).collect(),
        }
    }
}

impl Lookup for StateLookup<'_> {
    fn lookup(&self, r: &Reference) -> Value {
        let Some(row) = self.rows.get(&r.address) else {
            return Value::Unknown;
        };
        let from = if row
            .properties
            .as_map()
            .is_some_and(|m| m.contains_key(&r.attr))
        {
            &row.properties
        } else {
            &row.outputs
        };
        value_at(from.get(&r.attr), &r.path)
    }
}

/// Every declared output's value under `lookup`, marked sensitive where declared so.
pub fn evaluate(decls: &BTreeMap<String, OutputDecl>, lookup: &dyn Lookup) -> Vec<StoredOutput> {
    decls
        .iter()
        .map(|(name, decl)| {
            let value = decl.value.eval(lookup);
            StoredOutput {
                name: name.clone(),
                value: if decl.sensitive {
                    value.into_sensitive()
                } else {
                    value
                },
                sensitive: decl.sensitive,
                description: decl.description.clone(),
            }
        })
        .collect()
}

/// What changes between the outputs state holds and the ones `after` (from a plan) would
/// record: new, changed and removed outputs, by name.
pub fn changes(stored: &[StoredOutput], after: &[StoredOutput]) -> Vec<OutputChange> {
    let before: BTreeMap<&str, &StoredOutput> =
        stored.iter().map(|o| (o.name.as_str(), o)).collect();
    let now: BTreeMap<&str, &StoredOutput> = after.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut out = Vec::new();
    for (name, new) in &now {
        let old = before.get(name);
        let action = match old {
            None => Action::Create,
            Some(old) if old.value.same_as(&new.value) && old.sensitive == new.sensitive => {
                continue;
            }
            Some(_) => Action::Update,
        };
        out.push(OutputChange {
            name: name.to_string(),
            action,
            before: old.map(|o| shown(o)),
            after: Some(shown(new)),
            sensitive: new.sensitive,
        });
    }
    for (name, old) in &before {
        if !now.contains_key(name) {
            out.push(OutputChange {
                name: name.to_string(),
                action: Action::Delete,
                before: Some(shown(old)),
                after: None,
                sensitive: old.sensitive,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// An output's value as plans show it: a sensitive one never in clear.
fn shown(o: &StoredOutput) -> Value {
    match (&o.value, o.sensitive) {
        (Value::Redacted(_) | Value::Sensitive(_), _) => o.value.clone(),
        (v, true) if !v.contains_unknown() => v.clone().into_sensitive(),
        (v, _) => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(name: &str, value: Value, sensitive: bool) -> StoredOutput {
        StoredOutput {
            name: name.into(),
            value,
            sensitive,
            description: None,
        }
    }

    #[test]
    fn new_changed_and_removed_outputs_are_changes_and_equal_ones_are_not() {
        let stored = vec![
            output("same", Value::str("a"), false),
            output("changed", Value::str("old"), false),
            output("gone", Value::str("x"), false),
        ];
        let after = vec![
            output("same", Value::str("a"), false),
            output("changed", Value::Unknown, false),
            output("new", Value::str("n"), false),
        ];
        let got: Vec<(String, Action)> = changes(&stored, &after)
            .into_iter()
            .map(|c| (c.name, c.action))
            .collect();
        assert_eq!(
            got,
            [
                ("changed".into(), Action::Update),
                ("gone".into(), Action::Delete),
                ("new".into(), Action::Create)
            ]
        );
    }

    #[test]
    fn a_sensitive_output_compares_by_digest_and_is_never_shown() {
        let secret = Value::str("s3cret").into_sensitive();
        let stored = vec![output("token", secret.redacted(), true)];
        assert!(changes(&stored, &[output("token", secret.clone(), true)]).is_empty());
        let changed = changes(
            &stored,
            &[output("token", Value::str("other").into_sensitive(), true)],
        );
        let json = serde_json::to_string(&changed).unwrap();
        assert!(
            !json.contains("other") && !json.contains("s3cret"),
            "{json}"
        );
    }
}
