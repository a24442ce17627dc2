//! Static type checks for expressions against kind schemas.

use crate::model::Value;
use crate::model::schema::{KindSchema, Type};

/// The coarse type of an expression, as far as it is known before evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A string.
    String,
    /// A number.
    Number,
    /// A boolean.
    Bool,
    /// A list.
    List,
    /// A map or object.
    Map,
    /// Null (an optional value left out).
    Null,
    /// Not known statically.
    Any,
}

impl Tag {
    /// A word for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Tag::String => "a string",
            Tag::Number => "a number",
            Tag::Bool => "a boolean",
            Tag::List => "a list",
            Tag::Map => "a map",
            Tag::Null => "null",
            Tag::Any => "any value",
        }
    }
}

/// The tag of a schema type.
pub fn tag_of_type(ty: &Type) -> Tag {
    match ty {
        Type::String | Type::Text(_) | Type::Enum(_) | Type::Duration => Tag::String,
        Type::Percent | Type::CanaryStep => Tag::Any,
        Type::Number | Type::Integer(..) => Tag::Number,
        Type::Bool => Tag::Bool,
        Type::List(_) => Tag::List,
        Type::Map(_) | Type::Keyed(..) | Type::Object(_) => Tag::Map,
        Type::Any => Tag::Any,
    }
}

/// The tag of a known value.
pub fn tag_of_value(value: &Value) -> Tag {
    match value.reveal() {
        Value::Null => Tag::Null,
        Value::Bool(_) => Tag::Bool,
        Value::Number(_) => Tag::Number,
        Value::String(_) => Tag::String,
        Value::List(_) => Tag::List,
        Value::Map(_) => Tag::Map,
        Value::Unknown | Value::Sensitive(_) | Value::Redacted(_) => Tag::Any,
    }
}

/// Whether a value of `tag` fits where `expected` is wanted.
pub fn accepts(expected: &Type, tag: Tag) -> bool {
    matches!(tag, Tag::Any | Tag::Null)
        || matches!(expected, Type::Any)
        || (matches!(expected, Type::Percent | Type::CanaryStep)
            && matches!(tag, Tag::String | Tag::Number))
        || tag_of_type(expected) == tag
}

/// The type of `attr` (a property or output) of a kind, followed along `path`.
pub fn attribute_type(kind: &KindSchema, attr: &str, path: &[String]) -> Option<Type> {
    let mut ty = kind
        .prop(attr)
        .map(|p| p.ty)
        .or_else(|| kind.output(attr).map(|o| o.ty))?;
    for key in path {
        ty = match ty {
            Type::Object(props) => props.iter().find(|p| p.name == key)?.ty,
            Type::Map(inner) | Type::Keyed(_, inner) | Type::List(inner) => *inner,
            Type::Any => Type::Any,
            _ => return None,
        };
    }
    Some(ty)
}

/// What is wrong with a known value where `expected` is wanted, beyond its coarse type: a value
/// not in an enum, a number that is not whole or out of range, a malformed duration or
/// percentage; and, for values that arrived through a reference, unknown keys and missing
/// fields of objects. Each problem comes with the path (map keys, list indexes) below the
/// value it was found at. Unknown values are skipped; a sensitive one is checked, but never
/// quoted.
pub fn value_problems(expected: &Type, value: &Value) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    walk(expected, value, false, &mut Vec::new(), &mut out);
    out
}

