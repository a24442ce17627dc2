//! Digests of sensitive values: the only hash converge ever takes over data that can hold a
//! secret. State, plan files and rollout records keep `hmac-sha256:KID:HEX`, an HMAC-SHA256 of
//! the value's canonical JSON under the environment's state key, which lives in none of them;
//! `KID` names the key (derived from it), so a digest made under another key is recognised as
//! such instead of looking like a changed secret. `sha256:HEX` (or a bare 64-digit hex) is the
//! legacy form older releases wrote: still compared, rewritten by the next apply.
//!
//! The key for a process is installed once ([`install`]) by the command that loads an
//! environment; until then an ephemeral random key is used, so nothing guessable is ever
//! written.

use std::sync::{Arc, OnceLock, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::Value;

/// The prefix of digests under a state key.
pub const HMAC_PREFIX: &str = "hmac-sha256:";
/// The prefix of legacy (plain SHA-256) digests.
pub const LEGACY_PREFIX: &str = "sha256:";

/// A state key and its id.
#[derive(Clone)]
pub struct StateKey {
    bytes: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateKey({})", self.id)
    }
}

impl StateKey {
    /// A key from its secret bytes (a `CONVERGE_STATE_KEY` value, or a key file's content).
    pub fn new(secret: &[u8]) -> StateKey {
        let mut h = Sha256::new();
        h.update(b"converge state key id\0");
        h.update(secret);
        StateKey {
            bytes: secret.to_vec(),
            id: hex::encode(h.finalize())[..12].to_string(),
        }
    }

    /// The key id written into its digests (12 hex digits derived from the key).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, value: &Value) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes)
            .expect("HMAC takes keys of any length");
        mac.update(canonical(value).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The keys a run holds: the current one (new digests), and a previous one accepted while
/// comparing during a rotation (`CONVERGE_STATE_KEY_PREVIOUS`).
#[derive(Debug, Clone)]
pub struct Keyring {
    /// New digests are made with this key.
    pub current: StateKey,
    /// Digests under this key still compare.
    pub previous: Option<StateKey>,
}

/// What a stored digest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form<'a> {
    /// Plain SHA-256, written before state keys.
    Legacy(&'a str),
    /// HMAC-SHA256 under the key with this id.
    Keyed {
        /// The key id.
        key_id: &'a str,
        /// The MAC.
        mac: &'a str,
    },
}

/// Reads a stored digest's form; `None` when it is neither form.
pub fn form(stored: &str) -> Option<Form<'_>> {
    if let Some(rest) = stored.strip_prefix(HMAC_PREFIX) {
        let (key_id, mac) = rest.split_once(':')?;
        return Some(Form::Keyed { key_id, mac });
    }
    let hex = stored.strip_prefix(LEGACY_PREFIX).unwrap_or(stored);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Form::Legacy(hex))
}

/// A digest under a key this run does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a secret digest in state was made with state key {found}, but this run holds key {held}{previous}: another runner with another key wrote it. Set CONVERGE_STATE_KEY to the key that wrote it (or pass it as CONVERGE_STATE_KEY_PREVIOUS while rotating to a new one)"
)]
pub struct ForeignKey {
    /// The key id in the digest.
    pub found: String,
    /// The key id this run holds.
    pub held: String,
    /// `" (previous: ID)"` when a previous key is held too.
    pub previous: String,
}

impl Keyring {
    /// A keyring of one key.
    pub fn new(current: StateKey) -> Keyring {
        Keyring {
            current,
            previous: None,
        }
    }

    /// The digest of `value` as stored: `hmac-sha256:KID:HEX` under the current key.
    pub fn digest(&self, value: &Value) -> String {
        format!(
            "{HMAC_PREFIX}{}:{}",
            self.current.id,
            self.current.mac(value.reveal())
        )
    }

    /// Whether `stored` is a digest of `value` (legacy, current or previous key); an error for
    /// a digest under a key this run does not hold.
    pub fn matches(&self, stored: &str, value: &Value) -> Result<bool, ForeignKey> {
        match form(stored) {
            Some(Form::Legacy(hex)) => Ok(legacy(value.reveal()) == hex),
            Some(Form::Keyed { key_id, mac }) => match self.key(key_id) {
                Some(key) => Ok(key.mac(value.reveal()) == mac),
                None => Err(self.foreign(key_id)),
            },
            None => Ok(false),
        }
    }

