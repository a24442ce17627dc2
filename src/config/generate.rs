//! Desired-state YAML written from a live resource (`import --generate`): the mapping
//! `ADDR: { type, properties }` to paste under `resources:`, with every property the kind's
//! schema has a value for, converge's own `converge:*` tags left out, and secrets as
//! references to sensitive variables, never their values.

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

use crate::model::schema::KindSchema;
use crate::model::{Address, Value};

/// One resource's generated declaration.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `ADDR:` and its body, as YAML text (no document marker).
    pub yaml: String,
    /// Sensitive variables its secrets reference (`repo_value`), to declare with
    /// `{ sensitive: true }` and pass with `CONVERGE_VAR_*`.
    pub secret_variables: Vec<String>,
}

/// The declaration of `address`, a `kind` whose live (normalized) properties are `properties`.
pub fn declaration(address: &Address, kind: &KindSchema, properties: &Value) -> Generated {
    let mut secret_variables = Vec::new();
    let mut props = Hash::new();
    for prop in kind.props {
        let value = properties.get(prop.name);
        if prop.sensitive {
            let variable = format!(
                "{}_{}",
                address.as_str().replace(['.', '-'], "_"),
                prop.name
            );
            props.insert(
                Yaml::String(prop.name.to_string()),
                Yaml::String(format!("${{var.{variable}}}")),
            );
            secret_variables.push(variable);
            continue;
        }
        let value = if prop.name == "tags" {
            without_converge_tags(value)
        } else {
            value.clone()
        };
        if let Some(yaml) = to_yaml(&value) {
            props.insert(Yaml::String(prop.name.to_string()), yaml);
        }
    }
    let mut body = Hash::new();
    body.insert(Yaml::String("type".into()), Yaml::String(kind.kind.into()));
    body.insert(Yaml::String("properties".into()), Yaml::Hash(props));
    let mut top = Hash::new();
    top.insert(Yaml::String(address.to_string()), Yaml::Hash(body));
    let mut yaml = String::new();
    let mut emitter = YamlEmitter::new(&mut yaml);
    // An emitter writing to a String cannot fail.
    let _ = emitter.dump(&Yaml::Hash(top));
    let yaml = yaml
        .strip_prefix("---\n")
        .unwrap_or(&yaml)
        .trim_end()
        .to_string();
    Generated {
        yaml: format!("{yaml}\n"),
        secret_variables,
    }
}

/// `tags` without converge's own (`converge:environment`, `converge:address`): converge adds
/// those itself.
fn without_converge_tags(tags: &Value) -> Value {
    match tags.as_map() {
        Some(m) => {
            let kept: std::collections::BTreeMap<String, Value> = m
                .iter()
                .filter(|(k, _)| !k.starts_with("converge:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if kept.is_empty() {
                Value::Null
            } else {
                Value::Map(kept)
            }
        }
        None => tags.clone(),
    }
}

/// A value as YAML (`None` for null, left out). Text from the cloud is untrusted: a `${` in it
/// is written `$${`, so it stays text and never becomes a reference.
fn to_yaml(value: &Value) -> Option<Yaml> {
    Some(match value {
        Value::Null | Value::Unknown | Value::Sensitive(_) | Value::Redacted(_) => return None,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.replace("${", "$${")),
        Value::List(items) => Yaml::Array(items.iter().filter_map(to_yaml).collect()),
        Value::Map(m) => {
            let mut h = Hash::new();
            for (k, v) in m {
                if let Some(y) = to_yaml(v) {
                    h.insert(Yaml::String(k.clone()), y);
                }
            }
            Yaml::Hash(h)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_lose_converge_s_own_and_text_stays_text() {
        let kind = crate::kinds::lookup("aws.ecr_repository").unwrap();
        let live = Value::from_json(&serde_json::json!({
            "name": "api",
            "image_tag_mutability": "IMMUTABLE",
            "scan_on_push": true,
            "tags": {"team": "${var.x}", "converge:address": "api", "converge:environment": "dev", "build": "123"},
        }));
        let g = declaration(&Address::root("api"), kind, &live);
        assert!(
            g.yaml
                .starts_with("api:\n  type: aws.ecr_repository\n  properties:\n"),
            "{}",
            g.yaml
        );
        assert!(
            g.yaml.contains("team: $${var.x}") || g.yaml.contains("team: \"$${var.x}\""),
            "{}",
            g.yaml
        );
        assert!(!g.yaml.contains("converge:"), "{}", g.yaml);
        assert!(
            g.yaml.contains("build: \"123\""),
            "a number-like string stays a string: {}",
            g.yaml
        );
        assert!(g.secret_variables.is_empty());
    }

    #[test]
    fn secrets_become_sensitive_variable_references() {
        let kind = crate::kinds::lookup("aws.secretsmanager_secret").unwrap();
        let live = Value::from_json(&serde_json::json!({"name": "prod/db-url"}));
        let g = declaration(&Address::root("db-url"), kind, &live);
        assert!(
            g.yaml.contains("value: \"${var.db_url_value}\""),
            "{}",
            g.yaml
        );
        assert_eq!(g.secret_variables, ["db_url_value"]);
    }
}
