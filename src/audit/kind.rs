//! The audit trail's contract: every kind of event converge writes, spelled once, here. Writers
//! name an [`EventKind`]; readers (`rollout history`, promotion, cost-anomaly attribution) match
//! on one, so no other file spells an event's action. The strings are what the trail has always
//! stored, so events written before this enum read back as the same kinds and keep their
//! hashes; an action this binary does not know reads as `None`, never as another kind.

/// What an audit event records (its `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// apply created a resource.
    Create,
    /// apply updated a resource in place.
    Update,
    /// apply replaced a resource (delete, then create).
    Replace,
    /// apply or destroy deleted a resource.
    Delete,
    /// apply adopted a resource an interrupted run had created.
    Adopt,
    /// apply rewrote legacy secret digests (state only).
    DigestUpgrade,
    /// A service created under canary or blue/green took all traffic on its first revision.
    FirstRevision,
    /// drift found a resource changed outside converge.
    Drift,
    /// drift found nothing.
    DriftCheck,
    /// `import` adopted a live resource.
    Import,
    /// `state rm` forgot a resource.
    Forget,
    /// `lock force-unlock` removed the lock.
    Unlock,
    /// A writer took over a stale lock.
    LockTakeover,
    /// `--allow-over-budget` let a plan past its budget.
    BudgetOverride,
    /// `--allow-unpromoted` let images through that did not pass the environment promoted from.
    PromotionOverride,
    /// `--accept-new-host-keys` recorded a host's key.
    HostKeyAccepted,
    /// `plan` ran (the files and figures it planned from).
    Plan,
    /// `cost watch` found an anomaly.
    CostAnomaly,
    /// `rollout undo` sent a service back to an earlier revision.
    Undo,
    /// A check before anything changed (cost gate, alarms) refused a rollout.
    RolloutRefused,
    /// A rollout started.
    RolloutStart,
    /// The new revision became ready.
    RolloutReady,
    /// The new revision did not become ready in time.
    RolloutNotReady,
    /// A canary step's weights were set (or blue/green's checks at 0% began).
    RolloutStep,
    /// blue/green switched traffic.
    RolloutSwitch,
    /// A rollout was promoted past its bake or pause.
    RolloutPromote,
    /// A rollout stopped at a `pause` step.
    RolloutPaused,
    /// A paused rollout's `pause_timeout` ran out.
    RolloutPauseExpired,
    /// A rollout finished: the new revision took all traffic.
    RolloutComplete,
    /// Traffic went back to the old revision.
    Rollback,
    /// A gate failed.
    GateFailed,
    /// A gate with `on_fail: alert` failed (the rollout goes on).
    GateAlert,
    /// A hook started.
    HookStart,
    /// A hook exited 0.
    HookOk,
    /// A hook failed.
    HookFailed,
    /// `rollout promote` asked a running rollout to go on.
    PromoteRequested,
    /// `rollout promote --full` asked a running rollout to go to 100%.
    PromoteFullRequested,
    /// `rollout abort` asked a running rollout to roll back.
    AbortRequested,
}

use EventKind::*;

impl EventKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: &'static [EventKind] = &[
        Create,
        Update,
        Replace,
        Delete,
        Adopt,
        DigestUpgrade,
        FirstRevision,
        Drift,
        DriftCheck,
        Import,
        Forget,
        Unlock,
        LockTakeover,
        BudgetOverride,
        PromotionOverride,
        HostKeyAccepted,
        Plan,
        CostAnomaly,
        Undo,
        RolloutRefused,
        RolloutStart,
        RolloutReady,
        RolloutNotReady,
        RolloutStep,
        RolloutSwitch,
        RolloutPromote,
        RolloutPaused,
        RolloutPauseExpired,
        RolloutComplete,
        Rollback,
        GateFailed,
        GateAlert,
        HookStart,
        HookOk,
        HookFailed,
        PromoteRequested,
        PromoteFullRequested,
        AbortRequested,
    ];

    /// The action string the trail stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Create => "create",
            Update => "update",
            Replace => "replace",
            Delete => "delete",
            Adopt => "adopt",
            DigestUpgrade => "digest upgrade",
            FirstRevision => "first revision",
            Drift => "drift",
            DriftCheck => "drift check",
            Import => "import",
            Forget => "forget",
            Unlock => "unlock",
            LockTakeover => "lock takeover",
            BudgetOverride => "budget override",
            PromotionOverride => "promotion override",
            HostKeyAccepted => "host key accepted",
            Plan => "plan",
            CostAnomaly => "cost anomaly",
            Undo => "undo",
            RolloutRefused => "rollout refused",
            RolloutStart => "rollout start",
            RolloutReady => "rollout ready",
            RolloutNotReady => "rollout not ready",
            RolloutStep => "rollout step",
            RolloutSwitch => "rollout switch",
            RolloutPromote => "rollout promote",
            RolloutPaused => "rollout paused",
            RolloutPauseExpired => "rollout pause expired",
            RolloutComplete => "rollout complete",
            Rollback => "rollback",
            GateFailed => "gate failed",
            GateAlert => "gate alert",
            HookStart => "hook start",
            HookOk => "hook ok",
            HookFailed => "hook failed",
            PromoteRequested => "rollout promote requested",
            PromoteFullRequested => "rollout promote_full requested",
            AbortRequested => "rollout abort requested",
        }
    }

    /// The kind a stored action string stands for (`None`: one this binary does not write).
    pub fn parse(action: &str) -> Option<EventKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == action)
    }

    /// Whether this event ends a rollout with its new revision serving all traffic (what
    /// history calls `succeeded` and promotion counts as passed).
    pub fn completes_a_revision(self) -> bool {
        matches!(self, RolloutComplete | FirstRevision)
    }

    /// Whether this event's `after` is the [`Revision`](super::Revision) it is about (the
    /// rollout engine's events and a service's first revision).
    pub fn carries_a_revision(self) -> bool {
        matches!(
            self,
            FirstRevision
                | RolloutStart
                | RolloutReady
                | RolloutNotReady
                | RolloutStep
                | RolloutSwitch
                | RolloutPromote
                | RolloutPaused
                | RolloutPauseExpired
                | RolloutComplete
                | Rollback
                | GateFailed
                | GateAlert
                | HookStart
                | HookOk
                | HookFailed
        )
    }

    /// Whether this event records a deploy of a resource (what cost attribution counts).
    pub fn deploys(self) -> bool {
        matches!(
            self,
            Create | Update | Replace | Adopt | RolloutComplete | RolloutSwitch
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_reads_back_as_itself_and_unknown_actions_as_none() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::parse("rollout completed"), None);
        let mut names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            EventKind::ALL.len(),
            "each kind has its own action"
        );
    }

    /// The event kinds table of `docs/state.md` lists exactly the kinds converge writes.
    #[test]
    fn the_documented_event_kinds_are_the_enum() {
        let doc = include_str!("../../docs/state.md");
        let documented: Vec<&str> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| l.split('`').nth(1))
            .collect();
        let written: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(documented, written, "docs/state.md's event kinds table");
    }
}
