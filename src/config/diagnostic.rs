//! Errors in desired-state files, located by file, line and column, rendered by miette.

use std::sync::Arc;

use marked_yaml::Span;
use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::Serialize;

/// A file read for an environment, kept for diagnostics and the plan's files hash.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the project root, as shown to users.
    pub name: String,
    /// Its full text.
    pub text: Arc<String>,
    /// Where each line starts, as (byte offset, character offset), built once when first
    /// needed (an error's snippet).
    lines: Arc<std::sync::OnceLock<Vec<(usize, usize)>>>,
}

impl SourceFile {
    /// A file `name` with `text`.
    pub fn new(name: impl Into<String>, text: String) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: Arc::new(text),
            lines: Arc::default(),
        }
    }

    /// The byte offset of the `character`-th character (0-based, as the YAML parser counts),
    /// which is on 1-based `line`: through a line index built once per file, locating an error
    /// costs one line, not the whole file.
    pub fn byte_at(&self, line: usize, character: usize) -> usize {
        let text = self.text.as_str();
        let starts = self.lines.get_or_init(|| {
            let mut out = vec![(0, 0)];
            let mut chars = 0;
            for (b, c) in text.char_indices() {
                chars += 1;
                if c == '\n' {
                    out.push((b + 1, chars));
                }
            }
            out
        });
        let Some(&(start, first_char)) = starts.get(line.saturating_sub(1)) else {
            return text.len();
        };
        text[start..]
            .char_indices()
            .nth(character.saturating_sub(first_char))
            .map(|(b, _)| start + b)
            .unwrap_or(text.len())
    }
}

/// A position in a file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File path relative to the project root.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One problem in the desired-state files.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct ConfigError {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub location: Option<Location>,
    #[source_code]
    source_code: Option<NamedSource<Arc<String>>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: Option<String>,
}

impl Location {
    /// Where `span` starts in `file` (`None` when the span has no start): line and column as
    /// the YAML parser counted them, at no cost.
    pub fn of(file: &SourceFile, span: &Span) -> Option<Location> {
        span.start().map(|start| Location {
            file: file.name.clone(),
            line: start.line(),
            column: start.column(),
        })
    }
}

impl ConfigError {
    /// An error with no location (e.g. a missing file).
    pub fn general(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
            location: None,
            source_code: None,
            span: None,
            label: String::new(),
            help: None,
        }
    }

    /// An error at `span` of `file`, with a short label under the snippet.
    pub fn at(
        file: &SourceFile,
        span: &Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> ConfigError {
        let (location, source_span) = match span.start() {
            Some(start) => {
                let text = file.text.as_str();
                let begin = file.byte_at(start.line(), start.character());
                let end = span
                    .end()
                    .map(|e| file.byte_at(e.line(), e.character()))
                    .filter(|e| *e > begin)
                    .unwrap_or_else(|| token_end(text, begin));
                (
                    Some(Location {
                        file: file.name.clone(),
                        line: start.line(),
                        column: start.column(),
                    }),
                    Some(SourceSpan::from(begin..end)),
                )
            }
            None => (None, None),
        };
        ConfigError {
            message: message.into(),
            location,
            source_code: Some(NamedSource::new(file.name.clone(), file.text.clone())),
            span: source_span,
            label: label.into(),
            help: None,
        }
    }

    /// Adds a hint on how to fix it.
    pub fn with_help(mut self, help: impl Into<String>) -> ConfigError {
        self.help = Some(help.into());
        self
    }

    /// The error as `file:line:col: message`, for plain logs and CI annotations.
    pub fn one_line(&self) -> String {
        match &self.location {
            Some(l) => format!("{}:{}:{}: {}", l.file, l.line, l.column, self.message),
            None => self.message.clone(),
        }
    }
}

/// Every problem found in one pass over the files.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} in the desired-state files", plural(.errors.len()))]
pub struct ConfigErrors {
    /// The problems, in file order.
    #[related]
    pub errors: Vec<ConfigError>,
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 error".into()
    } else {
        format!("{n} errors")
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors { errors: vec![e] }
    }
}

/// End of the token starting at `begin`: up to the end of the line, trimmed.
fn token_end(text: &str, begin: usize) -> usize {
    let rest = &text[begin..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let n = rest[..line_len].trim_end().len();
    begin + if n == 0 { line_len.min(1) } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_come_from_the_line_index() {
        let f = SourceFile::new("f.yaml", "a: 1\nnäme: ü\n  x: y\n".into());
        assert_eq!(f.byte_at(1, 0), 0);
        assert_eq!(f.byte_at(2, 5), 5);
        // `ü` is character 11 of the file, after the two-byte `ä`.
        assert_eq!(&f.text[f.byte_at(2, 11)..f.byte_at(2, 11) + 2], "ü");
        assert_eq!(f.byte_at(3, 15), f.text.find("x:").unwrap());
        assert_eq!(f.byte_at(9, 1), f.text.len());
    }
}
