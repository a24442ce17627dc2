//! Row encoding shared by the backends: resources and locks as stored text columns.

use super::{LockInfo, ResourceState, ResourceStatus, Result, StateError};
use crate::model::{Address, Value};

/// A resource row as its stored text columns.
pub(super) struct ResourceRow {
    pub address: String,
    pub kind: String,
    pub remote_id: String,
    pub properties: String,
    pub outputs: String,
    pub dependencies: String,
    pub status: String,
    /// Which form its secret digests are in: `none`, `hmac` (all under a state key) or
    /// `legacy` (some plain SHA-256 from before state keys).
    pub digest_form: String,
}

impl ResourceRow {
    /// The columns to store for `r`: secrets redacted to digests.
    pub fn encode(r: &ResourceState) -> ResourceRow {
        // Redacted once: each secret's HMAC is computed once per write.
        let properties = r.properties.redacted();
        let outputs = r.outputs.redacted();
        ResourceRow {
            address: r.address.to_string(),
            kind: r.kind.clone(),
            remote_id: r.remote_id.clone(),
            digest_form: digest_form(&properties, &outputs),
            properties: to_json(&properties),
            outputs: to_json(&outputs),
            dependencies: to_json(&r.dependencies),
            status: r.status.as_str().to_string(),
        }
    }

    /// The resource these columns hold.
    pub fn decode(self) -> Result<ResourceState> {
        let address = self.address;
        let parse = |text: &str| -> Result<serde_json::Value> {
            serde_json::from_str(text).map_err(|e| corrupt(&address, e))
        };
        Ok(ResourceState {
            address: Address::parse(&address).ok_or_else(|| corrupt(&address, "bad address"))?,
            kind: self.kind,
            remote_id: self.remote_id,
            properties: Value::from_json(&parse(&self.properties)?),
            outputs: Value::from_json(&parse(&self.outputs)?),
            dependencies: serde_json::from_value(parse(&self.dependencies)?)
                .map_err(|e| corrupt(&address, e))?,
            status: ResourceStatus::parse(&self.status)
                .ok_or_else(|| corrupt(&address, format!("unknown status `{}`", self.status)))?,
        })
    }
}

/// The digest form of a row's redacted properties and outputs (see [`ResourceRow::digest_form`]).
fn digest_form(properties: &Value, outputs: &Value) -> String {
    use crate::model::digest::{Form, form};
    let digests: Vec<&str> = properties
        .digests()
        .into_iter()
        .chain(outputs.digests())
        .collect();
    if digests.is_empty() {
        "none"
    } else if digests
        .iter()
        .any(|d| matches!(form(d), Some(Form::Legacy(_))))
    {
        "legacy"
    } else {
        "hmac"
    }
    .into()
}

/// A lock row's columns, in `SELECT id, holder, host, pid, operation, since, lease_until` order.
pub(super) type LockColumns = (String, String, String, i64, String, String, String);

/// The lock these columns hold.
pub(super) fn lock_from(c: LockColumns) -> LockInfo {
    LockInfo {
        id: c.0,
        holder: c.1,
        host: c.2,
        pid: u32::try_from(c.3).unwrap_or(0),
        operation: c.4,
        since: c.5,
        lease_until: c.6,
    }
}

/// JSON text of a value.
pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A row that cannot be decoded.
pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// The lock this store holds: its id and the command, for fencing writes.
#[derive(Debug, Default)]
pub(super) struct Held(std::sync::Mutex<Option<(String, String)>>);

impl Held {
    /// Remembers the lock just taken.
    pub fn set(&self, id: &str, operation: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((id.to_string(), operation.to_string()));
    }

    /// Forgets it.
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The held lock, if any.
    pub fn get(&self) -> Option<(String, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Checks that the lock row still names this holder before a write.
    pub fn check(&self, env: &str, current_id: Option<&str>) -> Result<()> {
        match self.get() {
            Some((id, operation)) if current_id != Some(id.as_str()) => Err(StateError::LockLost {
                env: env.to_string(),
                operation,
            }),
            _ => Ok(()),
        }
    }
}

/// The stored body of an output: its value with secrets redacted to digests.
pub(super) fn encode_output(o: &super::StoredOutput) -> String {
    to_json(&super::StoredOutput {
        value: o.value.redacted(),
        ..o.clone()
    })
}

/// The output a stored body holds.
pub(super) fn decode_output(name: &str, body: &str) -> Result<super::StoredOutput> {
    serde_json::from_str(body).map_err(|e| corrupt(&format!("output {name}"), e))
}
