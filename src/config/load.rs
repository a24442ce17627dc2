//! Loads one environment's files into a resolved desired graph, collecting every error.

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
];
const NOTIFY_KEYS: &[&str] = &["webhook"];
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
const MODULE_KEYS: &[&str] = &["inputs", "resources", "outputs"];
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
    /// Resource keys in this scope and their kinds.
    keys: BTreeMap<String, &'static KindSchema>,
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
    root_keys: BTreeMap<String, &'static KindSchema>,
    spans: BTreeMap<Address, (usize, Span)>,
    /// The node that gave each module input in the environment file, by (instance, input).
    input_origins: BTreeMap<(String, String), (usize, Node)>,
    /// Problems already reported at a place (one input used twice is one error).
    reported: BTreeSet<(usize, String, String)>,
    budget: Budget,
    notify_webhook: Option<String>,
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
        root_keys: BTreeMap::new(),
        spans: BTreeMap::new(),
        input_origins: BTreeMap::new(),
        reported: BTreeSet::new(),
        budget: Budget::default(),
        notify_webhook: None,
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
        prices: Arc::new(crate::cost::PriceTable::shipped().clone()),
    })
}

impl Loader<'_> {
    fn read_file(&mut self, rel: &str) -> Option<usize> {
        match std::fs::read_to_string(self.root.join(rel)) {
            Ok(text) => {
                self.files.push(SourceFile {
                    name: rel.to_string(),
                    text: Arc::new(text),
                });
                Some(self.files.len() - 1)
            }
            Err(e) => {
                self.errors.push(ConfigError::general(format!(
                    "cannot read {}: {e}",
                    self.root.join(rel).display()
                )));
                None
            }
        }
    }

    fn err(
        &mut self,
        file: usize,
        span: &Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        let e = ConfigError::at(&self.files[file], span, message, label);
        self.errors.push(e);
    }

    fn load_environment(&mut self, file: usize, name: &str, overrides: &VarOverrides) -> Providers {
        let f = self.files[file].clone();
        let doc = match yaml::parse(&f, file) {
            Ok(doc) => doc,
            Err(e) => {
                self.errors.push(e);
                return Providers::default();
            }
        };
        let Some(top) = yaml::expect_mapping(&f, &doc, "an environment file", &mut self.errors)
        else {
            return Providers::default();
        };
        yaml::reject_unknown_keys(&f, top, ENV_KEYS, "the environment file", &mut self.errors);
        match top.get_node("environment") {
            Some(node) => {
                if let Some(s) = yaml::expect_string(&f, node, "`environment`", &mut self.errors)
                    && s.as_str() != name
                {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "`environment: {}` does not match the file name {name}.yaml",
                            s.as_str()
                        ),
                        "must equal the file name",
                    );
                }
            }
            None => self.err(
                file,
                top.span(),
                "missing key `environment`",
                "in this file",
            ),
        }
        let providers = self.load_providers(file, top.get_node("providers"));
        if let Some(node) = top.get_node("budget")
            && let Some(map) = yaml::expect_mapping(&f, node, "`budget`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, map, BUDGET_KEYS, "`budget`", &mut self.errors);
            for key in BUDGET_KEYS {
                let Some(Node::Scalar(v)) = map.get_node(key) else {
                    continue;
                };
                match v.as_str().parse::<f64>() {
                    Ok(n) if n >= 0.0 => {
                        if *key == "monthly" {
                            self.budget.monthly = Some(n);
                        } else {
                            self.budget.max_increase = Some(n);
                        }
                    }
                    _ => self.err(
                        file,
                        v.span(),
                        format!(
                            "`budget.{key}` is a number of US dollars, found `{}`",
                            v.as_str()
                        ),
                        "not an amount",
                    ),
                }
            }
        }
        if let Some(node) = top.get_node("notify")
            && let Some(map) = yaml::expect_mapping(&f, node, "`notify`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, map, NOTIFY_KEYS, "`notify`", &mut self.errors);
            if let Some(node) = map.get_node("webhook")
                && let Some(url) =
                    yaml::expect_string(&f, node, "`notify.webhook`", &mut self.errors)
            {
                if url.as_str().starts_with("http://") || url.as_str().starts_with("https://") {
                    self.notify_webhook = Some(url.as_str().to_string());
                } else {
                    self.err(
                        file,
                        url.span(),
                        format!(
                            "`notify.webhook` must be an http(s) URL, found `{}`",
                            url.as_str()
                        ),
                        "not a URL",
                    );
                }
            }
        }
        self.load_variables(file, top.get_node("variables"), overrides);

        let root_decls = match top.get_node("resources") {
            Some(node) => self.resource_decls(file, node),
            None => Vec::new(),
        };
        if let Some(node) = top.get_node("modules") {
            self.instance_decls(file, node);
        }
        for (instance, decl) in self.instances.clone() {
            if root_decls.iter().any(|d| d.key == instance) {
                self.err(
                    file,
                    &decl.key_span,
                    format!("module instance `{instance}` has the name of a root resource"),
                    "names must be unique",
                );
            }
        }
        self.root_keys = root_decls.iter().map(|d| (d.key.clone(), d.kind)).collect();
        let scope = self.root_scope();
        for decl in &root_decls {
            self.resolve_resource(&scope, decl);
        }
        for instance in self.instances.keys().cloned().collect::<Vec<_>>() {
            self.resolve_instance(&instance);
        }
        if providers.aws.is_none() && self.resources.values().any(|r| r.kind.provider() == "aws") {
            self.err(
                file,
                top.span(),
                "resources of kind aws.* need `providers: { aws: { region: ... } }`",
                "in this file",
            );
        }
        if providers.azure.is_none()
            && self
                .resources
                .values()
                .any(|r| r.kind.provider() == "azure")
        {
            self.err(
                file,
                top.span(),
                "resources of kind azure.* need `providers: { azure: { subscription_id: ... } }`",
                "in this file",
            );
        }
        providers
    }

    fn load_providers(&mut self, file: usize, node: Option<&Node>) -> Providers {
        let mut providers = Providers::default();
        let Some(node) = node else { return providers };
        let f = self.files[file].clone();
        let Some(map) = yaml::expect_mapping(&f, node, "`providers`", &mut self.errors) else {
            return providers;
        };
        yaml::reject_unknown_keys(&f, map, PROVIDER_KEYS, "`providers`", &mut self.errors);
        if let Some(aws) = map.get_node("aws")
            && let Some(aws) = yaml::expect_mapping(&f, aws, "`providers.aws`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, aws, AWS_KEYS, "`providers.aws`", &mut self.errors);
            match aws.get_node("region") {
                Some(r) => {
                    if let Some(r) = yaml::expect_string(&f, r, "`region`", &mut self.errors) {
                        providers.aws = Some(AwsSettings {
                            region: r.as_str().to_string(),
                        });
                    }
                }
                None => self.err(
                    file,
                    aws.span(),
                    "missing key `region` in `providers.aws`",
                    "here",
                ),
            }
        }
        if let Some(azure) = map.get_node("azure")
            && let Some(azure) =
                yaml::expect_mapping(&f, azure, "`providers.azure`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, azure, AZURE_KEYS, "`providers.azure`", &mut self.errors);
            let tenant_id = azure
                .get_node("tenant_id")
                .and_then(|t| yaml::expect_string(&f, t, "`tenant_id`", &mut self.errors))
                .map(|t| t.as_str().to_string());
            let cloud = azure
                .get_node("cloud")
                .and_then(|c| yaml::expect_string(&f, c, "`cloud`", &mut self.errors))
                .filter(|c| {
                    let ok = ["public", "china", "usgovernment"].contains(&c.as_str());
                    if !ok {
                        self.err(
                            file,
                            c.span(),
                            "`cloud` is public, china or usgovernment",
                            "unknown cloud",
                        );
                    }
                    ok
                })
                .map(|c| c.as_str().to_string());
            let mut endpoint = |key: &str| -> Option<String> {
                let endpoints = azure.get_node("endpoints")?;
                let map = yaml::expect_mapping(
                    &f,
                    endpoints,
                    "`providers.azure.endpoints`",
                    &mut self.errors,
                )?;
                yaml::reject_unknown_keys(
                    &f,
                    map,
                    AZURE_ENDPOINT_KEYS,
                    "`providers.azure.endpoints`",
                    &mut self.errors,
                );
                let node = map.get_node(key)?;
                yaml::expect_string(&f, node, key, &mut self.errors).map(|v| v.as_str().to_string())
            };
            let resource_manager_endpoint = endpoint("resource_manager");
            let graph_endpoint = endpoint("graph");
            match azure.get_node("subscription_id") {
                Some(s) => {
                    if let Some(s) =
                        yaml::expect_string(&f, s, "`subscription_id`", &mut self.errors)
                    {
                        providers.azure = Some(AzureSettings {
                            subscription_id: s.as_str().to_string(),
                            tenant_id,
                            cloud,
                            resource_manager_endpoint,
                            graph_endpoint,
                        });
                    }
                }
                None => self.err(
                    file,
                    azure.span(),
                    "missing key `subscription_id` in `providers.azure`",
                    "here",
                ),
            }
        }
        providers
    }

    fn load_variables(&mut self, file: usize, node: Option<&Node>, overrides: &VarOverrides) {
        let f = self.files[file].clone();
        if let Some(node) = node
            && let Some(map) = yaml::expect_mapping(&f, node, "`variables`", &mut self.errors)
        {
            for (key, value) in map.iter() {
                let spec = value.as_mapping().filter(|m| {
                    m.keys().all(|k| VAR_SPEC_KEYS.contains(&k.as_str()))
                        && (m.get_node("default").is_some() || m.get_node("sensitive").is_some())
                });
                let origin = match spec {
                    Some(m) => m.get_node("default").cloned(),
                    None => Some(value.clone()),
                };
                let (default, sensitive) = match spec {
                    Some(m) => {
                        let sensitive = match m.get_node("sensitive") {
                            Some(n) => self
                                .literal(file, n, &Type::Bool)
                                .as_bool()
                                .unwrap_or(false),
                            None => false,
                        };
                        (
                            m.get_node("default").map(|n| self.literal(file, n, &ANY)),
                            sensitive,
                        )
                    }
                    None => (Some(self.literal(file, value, &ANY)), false),
                };
                let given = overrides.cli.get(key.as_str()).or_else(|| {
                    overrides
                        .env
                        .get(key.as_str())
                        .or_else(|| overrides.env.get(&key.as_str().to_uppercase()))
                });
                let origin = origin.filter(|_| given.is_none()).map(|n| (file, n));
                let value = match (given, default) {
                    (Some(text), default) => parse_override(text, default.as_ref()),
                    (None, Some(default)) => default,
                    (None, None) => {
                        self.err(
                            file,
                            key.span(),
                            format!(
                                "variable `{}` has no default and no value was given",
                                key.as_str()
                            ),
                            "needs a value",
                        );
                        if let Some(e) = self.errors.pop() {
                            self.errors.push(e.with_help(format!(
                                "pass --var {0}=VALUE or set CONVERGE_VAR_{0}",
                                key.as_str()
                            )));
                        }
                        Value::Null
                    }
                };
                let value = if sensitive {
                    value.into_sensitive()
                } else {
                    value
                };
                self.vars
                    .insert(key.as_str().to_string(), Var { value, origin });
            }
        }
        for key in overrides.cli.keys() {
            if !self.vars.contains_key(key) {
                self.errors.push(ConfigError::general(format!(
                    "--var {key}=...: environment file {} declares no variable `{key}`",
                    f.name
                )));
            }
        }
    }

    /// A YAML value with no references allowed (variables, defaults).
    fn literal(&mut self, file: usize, node: &Node, expected: &Type) -> Value {
        let f = self.files[file].clone();
        match node {
            Node::Scalar(s) => {
                if s.as_str().contains("${") {
                    self.err(
                        file,
                        s.span(),
                        "references are not allowed here",
                        "a plain value is needed",
                    );
                    return Value::Null;
                }
                let v = scalar_value(s, expected);
                if !accepts(expected, tag_of_value(&v)) {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "expected {}, found {}",
                            expected.describe(),
                            tag_of_value(&v).describe()
                        ),
                        "wrong type",
                    );
                }
                v
            }
            Node::Sequence(items) => {
                Value::List(items.iter().map(|n| self.literal(file, n, &ANY)).collect())
            }
            Node::Mapping(m) => {
                let _ = &f;
                Value::Map(
                    m.iter()
                        .map(|(k, v)| (k.as_str().to_string(), self.literal(file, v, &ANY)))
                        .collect(),
                )
            }
        }
    }

    fn resource_decls(&mut self, file: usize, node: &Node) -> Vec<ResourceDecl> {
        let f = self.files[file].clone();
        let Some(map) = yaml::expect_mapping(&f, node, "`resources`", &mut self.errors) else {
            return Vec::new();
        };
        let mut decls = Vec::new();
        for (key, body) in map.iter() {
            if Address::parse(key.as_str()).is_none() || key.as_str().contains('.') {
                self.err(
                    file,
                    key.span(),
                    format!("`{}` is not a valid resource key", key.as_str()),
                    "use letters, digits, `_` and `-`",
                );
                continue;
            }
            let Some(body) = yaml::expect_mapping(
                &f,
                body,
                &format!("resource `{}`", key.as_str()),
                &mut self.errors,
            ) else {
                continue;
            };
            yaml::reject_unknown_keys(
                &f,
                body,
                RESOURCE_KEYS,
                &format!("resource `{}`", key.as_str()),
                &mut self.errors,
            );
            let Some(type_node) = body.get_node("type") else {
                self.err(
                    file,
                    key.span(),
                    format!("resource `{}` has no `type`", key.as_str()),
                    "missing `type`",
                );
                continue;
            };
            let Some(type_name) = yaml::expect_string(&f, type_node, "`type`", &mut self.errors)
            else {
                continue;
            };
            let Some(kind) = kinds::lookup(type_name.as_str()) else {
                let names: Vec<&str> = kinds::schemas().map(|k| k.kind).collect();
                let e = yaml::unknown_key(&f, type_name, &names, "resource kinds");
                self.errors.push(e);
                continue;
            };
            decls.push(ResourceDecl {
                key: key.as_str().to_string(),
                key_span: *key.span(),
                kind,
                properties: body.get_node("properties").cloned(),
                depends_on: body.get_node("depends_on").cloned(),
                usage: body.get_node("usage").cloned(),
            });
        }
        decls
    }

    fn instance_decls(&mut self, file: usize, node: &Node) {
        let f = self.files[file].clone();
        let Some(map) = yaml::expect_mapping(&f, node, "`modules`", &mut self.errors) else {
            return;
        };
        for (key, body) in map.iter() {
            let Some(body) = yaml::expect_mapping(
                &f,
                body,
                &format!("module `{}`", key.as_str()),
                &mut self.errors,
            ) else {
                continue;
            };
            yaml::reject_unknown_keys(
                &f,
                body,
                INSTANCE_KEYS,
                &format!("module `{}`", key.as_str()),
                &mut self.errors,
            );
            let Some(source) = body.get_node("source") else {
                self.err(
                    file,
                    key.span(),
                    format!("module `{}` has no `source`", key.as_str()),
                    "missing `source`",
                );
                continue;
            };
            let Some(source) = yaml::expect_string(&f, source, "`source`", &mut self.errors) else {
                continue;
            };
            if !self.module_defs.contains_key(source.as_str()) {
                let def = self.load_module_def(file, source);
                self.module_defs.insert(source.as_str().to_string(), def);
            }
            self.instances.insert(
                key.as_str().to_string(),
                InstanceDecl {
                    source: source.as_str().to_string(),
                    key_span: *key.span(),
                    inputs: body.get_node("inputs").cloned(),
                },
            );
        }
    }

    fn load_module_def(&mut self, from: usize, source: &MarkedScalarNode) -> Option<ModuleDef> {
        let name = source.as_str();
        let rel = format!("modules/{name}/module.yaml");
        if !self.root.join(&rel).is_file() {
            self.err(
                from,
                source.span(),
                format!("module source `{name}` not found: no {rel}"),
                "unknown module",
            );
            return None;
        }
        let file = self.read_file(&rel)?;
        let f = self.files[file].clone();
        let doc = match yaml::parse(&f, file) {
            Ok(d) => d,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let top = yaml::expect_mapping(&f, &doc, "a module file", &mut self.errors)?;
        yaml::reject_unknown_keys(&f, top, MODULE_KEYS, "the module file", &mut self.errors);
        let mut inputs = BTreeMap::new();
        if let Some(node) = top.get_node("inputs")
            && let Some(map) = yaml::expect_mapping(&f, node, "`inputs`", &mut self.errors)
        {
            for (key, spec) in map.iter() {
                let Some(spec) = yaml::expect_mapping(
                    &f,
                    spec,
                    &format!("input `{}`", key.as_str()),
                    &mut self.errors,
                ) else {
                    continue;
                };
                yaml::reject_unknown_keys(
                    &f,
                    spec,
                    INPUT_SPEC_KEYS,
                    &format!("input `{}`", key.as_str()),
                    &mut self.errors,
                );
                let ty = match spec.get_scalar("type").map(|s| s.as_str()) {
                    None | Some("any") => Type::Any,
                    Some("string") => Type::String,
                    Some("number") => Type::Number,
                    Some("bool") => Type::Bool,
                    Some("list") => Type::List(&ANY),
                    Some("map") => Type::Map(&ANY),
                    Some(other) => {
                        let span = *spec
                            .get_scalar("type")
                            .map(|s| s.span())
                            .unwrap_or(key.span());
                        self.err(
                            file,
                            &span,
                            format!("unknown input type `{other}`"),
                            "one of string, number, bool, list, map, any",
                        );
                        Type::Any
                    }
                };
                let default = spec.get_node("default").map(|n| self.literal(file, n, &ty));
                let sensitive = spec
                    .get_node("sensitive")
                    .map(|n| self.literal(file, n, &Type::Bool));
                inputs.insert(
                    key.as_str().to_string(),
                    InputSpec {
                        ty,
                        default,
                        sensitive: sensitive.and_then(|v| v.as_bool()).unwrap_or(false),
                    },
                );
            }
        }
        let resources = match top.get_node("resources") {
            Some(node) => self.resource_decls(file, node),
            None => Vec::new(),
        };
        let mut outputs = Vec::new();
        if let Some(node) = top.get_node("outputs")
            && let Some(map) = yaml::expect_mapping(&f, node, "`outputs`", &mut self.errors)
        {
            outputs = map
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect();
        }
        Some(ModuleDef {
            file,
            inputs,
            resources,
            outputs,
        })
    }

    /// Resolves a module instance once: inputs, resources and outputs.
    fn resolve_instance(&mut self, instance: &str) -> Option<BTreeMap<String, Typed>> {
        if let Some(outputs) = self.instance_outputs.get(instance) {
            return Some(outputs.clone());
        }
        let decl = self.instances.get(instance)?.clone();
        let def = self.module_defs.get(&decl.source).cloned().flatten()?;
        if !self.in_progress.insert(instance.to_string()) {
            return None;
        }
        let root_file = 0;
        let f = self.files[root_file].clone();
        let root_scope = self.root_scope();
        let mut inputs: BTreeMap<String, Typed> = BTreeMap::new();
        let given = match &decl.inputs {
            Some(node) => yaml::expect_mapping(&f, node, "`inputs`", &mut self.errors).cloned(),
            None => None,
        };
        if let Some(given) = &given {
            for (key, node) in given.iter() {
                match def.inputs.get(key.as_str()) {
                    Some(spec) => {
                        self.input_origins.insert(
                            (instance.to_string(), key.as_str().to_string()),
                            (root_file, node.clone()),
                        );
                        let (expr, tag) = self.convert(&root_scope, node, &spec.ty);
                        let expr = match (spec.sensitive, expr) {
                            (true, Expr::Literal(v)) => Expr::Literal(v.into_sensitive()),
                            (_, e) => e,
                        };
                        inputs.insert(key.as_str().to_string(), (expr, tag));
                    }
                    None => {
                        let allowed: Vec<&str> = def.inputs.keys().map(String::as_str).collect();
                        let e = yaml::unknown_key(
                            &f,
                            key,
                            &allowed,
                            &format!("inputs of module `{}`", decl.source),
                        );
                        self.errors.push(e);
                    }
                }
            }
        }
        for (name, spec) in &def.inputs {
            if inputs.contains_key(name) {
                continue;
            }
            match &spec.default {
                Some(v) => {
                    let v = if spec.sensitive {
                        v.clone().into_sensitive()
                    } else {
                        v.clone()
                    };
                    inputs.insert(name.clone(), (Expr::Literal(v.clone()), tag_of_value(&v)));
                }
                None => {
                    let span = given.as_ref().map(|g| *g.span()).unwrap_or(decl.key_span);
                    self.err(
                        root_file,
                        &span,
                        format!(
                            "module `{instance}` (source `{}`) is missing input `{name}`",
                            decl.source
                        ),
                        format!("add `{name}` here"),
                    );
                }
            }
        }
        let scope = Scope {
            file: def.file,
            module: Some((instance.to_string(), inputs)),
            keys: def
                .resources
                .iter()
                .map(|d| (d.key.clone(), d.kind))
                .collect(),
        };
        for r in &def.resources {
            self.resolve_resource(&scope, r);
        }
        let mut outputs = BTreeMap::new();
        for (name, node) in &def.outputs {
            let typed = self.convert(&scope, node, &ANY);
            outputs.insert(name.clone(), typed);
        }
        self.in_progress.remove(instance);
        self.instance_outputs
            .insert(instance.to_string(), outputs.clone());
        Some(outputs)
    }

    fn root_scope(&self) -> Scope {
        Scope {
            file: 0,
            module: None,
            keys: self.root_keys.clone(),
        }
    }

    fn resolve_resource(&mut self, scope: &Scope, decl: &ResourceDecl) {
        let address = scope.address(&decl.key);
        let properties = match &decl.properties {
            Some(node) => self.convert(scope, node, &Type::Object(decl.kind.props)).0,
            None => {
                if let Some(p) = decl.kind.props.iter().find(|p| p.required) {
                    self.err(
                        scope.file,
                        &decl.key_span,
                        format!(
                            "resource `{address}` ({}) is missing property `{}`",
                            decl.kind.kind, p.name
                        ),
                        "no `properties`",
                    );
                }
                Expr::Map(BTreeMap::new())
            }
        };
        self.check_rules(scope, decl, &properties);
        let usage = match &decl.usage {
            Some(node) => self.convert(scope, node, &Type::Object(USAGE_PROPS)).0,
            None => Expr::Literal(crate::model::Value::Null),
        };
        let mut depends_on = properties.dependencies();
        if let Some(node) = &decl.depends_on {
            match node {
                Node::Sequence(items) => {
                    for item in items.iter() {
                        match item.as_scalar() {
                            Some(s) if scope.keys.contains_key(s.as_str()) => {
                                depends_on.insert(scope.address(s.as_str()));
                            }
                            Some(s) => self.err(
                                scope.file,
                                s.span(),
                                format!(
                                    "`depends_on` names `{}`, which is not a resource here",
                                    s.as_str()
                                ),
                                "unknown resource",
                            ),
                            None => self.err(
                                scope.file,
                                item.span(),
                                "`depends_on` takes resource keys",
                                "expected a key",
                            ),
                        }
                    }
                }
                other => self.err(
                    scope.file,
                    other.span(),
                    "`depends_on` must be a list of resource keys",
                    "expected a list",
                ),
            }
        }
        let location = ConfigError::at(&self.files[scope.file], &decl.key_span, "", "").location;
        self.spans
            .insert(address.clone(), (scope.file, decl.key_span));
        self.resources.insert(
            address.clone(),
            DesiredResource {
                address,
                kind: decl.kind,
                properties,
                usage,
                depends_on,
                location,
            },
        );
    }
}

