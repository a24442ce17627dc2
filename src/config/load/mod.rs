//! Loads one environment's files into a resolved desired graph, collecting every error: the
//! loader's state and entry point here; `decode.rs` (sections, declarations, literals),
//! `resolve.rs` (instances and resources), `expressions.rs` (nodes, templates, references) and
//! `diagnostics.rs` (checks reported at the literal that gave a value).

mod compose;
mod decode;
mod diagnostics;
mod expressions;
mod pins;
mod resolve;

use decode::scalar_value;
use expressions::KnownOnly;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use marked_yaml::types::MarkedScalarNode;
use marked_yaml::{Node, Span};
use sha2::{Digest, Sha256};

use super::diagnostic::{ConfigError, ConfigErrors, SourceFile};
use super::template::{self, Piece};
use super::types::{Tag, accepts, attribute_type, tag_of_type, tag_of_value, value_problems};
use super::yaml;
use super::{
    AwsSettings, AzureSettings, Budget, DesiredResource, Environment, Providers, VarOverrides,
};
use crate::kinds;
use crate::model::schema::{KindSchema, Type};
use crate::model::{Address, Expr, Reference, Value, value_at};

const ENV_KEYS: &[&str] = &[
    "environment",
    "providers",
    "variables",
    "modules",
    "resources",
    "budget",
    "notify",
    "promotion",
    "removed",
    "moved",
    "outputs",
];
const OUTPUT_KEYS: &[&str] = &["value", "description", "sensitive"];
const MOVED_KEYS: &[&str] = &["from", "to"];
const REMOVED_KEYS: &[&str] = &["from", "destroy"];
const NOTIFY_KEYS: &[&str] = &["webhook"];
const PROMOTION_KEYS: &[&str] = &["from", "state_url"];
const BUDGET_KEYS: &[&str] = &["monthly", "max_increase"];
const PROVIDER_KEYS: &[&str] = &["aws", "azure"];
const AZURE_KEYS: &[&str] = &["subscription_id", "tenant_id", "cloud", "endpoints"];
const AZURE_ENDPOINT_KEYS: &[&str] = &["resource_manager", "graph"];
const AWS_KEYS: &[&str] = &["region"];
const RESOURCE_KEYS: &[&str] = &["type", "properties", "depends_on", "usage"];

/// `usage:` figures a resource may give for usage-based prices (DESIGN §8); keep in step with
/// the `usage` object of `converge schema`.
const USAGE_PROPS: &[crate::model::schema::Prop] = &[crate::model::schema::Prop::new(
    "storage_gb",
    Type::Number,
    "GB stored (aws.ecr_repository), priced per GB-month.",
)];
const INSTANCE_KEYS: &[&str] = &["source", "inputs"];
const MODULE_KEYS: &[&str] = &["inputs", "resources", "outputs", "moved"];
const INPUT_SPEC_KEYS: &[&str] = &["type", "default", "sensitive", "description"];
const VAR_SPEC_KEYS: &[&str] = &["default", "sensitive", "description"];
const ANY: Type = Type::Any;

/// A variable's resolved value.
#[derive(Debug, Clone)]
struct Var {
    value: Value,
    /// The node that gave the value (its default, or the plain value), where errors about
    /// the value point; `None` when `--var` or `CONVERGE_VAR_*` gave it.
    origin: Option<(usize, Node)>,
}

/// A resource as declared in a file, before its properties are resolved.
#[derive(Debug, Clone)]
struct ResourceDecl {
    key: String,
    key_span: Span,
    kind: &'static KindSchema,
    properties: Option<Node>,
    depends_on: Option<Node>,
    usage: Option<Node>,
}

/// A module input's declaration.
#[derive(Debug, Clone)]
struct InputSpec {
    ty: Type,
    default: Option<Value>,
    sensitive: bool,
}

