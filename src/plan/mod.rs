//! Plans: desired vs state vs live → a list of changes with their actions; the rules on them.
//!
//! A [`Plan`] is plain data: views (text, JSON) read it, `apply` executes it, and nothing here
//! talks to a cloud or prints.

pub mod diagram;
pub mod drift;
pub mod markdown;
pub mod moves;
pub mod outputs;
pub mod policy;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Environment;
use crate::graph::DependencyGraph;
use crate::kinds;
use crate::model::{Address, LiveMap, Lookup, Reference, ResourceState, Value, value_at};

/// The version of the JSON plan format (`plan --format json` and plan files).
pub const FORMAT_VERSION: u32 = 1;

/// What a change does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do.
    NoOp,
    /// Create it.
    Create,
    /// Update it in place.
    Update,
    /// Delete it, then create it again (a replace-on-change property differs).
    Replace,
    /// Delete it.
    Delete,
    /// Remove it from state and keep it in the cloud (`removed: [{ from, destroy: false }]`).
    Forget,
}

impl Action {
    /// Whether this action changes anything.
    pub fn is_change(self) -> bool {
        self != Action::NoOp
    }

    /// Whether this action deletes the existing resource first.
    pub fn is_replace(self) -> bool {
        self == Action::Replace
    }

    /// The symbol shown before the address: `+`, `~`, `-/+`, `-`, `.` (forget).
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Forget => ".",
        }
    }
}

/// One resource's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The resource's address.
    pub address: Address,
    /// Its kind.
    pub kind: String,
    /// What will be done.
    pub action: Action,
    /// Properties now (live), `null` for a create.
    #[serde(with = "display_value")]
    pub before: Option<Value>,
    /// Properties after (desired, unknowns marked), `null` for a delete.
    #[serde(with = "display_value")]
    pub after: Option<Value>,
    /// Top-level properties that differ.
    pub changed: Vec<String>,
    /// Those of them that force replacement.
    pub replace_because: Vec<String>,
    /// Why, when it is not obvious (e.g. deleted outside converge).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// Where state held it until this plan: a `moved` entry carries it here.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub moved_from: Option<Address>,
    /// How an update reaches the cloud when it is a rollout (`canary 10% → 50% → 100%, bake 5m`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rollout: Option<String>,
    /// Monthly cost before and after, from the shipped price tables.
    #[serde(default)]
    pub cost: ChangeCost,
}

/// A change's monthly cost in USD: `None` where there is no figure (usage-based or unknown; the
/// note says which), 0 for free kinds and for the missing side of a create or delete.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeCost {
    /// Before the change.
    pub before_monthly: Option<f64>,
    /// After the change.
    pub after_monthly: Option<f64>,
    /// Always `USD`.
    pub currency: String,
    /// Why a side has no figure (`$0.10 per GB-month stored`, `no price for ...`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// The environment's monthly cost before and after the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    /// Total of the priced resources now.
    pub before_monthly: f64,
    /// Total after the plan.
    pub after_monthly: f64,
    /// After minus before.
    pub difference: f64,
    /// The difference in percent of before (`None` from nothing).
    pub percent: Option<f64>,
    /// Always `USD`.
    pub currency: String,
    /// Resources without a figure, with why.
    pub unpriced: Vec<String>,
}

/// A plan for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The environment.
    pub environment: String,
    /// The state serial the plan was made against.
    pub serial: i64,
    /// SHA-256 of the desired-state files the plan was made from.
    pub files_hash: String,
    /// Changes in the order they apply (creates and updates after their dependencies, deletes
    /// before theirs), no-ops included.
    pub changes: Vec<Change>,
    /// Counts by action.
    pub summary: Summary,
    /// Stored resources `moved` entries carry to new addresses: apply moves them in state
    /// first, in one step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<moves::Move>,
    /// Outputs this plan adds, changes or removes (`outputs:` in the environment file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_changes: Vec<outputs::OutputChange>,
    /// Monthly cost before and after.
    #[serde(default)]
    pub cost: CostSummary,
    /// What the policies said of it (absent when the project has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<policy::PolicyVerdict>,
    /// The environment's budget and whether this plan stays within it (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetVerdict>,
}

