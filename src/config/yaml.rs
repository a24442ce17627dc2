//! Reading YAML nodes with their locations: parsing, mapping keys, scalars.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node, Span};

use super::diagnostic::{ConfigError, SourceFile};

/// Parses a file's text into a located YAML tree whose top level is a mapping.
pub fn parse(file: &SourceFile, source_id: usize) -> Result<Node, ConfigError> {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    marked_yaml::parse_yaml_with_options(source_id, file.text.as_str(), options).map_err(|e| {
        let (marker, message) = match &e {
            LoadError::TopLevelMustBeMapping(m) => {
                (Some(*m), "the top level must be a mapping".to_string())
            }
            LoadError::TopLevelMustBeSequence(m) => {
                (Some(*m), "the top level must be a sequence".into())
            }
            LoadError::UnexpectedAnchor(m) => (Some(*m), "YAML anchors are not supported".into()),
            LoadError::MappingKeyMustBeScalar(m) => {
                (Some(*m), "mapping keys must be plain strings".into())
            }
            LoadError::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".into()),
            LoadError::ScanError(m, scan) => (Some(*m), format!("invalid YAML: {scan}")),
            LoadError::DuplicateKey(inner) => (
                inner.key.span().start().copied(),
                format!("duplicate key `{}`", inner.key.as_str()),
            ),
        };
        match marker {
            Some(m) => ConfigError::at(file, &Span::new_start(m), message, "here"),
            None => ConfigError::general(format!("{}: {message}", file.name)),
        }
    })
}

/// A short word for a node's shape, for type errors.
pub fn shape(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a scalar",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// The node as a mapping, or an error naming what was expected.
pub fn expect_mapping<'a>(
    file: &SourceFile,
    node: &'a Node,
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<&'a MarkedMappingNode> {
    match node {
        Node::Mapping(m) => Some(m),
        other => {
            errors.push(ConfigError::at(
                file,
                other.span(),
                format!("{what} must be a mapping, found {}", shape(other)),
                "expected a mapping",
            ));
            None
        }
    }
}

/// The node as a plain string, or an error.
pub fn expect_string<'a>(
    file: &SourceFile,
    node: &'a Node,
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<&'a MarkedScalarNode> {
    match node {
        Node::Scalar(s) if !s.as_str().is_empty() => Some(s),
        other => {
            errors.push(ConfigError::at(
                file,
                other.span(),
                format!("{what} must be a non-empty string, found {}", shape(other)),
                "expected a string",
            ));
            None
        }
    }
}

/// Reports every key of `map` not in `allowed` as an error (a typo is never ignored).
pub fn reject_unknown_keys(
    file: &SourceFile,
    map: &MarkedMappingNode,
    allowed: &[&str],
    context: &str,
    errors: &mut Vec<ConfigError>,
) {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.push(unknown_key(file, key, allowed, context));
        }
    }
}

/// The error for one unknown key, with the closest allowed name as a hint.
pub fn unknown_key(
    file: &SourceFile,
    key: &MarkedScalarNode,
    allowed: &[&str],
    context: &str,
) -> ConfigError {
    let mut err = ConfigError::at(
        file,
        key.span(),
        format!("unknown key `{}` in {context}", key.as_str()),
        "not allowed here",
    );
    let hint = match closest(key.as_str(), allowed) {
        Some(c) => format!("did you mean `{c}`? allowed: {}", allowed.join(", ")),
        None => format!("allowed: {}", allowed.join(", ")),
    };
    err = err.with_help(hint);
    err
}

/// The allowed name closest to a typo, when it is close enough to suggest.
fn closest<'a>(typo: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (strsim::levenshtein(typo, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}
