//! Resource kind schemas: property types, defaults, replace-on-change, sensitivity and outputs.

use std::collections::BTreeMap;

use super::Value;
use super::grammar::Grammar;

/// The type of a property or output.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    /// Any string.
    String,
    /// A string that must follow a grammar (a user name, a host, an image reference...):
    /// checked at load and again on resolved values before any step uses them.
    Text(&'static Grammar),
    /// Any number.
    Number,
    /// A whole number from the first bound to the second, inclusive (the range the cloud API's
    /// field takes: converge never narrows a number silently).
    Integer(i64, i64),
    /// true or false.
    Bool,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A list of one element type.
    List(&'static Type),
    /// A map from string keys to one value type.
    Map(&'static Type),
    /// A map whose keys follow a grammar (environment variable names), to one value type.
    Keyed(&'static Grammar, &'static Type),
    /// An object with known fields; unknown fields are errors.
    Object(&'static [Prop]),
    /// Free-form data (e.g. an IAM policy document).
    Any,
    /// A duration written `500ms`, `10s`, `5m`, `1h`.
    Duration,
    /// A percentage written `50%` (or a plain number).
    Percent,
    /// A canary step: a whole percentage 1-100, or `pause` (wait for `rollout promote`).
    CanaryStep,
}

impl Type {
    /// A short name for messages and the JSON Schema.
    pub fn describe(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Text(g) => g.describe.into(),
            Type::Number => "number".into(),
            Type::Integer(min, max) => format!("a whole number from {min} to {max}"),
            Type::Bool => "bool".into(),
            Type::Enum(values) => format!("one of {}", values.join(", ")),
            Type::List(t) => format!("list of {}", t.describe()),
            Type::Map(t) => format!("map of {}", t.describe()),
            Type::Keyed(k, t) => format!("map from {} to {}", k.describe, t.describe()),
            Type::Object(_) => "object".into(),
            Type::Any => "any value".into(),
            Type::Duration => "a duration (500ms, 10s, 5m, 1h)".into(),
            Type::Percent => "a percentage (50%)".into(),
            Type::CanaryStep => "a percentage from 1 to 100, or `pause`".into(),
        }
    }
}

/// A string.
pub const STRING: Type = Type::String;
/// A list of strings.
pub const STRINGS: Type = Type::List(&STRING);
/// A map of strings.
pub const STRING_MAP: Type = Type::Map(&STRING);
/// A TCP port.
pub const PORT: Type = Type::Integer(1, 65_535);
/// A count or size an AWS API takes as a 32-bit integer.
pub const I32: Type = Type::Integer(0, i32::MAX as i64);
/// The `tags` property every taggable kind has.
pub const TAGS: Prop =
    Prop::new("tags", STRING_MAP, "Tags put on the resource.").default(Default::EmptyMap);

/// A default value for a property left out of a desired-state file.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// No default: a left-out optional property is null.
    None,
    /// A boolean default.
    Bool(bool),
    /// An integer default.
    Int(i64),
    /// A string default.
    Str(&'static str),
    /// An empty map.
    EmptyMap,
    /// An empty list.
    EmptyList,
}

impl Default {
    /// The default as a value.
    pub fn value(&self) -> Value {
        match self {
            Default::None => Value::Null,
            Default::Bool(b) => Value::Bool(*b),
            Default::Int(i) => Value::int(*i),
            Default::Str(s) => Value::str(*s),
            Default::EmptyMap => Value::map(),
            Default::EmptyList => Value::List(vec![]),
        }
    }
}

/// The prefix of a kind rule's message that is a warning (legal, probably not meant), printed
/// by `validate` and `plan`, rather than an error.
pub const WARNING: &str = "warning: ";

/// The prefix of a kind rule's message that is a note (what a reviewer should know, e.g.
/// which hosts receive which credential), printed by `validate` and `plan`.
pub const NOTE: &str = "note: ";

/// One property of a resource kind (or a field of an object property).
#[derive(Debug, Clone, Copy)]
pub struct Prop {
    /// The snake_case name, as in desired-state files.
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// Whether the file must give it.
    pub required: bool,
    /// Whether changing it replaces the resource (R in DESIGN §2).
    pub replace: bool,
    /// Whether a change of it (whole property maps before and after) replaces the resource,
    /// when only some changes do (e.g. a change of ECS deployment controller).
    pub replace_if: Option<fn(&Value, &Value) -> bool>,
    /// Whether its value is secret: shown and stored only as a digest, and never given as a
    /// literal (it must come from a sensitive variable, input or output).
    pub sensitive: bool,
    /// The output that gets a new value whenever this property changes (a secret's value and
    /// its `version_id`): references to it are known only after apply.
    pub renews: Option<&'static str>,
    /// A map whose values, when each is exactly `${R.arn}` of a kind with a `version_id`
    /// output, are written `ARN:::VERSION_ID` (ECS `valueFrom` of one secret version).
    pub pins_versions: bool,
    /// A list whose order means nothing (compared sorted).
    pub unordered: bool,
    /// Value assumed when left out.
    pub default: Default,
    /// One line for the JSON Schema and `schema` output.
    pub doc: &'static str,
}

impl Prop {
    /// An optional property with no default.
    pub const fn new(name: &'static str, ty: Type, doc: &'static str) -> Prop {
        Prop {
            name,
            ty,
            required: false,
            replace: false,
            replace_if: None,
            sensitive: false,
            renews: None,
            pins_versions: false,
            unordered: false,
            default: Default::None,
            doc,
        }
    }

    /// Marks it required.
    pub const fn required(mut self) -> Prop {
        self.required = true;
        self
    }

    /// Marks it replace-on-change.
    pub const fn replace(mut self) -> Prop {
        self.replace = true;
        self
    }

    /// Marks it replacing when `rule(before, after)` says so (e.g. what picks an ECS
    /// deployment controller).
    pub const fn replace_if(mut self, rule: fn(&Value, &Value) -> bool) -> Prop {
        self.replace_if = Some(rule);
        self
    }

    /// Marks it secret (see [`Prop::sensitive`]).
    pub const fn secret(mut self) -> Prop {
        self.sensitive = true;
        self
    }

    /// Names the output a change of it renews (see [`Prop::renews`]).
    pub const fn renews(mut self, output: &'static str) -> Prop {
        self.renews = Some(output);
        self
    }

    /// Pins secret references in this map to their version (see [`Prop::pins_versions`]).
    pub const fn pins_versions(mut self) -> Prop {
        self.pins_versions = true;
        self
    }

    /// Marks a list whose order means nothing.
    pub const fn unordered(mut self) -> Prop {
        self.unordered = true;
        self
    }

    /// Gives it a default.
    pub const fn default(mut self, default: Default) -> Prop {
        self.default = default;
        self
    }
}

/// An attribute a resource exposes once it exists (`arn`, `uri`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Its name, as referenced in `${KEY.NAME}`.
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
}

/// How a kind is priced (DESIGN §8): declarative data that `cost::estimate` interprets against
/// the price tables, so no code outside a kind's own file matches on its name to price it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRule {
    /// Costs nothing (IAM roles, clusters, target groups, resource groups, networks...).
    Free,
    /// Fargate tasks: `desired_count` × the `task`'s vCPU-hours and GB-hours (x86_64 or ARM64).
    FargateTasks,
    /// An Application Load Balancer's hourly charge (LCUs not included).
    LoadBalancerHour,
    /// ECR storage per GB-month: usage-based unless `usage: { storage_gb }` gives a figure.
    EcrStorage,
    /// An EC2 Linux on-demand instance, by `instance_type`.
    Ec2Instance,
    /// An Azure Container Registry's daily charge, by `sku` at `location`.
    AcrSku,
    /// An Azure Linux pay-as-you-go VM, by `size` at `location`.
    AzureVmSize,
    /// A charge converge's price table does not have yet: reported as unpriced (with this
    /// note, which names AWS's list price), never as free.
    Unlisted(&'static str),
}

impl PriceRule {
    /// Whether a resource priced so costs money for every day it exists, whatever its usage
    /// (`cost watch` says so when such a resource has no cost data at all).
    pub fn always_costs(self) -> bool {
        !matches!(self, PriceRule::Free | PriceRule::EcrStorage)
    }
}

/// Everything converge knows about one resource kind without talking to a cloud.
#[derive(Debug)]
pub struct KindSchema {
    /// The kind name, e.g. `aws.ecr_repository`.
    pub kind: &'static str,
    /// One line describing the kind.
    pub doc: &'static str,
    /// Its properties.
    pub props: &'static [Prop],
    /// Its outputs.
    pub outputs: &'static [Output],
    /// How it is priced.
    pub price: PriceRule,
    /// The id `converge import ADDR ID` takes for it, as the README's kinds table gives it.
    pub import_id: &'static str,
    /// Rules over several properties at once that types cannot say (e.g. a rollout's steps
    /// must increase), run on the known part of the normalized properties at `validate` and
    /// `plan`: each problem is a path below the properties and a message.
    pub rules: fn(&Value) -> Vec<Problem>,
    /// For kinds whose changes are rollouts: the rollout an update from `before` to `after`
    /// runs, as the plan shows it (`canary 10% → 50% → 100%, bake 5m`), or `None` when that
    /// update is not a rollout. (The plan's half of the kind's `Deploy` capability.)
    pub rollout_summary: Option<fn(&Value, &Value) -> Option<String>>,
}

/// A rule's finding: the path (map keys, list indexes) below the properties, and what is wrong.
pub type Problem = (Vec<String>, String);

/// The `rules` of a kind that has none beyond its types.
pub fn no_rules(_: &Value) -> Vec<Problem> {
    Vec::new()
}

impl KindSchema {
    /// The provider that manages this kind (the part before the dot).
    pub fn provider(&self) -> &'static str {
        self.kind.split('.').next().unwrap_or(self.kind)
    }

    /// A property by name.
    pub fn prop(&self, name: &str) -> Option<&'static Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    /// An output by name.
    pub fn output(&self, name: &str) -> Option<&'static Output> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// Whether changing property `name` from `before` to `after` (whole property maps)
    /// replaces the resource.
    pub fn forces_replacement(&self, name: &str, before: &Value, after: &Value) -> bool {
        self.prop(name)
            .is_some_and(|p| p.replace || p.replace_if.is_some_and(|rule| rule(before, after)))
    }

    /// Fills defaults and nulls into `properties` so desired, stored and live values compare
    /// field by field.
    pub fn normalize(&self, properties: &Value) -> Value {
        normalize_object(self.props, properties)
    }
}

fn normalize_object(props: &[Prop], value: &Value) -> Value {
    let given = value.as_map().cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    for prop in props {
        let mut v = match given.get(prop.name) {
            Some(v) if !v.is_null() => normalize_value(&prop.ty, v),
            _ => prop.default.value(),
        };
        if let (true, Value::List(items)) = (prop.unordered, &mut v) {
            items.sort_by_key(|i| i.to_display_json().to_string());
        }
        let v = if prop.sensitive {
            v.into_sensitive()
        } else {
            v
        };
        out.insert(prop.name.to_string(), v);
    }
    Value::Map(out)
}

fn normalize_value(ty: &Type, value: &Value) -> Value {
    match (ty, value) {
        (Type::Object(props), Value::Map(_)) => normalize_object(props, value),
        (Type::List(inner), Value::List(items)) => {
            Value::List(items.iter().map(|i| normalize_value(inner, i)).collect())
        }
        (Type::Map(inner) | Type::Keyed(_, inner), Value::Map(m)) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize_value(inner, v)))
                .collect(),
        ),
        (_, v) => v.clone(),
    }
}
