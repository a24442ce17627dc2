//! Executes a plan over the dependency DAG with bounded parallelism, persisting every step.
//!
//! Guarantees: a step starts only after the steps it depends on succeeded; each completed
//! cloud operation is written to state (with its audit event) before any step that depends on
//! it starts; a failed step skips only its dependents, independent steps run to the end.
//! Assumptions: provider operations are idempotent, so re-running an interrupted apply
//! converges. Every step is marked in flight in state before its cloud call, so a process
//! killed mid-call leaves a row the next plan re-reads instead of creating a duplicate.
//! Interrupting (the `interrupt` token) starts no new step; steps in flight finish and are
//! recorded. Errors: step failures are reported in the [`Report`], never as an early return;
//! only a failure to write state stops the walk (nothing more is done that could not be recorded).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use tokio_util::sync::CancellationToken;

use crate::audit::{self, NewEvent};
use crate::config::Environment;
use crate::kinds;
use crate::model::LiveMap;
use crate::model::{Address, Lookup, Reference, Value, value_at};
use crate::plan::{Action, Plan};
use crate::providers::{Applied, ProviderError, Registry};
use crate::state::{self, ResourceState, ResourceStatus, StateStore};

mod notify;
mod requests;

pub use requests::Refusal;
use requests::{Request, build_request, run_request};

/// One cloud operation of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepKind {
    /// Create a resource (or the second half of a replace).
    Create,
    /// Update in place.
    Update,
    /// Delete (or the first half of a replace).
    Delete,
    /// Remove from state only, the cloud's resource kept (`removed`, destroy: false).
    Forget,
}

/// A step: an operation on an address, and the plan action it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Step {
    /// The resource.
    pub address: Address,
    /// The operation.
    pub kind: StepKind,
    /// The plan's action (a replace is a delete step then a create step).
    pub action: Action,
}

impl Step {
    /// `creating`, `updating`, `deleting`, `replacing`.
    pub fn verb(&self) -> &'static str {
        match (self.action, self.kind) {
            (Action::Replace, StepKind::Delete) => "replacing (delete)",
            (Action::Replace, _) => "replacing (create)",
            (_, StepKind::Create) => "creating",
            (_, StepKind::Update) => "updating",
            (_, StepKind::Delete) => "deleting",
            (_, StepKind::Forget) => "forgetting",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It completed and is recorded in state.
    Done,
    /// The cloud call failed.
    Failed(String),
    /// Not attempted because a step it depends on failed.
    Skipped {
        /// The failed step's address.
        because: Address,
    },
    /// Not started because the apply was interrupted.
    Interrupted,
    /// A rollout stopped at a `pause` step, waiting for `rollout promote` (not a failure;
    /// what depends on it waits too).
    Paused(String),
}

/// A step and how it ended.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The step.
    pub step: Step,
    /// Its outcome.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Report {
    /// Every step, in completion order.
    pub steps: Vec<StepResult>,
}

impl Report {
    /// Whether every step completed.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == Outcome::Done)
    }

    /// Counts of (done, failed, skipped or not started); a paused rollout is neither done
    /// nor failed (see [`Report::paused`]).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for s in &self.steps {
            match s.outcome {
                Outcome::Done => c.0 += 1,
                Outcome::Failed(_) => c.1 += 1,
                Outcome::Skipped { .. } | Outcome::Interrupted => c.2 += 1,
                Outcome::Paused(_) => {}
            }
        }
        c
    }

    /// Rollouts that stopped at a pause, waiting for `rollout promote`.
    pub fn paused(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Paused(_)))
            .count()
    }

    /// Whether no step failed (steps skipped then wait on a paused rollout).
    pub fn nothing_failed(&self) -> bool {
        !self
            .steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Interrupted))
    }

    /// Whether the apply stopped early because it was interrupted.
    pub fn interrupted(&self) -> bool {
        self.steps.iter().any(|s| s.outcome == Outcome::Interrupted)
    }
}