/// The environment's `budget` and what this plan does to it: CI reads it from
/// `plan --format json` to say why a plan failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetVerdict {
    /// Highest monthly total allowed, USD.
    pub monthly: Option<f64>,
    /// Highest increase allowed, USD a month.
    pub max_increase: Option<f64>,
    /// Whether the plan stays within both.
    pub within: bool,
    /// What it breaks, with both figures.
    pub problems: Vec<String>,
}

/// Counts of a plan's changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates.
    pub add: usize,
    /// In-place updates.
    pub change: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes.
    pub destroy: usize,
    /// Resources removed from state and kept in the cloud.
    #[serde(default)]
    pub forget: usize,
    /// Resources moved to a new address in state (whatever else their change does).
    #[serde(default)]
    pub moved: usize,
}

impl Change {
    /// Whether a plan shows it: it changes the resource, or moves it in state.
    pub fn is_shown(&self) -> bool {
        self.action.is_change() || self.moved_from.is_some()
    }
}

impl Plan {
    /// Whether applying it would change anything (moves in state included).
    pub fn has_changes(&self) -> bool {
        !self.moved.is_empty()
            || !self.output_changes.is_empty()
            || self.changes.iter().any(|c| c.action.is_change())
    }

    /// The change of one address.
    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }

    /// (address, action) of every real change: what a saved plan promises to do.
    pub fn actions(&self) -> BTreeSet<(Address, Action)> {
        self.changes
            .iter()
            .filter(|c| c.action.is_change())
            .map(|c| (c.address.clone(), c.action))
            .collect()
    }

    /// Whether this saved plan was made from files with hash `files_hash`.
    pub fn check_files(&self, files_hash: &str) -> Result<(), Stale> {
        if self.files_hash == files_hash {
            Ok(())
        } else {
            Err(Stale::Files)
        }
    }

    /// Whether this saved plan still does what a `fresh` plan of the same files would: made
    /// against the same state serial, with the same changes.
    pub fn check_against(&self, fresh: &Plan) -> Result<(), Stale> {
        if self.serial != fresh.serial {
            return Err(Stale::Serial {
                saved: self.serial,
                now: fresh.serial,
            });
        }
        let outputs = |p: &Plan| -> Vec<(String, Action)> {
            p.output_changes
                .iter()
                .map(|o| (o.name.clone(), o.action))
                .collect()
        };
        if self.actions() != fresh.actions()
            || self.moved != fresh.moved
            || outputs(self) != outputs(fresh)
        {
            return Err(Stale::Live);
        }
        Ok(())
    }
}

/// Why a saved plan can no longer be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Stale {
    /// The files are not the ones it was made from.
    #[error("the desired-state files changed since this plan was made")]
    Files,
    /// Another apply changed state since.
    #[error(
        "state changed since this plan was made (plan serial {saved}, state serial now {now}): another apply ran"
    )]
    Serial {
        /// The serial it was made against.
        saved: i64,
        /// The serial now.
        now: i64,
    },
    /// Live infrastructure moved since, so it would now do something else.
    #[error(
        "live infrastructure changed since this plan was made, so applying it now would do something else"
    )]
    Live,
}

/// Options limiting a plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only these addresses (and what they depend on); empty means all.
    pub targets: Vec<Address>,
    /// Plan the deletion of everything (destroy).
    pub destroy: bool,
    /// Services `rollout undo` pinned: their changes say so.
    pub pins: crate::model::pin::Pins,
    /// What `moved` entries carry where (the state given is already as it reads after them).
    pub moves: Vec<moves::Move>,
    /// The outputs state holds, which output changes are planned against.
    pub outputs: Vec<crate::state::StoredOutput>,
}

