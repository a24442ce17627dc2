//! The registry of resource kinds converge manages, with their schemas (DESIGN §2).

use super::schema::{Default, KindSchema, Output, PriceRule, Prop, Type, no_rules};

const STRING: Type = Type::String;
const STRINGS: Type = Type::List(&STRING);
const STRING_MAP: Type = Type::Map(&STRING);
/// A TCP port.
const PORT: Type = Type::Integer(1, 65_535);
/// A count or size an AWS API takes as a 32-bit integer.
const I32: Type = Type::Integer(0, i32::MAX as i64);
/// A rollout step: percent of traffic on the new revision.
const PERCENT_STEP: Type = Type::Integer(1, 100);

const TAGS: Prop =
    Prop::new("tags", STRING_MAP, "Tags put on the resource.").default(Default::EmptyMap);

const ECR_LIFECYCLE: &[Prop] = &[
    Prop::new(
        "keep_last_images",
        Type::Integer(1, 10_000),
        "Expire images beyond this many, newest kept.",
    ),
    Prop::new(
        "expire_untagged_after_days",
        Type::Integer(1, 36_500),
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
    price: PriceRule::EcrStorage,
    import_id: "repository name",
    rules: no_rules,
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
    price: PriceRule::Free,
    import_id: "cluster name or ARN",
    rules: no_rules,
};

/// `aws.ec2_instance`: an Amazon EC2 instance (DESIGN §2).
pub const EC2_INSTANCE: KindSchema = KindSchema {
    kind: "aws.ec2_instance",
    doc: "An Amazon EC2 instance.",
    props: &[
        Prop::new("name", STRING, "The instance's Name tag.").required(),
        Prop::new(
            "ami",
            STRING,
            "Image id (changing it replaces the instance).",
        )
        .required()
        .replace(),
        Prop::new(
            "instance_type",
            STRING,
            "e.g. t3.small; changed in place by stopping, modifying and starting the instance.",
        )
        .required(),
        Prop::new(
            "subnet_id",
            STRING,
            "Subnet it runs in (changing it replaces the instance).",
        )
        .required()
        .replace(),
        Prop::new(
            "user_data",
            STRING,
            "Cloud-init or script text (changing it replaces the instance).",
        )
        .replace(),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "private_ip",
            ty: STRING,
        },
    ],
    price: PriceRule::Ec2Instance,
    import_id: "instance id (`i-…`)",
    rules: no_rules,
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
    price: PriceRule::Free,
    import_id: "role name",
    rules: no_rules,
};

const CONTAINER: &[Prop] = &[
    Prop::new("name", STRING, "Container name.").required(),
    Prop::new("image", STRING, "Image reference.").required(),
    Prop::new("port", PORT, "Container port (TCP) it listens on."),
    Prop::new("cpu", I32, "CPU units reserved for this container."),
    Prop::new("memory", I32, "Hard memory limit (MiB)."),
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
    Prop::new("cpu", I32, "Task CPU units (256 = 0.25 vCPU).").required(),
    Prop::new("memory", I32, "Task memory (MiB).").required(),
    Prop::new(
        "cpu_architecture",
        Type::Enum(&["X86_64", "ARM64"]),
        "CPU architecture (ARM64 runs on Graviton, priced lower).",
    )
    .default(Default::Str("X86_64")),
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
        "Target group the service registers with (with a rollout: the rollout's target groups).",
    ),
    Prop::new("container", STRING, "Container that receives traffic.").required(),
    Prop::new("port", PORT, "Its port.").required(),
];

const ON_FAIL: Type = Type::Enum(&["rollback", "alert"]);

const HTTP_GATE: &[Prop] = &[
    Prop::new("url", STRING, "URL probed with GET.").required(),
    Prop::new(
        "expect_status",
        Type::Integer(100, 599),
        "Status that passes.",
    )
    .default(Default::Int(200)),
    Prop::new("timeout", Type::Duration, "Probe timeout.").default(Default::Str("2s")),
    Prop::new(
        "failures",
        Type::Integer(1, 1_000),
        "Consecutive failed probes that fail the gate.",
    )
    .default(Default::Int(2)),
    Prop::new("on_fail", ON_FAIL, "rollback or alert.").default(Default::Str("rollback")),
];
const HTTP_GATE_TYPE: Type = Type::Object(HTTP_GATE);

