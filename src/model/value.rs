//! Property values: plain data plus the two markers a plan needs, unknown and sensitive.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text shown in place of a value that is only known once apply has run.
pub const UNKNOWN_TEXT: &str = "(known after apply)";
/// Text shown in place of a sensitive value.
pub const SENSITIVE_TEXT: &str = "(sensitive)";

/// A property value, as desired, as last applied, or as read live.
///
/// `Unknown` is a value that depends on something not created yet. `Sensitive` wraps a value that
/// must never be shown or stored in clear; `Redacted` is what remains of one once persisted: a
/// keyed digest of its canonical JSON (`model::digest`), enough to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value (an optional property left out).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (integer or float), kept as JSON keeps it.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// A list.
    List(Vec<Value>),
    /// A map with ordered keys.
    Map(BTreeMap<String, Value>),
    /// Known after apply.
    Unknown,
    /// A secret value: shown and stored only as a redaction.
    Sensitive(Box<Value>),
    /// A persisted secret: its digest (`hmac-sha256:KID:HEX`, or a legacy `sha256`).
    Redacted(String),
}

impl Value {
    /// An empty map.
    pub fn map() -> Self {
        Value::Map(BTreeMap::new())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// An integer value.
    pub fn int(i: i64) -> Self {
        Value::Number(i.into())
    }

    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string inside, if this is a (non-sensitive) string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside as f64, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self.reveal() {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The number inside as i64, if it is one (seen through a `Sensitive` wrapper, as
    /// `as_f64` is: a sensitive count is still a count).
    pub fn as_i64(&self) -> Option<i64> {
        match self.reveal() {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            _ => None,
        }
    }

    /// The boolean inside, if it is one (seen through a `Sensitive` wrapper).
    pub fn as_bool(&self) -> Option<bool> {
        match self.reveal() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The map inside, if it is one.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The list inside, if it is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The value itself, seen through a `Sensitive` wrapper.
    pub fn reveal(&self) -> &Value {
        match self {
            Value::Sensitive(inner) => inner.reveal(),
            other => other,
        }
    }

    /// A field of a map (`Null` when absent or not a map).
    pub fn get(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self.reveal() {
            Value::Map(m) => m.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Whether any part of this value is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(l) => l.iter().any(Value::contains_unknown),
            Value::Map(m) => m.values().any(Value::contains_unknown),
            Value::Sensitive(v) => v.contains_unknown(),
            _ => false,
        }
    }

    /// Whether any part of this value is sensitive.
    pub fn contains_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) | Value::Redacted(_) => true,
            Value::List(l) => l.iter().any(Value::contains_sensitive),
            Value::Map(m) => m.values().any(Value::contains_sensitive),
            _ => false,
        }
    }

    /// Wraps this value as sensitive (once).
    pub fn into_sensitive(self) -> Value {
        match self {
            Value::Sensitive(_) | Value::Redacted(_) | Value::Null => self,
            other => Value::Sensitive(Box::new(other)),
        }
    }

    /// Plain JSON with every secret revealed; only for sending to a cloud API.
    pub fn to_plain_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown | Value::Redacted(_) => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => s.clone().into(),
            Value::List(l) => l.iter().map(Value::to_plain_json).collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.to_plain_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            Value::Sensitive(v) => v.to_plain_json(),
        }
    }

    /// JSON for people and machines: unknowns and secrets replaced by their placeholder texts.
    pub fn to_display_json(&self) -> serde_json::Value {
        match self {
            Value::Unknown => UNKNOWN_TEXT.into(),
            Value::Sensitive(_) | Value::Redacted(_) => SENSITIVE_TEXT.into(),
            Value::List(l) => l.iter().map(Value::to_display_json).collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.to_display_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => other.to_plain_json(),
        }
    }

    /// This map with `key` set to `value` (unchanged when not a map).
    pub fn with_entry(mut self, key: &str, value: Value) -> Value {
        if let Value::Map(m) = &mut self {
            m.insert(key.to_string(), value);
        }
        self
    }

    /// Converts plain JSON (as read from a cloud API) into a value.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                if let (1, Some(serde_json::Value::String(h))) = (o.len(), o.get(SENSITIVE_KEY)) {
                    return Value::Redacted(h.clone());
                }
                if let (1, Some(serde_json::Value::Bool(true))) = (o.len(), o.get(UNKNOWN_KEY)) {
                    return Value::Unknown;
                }
                Value::Map(
                    o.iter()
                        .map(|(k, v)| (k.clone(), Value::from_json(v)))
                        .collect(),
                )
            }
        }
    }

    /// The stored form: secrets become `Redacted` digests (HMAC under the state key, see
    /// [`super::digest`]), so nothing sensitive, nor anything a guess can be tested against, is
    /// persisted.
    pub fn redacted(&self) -> Value {
        match self {
            Value::Sensitive(v) => Value::Redacted(super::digest::keyring().digest(v)),
            Value::List(l) => Value::List(l.iter().map(Value::redacted).collect()),
            Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), v.redacted())).collect()),
            other => other.clone(),
        }
    }

    /// Marks as sensitive every part of `self` that is sensitive in `pattern` (same shape).
    ///
    /// Live values come back from a cloud in clear; this gives them the sensitivity of the
    /// desired or stored value they are compared with, so they are never shown.
    pub fn with_sensitivity_of(self, pattern: &Value) -> Value {
        match (self, pattern) {
            (v, Value::Sensitive(_) | Value::Redacted(_)) => v.into_sensitive(),
            (Value::List(l), Value::List(p)) => Value::List(
                l.into_iter()
                    .enumerate()
                    .map(|(i, v)| match p.get(i) {
                        Some(pi) => v.with_sensitivity_of(pi),
                        None => v,
                    })
                    .collect(),
            ),
            (Value::Map(m), Value::Map(p)) => Value::Map(
                m.into_iter()
                    .map(|(k, v)| {
                        let v = match p.get(&k) {
                            Some(pk) => v.with_sensitivity_of(pk),
                            None => v,
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            (v, _) => v,
        }
    }

    /// The text of every secret inside: each string and number at or below a sensitive value
    /// (a sensitive map's every entry is secret), so that text from elsewhere (a task's log) can
    /// be masked before it is shown.
    pub fn sensitive_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_secrets(false, &mut out);
        out
    }

    fn collect_secrets(&self, secret: bool, out: &mut Vec<String>) {
        match self {
            Value::Sensitive(v) => v.collect_secrets(true, out),
            Value::String(s) if secret && !s.is_empty() => out.push(s.clone()),
            Value::Number(n) if secret => out.push(n.to_string()),
            Value::List(l) => l.iter().for_each(|v| v.collect_secrets(secret, out)),
            Value::Map(m) => m.values().for_each(|v| v.collect_secrets(secret, out)),
            _ => {}
        }
    }

    /// Every stored digest inside (the `Redacted` parts), in order.
    pub fn digests(&self) -> Vec<&str> {
        match self {
            Value::Redacted(h) => vec![h.as_str()],
            Value::List(l) => l.iter().flat_map(Value::digests).collect(),
            Value::Map(m) => m.values().flat_map(Value::digests).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether two values mean the same thing, looking through secrets (by digest).
    ///
    /// Numbers compare by value (`1` equals `1.0`). An unknown never equals anything.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Unknown, _) | (_, Value::Unknown) => false,
            (Value::Redacted(a), Value::Redacted(b)) => a == b,
            // A digest under a key this run does not hold never matches; commands that read
            // state refuse such digests before planning (`digest::ForeignKey`).
            (Value::Redacted(h), v) | (v, Value::Redacted(h)) => {
                super::digest::keyring().matches(h, v).unwrap_or(false)
            }
            (Value::Sensitive(a), b) => a.same_as(b),
            (a, Value::Sensitive(b)) => a.same_as(b),
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                keys.into_iter().all(|k| {
                    let x = a.get(k).unwrap_or(&Value::Null);
                    let y = b.get(k).unwrap_or(&Value::Null);
                    x.same_as(y)
                })
            }
            (a, b) => a == b,
        }
    }
}

const SENSITIVE_KEY: &str = "$sensitive";
const UNKNOWN_KEY: &str = "$unknown";

impl Serialize for Value {
    /// Stored form: secrets as `{"$sensitive": digest}`, unknowns as `{"$unknown": true}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        stored_json(self).serialize(serializer)
    }
}