impl Loader<'_> {
    /// Converts a YAML node into an expression of the `expected` type, reporting mismatches.
    fn convert(&mut self, scope: &Scope, node: &Node, expected: &Type) -> Typed {
        let file = scope.file;
        match node {
            Node::Scalar(s) if s.as_str().contains("${") => {
                self.convert_template(scope, s, expected)
            }
            Node::Scalar(s) => {
                let v = scalar_value(s, expected);
                let tag = tag_of_value(&v);
                if !accepts(expected, tag) {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "expected {}, found {} `{}`",
                            expected.describe(),
                            tag.describe(),
                            s.as_str()
                        ),
                        "wrong type",
                    );
                } else if let Some((_, problem)) = value_problems(expected, &v).into_iter().next() {
                    self.err(file, s.span(), problem, "not an allowed value");
                }
                (Expr::Literal(v), tag)
            }
            Node::Sequence(items) => {
                let inner = match expected {
                    Type::List(inner) => **inner,
                    Type::Any => Type::Any,
                    other => {
                        self.err(
                            file,
                            node.span(),
                            format!("expected {}, found a list", other.describe()),
                            "wrong type",
                        );
                        return (Expr::Literal(Value::Null), Tag::Any);
                    }
                };
                let items = items
                    .iter()
                    .map(|n| self.convert(scope, n, &inner).0)
                    .collect();
                (Expr::List(items), Tag::List)
            }
            Node::Mapping(map) => {
                let mut out = BTreeMap::new();
                match expected {
                    Type::Object(props) => {
                        let allowed: Vec<&str> = props.iter().map(|p| p.name).collect();
                        for (key, value) in map.iter() {
                            match props.iter().find(|p| p.name == key.as_str()) {
                                Some(prop) => {
                                    out.insert(
                                        key.as_str().to_string(),
                                        self.convert(scope, value, &prop.ty).0,
                                    );
                                }
                                None => {
                                    let f = self.files[file].clone();
                                    let e =
                                        yaml::unknown_key(&f, key, &allowed, "these properties");
                                    self.errors.push(e);
                                }
                            }
                        }
                        for prop in props.iter().filter(|p| p.required) {
                            if map.get_node(prop.name).is_none() {
                                self.err(
                                    file,
                                    node.span(),
                                    format!("missing property `{}`", prop.name),
                                    format!("add `{}`", prop.name),
                                );
                            }
                        }
                    }
                    Type::Map(inner) => {
                        for (key, value) in map.iter() {
                            out.insert(
                                key.as_str().to_string(),
                                self.convert(scope, value, inner).0,
                            );
                        }
                    }
                    Type::Any => {
                        for (key, value) in map.iter() {
                            out.insert(
                                key.as_str().to_string(),
                                self.convert(scope, value, &ANY).0,
                            );
                        }
                    }
                    other => {
                        self.err(
                            file,
                            node.span(),
                            format!("expected {}, found a mapping", other.describe()),
                            "wrong type",
                        );
                        return (Expr::Literal(Value::Null), Tag::Any);
                    }
                }
                (Expr::Map(out), Tag::Map)
            }
        }
    }

    fn convert_template(&mut self, scope: &Scope, s: &MarkedScalarNode, expected: &Type) -> Typed {
        let pieces = match template::parse(s.as_str()) {
            Ok(p) => p,
            Err(e) => {
                self.err(scope.file, s.span(), e, "bad reference");
                return (Expr::Literal(Value::Null), Tag::Any);
            }
        };
        if let [Piece::Ref { path, .. }] = pieces.as_slice() {
            let Some((expr, tag)) = self.resolve_ref(scope, s, path) else {
                return (Expr::Literal(Value::Null), Tag::Any);
            };
            if !accepts(expected, tag) {
                self.err(
                    scope.file,
                    s.span(),
                    format!(
                        "`{}` is {}, but {} is expected here",
                        s.as_str(),
                        tag.describe(),
                        expected.describe()
                    ),
                    "type mismatch",
                );
            } else if matches!(path[0].as_str(), "var" | "input") {
                self.check_referenced(scope, s, &expr, expected);
            }
            return (expr, tag);
        }
        if !accepts(expected, Tag::String) {
            self.err(
                scope.file,
                s.span(),
                format!(
                    "an interpolated string is a string, but {} is expected here",
                    expected.describe()
                ),
                "type mismatch",
            );
        }
        let mut parts = Vec::new();
        for piece in &pieces {
            match piece {
                Piece::Text(t) => parts.push(Expr::Literal(Value::str(t.clone()))),
                Piece::Ref { path, .. } => match self.resolve_ref(scope, s, path) {
                    Some((expr, _)) => parts.push(expr),
                    None => return (Expr::Literal(Value::Null), Tag::Any),
                },
            }
        }
        (Expr::Template(parts), Tag::String)
    }

    /// Resolves `${path}` in `scope` to an expression over absolute addresses.
    fn resolve_ref(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        path: &[String],
    ) -> Option<Typed> {
        let file = scope.file;
        let head = path[0].as_str();
        let text = format!("${{{}}}", path.join("."));
        match head {
            "var" => {
                if scope.module.is_some() {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: modules cannot read variables"),
                        "use `${input.NAME}`",
                    );
                    return None;
                }
                let Some(var) = self.vars.get(&path[1]) else {
                    let known: Vec<String> = self.vars.keys().cloned().collect();
                    let e = ConfigError::at(
                        &self.files[file],
                        s.span(),
                        format!("`{text}`: no variable `{}`", path[1]),
                        "dangling reference",
                    )
                    .with_help(format!(
                        "variables: {}",
                        if known.is_empty() {
                            "(none)".into()
                        } else {
                            known.join(", ")
                        }
                    ));
                    self.errors.push(e);
                    return None;
                };
                let v = value_at(&var.value, &path[2..]);
                Some((Expr::Literal(v.clone()), tag_of_value(&v)))
            }
            "input" => {
                let Some((_, inputs)) = &scope.module else {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: inputs exist only inside modules"),
                        "use `${var.NAME}`",
                    );
                    return None;
                };
                let Some((expr, tag)) = inputs.get(&path[1]).cloned() else {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: the module declares no input `{}`", path[1]),
                        "dangling reference",
                    );
                    return None;
                };
                self.index_expr(scope, s, &text, expr, tag, &path[2..])
            }
            "module" => {
                if scope.module.is_some() {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: modules cannot refer to other modules"),
                        "pass it as an input",
                    );
                    return None;
                }
                if path.len() < 3 {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: write `${{module.INSTANCE.OUTPUT}}`"),
                        "incomplete reference",
                    );
                    return None;
                }
                if !self.instances.contains_key(&path[1]) {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: no module instance `{}`", path[1]),
                        "dangling reference",
                    );
                    return None;
                }
                if self.in_progress.contains(&path[1]) {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "`{text}`: module `{}` depends on itself through its inputs",
                            path[1]
                        ),
                        "reference cycle",
                    );
                    return None;
                }
                let outputs = self.resolve_instance(&path[1])?;
                let Some((expr, tag)) = outputs.get(&path[2]).cloned() else {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: module `{}` has no output `{}`", path[1], path[2]),
                        "dangling reference",
                    );
                    return None;
                };
                self.index_expr(scope, s, &text, expr, tag, &path[3..])
            }
            key => {
                let Some(kind) = scope.keys.get(key).copied() else {
                    let known: Vec<&str> = scope.keys.keys().map(String::as_str).collect();
                    let e = ConfigError::at(&self.files[file], s.span(), format!("`{text}`: no resource `{key}` here"), "dangling reference")
                        .with_help(format!(
                            "references are `${{var.NAME}}`, `${{input.NAME}}`, `${{module.INSTANCE.OUTPUT}}` or `${{KEY.ATTRIBUTE}}`; resources here: {}",
                            if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                        ));
                    self.errors.push(e);
                    return None;
                };
                let Some(ty) = attribute_type(kind, &path[1], &path[2..]) else {
                    let mut names: Vec<&str> = kind.props.iter().map(|p| p.name).collect();
                    names.extend(kind.outputs.iter().map(|o| o.name));
                    let e = ConfigError::at(
                        &self.files[file],
                        s.span(),
                        format!(
                            "`{text}`: {} has no attribute `{}`",
                            kind.kind,
                            path[1..].join(".")
                        ),
                        "dangling reference",
                    )
                    .with_help(format!(
                        "attributes of {}: {}",
                        kind.kind,
                        names.join(", ")
                    ));
                    self.errors.push(e);
                    return None;
                };
                let reference = Reference {
                    address: scope.address(key),
                    attr: path[1].clone(),
                    path: path[2..].to_vec(),
                };
                Some((Expr::Ref(reference), tag_of_type(&ty)))
            }
        }
    }

    /// Follows the rest of a reference's path into an input's or output's expression.
    fn index_expr(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        text: &str,
        expr: Expr,
        tag: Tag,
        rest: &[String],
    ) -> Option<Typed> {
        if rest.is_empty() {
            return Some((expr, tag));
        }
        match expr {
            Expr::Ref(mut r) => {
                r.path.extend(rest.iter().cloned());
                Some((Expr::Ref(r), Tag::Any))
            }
            Expr::Literal(v) => {
                let v = value_at(&v, rest);
                let tag = tag_of_value(&v);
                Some((Expr::Literal(v), tag))
            }
            Expr::Map(mut m) => {
                let next = m.remove(&rest[0])?;
                self.index_expr(scope, s, text, next, Tag::Any, &rest[1..])
            }
            Expr::List(mut l) => {
                let i: usize = rest[0].parse().ok()?;
                if i >= l.len() {
                    return None;
                }
                self.index_expr(scope, s, text, l.swap_remove(i), Tag::Any, &rest[1..])
            }
            Expr::Template(_) => {
                self.err(
                    scope.file,
                    s.span(),
                    format!("`{text}`: a string has no fields"),
                    "cannot index a string",
                );
                None
            }
        }
    }

    /// Reports reference cycles, naming every resource on the cycle.
    /// Checks the known value a `${var.…}` or `${input.…}` brings against the type expected
    /// where it is used, and reports each problem at the literal that gave it (in the
    /// environment file when it came through a module input), naming where it is used.
    fn check_referenced(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        expr: &Expr,
        expected: &Type,
    ) {
        let value = expr.eval(&KnownOnly);
        let problems = value_problems(expected, &value);
        if problems.is_empty() {
            return;
        }
        let instance = scope.module.as_ref().map(|(i, _)| i.as_str());
        let used = ConfigError::at(&self.files[scope.file], s.span(), "", "").location;
        for (path, problem) in problems {
            let (file, span) = self.follow(scope.file, s, instance, &path);
            let message = match &used {
                Some(at) if file != scope.file || span.start() != s.span().start() => format!(
                    "{problem} (used as `{}` at {}:{}:{})",
                    s.as_str(),
                    at.file,
                    at.line,
                    at.column
                ),
                _ => problem.clone(),
            };
            self.report_once(file, &span, &problem, message);
        }
    }

    /// Runs the kind's own rules over the known part of a resource's properties and reports
    /// each problem at the literal the user wrote.
    fn check_rules(&mut self, scope: &Scope, decl: &ResourceDecl, properties: &Expr) {
        let Some(node) = &decl.properties else { return };
        let value = decl.kind.normalize(&properties.eval(&KnownOnly));
        let instance = scope.module.as_ref().map(|(i, _)| i.as_str());
        for (path, message) in (decl.kind.rules)(&value) {
            let (file, span) = self.locate(scope.file, node, instance, &path);
            let message = format!("{}: {message}", scope.address(&decl.key));
            self.report_once(file, &span, &message, message.clone());
        }
    }

    /// Reports `message` at a place once per `problem` (a value used in several places is
    /// one error, shown at its first use).
    fn report_once(&mut self, file: usize, span: &Span, problem: &str, message: String) {
        let key = (file, format!("{:?}", span.start()), problem.to_string());
        if self.reported.insert(key) {
            self.err(file, span, message, "here");
        }
    }

    /// Where the literal at `path` below `node` was written: descends maps and lists, and
    /// follows a single `${input.…}` or `${var.…}` into the node that gave its value.
    fn locate(
        &self,
        file: usize,
        node: &Node,
        instance: Option<&str>,
        path: &[String],
    ) -> (usize, Span) {
        let mut node = node;
        for (i, key) in path.iter().enumerate() {
            let next = match node {
                Node::Mapping(m) => m.get_node(key),
                Node::Sequence(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                Node::Scalar(s) => return self.follow(file, s, instance, &path[i..]),
            };
            match next {
                Some(n) => node = n,
                None => return (file, *node.span()),
            }
        }
        match node {
            Node::Scalar(s) => self.follow(file, s, instance, &[]),
            other => (file, *other.span()),
        }
    }

    fn follow(
        &self,
        file: usize,
        s: &MarkedScalarNode,
        instance: Option<&str>,
        rest: &[String],
    ) -> (usize, Span) {
        let here = (file, *s.span());
        let Ok(pieces) = template::parse(s.as_str()) else {
            return here;
        };
        let [Piece::Ref { path, .. }] = pieces.as_slice() else {
            return here;
        };
        let origin = match (path[0].as_str(), instance) {
            ("input", Some(instance)) if path.len() > 1 => self
                .input_origins
                .get(&(instance.to_string(), path[1].clone())),
            ("var", None) if path.len() > 1 => {
                self.vars.get(&path[1]).and_then(|v| v.origin.as_ref())
            }
            _ => None,
        };
        let Some((origin_file, origin_node)) = origin else {
            return here;
        };
        let full: Vec<String> = path[2..].iter().chain(rest).cloned().collect();
        // An input's own node is in the root scope: its references are to variables.
        self.locate(*origin_file, origin_node, None, &full)
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

/// A plain YAML scalar as a value: unquoted scalars are typed (`true`, `3`, `null`), quoted ones
/// are strings; where a string is expected, plain numbers and booleans are taken as their text.
fn scalar_value(s: &MarkedScalarNode, expected: &Type) -> Value {
    let text = s.as_str();
    if !s.may_coerce() {
        return Value::str(text);
    }
    if matches!(text, "" | "~" | "null") {
        return Value::Null;
    }
    let typed = if let Some(b) = s.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = text.parse::<i64>() {
        Value::int(i)
    } else if let Some(n) = text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Value::Number(n)
    } else {
        return Value::str(text);
    };
    match expected {
        Type::String | Type::Enum(_) | Type::Duration => Value::str(text),
        _ => typed,
    }
}

/// Evaluates literals only: a reference to a resource is not known while loading.
struct KnownOnly;

impl crate::model::Lookup for KnownOnly {
    fn lookup(&self, _: &Reference) -> Value {
        Value::Unknown
    }
}

/// A `--var` or `CONVERGE_VAR_*` text, typed like the variable's default.
fn parse_override(text: &str, default: Option<&Value>) -> Value {
    match default.map(Value::reveal) {
        Some(Value::Number(_)) => text
            .parse::<i64>()
            .map(Value::int)
            .ok()
            .or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::str(text)),
        Some(Value::Bool(_)) => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::str(text),
        },
        _ => Value::str(text),
    }
}