/// Progress notifications for the CLI.
pub enum Progress<'a> {
    /// A step started.
    Started(&'a Step),
    /// A step ended.
    Finished(&'a StepResult),
}

/// What the executor needs besides the plan.
pub struct Inputs<'a> {
    /// The loaded environment (desired expressions).
    pub env: &'a Environment,
    /// State as it was when the plan was computed.
    pub state: &'a [ResourceState],
    /// Live state as refreshed for the plan.
    pub live: &'a LiveMap,
    /// Where completed steps are recorded.
    pub store: &'a dyn StateStore,
    /// The providers.
    pub registry: &'a Registry,
    /// Actor and commit for audit events.
    pub audit: &'a audit::Context,
    /// The command name recorded on events (`apply`, `destroy`).
    pub operation: &'a str,
    /// Steps in flight at most.
    pub parallelism: usize,
    /// Cancelled on Ctrl-C: no new step starts, steps in flight finish (a rollout stops at
    /// its next safe point, resumable).
    pub interrupt: &'a CancellationToken,
    /// Progress lines from long steps (rollouts), for people.
    pub notice: &'a (dyn Fn(&str) + Send + Sync),
    /// Services `rollout undo` pinned to an earlier revision.
    pub pins: &'a crate::rollout::Pins,
    /// `--redo`: roll out what the files say even where a pin holds.
    pub redo: bool,
    /// Services whose new images are not promoted (and why): their steps are refused.
    pub unpromoted: &'a BTreeMap<Address, String>,
}

/// Errors that stop an apply: state could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A completed step could not be recorded; nothing further was started.
    #[error("could not record {address} in state after it was applied: {source}")]
    State {
        /// The step's address.
        address: Address,
        /// The state error.
        #[source]
        source: state::StateError,
    },
    /// The outputs could not be recorded after apply.
    #[error("could not record the outputs in state: {0}")]
    Outputs(#[source] state::StateError),
}

type StepOutput = (NodeIndex, Result<Option<Applied>, StepError>, Duration);

