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
                let begin = char_to_byte(text, start.character());
                let end = span
                    .end()
                    .map(|e| char_to_byte(text, e.character()))
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

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map(|(b, _)| b)
        .unwrap_or(text.len())
}

/// End of the token starting at `begin`: up to the end of the line, trimmed.
fn token_end(text: &str, begin: usize) -> usize {
    let rest = &text[begin..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let n = rest[..line_len].trim_end().len();
    begin + if n == 0 { line_len.min(1) } else { n }
}