/// Computes the plan: each desired resource against its live state, in dependency order, and
/// deletes for what state has but the files no longer declare.
pub fn compute(
    env: &Environment,
    state: &[ResourceState],
    live: &LiveMap,
    serial: i64,
    options: &PlanOptions,
) -> Plan {
    let state_by: BTreeMap<&Address, &ResourceState> =
        state.iter().map(|s| (&s.address, s)).collect();
    let graph = DependencyGraph::from_desired(env.resources.values());
    let order = graph
        .order()
        .unwrap_or_else(|_| env.resources.keys().cloned().collect());
    let wanted = targeted(env, &options.targets);

    let mut ctx = PlanContext {
        state: &state_by,
        live,
        evaluated: BTreeMap::new(),
        actions: BTreeMap::new(),
        renewed: BTreeMap::new(),
    };
    let mut changes = Vec::new();
    if !options.destroy {
        for address in &order {
            let Some(resource) = env.resources.get(address) else {
                continue;
            };
            let after = resource.desired(&ctx, &env.name);
            let current = live.get(address).and_then(Option::as_ref);
            let in_state = state_by.contains_key(address);
            let interrupted = state_by
                .get(address)
                .map(|s| s.status)
                .filter(|st| st.in_flight());
            let change = match current {
                None => Change {
                    cost: ChangeCost::default(),
                    address: address.clone(),
                    kind: resource.kind.kind.to_string(),
                    action: Action::Create,
                    before: None,
                    after: Some(after.clone()),
                    changed: Vec::new(),
                    replace_because: Vec::new(),
                    rollout: None,
                    moved_from: None,
                    note: match interrupted {
                        Some(st) => Some(format!(
                            "an earlier apply stopped while {} it and it does not exist now",
                            st.as_str()
                        )),
                        None => in_state.then(|| {
                            "deleted outside converge; it will be created again".to_string()
                        }),
                    },
                },
                Some(current) => {
                    let before = resource
                        .kind
                        .normalize(&current.properties)
                        .with_sensitivity_of(&after);
                    let changed = changed_keys(&before, &after);
                    let replace_because: Vec<String> = changed
                        .iter()
                        .filter(|k| resource.kind.forces_replacement(k, &before, &after))
                        .cloned()
                        .collect();
                    let action = if !replace_because.is_empty() {
                        Action::Replace
                    } else if !changed.is_empty() {
                        Action::Update
                    } else {
                        Action::NoOp
                    };
                    let rollout = (action == Action::Update)
                        .then_some(resource.kind.rollout_summary)
                        .flatten()
                        .and_then(|summary| summary(&before, &after));
                    Change {
                        cost: ChangeCost::default(),
                        rollout,
                        moved_from: None,
                        address: address.clone(),
                        kind: resource.kind.kind.to_string(),
                        action,
                        before: Some(before),
                        after: Some(after.clone()),
                        changed,
                        replace_because,
                        note: interrupted
                            .map(|st| {
                                format!(
                                    "an earlier apply stopped while {} it; it was read back from the cloud",
                                    st.as_str()
                                )
                            })
                            .or_else(|| {
                                let pin = options.pins.get(address)?;
                                (action == Action::Update).then(|| pin_note(pin, &after))
                            }),
                    }
                }
            };
            let renewed: BTreeSet<&'static str> = change
                .changed
                .iter()
                .filter_map(|k| resource.kind.prop(k).and_then(|p| p.renews))
                .collect();
            ctx.renewed.insert(address.clone(), renewed);
            ctx.actions.insert(address.clone(), change.action);
            ctx.evaluated.insert(address.clone(), after);
            if wanted.as_ref().is_none_or(|w| w.contains(address)) {
                changes.push(change);
            }
        }
    }
    // Deletes: dependents first (reverse of the order they were created in).
    let mut deletes: Vec<&ResourceState> = state
        .iter()
        .filter(|s| options.destroy || !env.resources.contains_key(&s.address))
        .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.address)))
        .collect();
    deletes.sort_by_key(|s| std::cmp::Reverse(depth(&s.address, &state_by, 0)));
    for s in deletes {
        let current = live.get(&s.address).and_then(Option::as_ref);
        let kind = kinds::lookup(&s.kind);
        let before = match (&current, kind) {
            (Some(l), Some(k)) => k
                .normalize(&l.properties)
                .with_sensitivity_of(&s.properties),
            _ => s.properties.clone(),
        };
        // `removed: [{ from, destroy: false }]`: only state lets go of it.
        let forget = env
            .removed
            .iter()
            .any(|r| r.from == s.address && !r.destroy)
            && !options.destroy;
        changes.push(Change {
            cost: ChangeCost::default(),
            rollout: None,
            moved_from: None,
            address: s.address.clone(),
            kind: s.kind.clone(),
            action: if forget { Action::Forget } else { Action::Delete },
            before: Some(before),
            after: None,
            changed: Vec::new(),
            replace_because: Vec::new(),
            note: if forget {
                Some(format!(
                    "removed from state only (`removed`, destroy: false); the {} stays in the cloud, no longer managed",
                    s.kind
                ))
            } else {
                current
                    .is_none()
                    .then(|| "already deleted outside converge; only state is cleaned up".into())
            },
        });
    }
    for change in changes.iter_mut() {
        change.moved_from = options
            .moves
            .iter()
            .find(|m| m.to == change.address)
            .map(|m| m.from.clone());
    }
    let region = env
        .providers
        .aws
        .as_ref()
        .map(|a| a.region.clone())
        .unwrap_or_default();
    let usage: BTreeMap<&Address, Value> = env
        .resources
        .iter()
        .map(|(a, r)| (a, r.usage.eval(&ctx)))
        .collect();
    let cost = price(&mut changes, &region, &env.prices, &usage);
    let outputs_after = if options.destroy {
        Vec::new()
    } else {
        outputs::evaluate(&env.outputs, &ctx)
    };
    // A targeted apply leaves outputs as they are, so a targeted plan shows no output changes.
    let output_changes = if options.targets.is_empty() {
        outputs::changes(&options.outputs, &outputs_after)
    } else {
        Vec::new()
    };
    let mut summary = Summary::default();
    for c in &changes {
        match c.action {
            Action::Create => summary.add += 1,
            Action::Update => summary.change += 1,
            Action::Replace => summary.replace += 1,
            Action::Delete => summary.destroy += 1,
            Action::Forget => summary.forget += 1,
            Action::NoOp => {}
        }
        if c.moved_from.is_some() {
            summary.moved += 1;
        }
    }
    Plan {
        format_version: FORMAT_VERSION,
        environment: env.name.clone(),
        serial,
        files_hash: env.files_hash.clone(),
        changes,
        summary,
        moved: options.moves.clone(),
        output_changes,
        policy: None,
        budget: (env.budget.monthly.is_some() || env.budget.max_increase.is_some()).then(|| {
            let problems = crate::cost::budget::problems(&env.budget, &cost);
            BudgetVerdict {
                monthly: env.budget.monthly,
                max_increase: env.budget.max_increase,
                within: problems.is_empty(),
                problems,
            }
        }),
        cost,
    }
}

