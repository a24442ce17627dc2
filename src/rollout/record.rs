//! What a rollout persists after every change, so `rollout status` can show it and `rollout
//! resume` (or the next apply) can continue it.

use serde::{Deserialize, Serialize};

pub use crate::model::pin::{Undo, revision_number};

mod part;
mod upgrade;

pub use part::{RecordError, TargetPart, TargetRecord};

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Moving traffic or baking (or stopped mid-way by a crash: resume continues it).
    Running,
    /// The new revision is primary at 100%, the old one removed.
    Succeeded,
    /// A gate failed: traffic went back to the old revision, the new task set was removed.
    RolledBack,
    /// Someone ran `rollout abort`: rolled back.
    Aborted,
    /// The new revision was not ready by `ready_timeout` and `on_timeout: leave` left the
    /// deployment to ECS.
    Left,
    /// At a `pause` step: traffic holds where it is until `rollout promote` (or
    /// `pause_until` passes, which rolls back); no process runs it meanwhile.
    Paused,
}

impl Status {
    /// Whether it still has work to do.
    pub fn unfinished(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// A rollout record in state that this release cannot read (a newer release wrote it, or it
/// was edited by hand): an error, never a rollout silently forgotten.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the rollout record of {address} in state cannot be read: {reason}")]
pub struct UndecodableRecord {
    /// The service whose record it is.
    pub address: String,
    /// What serde said.
    pub reason: String,
}

impl Rollout {
    /// The pin this record puts on its service: an undo that succeeded.
    pub fn pin(&self) -> Option<&Undo> {
        self.undo
            .as_ref()
            .filter(|_| self.status == Status::Succeeded)
    }

    /// Whether it is paused past its `pause_timeout` at `now`.
    pub fn pause_expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.status == Status::Paused
            && self
                .pause_until
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|until| now >= until)
    }

    /// Decodes a record as stored in state, upgrading one an earlier release wrote; one
    /// written by a newer release (a higher `version`) is refused, never guessed at.
    pub fn decode(
        address: &crate::model::Address,
        body: &serde_json::Value,
    ) -> Result<Rollout, UndecodableRecord> {
        let undecodable = |reason: String| UndecodableRecord {
            address: address.to_string(),
            reason,
        };
        let mut fields = body
            .as_object()
            .cloned()
            .ok_or_else(|| undecodable("it is not a mapping".into()))?;
        let version = match fields.get("version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| undecodable(format!("its version {v} is not a number")))?,
        };
        if version > RECORD_VERSION {
            return Err(undecodable(format!(
                "it is a version {version} record, written by a newer converge (this release \
                 reads versions 1 to {RECORD_VERSION}); run that release, or `converge state rm` \
                 the rollout after ending it by hand"
            )));
        }
        upgrade::upgrade(&mut fields, version);
        serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| undecodable(e.to_string()))
    }

    /// This target's part of the record.
    pub fn details<T: TargetRecord>(&self) -> Result<T, RecordError> {
        self.target.get()
    }

    /// Replaces the target's part of the record with `details`.
    pub fn set_details<T: TargetRecord>(&mut self, details: &T) -> Result<(), RecordError> {
        self.target = TargetPart::of(details)?;
        Ok(())
    }

    /// The record as `rollout status --format json` shows it: every field of the record, the
    /// target's part under `target`, and the fields documented before parts were typed
    /// (`old`/`new` as `{task_set, task_definition, target_group, deployment}`,
    /// `service_arn`, `hook.task_arn`), filled from the part where it has them.
    pub fn status_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        let part = self.target.raw();
        let revision = |which: &str, label: &str| {
            let of = |key: &str| part.get(which).and_then(|r| r.get(key)).cloned();
            serde_json::json!({
                "task_set": of("task_set").unwrap_or_else(|| label.into()),
                "task_definition": label,
                "target_group": of("target_group").unwrap_or_else(|| "".into()),
                "deployment": of("deployment").unwrap_or_else(|| "".into()),
            })
        };
        if let Some(map) = v.as_object_mut() {
            map.insert("old".into(), revision("old", &self.old_revision));
            map.insert("new".into(), revision("new", &self.new_revision));
            map.insert(
                "service_arn".into(),
                part.get("service_arn")
                    .cloned()
                    .unwrap_or_else(|| "".into()),
            );
            if let (Some(hook), Some(run)) = (
                map.get_mut("hook").and_then(|h| h.as_object_mut()),
                self.hook.as_ref(),
            ) {
                hook.insert("task_arn".into(), run.run.clone().into());
            }
        }
        Ok(v)
    }
}

