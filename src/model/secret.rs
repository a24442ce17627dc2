//! Secrets in memory: [`Secret`], a text whose `Display` and `Debug` never show it, and
//! [`Masker`], which hides known secrets in text converge did not write (a container's log, a
//! hook's output, an error a host printed) in every form a program commonly prints them: as
//! they are, JSON-escaped, base64 (standard and URL-safe, at any alignment) and URL-encoded.

use std::fmt;

use base64::Engine;

use super::SENSITIVE_TEXT;

/// A secret's text. Printing it (`{}` or `{:?}`) shows `(sensitive)`; only [`Secret::expose`]
/// gives the text, for the one place it goes (a host's stdin, an API body).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The text itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({SENSITIVE_TEXT})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SENSITIVE_TEXT)
    }
}

/// Secrets shorter than this are not masked (masking `a` would blank every `a`); they are
/// still never printed by converge itself.
pub const MIN_MASKED: usize = 4;

/// Hides known secret texts in text from elsewhere.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Every form of every secret, longest first.
    forms: Vec<String>,
}

impl Masker {
    /// A masker for `secrets` (and their encoded forms).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Masker {
        let mut m = Masker::default();
        for s in secrets {
            m.add(s.as_ref());
        }
        m
    }

    /// Adds a secret (and its encoded forms).
    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() < MIN_MASKED {
            return;
        }
        for form in forms(secret) {
            if form.chars().count() >= MIN_MASKED && !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// Whether it masks nothing.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every form of every secret replaced by `(sensitive)`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), SENSITIVE_TEXT);
            }
        }
        out
    }
}

/// The forms a secret is commonly printed in.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    // JSON-escaped (a log line that is JSON).
    let json = serde_json::to_string(secret).unwrap_or_default();
    out.push(json.trim_matches('"').to_string());
    // URL-encoded (a query string, a form body), both ways of writing a space.
    let url: String =
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    out.push(url.clone());
    out.push(url.replace("%20", "+"));
    // Base64 at each alignment inside a longer encoded text: the characters that depend only
    // on the secret's own bytes.
    let bytes = secret.as_bytes();
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        out.push(engine.encode(bytes));
        for offset in 1..3usize {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            // Skip the characters that mix in the padding bytes, and the last one (it mixes
            // in what follows).
            let skip = (offset * 8).div_ceil(6);
            let stable = (padded.len() * 8) / 6;
            if stable > skip + 1 {
                out.push(encoded[skip..stable].to_string());
            }
        }
    }
    out.retain(|f| !f.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_sensitive() {
        let s = Secret::new("hunter2-password");
        assert_eq!(format!("{s}"), SENSITIVE_TEXT);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-password");
    }

    #[test]
    fn every_common_encoding_of_a_secret_is_masked() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let secret = "p@ss \"w0rd\"/+?&\nline2";
        let m = Masker::new([secret]);
        let json = serde_json::json!({ "password": secret }).to_string();
        let url = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        for text in [
            format!("DB={secret}"),
            json,
            format!("https://x/?p={url}"),
            format!("Basic {}", STANDARD.encode(format!("user:{secret}"))),
            format!("token {}", URL_SAFE.encode(format!("ab{secret}cd"))),
            STANDARD.encode(secret),
        ] {
            let masked = m.mask(&text);
            assert!(masked.contains(SENSITIVE_TEXT), "{text} -> {masked}");
            assert!(!masked.contains("w0rd"), "{masked}");
        }
        assert_eq!(m.mask("nothing here"), "nothing here");
        assert!(Masker::new(["ab"]).is_empty());
    }
}
