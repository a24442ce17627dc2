//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+other}`, `${VAR+other}` (nested in the
//! defaults too) and `$$` for a dollar, as the Compose Specification defines them. Values come
//! from a lookup the caller gives (converge's variables, then an `.env` file when asked for);
//! a text that took a sensitive value is sensitive.

/// A text after interpolation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    /// The text.
    pub text: String,
    /// Whether a sensitive value went into it.
    pub sensitive: bool,
    /// Variables it named that have no value (Compose puts an empty string and warns).
    pub unset: Vec<String>,
}

/// Why a text cannot be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${` without its `}`, or a name that is not one.
    #[error("invalid interpolation in `{0}`: {1}")]
    Syntax(String, &'static str),
    /// `${VAR:?message}` with VAR unset (or empty).
    #[error("required variable `{name}` is missing a value: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The file's message.
        message: String,
    },
}

/// A variable's value and whether it is sensitive.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<(String, bool)>;

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Interpolates `text`.
pub fn interpolate(text: &str, lookup: Lookup<'_>) -> Result<Interpolated, InterpolateError> {
    let mut out = Interpolated::default();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let syntax = |why| InterpolateError::Syntax(text.to_string(), why);
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.text.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.text.push('$');
                i += 2;
            }
            Some('{') => {
                // The matching brace, counting nested `${`.
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '$' if chars.get(j + 1) == Some(&'{') => {
                            depth += 1;
                            j += 1;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth > 0 {
                    return Err(syntax("`${` has no closing `}`"));
                }
                let inner: String = chars[i + 2..j - 1].iter().collect();
                expand(&inner, lookup, &mut out).map_err(|e| match e {
                    InterpolateError::Syntax(_, why) => syntax(why),
                    other => other,
                })?;
                i = j;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                put(&name, lookup, &mut out);
                i = j;
            }
            _ => {
                // A lone `$` (at the end, before a space...) stays as it is, as in Compose.
                out.text.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn put(name: &str, lookup: Lookup<'_>, out: &mut Interpolated) {
    match lookup(name) {
        Some((value, sensitive)) => {
            out.text.push_str(&value);
            out.sensitive |= sensitive;
        }
        None => out.unset.push(name.to_string()),
    }
}

/// `NAME`, `NAME:-default`, `NAME-default`, `NAME:?msg`, `NAME?msg`, `NAME:+alt`, `NAME+alt`.
fn expand(inner: &str, lookup: Lookup<'_>, out: &mut Interpolated) -> Result<(), InterpolateError> {
    let end = inner
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let name = &inner[..end];
    if !name.starts_with(is_name_start) {
        return Err(InterpolateError::Syntax(
            inner.into(),
            "a variable name is letters, digits and `_`, not starting with a digit",
        ));
    }
    let rest = &inner[end..];
    if rest.is_empty() {
        put(name, lookup, out);
        return Ok(());
    }
    let value = lookup(name);
    let (colon, rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // With `:`, an empty value counts as unset.
    let set = value
        .as_ref()
        .is_some_and(|(v, _)| !(colon && v.is_empty()));
    let mut op = rest.chars();
    let arg = || interpolate(&rest[1..], lookup);
    match op.next() {
        Some('-') => {
            if set {
                put(name, lookup, out);
            } else {
                merge(out, arg()?);
            }
        }
        Some('+') => {
            if set {
                merge(out, arg()?);
            }
        }
        Some('?') => {
            if set {
                put(name, lookup, out);
            } else {
                return Err(InterpolateError::Required {
                    name: name.to_string(),
                    message: arg()?.text,
                });
            }
        }
        _ => {
            return Err(InterpolateError::Syntax(
                inner.into(),
                "after a name comes `}`, `:-`, `-`, `:?`, `?`, `:+` or `+`",
            ));
        }
    }
    Ok(())
}

fn merge(out: &mut Interpolated, part: Interpolated) {
    out.text.push_str(&part.text);
    out.sensitive |= part.sensitive;
    out.unset.extend(part.unset);
}

/// Reads an `.env` file as Compose does: `NAME=value` lines, `#` comments, optional `export `,
/// single quotes literal, double quotes with `\n` escapes, unquoted values trimmed and ending at
/// ` #`. Returns the pairs, or the 1-based line of the first bad one.
pub fn dotenv(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(n + 1);
        };
        let name = name.trim();
        if !name.starts_with(is_name_start) || !name.chars().all(is_name_char) {
            return Err(n + 1);
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'').ok_or(n + 1)?.to_string()
        } else if let Some(v) = value.strip_prefix('"') {
            v.strip_suffix('"')
                .ok_or(n + 1)?
                .replace("\\n", "\n")
                .replace("\\\"", "\"")
        } else {
            value
                .split(" #")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<(String, bool)> {
        match name {
            "TAG" => Some(("v2".into(), false)),
            "EMPTY" => Some((String::new(), false)),
            "PASSWORD" => Some(("hunter2".into(), true)),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<Interpolated, InterpolateError> {
        interpolate(text, &vars)
    }

    #[test]
    fn every_form_of_the_specification() {
        let t = |s: &str| run(s).unwrap().text;
        assert_eq!(t("api:${TAG}"), "api:v2");
        assert_eq!(t("api:$TAG-x"), "api:v2-x");
        assert_eq!(t("${NOPE:-d}|${EMPTY:-d}|${TAG:-d}"), "d|d|v2");
        assert_eq!(t("${NOPE-d}|${EMPTY-d}|${TAG-d}"), "d||v2");
        assert_eq!(t("${NOPE:+x}|${EMPTY:+x}|${TAG:+x}"), "||x");
        assert_eq!(t("${NOPE+x}|${EMPTY+x}|${TAG+x}"), "|x|x");
        assert_eq!(t("${NOPE:-${TAG}}"), "v2");
        assert_eq!(t("${NOPE:-${ALSO:-deep}}"), "deep");
        assert_eq!(
            t("$$HOME and $$(date) and $ alone and 5$"),
            "$HOME and $(date) and $ alone and 5$"
        );
        assert_eq!(t("${TAG?must}"), "v2");
    }

    #[test]
    fn unset_names_are_reported_and_secrets_taint_the_text() {
        let r = run("a${NOPE}b").unwrap();
        assert_eq!(
            (r.text.as_str(), r.unset.as_slice()),
            ("ab", &["NOPE".to_string()][..])
        );
        assert!(run("postgres://app:${PASSWORD}@db/app").unwrap().sensitive);
        assert!(!run("${PASSWORD:+set}").unwrap().sensitive);
        assert!(run("${NOPE:-$PASSWORD}").unwrap().sensitive);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            run("${NOPE:?set NOPE in the environment}")
                .unwrap_err()
                .to_string(),
            "required variable `NOPE` is missing a value: set NOPE in the environment"
        );
        assert!(run("${EMPTY:?x}").is_err());
        assert_eq!(run("${EMPTY?x}").unwrap().text, "");
        assert!(run("${TAG").unwrap_err().to_string().contains("no closing"));
        assert!(
            run("${1A}")
                .unwrap_err()
                .to_string()
                .contains("variable name")
        );
        assert!(
            run("${TAG/x/y}")
                .unwrap_err()
                .to_string()
                .contains("after a name")
        );
    }

    #[test]
    fn dotenv_files_read_as_compose_reads_them() {
        let pairs =
            dotenv("# comment\nA=1\nexport B = two words # note\nC='lit $x'\nD=\"a\\nb\"\n\nE=\n")
                .unwrap();
        assert_eq!(
            pairs,
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "lit $x"),
                ("D", "a\nb"),
                ("E", "")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(dotenv("A=1\nnot a pair\n"), Err(2));
        assert_eq!(dotenv("1A=x\n"), Err(1));
    }
}
