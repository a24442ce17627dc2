//! A backup converge took before a rollout's migrations: where it is, how big, its digest and
//! the revision it was taken before. The rollout record, the audit trail, `rollout history`
//! and `converge backups` all carry this one type.

use serde::{Deserialize, Serialize};

/// One backup file on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// The accessory it was taken of.
    pub accessory: String,
    /// The host (`address:port`).
    pub host: String,
    /// The file on the host.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// When it was taken (RFC 3339).
    pub time: String,
    /// The revision whose rollout took it (a host app's colour).
    pub revision: String,
    /// The rollout that took it.
    #[serde(default)]
    pub rollout: String,
    /// Where it was copied (`s3://bucket/key`), when `copy_to` asks for a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
}

/// Files a backup step removed to keep the newest `keep` (per host and accessory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// The host (`address:port`).
    pub host: String,
    /// The file removed.
    pub path: String,
}
