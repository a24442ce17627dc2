//! A managed resource as state records it: plain data, read and written by `state`, read by
//! `plan` and the refresh.

use serde::{Deserialize, Serialize};

use super::{Address, Value};

/// Whether a stored resource is fully applied, or an operation on it was started and has not
/// been seen to complete (the process was killed, or the cloud call failed part way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    /// The last operation on it completed.
    Applied,
    /// A create was started: the resource may or may not exist; the next plan re-reads it.
    Creating,
    /// An update was started.
    Updating,
    /// A delete was started.
    Deleting,
}

impl ResourceStatus {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Applied => "applied",
            ResourceStatus::Creating => "creating",
            ResourceStatus::Updating => "updating",
            ResourceStatus::Deleting => "deleting",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ResourceStatus> {
        [
            ResourceStatus::Applied,
            ResourceStatus::Creating,
            ResourceStatus::Updating,
            ResourceStatus::Deleting,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether an operation on it was started and not seen to complete.
    pub fn in_flight(self) -> bool {
        self != ResourceStatus::Applied
    }
}

/// One managed resource as last applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Its address.
    pub address: Address,
    /// Its kind (`aws.ecr_repository`...).
    pub kind: String,
    /// The cloud's id for it (name, ARN...).
    pub remote_id: String,
    /// Properties as last applied (secrets redacted to digests).
    pub properties: Value,
    /// Outputs (arn, uri...).
    pub outputs: Value,
    /// Addresses it depended on when applied: deletes run in the reverse order.
    pub dependencies: Vec<Address>,
    /// Applied, or an operation on it in flight.
    pub status: ResourceStatus,
}