fn walk(
    expected: &Type,
    value: &Value,
    secret: bool,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    let secret = secret || matches!(value, Value::Sensitive(_));
    let shown = |text: &str| {
        if secret {
            crate::model::SENSITIVE_TEXT.to_string()
        } else {
            crate::model::grammar::shown(text)
        }
    };
    match (expected, value.reveal()) {
        (_, Value::Null | Value::Unknown | Value::Redacted(_)) => {}
        (Type::Integer(min, max), Value::Number(n)) => {
            let whole = n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64));
            match whole {
                Some(i) if (*min..=*max).contains(&i) => {}
                Some(_) => out.push((
                    path.clone(),
                    format!(
                        "{} is out of range: expected {}",
                        shown(&n.to_string()),
                        expected.describe()
                    ),
                )),
                None => out.push((
                    path.clone(),
                    format!(
                        "{} is not a whole number: expected {}",
                        shown(&n.to_string()),
                        expected.describe()
                    ),
                )),
            }
        }
        (Type::Enum(values), Value::String(text)) if !values.contains(&text.as_str()) => {
            out.push((
                path.clone(),
                format!("{} is not one of {}", shown(text), values.join(", ")),
            ))
        }
        (Type::Duration, Value::String(text)) => {
            if let Err(e) = crate::model::parse_duration(text) {
                out.push((
                    path.clone(),
                    format!(
                        "{} is not a duration: {e} (write 500ms, 10s, 5m or 1h)",
                        shown(text)
                    ),
                ));
            }
        }
        (Type::CanaryStep, Value::String(text)) if text != "pause" => out.push((
            path.clone(),
            format!(
                "{} is not a step: write a percentage from 1 to 100, or `pause`",
                shown(text)
            ),
        )),
        (Type::CanaryStep, Value::Number(_)) => {
            walk(&Type::Integer(1, 100), value, secret, path, out)
        }
        (Type::CanaryStep, Value::Bool(_) | Value::List(_) | Value::Map(_)) => out.push((
            path.clone(),
            "a step is a percentage from 1 to 100, or `pause`".to_string(),
        )),
        (Type::Percent, Value::String(text)) if crate::model::parse_percent(text).is_none() => out
            .push((
                path.clone(),
                format!("{} is not a percentage (write 50%)", shown(text)),
            )),
        (Type::List(inner), Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(inner, item, secret, path, out);
                path.pop();
            }
        }
        (Type::Keyed(key, inner), Value::Map(m)) => {
            for (k, v) in m {
                path.push(k.clone());
                if let Err(e) = key.parse(k) {
                    out.push((path.clone(), format!("the key {e}")));
                }
                walk(inner, v, secret, path, out);
                path.pop();
            }
        }
        (Type::Map(inner), Value::Map(m)) => {
            for (k, v) in m {
                if k.chars().any(char::is_control) {
                    out.push((
                        path.clone(),
                        format!(
                            "the key {} holds a control character",
                            crate::model::grammar::shown(k)
                        ),
                    ));
                }
                path.push(k.clone());
                walk(inner, v, secret, path, out);
                path.pop();
            }
        }
        (Type::Object(props), Value::Map(m)) => {
            for (k, v) in m {
                path.push(k.clone());
                match props.iter().find(|p| p.name == k) {
                    Some(prop) => walk(&prop.ty, v, secret, path, out),
                    None => {
                        let names: Vec<&str> = props.iter().map(|p| p.name).collect();
                        out.push((
                            path.clone(),
                            format!("unknown key `{k}` (expected one of {})", names.join(", ")),
                        ))
                    }
                }
                path.pop();
            }
            for prop in props.iter().filter(|p| p.required) {
                if m.get(prop.name).is_none_or(Value::is_null) {
                    out.push((path.clone(), format!("missing property `{}`", prop.name)));
                }
            }
        }
        (Type::Text(grammar), Value::String(text)) => {
            if let Err(e) = grammar.parse(text) {
                out.push((
                    path.clone(),
                    if secret {
                        format!("{} is not {}", shown(text), e.what)
                    } else {
                        e.to_string()
                    },
                ));
            }
        }
        (Type::String | Type::Any | Type::Enum(_), Value::String(text)) => {
            if let Some(why) = crate::model::grammar::forbidden_control(text) {
                out.push((path.clone(), format!("{} is refused: {why}", shown(text))));
            }
        }
        // Where a string is wanted, plain numbers and booleans are taken as their text, as
        // unquoted YAML scalars are.
        (Type::String | Type::Text(_), Value::Number(_) | Value::Bool(_)) => {}
        (ty, v) => {
            let tag = tag_of_value(v);
            if !accepts(ty, tag) {
                out.push((
                    path.clone(),
                    format!("expected {}, found {}", ty.describe(), tag.describe()),
                ));
            }
        }
    }
}

/// What is wrong with a resource's resolved properties (every reference evaluated) by its
/// kind's types and rules: the check `validate` and `plan` made on what was known at load,
/// made again before any step uses the values (a value from another resource's output, or a
/// row read back from state, was not checked at load). Warnings and notes are left out.
pub fn resolved_problems(kind: &KindSchema, properties: &Value) -> Vec<(Vec<String>, String)> {
    let mut out = value_problems(&Type::Object(kind.props), properties);
    out.extend((kind.rules)(properties).into_iter().filter(|(_, m)| {
        !m.starts_with(crate::model::schema::WARNING) && !m.starts_with(crate::model::schema::NOTE)
    }));
    out
}

/// The first of [`resolved_problems`] as one line naming `address` (`None`: none).
pub fn resolved_refusal(
    address: &crate::model::Address,
    kind: &KindSchema,
    properties: &Value,
) -> Option<String> {
    let problems = resolved_problems(kind, properties);
    let (path, message) = problems.first()?;
    Some(format!(
        "{address}: `{}`: {message}{}",
        path.join("."),
        match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Type = Type::Integer(1, 100);
    const STEPS: Type = Type::List(&STEP);

    #[test]
    fn integers_are_whole_and_in_range() {
        let v = Value::from_json(&serde_json::json!([10, 50.5, 0, 100, 70000]));
        let problems = value_problems(&STEPS, &v);
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p[0].as_str()).collect();
        assert_eq!(paths, ["1", "2", "4"], "{problems:?}");
        assert!(problems[0].1.contains("not a whole number"), "{problems:?}");
        assert!(
            problems[1]
                .1
                .contains("`0` is out of range: expected a whole number from 1 to 100")
        );
    }

    #[test]
    fn sensitive_values_are_checked_but_never_quoted() {
        let v = Value::int(-3).into_sensitive();
        let problems = value_problems(&Type::Integer(0, 10), &v);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].1.starts_with("(sensitive) is out of range"),
            "{problems:?}"
        );
        assert!(!problems[0].1.contains("-3"));
    }
}
