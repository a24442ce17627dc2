//! Resolving `moved` entries against state: which stored resource ends up at which address
//! (chains followed), and the conflicts Terraform reports at plan.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Moved;
use crate::model::{Address, ResourceState};

/// A stored resource the plan carries to a new address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Move {
    /// Where state holds it now.
    pub from: Address,
    /// Where the files declare it.
    pub to: Address,
}

/// A `moved` entry that cannot be carried out: which entry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveConflict {
    /// The index of the entry in `Environment::moved`.
    pub entry: usize,
    /// What is wrong.
    pub message: String,
}

/// Every stored resource a `moved` entry (or a chain of them, `a → b → c`) carries elsewhere.
/// Entries whose `from` state does not hold do nothing. A move onto an address state already
/// holds (by a resource staying there), two resources moved to one address, and entries that
/// lead round in a cycle are conflicts.
pub fn resolve(entries: &[Moved], state: &[ResourceState]) -> Result<Vec<Move>, Vec<MoveConflict>> {
    let mut conflicts = Vec::new();
    let mut moves = Vec::new();
    // Which entry took each resource to its final address.
    let mut last_entry: BTreeMap<Address, usize> = BTreeMap::new();
    for stored in state {
        let mut at = stored.address.clone();
        let mut seen = BTreeSet::from([at.clone()]);
        let mut last = None;
        while let Some((i, next)) = entries
            .iter()
            .enumerate()
            .find_map(|(i, e)| e.from.apply_to(&e.to, &at).map(|n| (i, n)))
        {
            last = Some(i);
            at = next;
            if !seen.insert(at.clone()) {
                conflicts.push(MoveConflict {
                    entry: i,
                    message: format!(
                        "`moved` entries lead {} round in a cycle back to {at}",
                        stored.address
                    ),
                });
                last = None;
                break;
            }
        }
        if let Some(i) = last {
            last_entry.insert(stored.address.clone(), i);
            moves.push(Move {
                from: stored.address.clone(),
                to: at,
            });
        }
    }
    let moving: BTreeSet<&Address> = moves.iter().map(|m| &m.from).collect();
    let mut taken: BTreeMap<&Address, &Address> = BTreeMap::new();
    for m in &moves {
        let entry = last_entry[&m.from];
        if let Some(stays) = state
            .iter()
            .find(|s| s.address == m.to && !moving.contains(&s.address))
        {
            conflicts.push(MoveConflict {
                entry,
                message: format!(
                    "cannot move {} to {}: state already holds {} (a {}); `converge state rm {}` it or change this entry",
                    m.from, m.to, m.to, stays.kind, m.to
                ),
            });
        } else if let Some(first) = taken.insert(&m.to, &m.from) {
            conflicts.push(MoveConflict {
                entry,
                message: format!(
                    "cannot move both {first} and {} to {}: one address holds one resource",
                    m.from, m.to
                ),
            });
        }
    }
    if conflicts.is_empty() {
        Ok(moves)
    } else {
        Err(conflicts)
    }
}

/// `state` as it reads once `moves` are made: the same rows at their new addresses, with
/// dependencies on a moved resource following it.
pub fn moved_state(state: &[ResourceState], moves: &[Move]) -> Vec<ResourceState> {
    let to: BTreeMap<&Address, &Address> = moves.iter().map(|m| (&m.from, &m.to)).collect();
    let follow = |a: &Address| to.get(a).map_or_else(|| a.clone(), |t| (*t).clone());
    state
        .iter()
        .map(|s| ResourceState {
            address: follow(&s.address),
            dependencies: s.dependencies.iter().map(follow).collect(),
            ..s.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MoveEnd;
    use crate::model::Value;
    use crate::state::ResourceStatus;

    fn stored(address: &str) -> ResourceState {
        ResourceState {
            address: Address::parse(address).unwrap(),
            kind: "aws.ecr_repository".into(),
            remote_id: address.into(),
            properties: Value::map(),
            outputs: Value::map(),
            dependencies: Vec::new(),
            status: ResourceStatus::Applied,
        }
    }

    fn entry(from: &str, to: &str) -> Moved {
        Moved {
            from: MoveEnd::parse(from).unwrap(),
            to: MoveEnd::parse(to).unwrap(),
            file: 0,
            span: marked_yaml::Span::new_blank(),
        }
    }

    fn mv(from: &str, to: &str) -> Move {
        Move {
            from: Address::parse(from).unwrap(),
            to: Address::parse(to).unwrap(),
        }
    }

    #[test]
    fn chains_resolve_to_the_last_address() {
        let moves = resolve(
            &[entry("b", "c"), entry("a", "b")],
            &[stored("a"), stored("x")],
        )
        .unwrap();
        assert_eq!(moves, vec![mv("a", "c")]);
    }

    #[test]
    fn a_module_rename_moves_every_resource_of_the_instance() {
        let moves = resolve(
            &[entry("module.api", "module.backend")],
            &[stored("api.repo"), stored("api.svc"), stored("api")],
        )
        .unwrap();
        assert_eq!(
            moves,
            vec![mv("api.repo", "backend.repo"), mv("api.svc", "backend.svc")]
        );
    }

    #[test]
    fn an_entry_state_does_not_concern_is_a_no_op() {
        assert_eq!(
            resolve(&[entry("gone", "new")], &[stored("a")]).unwrap(),
            vec![]
        );
    }

    #[test]
    fn moving_onto_an_address_state_holds_is_a_conflict() {
        let err = resolve(&[entry("a", "b")], &[stored("a"), stored("b")]).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].entry, 0);
        assert!(
            err[0].message.contains("state already holds b"),
            "{}",
            err[0].message
        );
        // ... unless what is there moves away too.
        let ok = resolve(
            &[entry("b", "c"), entry("a", "b")],
            &[stored("a"), stored("b")],
        );
        assert!(ok.is_err(), "a and b both end at c: {ok:?}");
        let swap = resolve(
            &[entry("b", "c"), entry("a", "d")],
            &[stored("a"), stored("b")],
        );
        assert_eq!(swap.unwrap(), vec![mv("a", "d"), mv("b", "c")]);
    }

    #[test]
    fn cycles_are_conflicts() {
        let err = resolve(&[entry("a", "b"), entry("b", "a")], &[stored("a")]).unwrap_err();
        assert!(err[0].message.contains("cycle"), "{}", err[0].message);
    }

    #[test]
    fn moved_state_renames_rows_and_the_dependencies_on_them() {
        let mut svc = stored("svc");
        svc.dependencies = vec![Address::parse("a").unwrap()];
        let out = moved_state(&[stored("a"), svc], &[mv("a", "backend.a")]);
        assert_eq!(out[0].address.as_str(), "backend.a");
        assert_eq!(out[1].dependencies[0].as_str(), "backend.a");
    }
}
