//! The registry of resource kinds: one line per kind. A kind is one file under
//! `providers/<cloud>/` holding its schema (properties, outputs, price rule, import id, rules)
//! and its [`Handler`](crate::providers::kind::Handler); adding a kind is that file and one
//! line in [`ALL`]. The core (config, plan, cost) reads only the schemas, which are plain data.

use crate::model::schema::KindSchema;
use crate::providers::aws::{self, AwsProvider};
use crate::providers::azure::{self, AzureProvider};
use crate::providers::kind;

/// A registered kind: its schema and the handler of the provider that manages it.
pub struct Kind {
    /// Everything known about it without a cloud.
    pub schema: &'static KindSchema,
    /// Its cloud side.
    pub handler: Handler,
    /// How its changes are deployed, for kinds whose changes are rollouts.
    pub deploy: Option<&'static dyn crate::rollout::Deploy>,
}

/// The handler of a kind, by the provider whose clients it uses.
#[derive(Clone, Copy)]
pub enum Handler {
    /// An AWS kind.
    Aws(&'static dyn kind::Handler<AwsProvider>),
    /// An Azure kind.
    Azure(&'static dyn kind::Handler<AzureProvider>),
    /// A kind on hosts reached over SSH.
    Host(&'static dyn kind::Handler<crate::hosts::app::HostProvider>),
}

impl Handler {
    /// The provider's name, as in an environment's `providers:` section.
    pub fn provider(&self) -> &'static str {
        match self {
            Handler::Aws(_) => "aws",
            Handler::Azure(_) => "azure",
            Handler::Host(_) => "host",
        }
    }
}

/// Every kind converge manages, in the order `converge schema` lists them.
pub const ALL: &[&Kind] = &[
    &aws::ecr_repository::KIND,
    &aws::cloudwatch_alarm::KIND,
    &aws::ecs_cluster::KIND,
    &aws::iam_role::KIND,
    &aws::secretsmanager_secret::KIND,
    &aws::ecs_service::KIND,
    &aws::ec2_instance::KIND,
    &aws::lb::KIND,
    &aws::lb_target_group::KIND,
    &aws::lb_listener::KIND,
    &azure::resource_group::KIND,
    &azure::container_registry::KIND,
    &azure::virtual_network::KIND,
    &azure::service_principal::KIND,
    &azure::virtual_machine::KIND,
    &crate::hosts::app::provider::KIND,
];

/// A registered kind by name.
pub fn find(name: &str) -> Option<&'static Kind> {
    ALL.iter().copied().find(|k| k.schema.kind == name)
}

/// The schema of a kind, by name.
pub fn lookup(name: &str) -> Option<&'static KindSchema> {
    find(name).map(|k| k.schema)
}

/// Every kind's schema, in registration order.
pub fn schemas() -> impl Iterator<Item = &'static KindSchema> {
    ALL.iter().map(|k| k.schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered kind is complete: a schema with properties, a handler of the provider
    /// its name says, a price rule the estimator takes, an entry in `converge schema`, and its
    /// import id in the kinds table of `docs/files-and-kinds.md`.
    #[test]
    fn every_registered_kind_is_complete_and_documented() {
        let readme = include_str!("../docs/files-and-kinds.md");
        let json_schema = crate::cli::schema::document().to_string();
        let mut names = std::collections::BTreeSet::new();
        for kind in ALL {
            let s = kind.schema;
            assert!(names.insert(s.kind), "{} registered twice", s.kind);
            assert!(
                !s.doc.is_empty() && !s.props.is_empty(),
                "{}: schema",
                s.kind
            );
            assert_eq!(kind.handler.provider(), s.provider(), "{}: handler", s.kind);
            let estimate = crate::cost::estimate(
                s.price,
                &crate::model::Value::Null,
                "us-east-1",
                crate::cost::PriceTable::shipped(),
                &crate::model::Value::Null,
            );
            assert_eq!(
                estimate == crate::cost::Estimate::Free,
                s.price == crate::model::schema::PriceRule::Free,
                "{}: price rule {:?}",
                s.kind,
                s.price
            );
            assert!(
                json_schema.contains(&format!("\"const\":\"{}\"", s.kind)),
                "{}: not in `converge schema`",
                s.kind
            );
            let row = format!("| `{}` | {} |", s.kind, s.import_id);
            assert!(
                !s.import_id.is_empty() && readme.contains(&row),
                "docs/files-and-kinds.md's kinds table has no row starting {row:?}"
            );
            assert_eq!(lookup(s.kind).map(|k| k.kind), Some(s.kind));
        }
        let table_rows = readme
            .lines()
            .filter(|l| {
                l.starts_with("| `aws.") || l.starts_with("| `azure.") || l.starts_with("| `host.")
            })
            .filter(|l| l.split('|').count() == 5)
            .count();
        assert_eq!(
            table_rows,
            ALL.len(),
            "docs/files-and-kinds.md lists exactly the registered kinds"
        );
    }
}