/// Prices every change (the plan's own changes and the unchanged ones) and totals them.
fn price(
    changes: &mut [Change],
    region: &str,
    prices: &crate::cost::PriceTable,
    usage: &BTreeMap<&Address, Value>,
) -> CostSummary {
    let mut total = CostSummary {
        currency: "USD".into(),
        ..CostSummary::default()
    };
    for c in changes.iter_mut() {
        let side = |v: &Option<Value>| {
            v.as_ref()
                .map(|p| {
                    let usage = usage.get(&c.address).unwrap_or(&Value::Null);
                    match kinds::lookup(&c.kind) {
                        Some(k) => crate::cost::estimate(k.price, p, region, prices, usage),
                        None => crate::cost::Estimate::Unknown {
                            reason: format!("converge has no prices for {}", c.kind),
                        },
                    }
                })
                .unwrap_or(crate::cost::Estimate::Free)
        };
        let (before, after) = (side(&c.before), side(&c.after));
        let note = [&before, &after].iter().find_map(|e| match e {
            crate::cost::Estimate::UsageBased { unit } => Some(format!("usage-based: {unit}")),
            crate::cost::Estimate::Unknown { reason } => Some(reason.clone()),
            _ => None,
        });
        if let Some(n) = &note {
            total.unpriced.push(format!("{} ({n})", c.address));
        }
        total.before_monthly += before.usd().unwrap_or(0.0);
        total.after_monthly += after.usd().unwrap_or(0.0);
        c.cost = ChangeCost {
            before_monthly: before.usd(),
            after_monthly: after.usd(),
            currency: "USD".into(),
            note,
        };
    }
    total.difference = total.after_monthly - total.before_monthly;
    total.percent =
        (total.before_monthly > 0.0).then(|| total.difference / total.before_monthly * 100.0);
    total
}

