//! `aws.ecs_service`: an ECS service on Fargate with its inline task definition (calls in
//! `ecs.rs`; rollouts drive its task sets through the rollout engine).

use super::text;
use crate::model::Value;
use crate::model::schema::{Default, I32, PORT, STRING_MAP, STRINGS};
use crate::providers::{Applied, Live, ProviderError, ReadItem};
use crate::rollout::schema::ROLLOUT;
use async_trait::async_trait;

use super::AwsProvider;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{KindSchema, Output, PriceRule, Prop, STRING, TAGS, Type};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};

/// The registration of `aws.ecs_service`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&EcsService),
    deploy: Some(&super::ecs::deploy::EcsDeploy),
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
        "Secrets, NAME: ARN of a Secrets Manager secret or SSM parameter (ECS valueFrom); `${S.arn}` of an aws.secretsmanager_secret is written ARN:::VERSION_ID, so a new version is a new revision.",
    )
    .pins_versions()
    .default(Default::EmptyMap),
    Prop::new(
        "essential",
        Type::Bool,
        "Whether the task stops when this container stops.",
    )
    .default(Default::Bool(true)),
    Prop::new(
        "log",
        Type::Object(LOG),
        "awslogs: the container's output goes to this CloudWatch Logs group, streams PREFIX/CONTAINER/TASK_ID (a failed hook's error shows the last 50 lines).",
    ),
];

const LOG: &[Prop] = &[
    Prop::new("group", STRING, "Log group (it must exist).").required(),
    Prop::new("stream_prefix", STRING, "Stream prefix.").required(),
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

/// `aws.ecs_service`: an ECS service on Fargate with its inline task definition.
pub const SCHEMA: KindSchema = KindSchema {
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
            "How a changed task is deployed and proven ready (DESIGN §5); without it, `{ strategy: rolling }`.",
        )
        .replace_if(changes_controller),
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
    rules: super::ecs::spec::problems,
    rollout_summary: Some(super::ecs::deploy::plan_summary),
};

/// Whether going from `before` to `after` (whole properties) changes the ECS deployment
/// controller (rolling ↔ canary/blue_green), which ECS cannot change in place. Adding,
/// editing or removing a rolling block is an in-place change.
fn changes_controller(before: &Value, after: &Value) -> bool {
    super::ecs::rollout_traffic(before).is_some() != super::ecs::rollout_traffic(after).is_some()
}

/// The handler of `aws.ecs_service`.
struct EcsService;

#[async_trait]
impl kind::Handler<AwsProvider> for EcsService {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        aws.ecs.read_services(items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        // DescribeServices takes the cluster by name or ARN; keep its last segment.
        let cluster = text(&r.properties, "cluster");
        let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
        format!("{cluster}/{}", text(&r.properties, "name"))
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.ecs.create_service(&r.address, &r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.ecs
            .update_service(&r.remote_id, &r.prior, &r.prior_outputs, &r.properties)
            .await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.ecs.delete_service(&r.remote_id, &r.prior).await
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        if !r.id.contains('/') {
            return Err(ProviderError::Invalid(
                "import an ECS service as CLUSTER/SERVICE (names or the service ARN)".into(),
            ));
        }
        super::import_by_reading(self, aws, r, Some("arn")).await
    }
}