fn stored_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Unknown => serde_json::json!({ UNKNOWN_KEY: true }),
        Value::Sensitive(v) => {
            serde_json::json!({ SENSITIVE_KEY: super::digest::keyring().digest(v) })
        }
        Value::Redacted(h) => serde_json::json!({ SENSITIVE_KEY: h }),
        Value::List(l) => l.iter().map(stored_json).collect(),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), stored_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.to_plain_json(),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        Ok(Value::from_json(&json))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::int(i)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

impl FromIterator<(String, Value)> for Value {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Value::Map(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_below_a_sensitive_value_is_a_secret_text() {
        let v: Value = [
            ("plain".to_string(), Value::str("visible")),
            ("token".to_string(), Value::str("tok-1").into_sensitive()),
            (
                "env".to_string(),
                Value::Map(
                    [
                        ("A".to_string(), Value::str("pw-a")),
                        ("N".to_string(), Value::int(4242)),
                    ]
                    .into_iter()
                    .collect(),
                )
                .into_sensitive(),
            ),
        ]
        .into_iter()
        .collect();
        let mut texts = v.sensitive_texts();
        texts.sort();
        assert_eq!(texts, ["4242", "pw-a", "tok-1"]);
    }

    #[test]
    fn secrets_are_stored_as_digests_and_still_compare() {
        let secret = Value::str("hunter2").into_sensitive();
        let stored = serde_json::to_string(&secret).unwrap();
        assert!(!stored.contains("hunter2"), "{stored}");
        let back: Value = serde_json::from_str(&stored).unwrap();
        assert!(matches!(back, Value::Redacted(_)));
        assert!(back.same_as(&Value::str("hunter2")));
        assert!(!back.same_as(&Value::str("hunter3")));
        assert_eq!(secret.to_display_json(), serde_json::json!(SENSITIVE_TEXT));
    }

    #[test]
    fn unknown_never_equals_and_numbers_compare_by_value() {
        assert!(!Value::Unknown.same_as(&Value::Unknown));
        let one: Value = serde_json::from_str("1").unwrap();
        let one_f: Value = serde_json::from_str("1.0").unwrap();
        assert!(one.same_as(&one_f));
        let a: Value = serde_json::from_str(r#"{"a":1,"b":null}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert!(a.same_as(&b), "a missing key equals null");
    }

    #[test]
    fn live_values_take_the_sensitivity_of_their_pattern() {
        let pattern: Value = [("pw".to_string(), Value::str("x").into_sensitive())]
            .into_iter()
            .collect();
        let live: Value = [("pw".to_string(), Value::str("y"))].into_iter().collect();
        let marked = live.with_sensitivity_of(&pattern);
        assert_eq!(
            marked.get("pw").to_display_json(),
            serde_json::json!(SENSITIVE_TEXT)
        );
    }
}