/// How deep a stored resource sits in the dependency chain recorded in state.
fn depth(address: &Address, state: &BTreeMap<&Address, &ResourceState>, guard: usize) -> usize {
    if guard > 64 {
        return guard;
    }
    state
        .get(address)
        .map(|s| {
            s.dependencies
                .iter()
                .map(|d| 1 + depth(d, state, guard + 1))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The targets and everything they depend on, or `None` for "everything".
fn targeted(env: &Environment, targets: &[Address]) -> Option<BTreeSet<Address>> {
    if targets.is_empty() {
        return None;
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<Address> = targets.to_vec();
    while let Some(a) = todo.pop() {
        if out.insert(a.clone())
            && let Some(r) = env.resources.get(&a)
        {
            todo.extend(r.depends_on.iter().cloned());
        }
    }
    Some(out)
}

/// Top-level property names whose values differ.
pub fn changed_keys(before: &Value, after: &Value) -> Vec<String> {
    let (Some(b), Some(a)) = (before.as_map(), after.as_map()) else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            !b.get(*k)
                .unwrap_or(&Value::Null)
                .same_as(a.get(*k).unwrap_or(&Value::Null))
        })
        .cloned()
        .collect()
}

/// What a plan says about a change of a service `rollout undo` pinned.
fn pin_note(pin: &crate::model::pin::Undo, after: &Value) -> String {
    if crate::model::pin::still_pinned(pin, after) {
        format!(
            "{}: apply refuses to roll it out again until the files name other images, or with `apply --redo`",
            pin.describe()
        )
    } else {
        format!(
            "undone to rev {} by {}; the files now name other images, so apply rolls them out",
            crate::model::pin::revision_number(&pin.to),
            pin.actor
        )
    }
}

/// What references evaluate to while planning.
struct PlanContext<'a> {
    state: &'a BTreeMap<&'a Address, &'a ResourceState>,
    live: &'a LiveMap,
    evaluated: BTreeMap<Address, Value>,
    actions: BTreeMap<Address, Action>,
    /// Outputs an update gives a new value (a secret's `version_id` when its value changes).
    renewed: BTreeMap<Address, BTreeSet<&'static str>>,
}

impl Lookup for PlanContext<'_> {
    fn lookup(&self, r: &Reference) -> Value {
        if let Some(props) = self.evaluated.get(&r.address)
            && props.as_map().is_some_and(|m| m.contains_key(&r.attr))
        {
            return value_at(props.get(&r.attr), &r.path);
        }
        // An output: known only if the resource exists, is not being (re)created, and the
        // update does not renew it.
        let renewed = self
            .renewed
            .get(&r.address)
            .is_some_and(|o| o.contains(r.attr.as_str()));
        match self.actions.get(&r.address) {
            Some(Action::Create | Action::Replace) | None => Value::Unknown,
            Some(Action::Update) if renewed => Value::Unknown,
            _ => {
                let outputs = self
                    .live
                    .get(&r.address)
                    .and_then(|l| l.as_ref().map(|l| &l.outputs))
                    .or_else(|| self.state.get(&r.address).map(|s| &s.outputs));
                let Some(outputs) = outputs else {
                    return Value::Unknown;
                };
                match value_at(outputs.get(&r.attr), &r.path) {
                    Value::Null => Value::Unknown,
                    v => v,
                }
            }
        }
    }
}

/// Serializes optional values in their display form (placeholders for unknowns and secrets).
mod display_value {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::Value;

    pub fn serialize<S: Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Value::to_display_json).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        let json = Option::<serde_json::Value>::deserialize(d)?;
        Ok(json.map(|j| Value::from_json(&j)))
    }
}