    /// Whether a stored digest should be rewritten under the current key (legacy, or the
    /// previous key's); an error for a key this run does not hold.
    pub fn needs_upgrade(&self, stored: &str) -> Result<bool, ForeignKey> {
        match form(stored) {
            Some(Form::Legacy(_)) => Ok(true),
            Some(Form::Keyed { key_id, .. }) if key_id == self.current.id => Ok(false),
            Some(Form::Keyed { key_id, .. }) if self.key(key_id).is_some() => Ok(true),
            Some(Form::Keyed { key_id, .. }) => Err(self.foreign(key_id)),
            None => Ok(false),
        }
    }

    fn key(&self, id: &str) -> Option<&StateKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == id)
    }

    fn foreign(&self, found: &str) -> ForeignKey {
        ForeignKey {
            found: found.to_string(),
            held: self.current.id.clone(),
            previous: self
                .previous
                .as_ref()
                .map(|p| format!(" (previous: {})", p.id))
                .unwrap_or_default(),
        }
    }
}

/// The canonical JSON a digest is taken over.
fn canonical(value: &Value) -> String {
    serde_json::to_string(&value.to_plain_json()).unwrap_or_default()
}

/// The legacy digest: plain SHA-256 of the canonical JSON (compared, never written).
fn legacy(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical(value).as_bytes()))
}

static INSTALLED: OnceLock<RwLock<Arc<Keyring>>> = OnceLock::new();

fn slot() -> &'static RwLock<Arc<Keyring>> {
    INSTALLED.get_or_init(|| {
        let random = [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat();
        RwLock::new(Arc::new(Keyring::new(StateKey::new(&random))))
    })
}

/// Makes `keyring` the one this process digests and compares with.
pub fn install(keyring: Keyring) {
    *slot().write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keyring);
}

/// The keyring in use.
pub fn keyring() -> Arc<Keyring> {
    slot().read().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(secret: &str) -> Keyring {
        Keyring::new(StateKey::new(secret.as_bytes()))
    }

    #[test]
    fn digests_name_their_key_and_never_the_plain_sha256() {
        let k = ring("k1");
        let v = Value::str("hunter2");
        let d = k.digest(&v);
        let plain = "4ddbb67bf993867e13253c146a339ed3b33ea5b895543569278e99d5b3c2b7d5";
        assert!(
            d.starts_with(&format!("hmac-sha256:{}:", k.current.id())),
            "{d}"
        );
        assert!(!d.contains(plain) && !d.contains("hunter2"));
        assert_eq!(legacy(&v), plain, "the legacy form is today's plain digest");
        assert_eq!(k.matches(&d, &v), Ok(true));
        assert_eq!(k.matches(&d, &Value::str("hunter3")), Ok(false));
        assert_eq!(
            k.matches(plain, &v),
            Ok(true),
            "legacy digests still compare"
        );
        assert_eq!(k.matches(&format!("sha256:{plain}"), &v), Ok(true));
        assert_eq!(k.needs_upgrade(plain), Ok(true));
        assert_eq!(k.needs_upgrade(&d), Ok(false));
    }

    #[test]
    fn another_key_is_an_error_naming_both_ids_and_rotation_accepts_the_previous() {
        let old = ring("old");
        let new = ring("new");
        let v = Value::int(42);
        let d = old.digest(&v);
        let e = new.matches(&d, &v).unwrap_err();
        assert_eq!(e.found, old.current.id());
        assert_eq!(e.held, new.current.id());
        assert!(e.to_string().contains("CONVERGE_STATE_KEY_PREVIOUS"));
        let rotating = Keyring {
            current: new.current.clone(),
            previous: Some(old.current.clone()),
        };
        assert_eq!(rotating.matches(&d, &v), Ok(true));
        assert_eq!(rotating.needs_upgrade(&d), Ok(true));
        assert!(rotating.digest(&v).contains(new.current.id()));
    }
}