const METRIC_GATE: &[Prop] = &[
    Prop::new(
        "name",
        Type::Enum(&["error_rate", "p95_latency"]),
        "error_rate (HTTPCode_Target_5XX_Count / RequestCount) or p95_latency (TargetResponseTime).",
    )
    .required(),
    Prop::new("max", Type::Number, "error_rate: highest rate that passes (0.05 = 5%)."),
    Prop::new(
        "max_ratio_to_baseline",
        Type::Number,
        "p95_latency: highest ratio to the old revision's p95 that passes.",
    ),
    Prop::new("for", Type::Duration, "Window the metric is read over.").default(Default::Str("1m")),
    Prop::new(
        "no_data",
        Type::Enum(&["fail", "pass", "wait"]),
        "What no datapoints mean: fail, pass, or wait (neither; the bake goes on).",
    )
    .default(Default::Str("wait")),
    Prop::new("on_fail", ON_FAIL, "rollback or alert.").default(Default::Str("rollback")),
];
const METRIC_GATE_TYPE: Type = Type::Object(METRIC_GATE);

const COMMAND_GATE: &[Prop] = &[
    Prop::new(
        "run",
        STRING,
        "Shell command; exit 0 passes. Gets CONVERGE_ROLLOUT_* variables.",
    )
    .required(),
    Prop::new(
        "timeout",
        Type::Duration,
        "Kill it and fail after this long.",
    )
    .default(Default::Str("5m")),
    Prop::new("on_fail", ON_FAIL, "rollback or alert.").default(Default::Str("rollback")),
];

const HEALTH: &[Prop] = &[
    Prop::new("http", HTTP_GATE_TYPE, "An HTTP probe of the new revision."),
    Prop::new(
        "alarms",
        STRINGS,
        "CloudWatch alarms that must not be in ALARM.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "metrics",
        Type::List(&METRIC_GATE_TYPE),
        "ALB metrics of the new revision's target group.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "command",
        Type::Object(COMMAND_GATE),
        "A smoke test run by converge.",
    ),
];

const TRAFFIC: &[Prop] = &[
    Prop::new(
        "listener_arn",
        STRING,
        "ALB listener whose forward weights move traffic.",
    )
    .required(),
    Prop::new(
        "target_groups",
        STRINGS,
        "The two target groups the revisions alternate on.",
    )
    .required(),
    Prop::new(
        "test_listener_arn",
        STRING,
        "blue_green: a listener that reaches the new revision before the switch.",
    ),
];

const COST_ANOMALY: &[Prop] = &[
    Prop::new(
        "lookback",
        Type::Duration,
        "`cost watch` baseline window for this service (default 7d).",
    ),
    Prop::new(
        "threshold",
        Type::Percent,
        "`cost watch`: a day above the baseline by more than this is an anomaly (default 50%).",
    ),
    Prop::new(
        "min_daily",
        Type::Number,
        "`cost watch`: and by at least this many USD a day (default 1).",
    ),
];

const ROLLOUT_COST: &[Prop] = &[
    Prop::new(
        "max_run_rate_increase",
        Type::Percent,
        "Refuse a revision whose run rate exceeds the old one's by more than this.",
    ),
    Prop::new(
        "anomaly",
        Type::Object(COST_ANOMALY),
        "Per-service overrides of `cost watch`'s lookback, threshold and minimum.",
    ),
];

const NOTIFY: &[Prop] = &[Prop::new(
    "webhook",
    STRING,
    "URL that receives a JSON POST per rollout event.",
)];

const ROLLOUT: &[Prop] = &[
    Prop::new(
        "strategy",
        Type::Enum(&["canary", "blue_green", "rolling"]),
        "canary, blue_green, or rolling (ECS native, circuit breaker).",
    )
    .default(Default::Str("canary")),
    Prop::new(
        "steps",
        Type::List(&PERCENT_STEP),
        "canary: percent of traffic on the new revision at each step.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "bake",
        Type::Duration,
        "Per step (blue_green: pre-traffic checks).",
    )
    .default(Default::Str("5m")),
    Prop::new("interval", Type::Duration, "How often gates are evaluated.")
        .default(Default::Str("10s")),
    Prop::new(
        "termination_wait",
        Type::Duration,
        "blue_green: how long the old task set is kept after the switch.",
    )
    .default(Default::Str("5m")),
    Prop::new(
        "traffic",
        Type::Object(TRAFFIC),
        "Listener and target groups.",
    ),
    Prop::new(
        "health",
        Type::Object(HEALTH),
        "Gates evaluated during each bake.",
    ),
    Prop::new(
        "cost",
        Type::Object(ROLLOUT_COST),
        "Cost gate, before traffic moves.",
    ),
    Prop::new(
        "notify",
        Type::Object(NOTIFY),
        "Where rollout events are posted.",
    ),
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
        Prop::new("desired_count", I32, "Number of tasks to keep running.")
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
        Prop::new(
            "rollout",
            Type::Object(ROLLOUT),
            "Progressive delivery: a changed task earns its traffic step by step (DESIGN §5).",
        )
        .replace_when_added_or_removed(),
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
    price: PriceRule::FargateTasks,
    import_id: "`CLUSTER/SERVICE` (names or the service ARN)",
    rules: crate::rollout::spec::problems,
};