/// A parsed `modules/<name>/module.yaml`.
#[derive(Debug, Clone)]
struct ModuleDef {
    file: usize,
    inputs: BTreeMap<String, InputSpec>,
    resources: Vec<ResourceDecl>,
    outputs: Vec<(String, Node)>,
    /// Its `moved:` entries, by resource key, with where each is written.
    moved: Vec<(String, String, Span)>,
}

/// A module instance as declared in the environment file.
#[derive(Debug, Clone)]
struct InstanceDecl {
    source: String,
    key_span: Span,
    inputs: Option<Node>,
}

/// A resolved expression with its static type.
type Typed = (Expr, Tag);

/// The names a piece of YAML can refer to.
#[derive(Debug, Clone)]
struct Scope {
    file: usize,
    /// `None` at the root; the instance name and its resolved inputs inside a module.
    module: Option<(String, BTreeMap<String, Typed>)>,
    /// Resource keys in this scope and their kinds (shared: every module instance's inputs
    /// are resolved in the root scope, which must not be copied per instance).
    keys: Arc<BTreeMap<String, &'static KindSchema>>,
}

impl Scope {
    fn address(&self, key: &str) -> Address {
        match &self.module {
            Some((instance, _)) => Address::in_module(instance, key),
            None => Address::root(key),
        }
    }
}

/// The state of one load: files read, errors found, what is resolved so far.
struct Loader<'a> {
    root: &'a Path,
    files: Vec<SourceFile>,
    errors: Vec<ConfigError>,
    vars: BTreeMap<String, Var>,
    module_defs: BTreeMap<String, Option<ModuleDef>>,
    instances: BTreeMap<String, InstanceDecl>,
    instance_outputs: BTreeMap<String, BTreeMap<String, Typed>>,
    in_progress: BTreeSet<String>,
    resources: BTreeMap<Address, DesiredResource>,
    root_keys: Arc<BTreeMap<String, &'static KindSchema>>,
    spans: BTreeMap<Address, (usize, Span)>,
    /// The node that gave each module input in the environment file, by (instance, input).
    input_origins: BTreeMap<(String, String), (usize, Node)>,
    /// Problems already reported at a place (one input used twice is one error).
    reported: BTreeSet<(usize, String, String)>,
    budget: Budget,
    notify_webhook: Option<String>,
    promotion: Option<super::Promotion>,
    /// `removed:` entries, with where each `from` is written.
    removed: Vec<(super::Removed, usize, Span)>,
    /// `moved:` entries, the environment file's and those of each module instance.
    moved: Vec<super::Moved>,
    /// `outputs:` of the environment file.
    outputs: BTreeMap<String, super::OutputDecl>,
    warnings: Vec<String>,
    /// Sensitive variables without a value (`validate`).
    unset_secrets: Vec<String>,
    /// What a reviewer should know (`FILE:LINE:COLUMN: ADDRESS: note`).
    notes: Vec<String>,
    /// What each host app claims on each host (its name, its nginx server), by claim: the
    /// address that claimed it first.
    host_claims: BTreeMap<String, String>,
    /// Where the properties of apps read from compose files were written, by address.
    compose_origins: BTreeMap<Address, compose::ComposeOrigins>,
}

