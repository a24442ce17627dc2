//! Finds the environment's state key (DESIGN: secret digests) and installs it for the process:
//! `CONVERGE_STATE_KEY` (CI sets it from its secret store), else a key converge creates once
//! per environment in the user's config directory (mode 0600), saying so the first time.
//! `CONVERGE_STATE_KEY_PREVIOUS` is accepted for comparing while rotating.

use std::io::Write;
use std::path::PathBuf;

use super::{Error, Settings};
use crate::model::digest::{self, Keyring, StateKey};

/// The directory of per-environment key files: `$XDG_CONFIG_HOME/converge/state-keys`, else
/// `$HOME/.config/converge/state-keys`.
fn key_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("converge").join("state-keys"))
}

fn from_env(var: &str) -> Option<StateKey> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(|v| StateKey::new(v.as_bytes()))
}

/// Installs the state key of environment `env` for this process.
pub fn install(g: &Settings, env: &str) -> Result<(), Error> {
    let current = match from_env("CONVERGE_STATE_KEY") {
        Some(k) => k,
        None => key_file(g, env)?,
    };
    digest::install(Keyring {
        current,
        previous: from_env("CONVERGE_STATE_KEY_PREVIOUS"),
    });
    Ok(())
}

/// The key in the environment's key file, created (atomically, 0600) when there is none.
fn key_file(g: &Settings, env: &str) -> Result<StateKey, Error> {
    let dir = key_dir().ok_or_else(|| {
        Error::Usage(
            "no state key: set CONVERGE_STATE_KEY, or HOME (or XDG_CONFIG_HOME) so converge can keep one"
                .into(),
        )
    })?;
    let path = dir.join(format!("{env}.key"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(StateKey::new(text.trim().as_bytes()));
    }
    let fail = |what: &str, e: std::io::Error| {
        Error::Failed(format!(
            "cannot {what} the state key {}: {e}",
            path.display()
        ))
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("create the folder of", e))?;
    let secret = hex::encode(
        [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat(),
    );
    // Write a temporary file, then link it into place: two runs creating the key at once end
    // with one key, and nobody reads a half-written file.
    let tmp = dir.join(format!(".{env}.key.{}", uuid::Uuid::new_v4()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(|e| fail("write", e))?;
        f.write_all(secret.as_bytes())
            .map_err(|e| fail("write", e))?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            let key = StateKey::new(secret.as_bytes());
            g.say(&format!(
                "Created the state key of `{env}` at {} (key id {}): secret digests in state are keyed with it. \
                 Give every other runner of `{env}` (CI included) the same key as CONVERGE_STATE_KEY.",
                path.display(),
                key.id()
            ));
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|e| fail("read", e))?;
            Ok(StateKey::new(text.trim().as_bytes()))
        }
        Err(e) => Err(fail("write", e)),
    }
}