/// `aws.lb`: an Application Load Balancer.
pub const LB: KindSchema = KindSchema {
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
};

/// `aws.lb_target_group`: a target group of an Application Load Balancer.
pub const LB_TARGET_GROUP: KindSchema = KindSchema {
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
};

/// `aws.lb_listener`: a listener forwarding to target groups by weight.
pub const LB_LISTENER: KindSchema = KindSchema {
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
};

/// `azure.resource_group`: an Azure resource group.
pub const AZURE_RESOURCE_GROUP: KindSchema = KindSchema {
    kind: "azure.resource_group",
    doc: "An Azure resource group.",
    props: &[
        Prop::new("name", STRING, "Resource group name.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region, e.g. westeurope.")
            .required()
            .replace(),
        TAGS,
    ],
    outputs: &[Output {
        name: "id",
        ty: STRING,
    }],
    price: PriceRule::Free,
    import_id: "resource group id (`/subscriptions/…/resourceGroups/NAME`)",
    rules: no_rules,
};

/// `azure.container_registry`: an Azure Container Registry.
pub const AZURE_CONTAINER_REGISTRY: KindSchema = KindSchema {
    kind: "azure.container_registry",
    doc: "An Azure Container Registry.",
    props: &[
        Prop::new(
            "name",
            STRING,
            "Registry name (globally unique, alphanumeric).",
        )
        .required()
        .replace(),
        Prop::new("resource_group", STRING, "Resource group it lives in.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region.")
            .required()
            .replace(),
        Prop::new(
            "sku",
            Type::Enum(&["Basic", "Standard", "Premium"]),
            "Service tier.",
        )
        .default(Default::Str("Basic")),
        Prop::new(
            "admin_user_enabled",
            Type::Bool,
            "The admin user (a password login); off is safer.",
        )
        .default(Default::Bool(false)),
        Prop::new(
            "public_network_access",
            Type::Enum(&["Enabled", "Disabled"]),
            "Reachable from the internet.",
        )
        .default(Default::Str("Enabled")),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "login_server",
            ty: STRING,
        },
    ],
    price: PriceRule::AcrSku,
    import_id: "registry resource id",
    rules: no_rules,
};

const AZURE_SUBNET: &[Prop] = &[
    Prop::new("name", STRING, "Subnet name.").required(),
    Prop::new("address_prefix", STRING, "Its CIDR block.").required(),
];
const AZURE_SUBNET_TYPE: Type = Type::Object(AZURE_SUBNET);

/// `azure.virtual_network`: a virtual network with its subnets.
pub const AZURE_VIRTUAL_NETWORK: KindSchema = KindSchema {
    kind: "azure.virtual_network",
    doc: "An Azure virtual network and its subnets.",
    props: &[
        Prop::new("name", STRING, "Virtual network name.")
            .required()
            .replace(),
        Prop::new("resource_group", STRING, "Resource group it lives in.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region.")
            .required()
            .replace(),
        Prop::new("address_space", STRINGS, "CIDR blocks of the network.")
            .required()
            .unordered(),
        Prop::new(
            "subnets",
            Type::List(&AZURE_SUBNET_TYPE),
            "Subnets, each with a name and a CIDR block inside the address space.",
        )
        .default(Default::EmptyList),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "subnet_ids",
            ty: STRING_MAP,
        },
    ],
    price: PriceRule::Free,
    import_id: "virtual network resource id",
    rules: no_rules,
};

const FEDERATED_CREDENTIAL: &[Prop] = &[
    Prop::new("name", STRING, "Credential name.").required(),
    Prop::new(
        "issuer",
        STRING,
        "Token issuer, e.g. https://token.actions.githubusercontent.com.",
    )
    .required(),
    Prop::new(
        "subject",
        STRING,
        "Token subject, e.g. repo:org/repo:ref:refs/heads/main.",
    )
    .required(),
    Prop::new("audiences", STRINGS, "Accepted audiences.").default(Default::EmptyList),
];
const FEDERATED_CREDENTIAL_TYPE: Type = Type::Object(FEDERATED_CREDENTIAL);

