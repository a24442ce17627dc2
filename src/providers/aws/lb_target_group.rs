//! `aws.lb_target_group`: an ALB target group (calls in `elb/target_group.rs` and `elb/mod.rs`).

use super::elb::{ElbHandler, ElbKind};
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PORT, PriceRule, Prop, STRING, TAGS, Type, no_rules,
};

/// The registration of `aws.lb_target_group`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&ElbHandler(ElbKind::TargetGroup)),
    deploy: None,
};

/// `aws.lb_target_group`: a target group of an Application Load Balancer.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "aws.lb_target_group",
    doc: "A target group for Fargate tasks (target type ip) behind an Application Load Balancer.",
    props: &[
        Prop::new("name", STRING, "Target group name.")
            .required()
            .replace(),
        Prop::new("port", PORT, "Port the targets listen on.")
            .required()
            .replace(),
        Prop::new(
            "protocol",
            Type::Enum(&["HTTP", "HTTPS"]),
            "Protocol to the targets.",
        )
        .replace()
        .default(Default::Str("HTTP")),
        Prop::new("vpc_id", STRING, "The VPC of the targets.")
            .required()
            .replace(),
        Prop::new(
            "target_type",
            Type::Enum(&["ip", "instance"]),
            "ip for Fargate tasks.",
        )
        .replace()
        .default(Default::Str("ip")),
        Prop::new(
            "health_check_path",
            STRING,
            "Path the load balancer probes.",
        )
        .default(Default::Str("/")),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "arn",
            ty: STRING,
        },
        Output {
            name: "arn_suffix",
            ty: STRING,
        },
    ],
    price: PriceRule::Free,
    import_id: "target group ARN",
    rules: no_rules,
    rollout_summary: None,
};
