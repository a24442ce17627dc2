//! Loads `environments/*.yaml` and `modules/*/module.yaml`, resolves variables, inputs and
//! references, and validates them against the kind schemas, reporting file:line:column errors.

pub mod compose;
mod diagnostic;
pub mod generate;
mod load;
mod moved;
pub mod template;
mod types;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use diagnostic::{ConfigError, ConfigErrors, Location, SourceFile};
pub use load::load;
pub use moved::{MoveEnd, Moved};
pub use types::{resolved_problems, resolved_refusal};

use crate::model::schema::KindSchema;
use crate::model::{Address, Expr, Lookup, Value};

/// Values for variables given outside the files.
#[derive(Debug, Clone, Default)]
pub struct VarOverrides {
    /// From `--var KEY=VALUE`: each must name a declared variable.
    pub cli: BTreeMap<String, String>,
    /// From `CONVERGE_VAR_<KEY>` (the part after the prefix): used when the variable exists.
    pub env: BTreeMap<String, String>,
    /// `validate`: a sensitive variable without a value is a known-unknown (a pull request
    /// from a fork has no secrets), not an error; `plan` and `apply` still need every value.
    pub without_secrets: bool,
}

/// AWS settings of an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// The region, e.g. `us-east-1`.
    pub region: String,
}

/// Azure settings of an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct AzureSettings {
    /// The subscription resources are created in.
    pub subscription_id: String,
    /// The Microsoft Entra tenant (else `AZURE_TENANT_ID`).
    pub tenant_id: Option<String>,
    /// `public` (default), `china` or `usgovernment`.
    pub cloud: Option<String>,
    /// `endpoints.resource_manager` (Azure Stack Hub, tests).
    pub resource_manager_endpoint: Option<String>,
    /// `endpoints.graph`.
    pub graph_endpoint: Option<String>,
}

/// The `providers` section of an environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Providers {
    /// AWS, when the environment uses it.
    pub aws: Option<AwsSettings>,
    /// Azure, when the environment uses it.
    pub azure: Option<AzureSettings>,
}

/// One resource of the desired graph, with its properties still as expressions.
#[derive(Debug, Clone)]
pub struct DesiredResource {
    /// Its address.
    pub address: Address,
    /// Its kind's schema.
    pub kind: &'static KindSchema,
    /// Its properties (a map expression).
    pub properties: Expr,
    /// Its `usage:` figures for usage-based prices (`Null` when absent).
    pub usage: Expr,
    /// The resources it depends on (references and `depends_on`).
    pub depends_on: BTreeSet<Address>,
    /// Where it is declared.
    pub location: Option<Location>,
}

/// The tag naming the environment a resource belongs to (DESIGN §8).
pub const ENVIRONMENT_TAG: &str = "converge:environment";
/// The tag naming a resource's address, so bills trace back to it (DESIGN §8).
pub const ADDRESS_TAG: &str = "converge:address";

impl DesiredResource {
    /// Its properties evaluated against `lookup`, with converge's own tags added when the kind
    /// takes tags, and the kind's defaults applied: what apply writes and plan compares.
    pub fn desired(&self, lookup: &dyn Lookup, environment: &str) -> Value {
        let mut properties = self.kind.normalize(&self.properties.eval(lookup));
        if self.kind.prop("tags").is_some() {
            let tags = match properties.get("tags") {
                Value::Map(_) => properties.get("tags").clone(),
                _ => Value::map(),
            }
            .with_entry(ENVIRONMENT_TAG, Value::str(environment))
            .with_entry(ADDRESS_TAG, Value::str(self.address.to_string()));
            properties = properties.with_entry("tags", tags);
        }
        properties
    }
}

/// A loaded, resolved and validated environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name (the file stem).
    pub name: String,
    /// What is legal but probably not meant (`FILE:LINE:COLUMN: ADDRESS: message`), printed by
    /// `validate` and `plan`.
    pub warnings: Vec<String>,
    /// Sensitive variables without a value, checked as unknown (`validate` only).
    pub unset_secrets: Vec<String>,
    /// What a reviewer should know (which hosts receive which credential), printed by
    /// `validate` and `plan` (`FILE:LINE:COLUMN: ADDRESS: note`).
    pub notes: Vec<String>,
    /// Provider settings.
    pub providers: Providers,
    /// The desired resources by address.
    pub resources: BTreeMap<Address, DesiredResource>,
    /// Every file read, the environment file first.
    pub files: Vec<SourceFile>,
    /// SHA-256 over the names and contents of the files read (recorded in saved plans).
    pub files_hash: String,
    /// The environment's cost budget, if it sets one.
    pub budget: Budget,
    /// `notify.webhook`: where cost anomalies are posted.
    pub notify_webhook: Option<String>,
    /// `promotion: { from, state_url }`: the environment whose completed rollouts prove an image.
    pub promotion: Option<Promotion>,
    /// `removed:` entries: resources taken out of the files, and whether apply deletes them.
    pub removed: Vec<Removed>,
    /// `outputs:` by name: values `converge output` prints after apply.
    pub outputs: BTreeMap<String, OutputDecl>,
    /// `moved:` entries of the environment file and (expanded per instance) of module files.
    pub moved: Vec<Moved>,
    /// The prices estimates use: the shipped tables until the caller loads the project's.
    pub prices: std::sync::Arc<crate::cost::PriceTable>,
}

/// An `outputs:` entry: `{ value: "${lb.dns_name}", description, sensitive }`.
#[derive(Debug, Clone)]
pub struct OutputDecl {
    /// Its value, an expression over the environment's resources and variables.
    pub value: Expr,
    /// What it is.
    pub description: Option<String>,
    /// Printed only with `--show-sensitive`; plans show it as `(sensitive)`.
    pub sensitive: bool,
    /// Where it is declared.
    pub location: Option<Location>,
}

/// A `removed: [{ from, destroy }]` entry (Terraform 1.7's `removed` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The address state holds.
    pub from: Address,
    /// false: apply forgets it (removes it from state), the cloud's resource kept.
    pub destroy: bool,
}

/// `promotion: { from: staging, state_url: … }`: apply rolls out only images that completed a
/// rollout in `from`, proven from its audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The environment images must pass first.
    pub from: String,
    /// Where its state lives (default: where this environment's state lives).
    pub state_url: Option<String>,
}

/// `budget: { monthly: 500, max_increase: 100 }` (USD; either may be left out).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// Highest monthly total after a plan.
    pub monthly: Option<f64>,
    /// Highest increase of the monthly total a plan may bring.
    pub max_increase: Option<f64>,
}

/// The environments of a project: the stems of `environments/*.yaml`, sorted.
pub fn list_environments(root: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("environments"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}
