//! Persistent state per environment: resources, serial, write lock and the audit trail.
//!
//! Backends implement [`StateStore`]; SQLite (`state/<env>.db`, the default) is in
//! [`sqlite`]. Every write that records a completed cloud operation also appends its audit
//! event and bumps the serial, in one transaction.

pub mod locking;
mod postgres;
mod queries;
mod rows;
mod sqlite;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::audit::{self, Event, NewEvent};
use crate::model::Address;
pub use crate::model::{ResourceState, ResourceStatus};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Errors from the state backend.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database could not be opened, migrated, read or written.
    #[error("state database {location}: {source}")]
    Database {
        /// The database (path or URL without credentials).
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The state URL is not one converge understands.
    #[error("unsupported state URL `{0}`: use a path, sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// Another process holds the environment's write lock.
    #[error("environment `{env}` is locked by {holder}", holder = .lock.describe())]
    Locked {
        /// The environment.
        env: String,
        /// Who holds it.
        lock: Box<LockInfo>,
    },
    /// This process's lock was broken (`lock force-unlock`) while it was working.
    #[error(
        "the lock on environment `{env}` was broken by someone else while this {operation} ran; nothing more is written"
    )]
    LockLost {
        /// The environment.
        env: String,
        /// The command that held the lock.
        operation: String,
    },
    /// A stored row could not be decoded.
    #[error("corrupt state row for {what}: {message}")]
    Corrupt {
        /// What was being read.
        what: String,
        /// Why it failed.
        message: String,
    },
}

/// Result of state operations.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Who holds a write lock, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    /// A random id for this holding.
    pub id: String,
    /// The actor.
    pub holder: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The command: apply, destroy, import, state rm...
    pub operation: String,
    /// RFC 3339 time it was taken.
    pub since: String,
    /// RFC 3339 time the lease runs out unless renewed.
    pub lease_until: String,
}

impl LockInfo {
    /// A lock for this process.
    pub fn for_this_process(holder: &str, operation: &str, lease: Duration) -> LockInfo {
        let now = chrono::Utc::now();
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            holder: holder.to_string(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            operation: operation.to_string(),
            since: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            lease_until: (now + lease).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// `alice (apply, pid 123 on ci-7, since 2026-11-23T12:00:00Z)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, pid {} on {}, since {})",
            self.holder, self.operation, self.pid, self.host, self.since
        )
    }

    /// Why this lock is stale (its holder is gone), if it is.
    pub fn stale_reason(&self) -> Option<String> {
        let this_host = gethostname::gethostname().to_string_lossy().into_owned();
        if self.host == this_host && !pid_alive(self.pid) {
            return Some(format!(
                "process {} no longer runs on {}",
                self.pid, self.host
            ));
        }
        let lease = chrono::DateTime::parse_from_rfc3339(&self.lease_until).ok()?;
        (lease < chrono::Utc::now()).then(|| format!("its lease ran out at {}", self.lease_until))
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || !Path::new("/proc/self").exists()
}

/// A completed step to record: the resource change and its audit event, written together.
#[derive(Debug, Clone)]
pub enum Change {
    /// The resource now exists with these values.
    Put(ResourceState),
    /// The resource is gone (deleted, or removed from state).
    Remove(Address),
    /// Resources (and their rollout records) now live at other addresses, (from, to) pairs
    /// made together (`state mv`, `moved` entries); dependencies on them follow.
    Move(Vec<(Address, Address)>),
    /// The environment's outputs are now these (all of them; any other is gone).
    Outputs(Vec<StoredOutput>),
    /// Nothing to persist but the audit event.
    None,
}

/// An output as the last apply left it (`converge output`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredOutput {
    /// Its name.
    pub name: String,
    /// Its value; a sensitive one (or a secret inside one) is stored only as its digest.
    pub value: crate::model::Value,
    /// Whether it is printed only with `--show-sensitive`.
    pub sensitive: bool,
    /// What it is, from the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The state of one environment, in some backend.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The environment this store serves.
    fn environment(&self) -> &str;

    /// The current serial: bumped by every persisted change.
    async fn serial(&self) -> Result<i64>;

