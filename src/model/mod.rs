//! Addresses, resource kinds and their schemas, property values and expressions.

pub mod backup;
pub mod digest;
pub mod grammar;
mod live;
pub mod pin;
mod resource;
pub mod schema;
pub mod secret;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use live::{Live, LiveMap};
pub use resource::{ResourceState, ResourceStatus};
pub use value::{SENSITIVE_TEXT, UNKNOWN_TEXT, Value};

/// Where a resource lives in an environment: `KEY` at the root, `INSTANCE.KEY` in a module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    /// A root resource's address.
    pub fn root(key: &str) -> Address {
        Address(key.to_string())
    }

    /// A module resource's address.
    pub fn in_module(instance: &str, key: &str) -> Address {
        Address(format!("{instance}.{key}"))
    }

    /// Parses an address given by a user (`api.repo` or `base_images`).
    pub fn parse(s: &str) -> Option<Address> {
        let ok = !s.is_empty()
            && s.split('.').count() <= 2
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        ok.then(|| Address(s.to_string()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resolved reference to an attribute of another resource: `${repo.uri}` becomes
/// `{ address: api.repo, attr: uri, path: [] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The resource referred to.
    pub address: Address,
    /// A property or output name of its kind.
    pub attr: String,
    /// Further keys or list indexes into the attribute's value.
    pub path: Vec<String>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.address, self.attr)?;
        for p in &self.path {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

/// A desired property value before evaluation: literals, references and interpolations.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A value known from the files (possibly sensitive).
    Literal(Value),
    /// Exactly one reference: takes the referenced value's type.
    Ref(Reference),
    /// String interpolation of text and expressions.
    Template(Vec<Expr>),
    /// A list of expressions.
    List(Vec<Expr>),
    /// A map of expressions.
    Map(BTreeMap<String, Expr>),
}

/// What evaluation needs: the current value of a referenced attribute.
pub trait Lookup {
    /// The referenced attribute's value, `Value::Unknown` when not known yet.
    fn lookup(&self, reference: &Reference) -> Value;
}

impl Expr {
    /// Evaluates to a value; references not known yet become `Value::Unknown`.
    pub fn eval(&self, ctx: &dyn Lookup) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Ref(r) => ctx.lookup(r),
            Expr::List(items) => Value::List(items.iter().map(|e| e.eval(ctx)).collect()),
            Expr::Map(m) => Value::Map(m.iter().map(|(k, e)| (k.clone(), e.eval(ctx))).collect()),
            Expr::Template(parts) => {
                let mut out = String::new();
                let mut sensitive = false;
                for part in parts {
                    let v = part.eval(ctx);
                    if v.contains_unknown() {
                        return Value::Unknown;
                    }
                    sensitive |= v.contains_sensitive();
                    match v.reveal() {
                        Value::String(s) => out.push_str(s),
                        Value::Null => {}
                        other => out.push_str(&other.to_plain_json().to_string()),
                    }
                }
                let v = Value::String(out);
                if sensitive { v.into_sensitive() } else { v }
            }
        }
    }

    /// Every reference inside, in order of appearance.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a Reference>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Ref(r) => out.push(r),
            Expr::Template(parts) | Expr::List(parts) => {
                parts.iter().for_each(|p| p.collect_refs(out))
            }
            Expr::Map(m) => m.values().for_each(|p| p.collect_refs(out)),
        }
    }

    /// The addresses this expression depends on.
    pub fn dependencies(&self) -> BTreeSet<Address> {
        self.references()
            .into_iter()
            .map(|r| r.address.clone())
            .collect()
    }
}

/// Follows `path` (map keys or list indexes) into a value; `Null` when absent.
pub fn value_at(value: &Value, path: &[String]) -> Value {
    let mut current = value.clone();
    for key in path {
        let sensitive = matches!(current, Value::Sensitive(_));
        let next = match current.reveal() {
            Value::Unknown => return Value::Unknown,
            Value::Map(m) => m.get(key).cloned().unwrap_or_default(),
            Value::List(l) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| l.get(i).cloned())
                .unwrap_or_default(),
            _ => Value::Null,
        };
        current = if sensitive {
            next.into_sensitive()
        } else {
            next
        };
    }
    current
}

/// Parses a duration written `500ms`, `10s`, `5m`, `1h` (or combinations such as `1m30s`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// Parses `50%` (or `50`) as 50.0.
pub fn parse_percent(text: &str) -> Option<f64> {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
}
