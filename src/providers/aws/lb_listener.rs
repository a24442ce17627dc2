//! `aws.lb_listener`: an ALB listener forwarding to weighted target groups (calls in
//! `elb/listener.rs` and `elb/mod.rs`).

use super::elb::{ElbHandler, ElbKind};
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PORT, PriceRule, Prop, STRING, STRINGS, Type, no_rules,
};

/// The registration of `aws.lb_listener`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&ElbHandler(ElbKind::Listener)),
    deploy: None,
};

/// `aws.lb_listener`: a listener forwarding to target groups by weight.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "aws.lb_listener",
    doc: "A listener of an Application Load Balancer that forwards to weighted target groups; \
          created with all weight on the first, then rollouts move the weights.",
    props: &[
        Prop::new("load_balancer_arn", STRING, "The load balancer.")
            .required()
            .replace(),
        Prop::new("port", PORT, "Port it listens on.")
            .required()
            .replace(),
        Prop::new("protocol", Type::Enum(&["HTTP"]), "Protocol.")
            .replace()
            .default(Default::Str("HTTP")),
        Prop::new(
            "target_group_arns",
            STRINGS,
            "Target groups it forwards to (weights belong to rollouts and are not compared).",
        )
        .required()
        .unordered(),
    ],
    outputs: &[Output {
        name: "arn",
        ty: STRING,
    }],
    price: PriceRule::Free,
    import_id: "listener ARN",
    rules: no_rules,
    rollout_summary: None,
};
