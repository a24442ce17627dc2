//! The audit trail's contract: every kind of event converge writes, spelled once, here. Writers
//! name an [`EventKind`]; readers (`rollout history`, promotion, cost-anomaly attribution) match
//! on one, so no other file spells an event's action. The strings are what the trail has always
//! stored, so events written before this enum read back as the same kinds and keep their
//! hashes; an action this binary does not know reads as `None`, never as another kind.

/// Declares the event kinds once: each variant, its doc and the action string it stores;
/// `ALL` and `as_str` follow from the one table, so no kind can be left out of either.
macro_rules! event_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => $action:literal,)*) => {
        /// What an audit event records (its `action`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl EventKind {
            /// Every kind, in the order the documentation lists them.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$kind,)*];

            /// The action string the trail stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$kind => $action,)*
                }
            }
        }
    };
}

event_kinds! {
    /// apply created a resource.
    Create => "create",
    /// apply updated a resource in place.
    Update => "update",
    /// apply replaced a resource (delete, then create).
    Replace => "replace",
    /// apply or destroy deleted a resource.
    Delete => "delete",
    /// apply adopted a resource an interrupted run had created.
    Adopt => "adopt",
    /// apply rewrote legacy secret digests (state only).
    DigestUpgrade => "digest upgrade",
    /// A service created under canary or blue/green took all traffic on its first revision.
    FirstRevision => "first revision",
    /// drift found a resource changed outside converge.
    Drift => "drift",
    /// drift found nothing.
    DriftCheck => "drift check",
    /// `import` adopted a live resource.
    Import => "import",
    /// `state rm` forgot a resource.
    Forget => "forget",
    /// `state mv` moved a resource to another address.
    Move => "moved",
    /// apply recorded the environment's outputs.
    Outputs => "outputs",
    /// `lock force-unlock` removed the lock.
    Unlock => "unlock",
    /// A writer took over a stale lock.
    LockTakeover => "lock takeover",
    /// The policies judged a plan (its verdict in `after`; outcome `denied` or `ok`).
    PolicyCheck => "policy check",
    /// `--allow-over-budget` let a plan past its budget.
    BudgetOverride => "budget override",
    /// `--allow-unpromoted` let images through that did not pass the environment promoted from.
    PromotionOverride => "promotion override",
    /// `--accept-new-host-keys` recorded a host's key.
    HostKeyAccepted => "host key accepted",
    /// `plan` ran (the files and figures it planned from).
    Plan => "plan",
    /// `cost watch` found an anomaly.
    CostAnomaly => "cost anomaly",
    /// `rollout undo` sent a service back to an earlier revision.
    Undo => "undo",
    /// A check before anything changed (cost gate, alarms) refused a rollout.
    RolloutRefused => "rollout refused",
    /// A rollout started.
    RolloutStart => "rollout start",
    /// The new revision became ready.
    RolloutReady => "rollout ready",
    /// The new revision did not become ready in time.
    RolloutNotReady => "rollout not ready",
    /// A canary step's weights were set (or blue/green's checks at 0% began).
    RolloutStep => "rollout step",
    /// blue/green switched traffic.
    RolloutSwitch => "rollout switch",
    /// A rollout was promoted past its bake or pause.
    RolloutPromote => "rollout promote",
    /// A rollout stopped at a `pause` step.
    RolloutPaused => "rollout paused",
    /// A paused rollout's `pause_timeout` ran out.
    RolloutPauseExpired => "rollout pause expired",
    /// A rollout finished: the new revision took all traffic.
    RolloutComplete => "rollout complete",
    /// Traffic went back to the old revision.
    Rollback => "rollback",
    /// A gate failed.
    GateFailed => "gate failed",
    /// A gate with `on_fail: alert` failed (the rollout goes on).
    GateAlert => "gate alert",
    /// Backups were taken before a rollout's pre_traffic hooks (`after.backups`).
    RolloutBackup => "rollout backup",
    /// A hook started.
    HookStart => "hook start",
    /// A hook exited 0.
    HookOk => "hook ok",
    /// A hook failed.
    HookFailed => "hook failed",
    /// `rollout promote` asked a running rollout to go on.
    PromoteRequested => "rollout promote requested",
    /// `rollout promote --full` asked a running rollout to go to 100%.
    PromoteFullRequested => "rollout promote_full requested",
    /// `rollout abort` asked a running rollout to roll back.
    AbortRequested => "rollout abort requested",
}

use EventKind::*;

impl EventKind {
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
                | RolloutBackup
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