/// Why one step failed (reported in the step's result and audit event; dependents skipped).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A provider call failed or was refused.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A rollout did not succeed (rolled back, refused, interrupted, or its target failed).
    #[error(transparent)]
    Rollout(#[from] crate::rollout::RolloutError),
    /// apply refused the step before any call (a policy or a check, not a provider failure).
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Runs the plan's steps; see the module docs for the guarantees.
pub async fn execute(
    plan: &Plan,
    inputs: &Inputs<'_>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Report, ApplyError> {
    let graph = step_graph(plan, inputs);
    let mut remaining: BTreeMap<NodeIndex, usize> = graph
        .node_indices()
        .map(|n| (n, graph.neighbors_directed(n, Direction::Incoming).count()))
        .collect();
    let mut ready: VecDeque<NodeIndex> = remaining
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut blocked: BTreeSet<NodeIndex> = BTreeSet::new();
    let mut outputs: BTreeMap<Address, Value> = inputs
        .state
        .iter()
        .map(|s| (s.address.clone(), s.outputs.clone()))
        .chain(
            inputs
                .live
                .iter()
                .filter_map(|(a, l)| l.as_ref().map(|l| (a.clone(), l.outputs.clone()))),
        )
        .collect();
    let mut report = Report::default();
    let mut running: FuturesUnordered<BoxFuture<'_, StepOutput>> = FuturesUnordered::new();
    // Steps that finished while the loop was writing state for another one.
    let mut finished: VecDeque<StepOutput> = VecDeque::new();
    let parallelism = inputs.parallelism.max(1);

    loop {
        while running.len() < parallelism && !inputs.interrupt.is_cancelled() {
            let Some(node) = ready.pop_front() else { break };
            let step = graph[node].clone();
            progress(Progress::Started(&step));
            let ctx = ApplyContext {
                env: inputs.env,
                outputs: &outputs,
            };
            let request = build_request(&step, inputs, &ctx);
            while_running(
                &mut running,
                &mut finished,
                mark_in_flight(&step, &request, inputs),
            )
            .await?;
            running.push(Box::pin(async move {
                let started = Instant::now();
                let result = run_request(inputs, request).await;
                (node, result, started.elapsed())
            }));
        }
        let next = match finished.pop_front() {
            Some(done) => Some(done),
            None => running.next().await,
        };
        let Some((node, result, elapsed)) = next else {
            break;
        };
        let step = graph[node].clone();
        let outcome = match result {
            Ok(applied) => {
                while_running(
                    &mut running,
                    &mut finished,
                    record(&step, applied.as_ref(), inputs, &mut outputs),
                )
                .await?;
                Outcome::Done
            }
            Err(StepError::Rollout(e @ crate::rollout::RolloutError::Paused { .. })) => {
                while_running(&mut running, &mut finished, unmark(&step, inputs)).await?;
                Outcome::Paused(e.to_string())
            }
            Err(e) => {
                if let StepError::Rollout(r) = &e
                    && r.left_old_revision()
                {
                    while_running(&mut running, &mut finished, unmark(&step, inputs)).await?;
                }
                while_running(
                    &mut running,
                    &mut finished,
                    notify::step_failed(inputs, &outputs, &step, &e),
                )
                .await;
                let message = e.to_string();
                let event = NewEvent::new(inputs.operation, action_name(&step), "failed")
                    .address(&step.address)
                    .detail(message.clone());
                while_running(
                    &mut running,
                    &mut finished,
                    inputs
                        .store
                        .commit(state::Change::None, event, inputs.audit),
                )
                .await
                .map_err(|source| ApplyError::State {
                    address: step.address.clone(),
                    source,
                })?;
                Outcome::Failed(message)
            }
        };
        let failed = matches!(outcome, Outcome::Failed(_) | Outcome::Paused(_));
        let result = StepResult {
            step: step.clone(),
            outcome,
            elapsed,
        };
        progress(Progress::Finished(&result));
        report.steps.push(result);
        if failed {
            let mut dfs = petgraph::visit::Dfs::new(&graph, node);
            while let Some(n) = dfs.next(&graph) {
                if n != node && blocked.insert(n) {
                    let skipped = StepResult {
                        step: graph[n].clone(),
                        outcome: Outcome::Skipped {
                            because: step.address.clone(),
                        },
                        elapsed: Duration::ZERO,
                    };
                    progress(Progress::Finished(&skipped));
                    report.steps.push(skipped);
                }
            }
        }
        for next in graph.neighbors_directed(node, Direction::Outgoing) {
            if let Some(d) = remaining.get_mut(&next) {
                *d -= 1;
                if *d == 0 && !failed && !blocked.contains(&next) {
                    ready.push_back(next);
                }
            }
        }
    }
    if inputs.interrupt.is_cancelled() {
        let reported: BTreeSet<NodeIndex> = graph
            .node_indices()
            .filter(|n| report.steps.iter().any(|s| s.step == graph[*n]))
            .collect();
        for n in graph.node_indices().filter(|n| !reported.contains(n)) {
            report.steps.push(StepResult {
                step: graph[n].clone(),
                outcome: Outcome::Interrupted,
                elapsed: Duration::ZERO,
            });
        }
    }
    Ok(report)
}

/// Awaits `work` (a state write of the apply loop) while the steps in flight go on being
/// polled, keeping those that finish in `finished`. A step (a rollout) writes state too: left
/// unpolled while it holds a transaction, it would block `work` on that transaction forever.
async fn while_running<'a, T>(
    running: &mut FuturesUnordered<BoxFuture<'a, StepOutput>>,
    finished: &mut VecDeque<StepOutput>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            Some(done) = running.next(), if !running.is_empty() => finished.push_back(done),
        }
    }
}

/// Clears the in-flight marker of an update whose rollout ended with the old revision serving
/// (rolled back, aborted, refused) or that waits at a pause: the row is as last applied, and
/// the rollout record says the rest.
async fn unmark(step: &Step, inputs: &Inputs<'_>) -> Result<(), ApplyError> {
    let Some(stored) = inputs.state.iter().find(|s| s.address == step.address) else {
        return Ok(());
    };
    if step.kind != StepKind::Update {
        return Ok(());
    }
    let row = ResourceState {
        status: ResourceStatus::Applied,
        ..stored.clone()
    };
    inputs
        .store
        .mark_in_flight(&row)
        .await
        .map_err(|source| ApplyError::State {
            address: step.address.clone(),
            source,
        })
}

