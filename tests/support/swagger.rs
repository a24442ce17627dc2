//! Checks request bodies against the official Azure REST API specifications (Swagger 2.0 files
//! in `tests/azure-specs/arm`), as the local Azure test server does for every request: `$ref`s
//! across files, `allOf`, types, enums (extensible ones accept any string), required
//! properties, unknown properties (a typo is an error), maps and arrays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

/// The specification files, loaded on first use.
pub struct Specs {
    root: PathBuf,
    files: Mutex<BTreeMap<PathBuf, Value>>,
}

/// Where a schema lives: its file and the schema.
#[derive(Clone)]
struct At {
    file: PathBuf,
    schema: Value,
}

impl Specs {
    /// The copy in `tests/azure-specs/arm`.
    pub fn load() -> Specs {
        Specs {
            root: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure-specs/arm"),
            files: Mutex::new(BTreeMap::new()),
        }
    }

    fn file(&self, path: &Path) -> Value {
        let mut files = self.files.lock().unwrap();
        files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let text = std::fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("spec {}: {e}", path.display()));
                serde_json::from_str(&text).unwrap()
            })
            .clone()
    }

    /// The body schema of `method` on the path template matching `url_path` in `spec` (a path
    /// relative to the corpus root), or `None` when the spec has no such operation.
    pub fn body_schema(
        &self,
        spec: &str,
        method: &str,
        url_path: &str,
    ) -> Option<(PathBuf, Value)> {
        let file = self.root.join(spec);
        let doc = self.file(&file);
        let (_, ops) = doc["paths"]
            .as_object()?
            .iter()
            .find(|(template, _)| path_matches(template, url_path))?;
        let op = ops.get(method.to_ascii_lowercase())?;
        let body = op["parameters"]
            .as_array()?
            .iter()
            .map(|p| {
                self.resolve(&At {
                    file: file.clone(),
                    schema: p.clone(),
                })
            })
            .find(|p| p.schema["in"] == "body")?;
        Some((body.file, body.schema["schema"].clone()))
    }

    /// Validates `value` against the body schema found by [`Specs::body_schema`]; errors
    /// carry JSON paths (`$.properties.sku.name`).
    pub fn validate_body(
        &self,
        spec: &str,
        method: &str,
        url_path: &str,
        value: &Value,
    ) -> Result<(), Vec<String>> {
        let Some((file, schema)) = self.body_schema(spec, method, url_path) else {
            return Err(vec![format!(
                "{spec} has no {method} operation for {url_path}"
            )]);
        };
        let mut errors = Vec::new();
        self.check(&At { file, schema }, value, "$", &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn resolve(&self, at: &At) -> At {
        let Some(reference) = at.schema.get("$ref").and_then(Value::as_str) else {
            return at.clone();
        };
        let (file_part, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let file = if file_part.is_empty() {
            at.file.clone()
        } else {
            normalize(&at.file.parent().unwrap().join(file_part))
        };
        let doc = self.file(&file);
        let schema = doc
            .pointer(pointer)
            .cloned()
            .unwrap_or_else(|| panic!("bad $ref {reference} in {}", at.file.display()));
        self.resolve(&At { file, schema })
    }

    /// Every property an object schema allows (its own and its allOf parents'), resolved.
    fn properties(&self, at: &At) -> (BTreeMap<String, At>, Vec<String>, Option<At>) {
        let at = self.resolve(at);
        let mut props = BTreeMap::new();
        let mut required: Vec<String> = at.schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut additional = None;
        if let Some(own) = at.schema["properties"].as_object() {
            for (k, v) in own {
                props.insert(
                    k.clone(),
                    At {
                        file: at.file.clone(),
                        schema: v.clone(),
                    },
                );
            }
        }
        if let Some(extra) = at
            .schema
            .get("additionalProperties")
            .filter(|a| a.is_object())
        {
            additional = Some(At {
                file: at.file.clone(),
                schema: extra.clone(),
            });
        }
        for parent in at.schema["allOf"].as_array().cloned().unwrap_or_default() {
            let (p, r, a) = self.properties(&At {
                file: at.file.clone(),
                schema: parent,
            });
            props.extend(p);
            required.extend(r);
            additional = additional.or(a);
        }
        (props, required, additional)
    }

    fn check(&self, at: &At, value: &Value, path: &str, errors: &mut Vec<String>) {
        let at = self.resolve(at);
        let s = &at.schema;
        if let Some(values) = s["enum"].as_array() {
            let extensible = s["x-ms-enum"]["modelAsString"].as_bool().unwrap_or(false);
            if !extensible && !values.contains(value) {
                errors.push(format!(
                    "{path}: {value} is not one of {}",
                    Value::Array(values.clone())
                ));
            }
        }
        let ty = s["type"].as_str().unwrap_or(
            if s.get("properties").is_some() || s.get("allOf").is_some() {
                "object"
            } else {
                ""
            },
        );
        match (ty, value) {
            ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => {}
            ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            ("number", Value::Number(_)) => {}
            ("array", Value::Array(items)) => {
                let item = At {
                    file: at.file.clone(),
                    schema: s["items"].clone(),
                };
                for (i, v) in items.iter().enumerate() {
                    self.check(&item, v, &format!("{path}[{i}]"), errors);
                }
            }
            ("object", Value::Object(map)) => {
                let (props, required, additional) = self.properties(&at);
                for r in &required {
                    let read_only = props
                        .get(r)
                        .is_some_and(|p| self.resolve(p).schema["readOnly"] == true);
                    if !map.contains_key(r) && !read_only {
                        errors.push(format!("{path}: required property `{r}` is missing"));
                    }
                }
                for (k, v) in map {
                    match (props.get(k), &additional) {
                        (Some(p), _) => self.check(p, v, &format!("{path}.{k}"), errors),
                        (None, Some(a)) => self.check(a, v, &format!("{path}.{k}"), errors),
                        (None, None)
                            if props.is_empty()
                                && s.get("properties").is_none()
                                && s.get("allOf").is_none() => {}
                        (None, None) => errors.push(format!("{path}: unknown property `{k}`")),
                    }
                }
            }
            ("", _) => {}
            (ty, other) => errors.push(format!("{path}: expected {ty}, found {other}")),
        }
    }
}

/// Whether an ARM path template (`/subscriptions/{subscriptionId}/...`) matches a URL path,
/// case-insensitively as ARM does. `{scope}` and a template that is one whole-path parameter
/// (`/{roleAssignmentId}`) span several segments.
pub fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() == 1 && t[0].starts_with('{') {
        return false;
    }
    segments_match(&t, &p)
}

fn segments_match(t: &[&str], p: &[&str]) -> bool {
    match (t.first(), p.first()) {
        (None, None) => true,
        (Some(&"{scope}"), Some(_)) => (1..=p.len()).any(|n| segments_match(&t[1..], &p[n..])),
        (Some(a), Some(b)) => {
            ((a.starts_with('{') && a.ends_with('}') && !b.is_empty()) || a.eq_ignore_ascii_case(b))
                && segments_match(&t[1..], &p[1..])
        }
        _ => false,
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