/// Where a rollout is, as persisted (the `phase` of `rollout status`). Canary: starting →
/// ready → baking (per step) → finishing → done; blue/green: starting → ready → pre_traffic →
/// termination_wait → finishing → done; rolling: starting → deploying → ready → done; any of
/// them → rolling_back → done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The new revision is being created beside the old one.
    Starting,
    /// Canary: the current step's weights are set (or being set) and its gates baked.
    Baking,
    /// Canary: at a `pause` after the current step; waits for `rollout promote`.
    Paused,
    /// Blue/green: the new revision at 0% while pre-traffic checks run.
    PreTraffic,
    /// Blue/green: all traffic switched; the old revision is kept while gates still run.
    TerminationWait,
    /// Rolling: the service is being updated in place to the new revision.
    Deploying,
    /// Waiting, up to `ready_timeout`, for the new revision to be ready before anything else
    /// happens (rolling: ECS's deployment COMPLETED and still PRIMARY; canary/blue-green: its
    /// task set steady and every target healthy, before any traffic moves).
    Ready,
    /// The new revision is being made primary and the old one removed.
    Finishing,
    /// A lifecycle hook (a one-off task of the new revision) runs; `hook` says which.
    Hook,
    /// Before the pre_traffic hooks (migrations): the accessories' declared backups are
    /// taken; a failed or empty one rolls back before any hook runs or traffic moves.
    Backup,
    /// Blue/green in batches of hosts: the next batch's new revision is started beside the
    /// old one and waited for (`ready_timeout`), and its `per_host` pre_traffic hooks run,
    /// before its switch; `step` is the batch's step, `weights` still the previous step's.
    Batch,
    /// Traffic is going back to the old revision and the new one is being removed.
    RollingBack,
    /// Nothing left to do (`status` says how it ended).
    Done,
}