/// Records in state that a step's cloud call is about to start.
async fn mark_in_flight(
    step: &Step,
    request: &Request,
    inputs: &Inputs<'_>,
) -> Result<(), ApplyError> {
    let marker = match request {
        Request::Create(r) => {
            let Ok(provider) = inputs.registry.for_kind(r.kind) else {
                return Ok(());
            };
            ResourceState {
                address: r.address.clone(),
                kind: r.kind.kind.to_string(),
                remote_id: provider.planned_id(r),
                properties: r.properties.clone(),
                outputs: Value::Null,
                dependencies: inputs
                    .env
                    .resources
                    .get(&r.address)
                    .map(|d| d.depends_on.iter().cloned().collect())
                    .unwrap_or_default(),
                status: ResourceStatus::Creating,
            }
        }
        Request::Update(_) | Request::Rollout(_) | Request::Delete(_) => {
            let Some(stored) = inputs.state.iter().find(|s| s.address == step.address) else {
                return Ok(());
            };
            ResourceState {
                status: if step.kind == StepKind::Delete {
                    ResourceStatus::Deleting
                } else {
                    ResourceStatus::Updating
                },
                ..stored.clone()
            }
        }
        Request::Refused(_) | Request::Forget => return Ok(()),
    };
    inputs
        .store
        .mark_in_flight(&marker)
        .await
        .map_err(|source| ApplyError::State {
            address: step.address.clone(),
            source,
        })
}

/// Makes the plan's moves in state (`moved` entries), all in one step and one `moved` audit
/// event, before anything else is applied: no cloud call; each resource's `converge:address`
/// tag then follows as an ordinary in-place update. Returns how many resources moved.
pub async fn record_moves(plan: &Plan, inputs: &Inputs<'_>) -> Result<usize, ApplyError> {
    let Some(first) = plan.moved.first() else {
        return Ok(0);
    };
    let listed: Vec<String> = plan
        .moved
        .iter()
        .map(|m| format!("{} → {}", m.from, m.to))
        .collect();
    let mut event =
        NewEvent::new(inputs.operation, crate::audit::EventKind::Move, "ok").detail(format!(
            "moved in state by `moved` entries: {}; nothing changed in the cloud",
            listed.join(", ")
        ));
    if let [only] = plan.moved.as_slice() {
        event = event.address(&only.to);
        event.before = Some(serde_json::json!({ "address": only.from.as_str() }));
        event.after = Some(serde_json::json!({ "address": only.to.as_str() }));
    } else {
        let side = |f: fn(&crate::plan::moves::Move) -> &crate::model::Address| serde_json::json!({ "addresses": plan.moved.iter().map(|m| f(m).as_str()).collect::<Vec<_>>() });
        event.before = Some(side(|m| &m.from));
        event.after = Some(side(|m| &m.to));
    }
    let pairs = plan
        .moved
        .iter()
        .map(|m| (m.from.clone(), m.to.clone()))
        .collect();
    inputs
        .store
        .commit(state::Change::Move(pairs), event, inputs.audit)
        .await
        .map_err(|source| ApplyError::State {
            address: first.to.clone(),
            source,
        })?;
    Ok(plan.moved.len())
}

