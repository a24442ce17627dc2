//! Splits strings into literal text and `${...}` references.

/// One piece of a string from a desired-state file.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Literal text (with `$${` already turned into `${`).
    Text(String),
    /// The path inside `${...}`, split on dots, and its character offset in the string.
    Ref {
        /// `["var", "image_tag"]`, `["repo", "uri"]`, `["module", "api", "repository_uri"]`.
        path: Vec<String>,
        /// Character offset of the `$` within the string.
        offset: usize,
    },
}

/// What is wrong with a `${…}` in a string, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl From<&str> for TemplateError {
    fn from(why: &str) -> TemplateError {
        TemplateError(why.to_string())
    }
}

/// Parses a string into pieces; an error says what is wrong with which `${`.
pub fn parse(s: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
            text.push_str("${");
            i += 3;
        } else if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let close = chars[i..]
                .iter()
                .position(|c| *c == '}')
                .ok_or_else(|| TemplateError(format!("unclosed `${{` at character {}", i + 1)))?;
            let inner: String = chars[i + 2..i + close].iter().collect();
            let path = parse_path(inner.trim())
                .map_err(|e| TemplateError(format!("bad reference `${{{inner}}}`: {e}")))?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Ref { path, offset: i });
            i += close + 1;
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// `a.b[0].c` → `["a", "b", "0", "c"]`.
fn parse_path(inner: &str) -> Result<Vec<String>, TemplateError> {
    if inner.is_empty() {
        return Err("empty reference".into());
    }
    let normalized = inner.replace('[', ".").replace(']', "");
    let parts: Vec<String> = normalized.split('.').map(str::to_string).collect();
    for p in &parts {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(TemplateError(format!(
                "`{p}` is not a valid name (letters, digits, `_`, `-`)"
            )));
        }
    }
    if parts.len() < 2 {
        return Err(
            "a reference has at least two parts, e.g. `var.NAME` or `KEY.ATTRIBUTE`".into(),
        );
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_references() {
        let p = parse("${repo.uri}:${var.tag}-x").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[0],
            Piece::Ref {
                path: vec!["repo".into(), "uri".into()],
                offset: 0
            }
        );
        assert_eq!(p[1], Piece::Text(":".into()));
        assert_eq!(p[3], Piece::Text("-x".into()));
    }

    #[test]
    fn escapes_and_errors() {
        assert_eq!(
            parse("$${not}").unwrap(),
            vec![Piece::Text("${not}".into())]
        );
        assert!(parse("${open").unwrap_err().0.contains("unclosed"));
        assert!(parse("${single}").unwrap_err().0.contains("two parts"));
        assert_eq!(
            parse("${vnet.subnet_ids[0]}").unwrap(),
            vec![Piece::Ref {
                path: vec!["vnet".into(), "subnet_ids".into(), "0".into()],
                offset: 0
            }]
        );
    }
}
