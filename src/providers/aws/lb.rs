//! `aws.lb`: an Application Load Balancer (calls in `elb/load_balancer.rs` and `elb/mod.rs`).

use super::elb::{ElbHandler, ElbKind};
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, STRINGS, TAGS, Type, no_rules,
};

/// The registration of `aws.lb`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&ElbHandler(ElbKind::LoadBalancer)),
    deploy: None,
};

/// `aws.lb`: an Application Load Balancer.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "aws.lb",
    doc: "An Application Load Balancer (Elastic Load Balancing v2).",
    props: &[
        Prop::new("name", STRING, "Load balancer name.")
            .required()
            .replace(),
        Prop::new("subnets", STRINGS, "Subnets, in at least two zones.")
            .required()
            .unordered()
            .replace(),
        Prop::new("security_groups", STRINGS, "Security group ids.")
            .unordered()
            .default(Default::EmptyList),
        Prop::new("internal", Type::Bool, "Internal (no public address).")
            .replace()
            .default(Default::Bool(false)),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "arn",
            ty: STRING,
        },
        Output {
            name: "dns_name",
            ty: STRING,
        },
        Output {
            name: "arn_suffix",
            ty: STRING,
        },
    ],
    price: PriceRule::LoadBalancerHour,
    import_id: "load balancer ARN",
    rules: no_rules,
    rollout_summary: None,
};