/// Records the environment's outputs as they evaluate against state after an untargeted apply
/// (none after a destroy), when they differ from the recorded ones: one `outputs` event, no cloud call.
/// Returns whether anything was recorded.
pub async fn record_outputs(inputs: &Inputs<'_>, destroy: bool) -> Result<bool, ApplyError> {
    let state_error = ApplyError::Outputs;
    let rows = inputs.store.resources().await.map_err(state_error)?;
    let recorded = inputs.store.outputs().await.map_err(state_error)?;
    let now: Vec<_> = if destroy {
        Vec::new()
    } else {
        // An output whose value state cannot give yet (a resource it names is missing) keeps
        // what was recorded, or is not recorded at all: never an unknown.
        crate::plan::outputs::evaluate(
            &inputs.env.outputs,
            &crate::plan::outputs::StateLookup::new(&rows),
        )
        .into_iter()
        .filter_map(|o| {
            if o.value.contains_unknown() {
                recorded.iter().find(|r| r.name == o.name).cloned()
            } else {
                Some(o)
            }
        })
        .collect()
    };
    let changed = crate::plan::outputs::changes(&recorded, &now);
    if changed.is_empty() {
        return Ok(false);
    }
    let names: Vec<String> = changed
        .iter()
        .map(|c| {
            let what = match c.action {
                crate::plan::Action::Create => "new",
                crate::plan::Action::Delete => "removed",
                _ => "changed",
            };
            format!("{} ({what})", c.name)
        })
        .collect();
    let mut event = NewEvent::new(inputs.operation, crate::audit::EventKind::Outputs, "ok")
        .detail(format!("outputs recorded: {}", names.join(", ")));
    event.after = Some(serde_json::Value::Object(
        now.iter()
            .map(|o| (o.name.clone(), o.value.to_display_json()))
            .collect(),
    ));
    inputs
        .store
        .commit(state::Change::Outputs(now), event, inputs.audit)
        .await
        .map_err(state_error)?;
    Ok(true)
}

/// Settles resources an interrupted apply left in flight that now need no change: they exist
/// as desired, so they are recorded as applied (audited as adopted). Returns how many.
pub async fn settle_in_flight(plan: &Plan, inputs: &Inputs<'_>) -> Result<usize, ApplyError> {
    let mut settled = 0;
    // A moved resource is settled once its move is made (the next run).
    let settle = |c: &&crate::plan::Change| c.action == Action::NoOp && c.moved_from.is_none();
    for change in plan.changes.iter().filter(settle) {
        let Some(stored) = inputs
            .state
            .iter()
            .find(|s| s.address == change.address && s.status.in_flight())
        else {
            continue;
        };
        let Some(live) = inputs.live.get(&change.address).cloned().flatten() else {
            continue;
        };
        let settled_row = ResourceState {
            properties: change.after.clone().unwrap_or(Value::Null),
            outputs: live.outputs.clone(),
            status: ResourceStatus::Applied,
            ..stored.clone()
        };
        let event = NewEvent::new(inputs.operation, crate::audit::EventKind::Adopt, "ok")
            .address(&change.address)
            .detail(format!(
                "an interrupted apply left it {}; it exists as desired, so it is recorded as applied",
                stored.status.as_str()
            ));
        inputs
            .store
            .commit(state::Change::Put(settled_row), event, inputs.audit)
            .await
            .map_err(|source| ApplyError::State {
                address: change.address.clone(),
                source,
            })?;
        settled += 1;
    }
    Ok(settled)
}

/// Rewrites, as state-only steps, the secret digests of unchanged resources that are in the
/// legacy form (plain SHA-256) or under the previous state key, when the plan holds their
/// values (a fresh plan; a saved plan file holds only digests). No cloud call; each rewrite is
/// an audit event. Returns how many digests were rewritten.
pub async fn upgrade_digests(plan: &Plan, inputs: &Inputs<'_>) -> Result<usize, ApplyError> {
    let keyring = crate::model::digest::keyring();
    let mut upgraded = 0;
    let unmoved_no_op =
        |c: &&crate::plan::Change| c.action == Action::NoOp && c.moved_from.is_none();
    for change in plan.changes.iter().filter(unmoved_no_op) {
        let Some(stored) = inputs
            .state
            .iter()
            .find(|s| s.address == change.address && !s.status.in_flight())
        else {
            continue;
        };
        let Some(after) = change.after.as_ref().filter(|a| holds_secret_values(a)) else {
            continue;
        };
        let old = stored
            .properties
            .digests()
            .into_iter()
            .filter(|d| keyring.needs_upgrade(d).unwrap_or(false))
            .count();
        if old == 0 {
            continue;
        }
        let row = ResourceState {
            properties: after.clone(),
            ..stored.clone()
        };
        let event = NewEvent::new(
            inputs.operation,
            crate::audit::EventKind::DigestUpgrade,
            "ok",
        )
        .address(&change.address)
        .detail(format!(
            "{old} secret digest{} rewritten under state key {}; nothing changed in the cloud",
            if old == 1 { "" } else { "s" },
            keyring.current.id()
        ));
        inputs
            .store
            .commit(state::Change::Put(row), event, inputs.audit)
            .await
            .map_err(|source| ApplyError::State {
                address: change.address.clone(),
                source,
            })?;
        upgraded += old;
    }
    Ok(upgraded)
}