const ROLE_ASSIGNMENT: &[Prop] = &[
    Prop::new("role", STRING, "Role name, e.g. AcrPush.").required(),
    Prop::new("scope", STRING, "ARM scope (a resource id).").required(),
];
const ROLE_ASSIGNMENT_TYPE: Type = Type::Object(ROLE_ASSIGNMENT);

/// `azure.service_principal`: an application, its service principal, credentials and roles.
pub const AZURE_SERVICE_PRINCIPAL: KindSchema = KindSchema {
    kind: "azure.service_principal",
    doc: "A Microsoft Entra application with its service principal, federated credentials (no secrets) and role assignments.",
    props: &[
        Prop::new("display_name", STRING, "Display name.").required(),
        Prop::new(
            "federated_credentials",
            Type::List(&FEDERATED_CREDENTIAL_TYPE),
            "Federated identity credentials (e.g. GitHub Actions OIDC).",
        )
        .unordered()
        .default(Default::EmptyList),
        Prop::new(
            "role_assignments",
            Type::List(&ROLE_ASSIGNMENT_TYPE),
            "Roles granted to the service principal at ARM scopes.",
        )
        .unordered()
        .default(Default::EmptyList),
    ],
    outputs: &[
        Output {
            name: "client_id",
            ty: STRING,
        },
        Output {
            name: "object_id",
            ty: STRING,
        },
        Output {
            name: "application_object_id",
            ty: STRING,
        },
    ],
    price: PriceRule::Free,
    import_id: "application object id",
    rules: no_rules,
};

const VM_IMAGE: &[Prop] = &[
    Prop::new("publisher", STRING, "Image publisher, e.g. Canonical.").required(),
    Prop::new("offer", STRING, "Image offer, e.g. ubuntu-24_04-lts.").required(),
    Prop::new("sku", STRING, "Image SKU, e.g. server.").required(),
    Prop::new("version", STRING, "Image version.").default(Default::Str("latest")),
];

const VM_IDENTITY: &[Prop] = &[Prop::new(
    "system_assigned",
    Type::Bool,
    "Give the VM a system-assigned managed identity.",
)
.default(Default::Bool(true))];

/// `azure.virtual_machine`: a Linux VM (SSH key only) with its network interface.
pub const AZURE_VIRTUAL_MACHINE: KindSchema = KindSchema {
    kind: "azure.virtual_machine",
    doc: "A Linux virtual machine (SSH key only) with its network interface, managed identity and role assignments.",
    props: &[
        Prop::new("name", STRING, "VM name.").required().replace(),
        Prop::new("resource_group", STRING, "Resource group it lives in.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region.")
            .required()
            .replace(),
        Prop::new("size", STRING, "VM size, e.g. Standard_B2s.").required(),
        Prop::new("image", Type::Object(VM_IMAGE), "Marketplace image.")
            .required()
            .replace(),
        Prop::new("admin_username", STRING, "Admin user.")
            .required()
            .replace(),
        Prop::new(
            "ssh_public_key",
            STRING,
            "The admin's SSH public key (no password login).",
        )
        .required()
        .replace(),
        Prop::new("subnet_id", STRING, "Subnet of its network interface.")
            .required()
            .replace(),
        Prop::new("identity", Type::Object(VM_IDENTITY), "Managed identity.")
            .default(Default::EmptyMap),
        Prop::new(
            "role_assignments",
            Type::List(&ROLE_ASSIGNMENT_TYPE),
            "Roles granted to the VM's managed identity, e.g. AcrPull on a registry.",
        )
        .unordered()
        .default(Default::EmptyList),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "principal_id",
            ty: STRING,
        },
        Output {
            name: "private_ip",
            ty: STRING,
        },
    ],
    price: PriceRule::AzureVmSize,
    import_id: "VM resource id",
    rules: no_rules,
};

/// Every kind converge manages, in the order `schema` lists them.
pub const ALL: &[&KindSchema] = &[
    &ECR_REPOSITORY,
    &ECS_CLUSTER,
    &IAM_ROLE,
    &ECS_SERVICE,
    &EC2_INSTANCE,
    &LB,
    &LB_TARGET_GROUP,
    &LB_LISTENER,
    &AZURE_RESOURCE_GROUP,
    &AZURE_CONTAINER_REGISTRY,
    &AZURE_VIRTUAL_NETWORK,
    &AZURE_SERVICE_PRINCIPAL,
    &AZURE_VIRTUAL_MACHINE,
];

/// The schema of a kind, by name.
pub fn lookup(kind: &str) -> Option<&'static KindSchema> {
    ALL.iter().copied().find(|k| k.kind == kind)
}