/// Loads `environments/<name>.yaml` under `root` and everything it uses.
pub fn load(
    root: &Path,
    name: &str,
    overrides: &VarOverrides,
) -> Result<Environment, ConfigErrors> {
    let mut loader = Loader {
        root,
        files: Vec::new(),
        errors: Vec::new(),
        vars: BTreeMap::new(),
        module_defs: BTreeMap::new(),
        instances: BTreeMap::new(),
        instance_outputs: BTreeMap::new(),
        in_progress: BTreeSet::new(),
        resources: BTreeMap::new(),
        root_keys: Arc::default(),
        spans: BTreeMap::new(),
        input_origins: BTreeMap::new(),
        reported: BTreeSet::new(),
        host_claims: BTreeMap::new(),
        compose_origins: BTreeMap::new(),
        budget: Budget::default(),
        notify_webhook: None,
        promotion: None,
        removed: Vec::new(),
        moved: Vec::new(),
        outputs: BTreeMap::new(),
        warnings: Vec::new(),
        unset_secrets: Vec::new(),
        notes: Vec::new(),
    };
    let rel = format!("environments/{name}.yaml");
    let Some(file) = loader.read_file(&rel) else {
        return Err(ConfigErrors {
            errors: loader.errors,
        });
    };
    let providers = loader.load_environment(file, name, overrides);
    if loader.errors.is_empty() {
        loader.check_cycles();
    }
    pins::pin_versions(&mut loader.resources);
    if !loader.errors.is_empty() {
        return Err(ConfigErrors {
            errors: loader.errors,
        });
    }
    let mut hasher = Sha256::new();
    let mut files = loader.files.clone();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    for f in &files {
        hasher.update(f.name.as_bytes());
        hasher.update([0]);
        hasher.update(f.text.as_bytes());
        hasher.update([0]);
    }
    Ok(Environment {
        name: name.to_string(),
        providers,
        resources: loader.resources,
        files_hash: hex::encode(hasher.finalize()),
        files: loader.files,
        budget: loader.budget,
        notify_webhook: loader.notify_webhook,
        promotion: loader.promotion,
        removed: loader.removed.into_iter().map(|(r, _, _)| r).collect(),
        moved: loader.moved,
        outputs: loader.outputs,
        warnings: loader.warnings,
        unset_secrets: loader.unset_secrets,
        notes: loader.notes,
        prices: Arc::new(crate::cost::PriceTable::shipped().clone()),
    })
}

/// The largest desired-state file converge reads.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a desired-state file cannot be read.
#[derive(Debug, thiserror::Error)]
enum ProjectFileError {
    /// The file system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A device, a pipe or a directory.
    #[error("not a regular file")]
    NotRegular,
    /// Over [`MAX_FILE_BYTES`].
    #[error("larger than 16 MiB")]
    TooLarge,
    /// A symbolic link out of the project.
    #[error("it leads outside the project (to {})", .0.display())]
    Outside(std::path::PathBuf),
}

/// Reads `rel` below `root`: a regular file (not a device, a pipe or a directory), at most
/// [`MAX_FILE_BYTES`], inside the project (a symbolic link may not lead out of it).
fn read_project_file(root: &Path, rel: &str) -> Result<String, ProjectFileError> {
    use std::io::Read;
    let path = root.join(rel);
    let meta = std::fs::metadata(&path)?;
    if !meta.is_file() {
        return Err(ProjectFileError::NotRegular);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ProjectFileError::TooLarge);
    }
    let real = path.canonicalize()?;
    let root_real = root.canonicalize()?;
    if !real.starts_with(&root_real) {
        return Err(ProjectFileError::Outside(real));
    }
    let mut text = String::new();
    std::fs::File::open(&real)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ProjectFileError::TooLarge);
    }
    Ok(text)
}

impl Loader<'_> {
    pub(super) fn read_file(&mut self, rel: &str) -> Option<usize> {
        match read_project_file(self.root, rel) {
            Ok(text) => {
                self.files.push(SourceFile::new(rel, text));
                Some(self.files.len() - 1)
            }
            Err(why) => {
                self.errors.push(ConfigError::general(format!(
                    "cannot read {}: {why}",
                    self.root.join(rel).display()
                )));
                None
            }
        }
    }

    pub(super) fn err(
        &mut self,
        file: usize,
        span: &Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        let e = ConfigError::at(&self.files[file], span, message, label);
        self.errors.push(e);
    }

    fn check_cycles(&mut self) {
        let graph = crate::graph::DependencyGraph::from_desired(self.resources.values());
        if let Err(cycle) = graph.check_acyclic() {
            let first = &cycle[0];
            let (file, span) = self.spans[first];
            let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
            self.err(
                file,
                &span,
                format!("reference cycle: {} -> {}", names.join(" -> "), names[0]),
                "this resource depends on itself",
            );
        }
    }
}