/// Whether a value holds secrets in hand (not only their digests).
fn holds_secret_values(v: &Value) -> bool {
    match v {
        Value::Sensitive(_) => true,
        Value::List(l) => l.iter().any(holds_secret_values),
        Value::Map(m) => m.values().any(holds_secret_values),
        _ => false,
    }
}

/// Persists a completed step and its audit event.
async fn record(
    step: &Step,
    applied: Option<&Applied>,
    inputs: &Inputs<'_>,
    outputs: &mut BTreeMap<Address, Value>,
) -> Result<(), ApplyError> {
    let before = inputs
        .live
        .get(&step.address)
        .cloned()
        .flatten()
        .map(|l| l.properties.to_display_json());
    let mut first_revision = None;
    let (change, after) = match (step.kind, applied) {
        (StepKind::Delete | StepKind::Forget, _) => {
            outputs.remove(&step.address);
            (state::Change::Remove(step.address.clone()), None)
        }
        (_, Some(applied)) => {
            let resource = &inputs.env.resources[&step.address];
            let ctx = ApplyContext {
                env: inputs.env,
                outputs,
            };
            let properties = resource.desired(&ctx, &inputs.env.name);
            let after = properties.to_display_json();
            let stored = ResourceState {
                address: step.address.clone(),
                kind: resource.kind.kind.to_string(),
                remote_id: applied.remote_id.clone(),
                properties,
                outputs: applied.outputs.clone(),
                dependencies: resource.depends_on.iter().cloned().collect(),
                status: ResourceStatus::Applied,
            };
            if step.kind == StepKind::Create {
                first_revision = first_revision_event(step, &stored, inputs.operation);
            }
            outputs.insert(step.address.clone(), applied.outputs.clone());
            (state::Change::Put(stored), Some(after))
        }
        (_, None) => (state::Change::None, None),
    };
    let mut event = NewEvent::new(inputs.operation, action_name(step), "ok").address(&step.address);
    event.before = if step.kind == StepKind::Create && step.action == Action::Create {
        None
    } else {
        before
    };
    event.after = after;
    if step.kind == StepKind::Forget
        && let Some(stored) = inputs.state.iter().find(|s| s.address == step.address)
    {
        event.detail = Some(format!(
            "removed from state (`removed`, destroy: false); {} {} still exists in the cloud",
            stored.kind, stored.remote_id
        ));
    }
    if step.action == Action::Replace {
        event.detail = Some(match step.kind {
            StepKind::Delete => "deleted for replacement".into(),
            _ => "created as replacement".into(),
        });
    }
    inputs
        .store
        .commit(change, event, inputs.audit)
        .await
        .map_err(|source| ApplyError::State {
            address: step.address.clone(),
            source,
        })?;
    if let Some(mut event) = first_revision {
        // The event was built from a typed revision just above: it decodes.
        if let (Some(aws), Ok(Some(mut revision))) = (inputs.registry.aws(), event.revision_after())
            && let Ok(digests) = crate::promotion::digests(aws, &revision.images).await
        {
            revision.digests = Some(digests);
            event.after = Some(serde_json::to_value(&revision).expect("a revision serializes"));
        }
        inputs
            .store
            .commit(state::Change::None, event, inputs.audit)
            .await
            .map_err(|source| ApplyError::State {
                address: step.address.clone(),
                source,
            })?;
    }
    Ok(())
}