    /// All managed resources, by address.
    async fn resources(&self) -> Result<Vec<ResourceState>>;

    /// Records a change and its audit event atomically; returns the stored event. While this
    /// store holds the write lock, it refuses to write once the lock was broken by someone else.
    async fn commit(&self, change: Change, event: NewEvent, ctx: &audit::Context) -> Result<Event>;

    /// Records that an operation on `resource` is starting (its `status` says which), before
    /// the cloud call: a new resource gets a row with the id it will have, an existing one
    /// keeps its last applied values. Not audited; the outcome is.
    async fn mark_in_flight(&self, resource: &ResourceState) -> Result<()>;

    /// Takes the write lock or fails naming its holder; a stale lock is taken over and returned.
    async fn try_lock(&self, info: &LockInfo) -> Result<Option<LockInfo>>;

    /// Why a recorded lock is stale (its holder is gone), if it is.
    async fn stale_reason(&self, lock: &LockInfo) -> Option<String> {
        lock.stale_reason()
    }

    /// Extends a held lock's lease.
    async fn renew_lock(&self, id: &str, lease_until: &str) -> Result<()>;

    /// Releases a lock this process holds.
    async fn unlock(&self, id: &str) -> Result<()>;

    /// The current lock, if any.
    async fn lock_status(&self) -> Result<Option<LockInfo>>;

    /// Removes any lock; returns what was removed.
    async fn force_unlock(&self) -> Result<Option<LockInfo>>;

    /// Audit events in chain order, and the recorded chain head (seq, hash).
    async fn audit_chain(&self) -> Result<(Vec<Event>, i64, String)>;

    /// Saves a rollout's progress (the controller's record), keeping any pending request.
    async fn save_rollout(&self, address: &Address, body: &serde_json::Value) -> Result<()>;

    /// The outputs the last apply recorded, by name.
    async fn outputs(&self) -> Result<Vec<StoredOutput>>;

    /// Every recorded rollout of the environment, by address.
    async fn rollouts(&self) -> Result<Vec<StoredRollout>>;

    /// Asks the controller of `address`'s rollout to promote or abort (no write lock needed);
    /// false when there is no rollout there.
    async fn request_rollout(&self, address: &Address, request: &str) -> Result<bool>;

    /// Takes (reads and clears) the pending request of `address`'s rollout.
    async fn take_rollout_request(&self, address: &Address) -> Result<Option<String>>;
}

/// A rollout as stored: its record (JSON) and a pending steering request.
#[derive(Debug, Clone)]
pub struct StoredRollout {
    /// The service.
    pub address: Address,
    /// The controller's record.
    pub body: serde_json::Value,
    /// `promote`, `promote_full` or `abort`, not yet acted on.
    pub request: Option<String>,
}

/// Opens the state of `env`: `url` if given (`postgres://`, a path, `sqlite://`), else
/// `state/<env>.db` under root.
pub async fn open(root: &Path, env: &str, url: Option<&str>) -> Result<Box<dyn StateStore>> {
    match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Ok(Box::new(PostgresStore::open(u, env).await?))
        }
        _ => Ok(Box::new(
            SqliteStore::open(&sqlite_file(root, env, url)?, env).await?,
        )),
    }
}

/// The SQLite file `open` uses for `env` (`None` for a PostgreSQL URL).
pub fn sqlite_path(
    root: &Path,
    env: &str,
    url: Option<&str>,
) -> Result<Option<std::path::PathBuf>> {
    match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Ok(None),
        _ => sqlite_file(root, env, url).map(Some),
    }
}

fn sqlite_file(root: &Path, env: &str, url: Option<&str>) -> Result<std::path::PathBuf> {
    let Some(u) = url else {
        return Ok(root.join("state").join(format!("{env}.db")));
    };
    let path = u.strip_prefix("sqlite://").unwrap_or(u);
    if path.contains("://") {
        return Err(StateError::UnsupportedUrl(u.to_string()));
    }
    let path = Path::new(path);
    Ok(if path.extension().is_some_and(|e| e == "db") {
        path.to_path_buf()
    } else {
        path.join(format!("{env}.db"))
    })
}
