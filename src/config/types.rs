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
        Type::String | Type::Enum(_) | Type::Duration => Tag::String,
        Type::Percent => Tag::Any,
        Type::Number => Tag::Number,
        Type::Bool => Tag::Bool,
        Type::List(_) => Tag::List,
        Type::Map(_) | Type::Object(_) => Tag::Map,
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
        || (matches!(expected, Type::Percent) && matches!(tag, Tag::String | Tag::Number))
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
            Type::Map(inner) | Type::List(inner) => *inner,
            Type::Any => Type::Any,
            _ => return None,
        };
    }
    Some(ty)
}