/// The `first revision` event of a service created under a canary or blue/green rollout (its
/// first task set takes all traffic at once, with no rollout to record it), so that
/// `rollout history` and `rollout undo` know the revision it started on. (A rolling service's
/// first deploy is a rollout of its own.)
fn first_revision_event(step: &Step, stored: &ResourceState, operation: &str) -> Option<NewEvent> {
    let deploy = kinds::find(&stored.kind)?.deploy?;
    let task_definition = deploy.first_revision(&stored.properties, &stored.outputs)?;
    let task_definition = task_definition.as_str();
    let event = NewEvent::new(operation, crate::audit::EventKind::FirstRevision, "ok")
        .address(&step.address)
        .detail(format!(
            "{} takes all traffic as the service's first revision",
            task_definition
                .rsplit('/')
                .next()
                .unwrap_or(task_definition)
        ));
    let event = event.revision(
        None,
        &crate::audit::Revision {
            task_definition: task_definition.to_string(),
            images: crate::rollout::images(&stored.properties),
            ..Default::default()
        },
    );
    Some(event)
}

fn action_name(step: &Step) -> crate::audit::EventKind {
    use crate::audit::EventKind;
    match (step.action, step.kind) {
        (Action::Replace, _) => EventKind::Replace,
        (_, StepKind::Create) => EventKind::Create,
        (_, StepKind::Update) => EventKind::Update,
        (_, StepKind::Delete) => EventKind::Delete,
        (_, StepKind::Forget) => EventKind::Forget,
    }
}

/// The DAG of steps: creates/updates after their dependencies' steps, deletes before the
/// deletes of what they depended on, a replace's create after its delete.
fn step_graph(plan: &Plan, inputs: &Inputs<'_>) -> DiGraph<Step, ()> {
    let mut graph = DiGraph::new();
    let mut creates: BTreeMap<Address, NodeIndex> = BTreeMap::new();
    let mut deletes: BTreeMap<Address, NodeIndex> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| c.action.is_change()) {
        let a = change.address.clone();
        let step = |kind| Step {
            address: a.clone(),
            kind,
            action: change.action,
        };
        match change.action {
            Action::Create => {
                creates.insert(a.clone(), graph.add_node(step(StepKind::Create)));
            }
            Action::Update => {
                creates.insert(a.clone(), graph.add_node(step(StepKind::Update)));
            }
            Action::Delete => {
                deletes.insert(a.clone(), graph.add_node(step(StepKind::Delete)));
            }
            Action::Forget => {
                graph.add_node(step(StepKind::Forget));
            }
            Action::Replace => {
                let d = graph.add_node(step(StepKind::Delete));
                let c = graph.add_node(step(StepKind::Create));
                graph.add_edge(d, c, ());
                deletes.insert(a.clone(), d);
                creates.insert(a.clone(), c);
            }
            Action::NoOp => {}
        }
    }
    // Creates and updates after what they depend on.
    for (address, node) in &creates {
        if let Some(resource) = inputs.env.resources.get(address) {
            for dep in &resource.depends_on {
                if let Some(before) = creates.get(dep) {
                    graph.update_edge(*before, *node, ());
                }
            }
        }
    }
    // A resource's delete waits for the deletes and updates of what depended on it.
    for stored in inputs.state {
        for dep in &stored.dependencies {
            let Some(dep_delete) = deletes.get(dep) else {
                continue;
            };
            if let Some(own_delete) = deletes.get(&stored.address) {
                graph.update_edge(*own_delete, *dep_delete, ());
            } else if let Some(own_update) = creates.get(&stored.address) {
                graph.update_edge(*own_update, *dep_delete, ());
            }
        }
    }
    graph
}

/// What references evaluate to while applying: properties from the files, outputs as recorded
/// so far (including steps completed in this apply).
pub(crate) struct ApplyContext<'a> {
    /// The environment whose files give the properties.
    pub(crate) env: &'a Environment,
    /// Outputs by address.
    pub(crate) outputs: &'a BTreeMap<Address, Value>,
}

impl Lookup for ApplyContext<'_> {
    fn lookup(&self, r: &Reference) -> Value {
        if let Some(resource) = self.env.resources.get(&r.address)
            && resource.kind.prop(&r.attr).is_some()
        {
            let props = resource.desired(self, &self.env.name);
            return value_at(props.get(&r.attr), &r.path);
        }
        match self
            .outputs
            .get(&r.address)
            .map(|o| value_at(o.get(&r.attr), &r.path))
        {
            Some(Value::Null) | None => Value::Unknown,
            Some(v) => v,
        }
    }
}
