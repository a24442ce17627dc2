//! `aws.ecs_cluster`: an Amazon ECS cluster (calls in `ecs.rs`).

use super::text;
use crate::model::schema::Default;
use crate::providers::{Applied, Live, ProviderError, ReadItem};
use async_trait::async_trait;

use super::AwsProvider;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{KindSchema, Output, PriceRule, Prop, STRING, TAGS, Type, no_rules};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};

/// The registration of `aws.ecs_cluster`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&EcsCluster),
    deploy: None,
};

/// `aws.ecs_cluster`: an Amazon ECS cluster.
pub const SCHEMA: KindSchema = KindSchema {
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
    rollout_summary: None,
};

/// The handler of `aws.ecs_cluster`.
struct EcsCluster;

#[async_trait]
impl kind::Handler<AwsProvider> for EcsCluster {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        aws.ecs.read_clusters(items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        text(&r.properties, "name").to_string()
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.ecs.create_cluster(&r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.ecs
            .update_cluster(&r.remote_id, &r.prior, &r.properties)
            .await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.ecs.delete_cluster(&r.remote_id).await
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        // Recorded by ARN, whether given by name or ARN.
        super::import_by_reading(self, aws, r, Some("arn")).await
    }

    async fn list(
        &self,
        aws: &AwsProvider,
        _: &'static KindSchema,
    ) -> Result<Vec<String>, ProviderError> {
        aws.ecs.list_clusters().await
    }
}
