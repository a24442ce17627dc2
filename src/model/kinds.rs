//! The registry of resource kinds converge manages, with their schemas (DESIGN §2).

use super::schema::{Default, KindSchema, Output, Prop, Type};

const STRING: Type = Type::String;
const STRINGS: Type = Type::List(&STRING);
const STRING_MAP: Type = Type::Map(&STRING);

const TAGS: Prop =
    Prop::new("tags", STRING_MAP, "Tags put on the resource.").default(Default::EmptyMap);

const ECR_LIFECYCLE: &[Prop] = &[
    Prop::new(
        "keep_last_images",
        Type::Number,
        "Expire images beyond this many, newest kept.",
    ),
    Prop::new(
        "expire_untagged_after_days",
        Type::Number,
        "Expire untagged images older than this many days.",
    ),
];

/// `aws.ecr_repository`: an Amazon ECR repository.
pub const ECR_REPOSITORY: KindSchema = KindSchema {
    kind: "aws.ecr_repository",
    doc: "An Amazon ECR container image repository.",
    props: &[
        Prop::new("name", STRING, "Repository name.")
            .required()
            .replace(),
        Prop::new(
            "image_tag_mutability",
            Type::Enum(&["MUTABLE", "IMMUTABLE"]),
            "Whether image tags can be overwritten.",
        )
        .default(Default::Str("MUTABLE")),
        Prop::new(
            "scan_on_push",
            Type::Bool,
            "Scan images for vulnerabilities when pushed.",
        )
        .default(Default::Bool(false)),
        Prop::new(
            "lifecycle",
            Type::Object(ECR_LIFECYCLE),
            "Image expiry rules.",
        ),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "arn",
            ty: STRING,
        },
        Output {
            name: "uri",
            ty: STRING,
        },
        Output {
            name: "registry_id",
            ty: STRING,
        },
    ],
};

/// `aws.ecs_cluster`: an Amazon ECS cluster.
pub const ECS_CLUSTER: KindSchema = KindSchema {
    kind: "aws.ecs_cluster",
    doc: "An Amazon ECS cluster.",
    props: &[
        Prop::new("name", STRING, "Cluster name.")
            .required()
            .replace(),
        Prop::new(
            "container_insights",
            Type::Bool,
            "CloudWatch Container Insights on or off.",
        )
        .default(Default::Bool(false)),
        TAGS,
    ],
    outputs: &[Output {
        name: "arn",
        ty: STRING,
    }],
};

/// `aws.iam_role`: an IAM role.
pub const IAM_ROLE: KindSchema = KindSchema {
    kind: "aws.iam_role",
    doc: "An AWS IAM role.",
    props: &[
        Prop::new("name", STRING, "Role name.").required().replace(),
        Prop::new(
            "assume_role_policy",
            Type::Any,
            "Trust policy document (an object).",
        )
        .required(),
        Prop::new(
            "managed_policy_arns",
            STRINGS,
            "Managed policies attached to the role.",
        )
        .unordered()
        .default(Default::EmptyList),
        Prop::new("description", STRING, "Description."),
        TAGS,
    ],
    outputs: &[Output {
        name: "arn",
        ty: STRING,
    }],
};

const CONTAINER: &[Prop] = &[
    Prop::new("name", STRING, "Container name.").required(),
    Prop::new("image", STRING, "Image reference.").required(),
    Prop::new("port", Type::Number, "Container port (TCP) it listens on."),
    Prop::new(
        "cpu",
        Type::Number,
        "CPU units reserved for this container.",
    ),
    Prop::new("memory", Type::Number, "Hard memory limit (MiB)."),
    Prop::new(
        "environment",
        STRING_MAP,
        "Environment variables, NAME: value.",
    )
    .default(Default::EmptyMap),
    Prop::new(
        "secrets",
        STRING_MAP,
        "Secrets, NAME: ARN of a Secrets Manager secret or SSM parameter (ECS valueFrom).",
    )
    .default(Default::EmptyMap),
    Prop::new(
        "essential",
        Type::Bool,
        "Whether the task stops when this container stops.",
    )
    .default(Default::Bool(true)),
];
const CONTAINER_TYPE: Type = Type::Object(CONTAINER);

const TASK: &[Prop] = &[
    Prop::new("family", STRING, "Task definition family.").required(),
    Prop::new("cpu", Type::Number, "Task CPU units (256 = 0.25 vCPU).").required(),
    Prop::new("memory", Type::Number, "Task memory (MiB).").required(),
    Prop::new(
        "execution_role_arn",
        STRING,
        "Role ECS uses to pull images and read secrets.",
    ),
    Prop::new("task_role_arn", STRING, "Role the containers run as."),
    Prop::new(
        "containers",
        Type::List(&CONTAINER_TYPE),
        "Containers of the task.",
    )
    .required(),
];

const NETWORK: &[Prop] = &[
    Prop::new("subnets", STRINGS, "Subnet ids the tasks run in.")
        .required()
        .unordered(),
    Prop::new("security_groups", STRINGS, "Security group ids.")
        .unordered()
        .default(Default::EmptyList),
    Prop::new("assign_public_ip", Type::Bool, "Give tasks a public IP.")
        .default(Default::Bool(false)),
];

const LOAD_BALANCER: &[Prop] = &[
    Prop::new(
        "target_group_arn",
        STRING,
        "Target group the service registers with.",
    )
    .required(),
    Prop::new("container", STRING, "Container that receives traffic.").required(),
    Prop::new("port", Type::Number, "Its port.").required(),
];

/// `aws.ecs_service`: an ECS service on Fargate with its inline task definition.
pub const ECS_SERVICE: KindSchema = KindSchema {
    kind: "aws.ecs_service",
    doc: "An Amazon ECS service on Fargate, with its task definition.",
    props: &[
        Prop::new("name", STRING, "Service name.")
            .required()
            .replace(),
        Prop::new("cluster", STRING, "Cluster ARN or name.")
            .required()
            .replace(),
        Prop::new("launch_type", Type::Enum(&["FARGATE"]), "Launch type.")
            .replace()
            .default(Default::Str("FARGATE")),
        Prop::new(
            "desired_count",
            Type::Number,
            "Number of tasks to keep running.",
        )
        .default(Default::Int(1)),
        Prop::new(
            "task",
            Type::Object(TASK),
            "Task definition; a change registers a new revision and updates the service in place.",
        )
        .required(),
        Prop::new(
            "network",
            Type::Object(NETWORK),
            "awsvpc network configuration.",
        )
        .required(),
        Prop::new(
            "load_balancer",
            Type::Object(LOAD_BALANCER),
            "Target group registration.",
        ),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "arn",
            ty: STRING,
        },
        Output {
            name: "task_definition_arn",
            ty: STRING,
        },
    ],
};

/// Every kind converge manages, in the order `schema` lists them.
pub const ALL: &[&KindSchema] = &[&ECR_REPOSITORY, &ECS_CLUSTER, &IAM_ROLE, &ECS_SERVICE];

/// The schema of a kind, by name.
pub fn lookup(kind: &str) -> Option<&'static KindSchema> {
    ALL.iter().copied().find(|k| k.kind == kind)
}