impl Phase {
    /// Its name in records and `rollout status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Baking => "baking",
            Phase::Paused => "paused",
            Phase::PreTraffic => "pre_traffic",
            Phase::TerminationWait => "termination_wait",
            Phase::Deploying => "deploying",
            Phase::Ready => "ready",
            Phase::Finishing => "finishing",
            Phase::Hook => "hook",
            Phase::Backup => "backup",
            Phase::Batch => "batch",
            Phase::RollingBack => "rolling_back",
            Phase::Done => "done",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version of the record format this release writes. Version 1 (no `version` field,
/// written before the rollout engine) and version 2 (ECS fields in the record itself, a host
/// app's part as untagged JSON) are upgraded on decode by [`upgrade`]; a newer one is refused.
pub const RECORD_VERSION: u32 = 3;

/// The lifecycle hook a rollout is running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    /// `pre_traffic`, `post_traffic` or `on_rollback`.
    pub stage: crate::rollout::spec::HookStage,
    /// Index of the hook in its stage's list.
    pub index: usize,
    /// What the target calls the run ("" until started: an ECS task ARN, the hook's label on
    /// hosts): once recorded, a resume waits on it and never starts it again. Shown as
    /// `task_arn` in `rollout status --format json`.
    pub run: String,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// Whether it passed its timeout (it is being stopped).
    #[serde(default)]
    pub timed_out: bool,
    /// What the last look at it saw.
    #[serde(default)]
    pub detail: String,
    /// Whether it is a `per_host` pre_traffic hook of a later batch of hosts (runs on that
    /// batch's hosts only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// One gate evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// RFC 3339 time.
    pub time: String,
    /// `health.http`, `health.alarms`, `health.metrics.error_rate`, `health.command`, `cost`.
    pub gate: String,
    /// `pass`, `fail`, `no_data`, `alert`, `pending` (failing, limit not reached).
    pub outcome: String,
    /// What was seen.
    pub detail: String,
}

/// A rollout's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The record format (see [`RECORD_VERSION`]).
    pub version: u32,
    /// Random id.
    pub id: String,
    /// The service's address.
    pub address: String,
    /// `canary`, `blue_green` or `rolling`.
    pub strategy: String,
    /// Where it is.
    pub status: Status,
    /// What it is doing.
    pub phase: Phase,
    /// Canary weights (blue/green: `[0, 100]`).
    pub steps: Vec<i32>,
    /// Index into `steps` of the current step.
    pub step: usize,
    /// Current weights: `[old, new]`.
    pub weights: [i32; 2],
    /// The revision traffic leaves, as its target names it (an ECS task definition ARN, a
    /// host app's colour); "" on a first deploy.
    pub old_revision: String,
    /// The revision that earns traffic, as its target names it ("" until the target knows).
    pub new_revision: String,
    /// When the wait for the new revision to be ready started (RFC 3339).
    #[serde(default)]
    pub ready_started: Option<String>,
    /// When the new revision first took traffic in this rollout (RFC 3339): metric gates count
    /// from the first whole minute after it.
    #[serde(default)]
    pub traffic_started: Option<String>,
    /// The lifecycle hook running now, if any.
    #[serde(default)]
    pub hook: Option<HookRun>,
    /// At a pause: when it began and when `pause_timeout` runs out (RFC 3339).
    #[serde(default)]
    pub paused_at: Option<String>,
    /// At a pause: past this time the next converge command rolls it back.
    #[serde(default)]
    pub pause_until: Option<String>,
    /// Set when this rollout is a `rollout undo`; once it succeeded, it pins the service.
    #[serde(default)]
    pub undo: Option<Undo>,
    /// What the target keeps between steps (ECS: task sets and target groups; a host app: each
    /// host's colours and ports), typed by the target and tagged with its name.
    pub target: TargetPart,
    /// Whether a pre_traffic hook started (so on_rollback has something to undo).
    #[serde(default)]
    pub hooks_started: bool,
    /// Backups taken before the pre_traffic hooks ran (a host app's accessories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<crate::model::backup::Backup>,
    /// Older backup files removed to keep each accessory's newest `keep`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups_pruned: Vec<crate::model::backup::Pruned>,
    /// When the current bake started (RFC 3339).
    pub bake_started: Option<String>,
    /// Bake length of the current phase, seconds.
    pub bake_seconds: f64,
    /// Latest gate results (newest last, at most 50 kept).
    pub gates: Vec<GateResult>,
    /// Why it rolled back or was aborted.
    pub reason: Option<String>,
    /// Seconds from the failing gate to traffic restored, when it rolled back.
    pub rollback_seconds: Option<f64>,
    /// When the rollback began (RFC 3339), while rolling back.
    #[serde(default)]
    pub rollback_started: Option<String>,
    /// Whether the rollback was asked for (`rollout abort`, or superseded), not a gate's.
    #[serde(default)]
    pub aborting: bool,
    /// Consecutive failures of each gate that counts them (`health.http`), reset by a pass.
    #[serde(default)]
    pub failures: std::collections::BTreeMap<String, u32>,
    /// SHA-256 of the desired properties it rolls out (resume continues only the same ones).
    pub desired_hash: String,
    /// RFC 3339 start, update and end times.
    pub started_at: String,
    /// Last change.
    pub updated_at: String,
    /// End.
    pub finished_at: Option<String>,
}

impl Rollout {
    /// The first whole minute at or after the new revision first took traffic.
    pub fn metrics_since(&self) -> Option<std::time::SystemTime> {
        let started =
            chrono::DateTime::parse_from_rfc3339(self.traffic_started.as_deref()?).ok()?;
        let millis = started.timestamp_millis();
        let minute = 60_000;
        let boundary = (millis + minute - 1).div_euclid(minute) * minute;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(boundary as u64))
    }

    /// The latest result of each gate, oldest gate first.
    pub fn latest_gates(&self) -> Vec<&GateResult> {
        let mut latest: Vec<&GateResult> = Vec::new();
        for g in self.gates.iter().rev() {
            if !latest.iter().any(|l| l.gate == g.gate) {
                latest.push(g);
            }
        }
        latest.reverse();
        latest
    }

    /// Appends a gate result, keeping the latest 50.
    pub fn push_gate(&mut self, result: GateResult) {
        self.gates.push(result);
        if self.gates.len() > 50 {
            let extra = self.gates.len() - 50;
            self.gates.drain(..extra);
        }
    }

    /// Seconds left in the current bake, if baking.
    pub fn bake_left(&self) -> Option<f64> {
        let started = chrono::DateTime::parse_from_rfc3339(self.bake_started.as_deref()?).ok()?;
        let elapsed = (chrono::Utc::now() - started.with_timezone(&chrono::Utc)).num_milliseconds()
            as f64
            / 1000.0;
        Some((self.bake_seconds - elapsed).max(0.0))
    }
}

/// Now, RFC 3339 with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
