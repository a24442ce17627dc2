//! Resources as read from the cloud: plain data that providers produce and `plan` compares.

use std::collections::BTreeMap;

use super::{Address, Value};

/// A resource as read from the cloud, in the kind's schema shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// Properties, as the schema names them.
    pub properties: Value,
    /// Outputs (arn, uri...).
    pub outputs: Value,
}

/// Live state by address; `None` when the resource no longer exists.
pub type LiveMap = BTreeMap<Address, Option<Live>>;
