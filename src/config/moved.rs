//! `moved: [{ from, to }]` entries (Terraform's `moved` blocks): renames of resources and of
//! whole module instances that the next plan carries over in state instead of deleting and
//! creating.

use std::fmt;

use marked_yaml::Span;

use crate::model::Address;

/// One side of a `moved` entry: a resource's address or a module instance (`module.NAME`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MoveEnd {
    /// A resource: `KEY` (root) or `INSTANCE.KEY` (in a module instance).
    Resource(Address),
    /// Every resource of a module instance.
    Module(String),
}

impl MoveEnd {
    /// Parses `KEY`, `INSTANCE.KEY` or `module.INSTANCE`.
    pub fn parse(text: &str) -> Option<MoveEnd> {
        match text.strip_prefix("module.") {
            Some(name) => Address::parse(name)
                .filter(|a| !a.as_str().contains('.'))
                .map(|_| MoveEnd::Module(name.to_string())),
            None => Address::parse(text).map(MoveEnd::Resource),
        }
    }

    /// Where `address` goes when this side (the `from`) moves to `to`; `None` when this entry
    /// does not concern it.
    pub fn apply_to(&self, to: &MoveEnd, address: &Address) -> Option<Address> {
        match (self, to) {
            (MoveEnd::Resource(from), MoveEnd::Resource(to)) => {
                (address == from).then(|| to.clone())
            }
            (MoveEnd::Module(from), MoveEnd::Module(to)) => {
                let (instance, key) = address.as_str().split_once('.')?;
                (instance == from).then(|| Address::in_module(to, key))
            }
            _ => None,
        }
    }
}

impl fmt::Display for MoveEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoveEnd::Resource(a) => write!(f, "{a}"),
            MoveEnd::Module(m) => write!(f, "module.{m}"),
        }
    }
}

/// A `moved: [{ from, to }]` entry of an environment file, or of a module file expanded for
/// one of its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The old address.
    pub from: MoveEnd,
    /// The new address.
    pub to: MoveEnd,
    /// The file it is written in (an index into `Environment::files`).
    pub file: usize,
    /// Where it is written (its `from`), for errors found at plan.
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resources_and_module_instances() {
        assert_eq!(
            MoveEnd::parse("module.api"),
            Some(MoveEnd::Module("api".into()))
        );
        assert_eq!(
            MoveEnd::parse("backend.api"),
            Some(MoveEnd::Resource(Address::in_module("backend", "api")))
        );
        assert_eq!(MoveEnd::parse("module.a.b"), None);
        assert_eq!(MoveEnd::parse("a b"), None);
        assert_eq!(MoveEnd::parse("module."), None);
    }

    #[test]
    fn a_module_rename_carries_every_resource_of_the_instance() {
        let from = MoveEnd::Module("api".into());
        let to = MoveEnd::Module("backend".into());
        assert_eq!(
            from.apply_to(&to, &Address::in_module("api", "repo")),
            Some(Address::in_module("backend", "repo"))
        );
        assert_eq!(from.apply_to(&to, &Address::root("api")), None);
        assert_eq!(
            from.apply_to(&to, &Address::in_module("apix", "repo")),
            None
        );
    }
}
