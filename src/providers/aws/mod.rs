//! AWS: configuration from the standard chain (honouring `AWS_ENDPOINT_URL`), retries with
//! backoff on throttling, and dispatch of each kind to the file that owns its API client.

mod clients;
pub mod cloudwatch;
pub mod costexplorer;
mod ec2;
mod ecr;
pub mod ecs;
pub mod elb;
mod iam;

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, Provider, ProviderError,
    ProviderOptions, ReadRequest, ReadResponse, UpdateRequest,
};
use crate::config::AwsSettings;
use crate::model::Value;

/// The AWS provider: one client per service, shared by all kinds.
pub struct AwsProvider {
    ecr: ecr::Ecr,
    ecs: ecs::Ecs,
    elb: elb::Elb,
    iam: iam::Iam,
    cloudwatch: cloudwatch::CloudWatch,
    cost_explorer: costexplorer::CostExplorer,
    ec2: ec2::Ec2,
}

impl AwsProvider {
    /// Builds clients for the environment's region from the standard credential chain.
    pub async fn new(settings: &AwsSettings, options: &ProviderOptions) -> AwsProvider {
        let shared =
            clients::Shared::load(&settings.region, options.parallelism, options.calls.clone())
                .await;
        AwsProvider {
            ecr: ecr::Ecr::new(&shared),
            ecs: ecs::Ecs::new(&shared),
            elb: elb::Elb::new(&shared),
            iam: iam::Iam::new(&shared),
            cloudwatch: cloudwatch::CloudWatch::new(&shared),
            cost_explorer: costexplorer::CostExplorer::new(&shared),
            ec2: ec2::Ec2::new(&shared),
        }
    }
}

impl AwsProvider {
    /// ECS task sets and revisions, for rollouts.
    pub fn ecs(&self) -> &ecs::Ecs {
        &self.ecs
    }

    /// Listener weights, for rollouts.
    pub fn elb(&self) -> &elb::Elb {
        &self.elb
    }

    /// Alarms and ALB metrics, for rollout gates.
    pub fn cloudwatch(&self) -> &cloudwatch::CloudWatch {
        &self.cloudwatch
    }

    /// Daily cost by address, for `cost watch`.
    pub fn cost_explorer(&self) -> &costexplorer::CostExplorer {
        &self.cost_explorer
    }
}

#[async_trait]
impl Provider for AwsProvider {
    async fn read(&self, request: ReadRequest) -> ReadResponse {
        let mut by_kind: BTreeMap<&str, Vec<_>> = BTreeMap::new();
        for item in request.items {
            by_kind.entry(item.kind.kind).or_default().push(item);
        }
        let reads = by_kind.into_iter().map(|(kind, items)| async move {
            match kind {
                "aws.ecr_repository" => self.ecr.read(items).await,
                "aws.ecs_cluster" => self.ecs.read_clusters(items).await,
                "aws.ecs_service" => self.ecs.read_services(items).await,
                "aws.iam_role" => self.iam.read(items).await,
                "aws.ec2_instance" => self.ec2.read(items).await,
                "aws.lb" | "aws.lb_target_group" | "aws.lb_listener" => {
                    self.elb.read(elb_kind(kind), items).await
                }
                other => items
                    .into_iter()
                    .map(|i| (i.address, Err(unknown_kind(other))))
                    .collect(),
            }
        });
        let results = futures::future::join_all(reads)
            .await
            .into_iter()
            .flatten()
            .collect();
        ReadResponse { results }
    }

    fn planned_id(&self, r: &CreateRequest) -> String {
        let name = text(&r.properties, "name");
        match r.kind.kind {
            // DescribeServices takes the cluster by name or ARN; keep its last segment.
            "aws.ecs_service" => {
                let cluster = text(&r.properties, "cluster");
                let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
                format!("{cluster}/{name}")
            }
            "aws.lb_listener" => format!(
                "{}#{}",
                text(&r.properties, "load_balancer_arn"),
                r.properties.get("port").as_i64().unwrap_or_default()
            ),
            _ => name.to_string(),
        }
    }

    async fn create(&self, r: CreateRequest) -> Result<Applied, ProviderError> {
        match r.kind.kind {
            "aws.ecr_repository" => self.ecr.create(&r.properties).await,
            "aws.ecs_cluster" => self.ecs.create_cluster(&r.properties).await,
            "aws.ecs_service" => self.ecs.create_service(&r.address, &r.properties).await,
            "aws.iam_role" => self.iam.create(&r.properties).await,
            "aws.ec2_instance" => self.ec2.create(&r.address, &r.properties).await,
            k @ ("aws.lb" | "aws.lb_target_group" | "aws.lb_listener") => {
                self.elb.create(elb_kind(k), &r.properties).await
            }
            other => Err(unknown_kind(other)),
        }
    }

    async fn update(&self, r: UpdateRequest) -> Result<Applied, ProviderError> {
        match r.kind.kind {
            "aws.ecr_repository" => self.ecr.update(&r.remote_id, &r.prior, &r.properties).await,
            "aws.ecs_cluster" => {
                self.ecs
                    .update_cluster(&r.remote_id, &r.prior, &r.properties)
                    .await
            }
            "aws.ecs_service" => {
                self.ecs
                    .update_service(&r.remote_id, &r.prior, &r.prior_outputs, &r.properties)
                    .await
            }
            "aws.iam_role" => self.iam.update(&r.remote_id, &r.prior, &r.properties).await,
            "aws.ec2_instance" => self.ec2.update(&r.remote_id, &r.prior, &r.properties).await,
            k @ ("aws.lb" | "aws.lb_target_group" | "aws.lb_listener") => {
                self.elb
                    .update(
                        elb_kind(k),
                        &r.remote_id,
                        &r.prior,
                        &r.properties,
                        &r.prior_outputs,
                    )
                    .await
            }
            other => Err(unknown_kind(other)),
        }
    }

    async fn delete(&self, r: DeleteRequest) -> Result<(), ProviderError> {
        match r.kind.kind {
            "aws.ecr_repository" => self.ecr.delete(&r.remote_id).await,
            "aws.ecs_cluster" => self.ecs.delete_cluster(&r.remote_id).await,
            "aws.ecs_service" => self.ecs.delete_service(&r.remote_id, &r.prior).await,
            "aws.iam_role" => self.iam.delete(&r.remote_id).await,
            "aws.ec2_instance" => self.ec2.delete(&r.remote_id).await,
            k @ ("aws.lb" | "aws.lb_target_group" | "aws.lb_listener") => {
                self.elb.delete(elb_kind(k), &r.remote_id).await
            }
            other => Err(unknown_kind(other)),
        }
    }

    async fn import(&self, r: ImportRequest) -> Result<Option<(Applied, Live)>, ProviderError> {
        let item = super::ReadItem {
            address: r.address.clone(),
            kind: r.kind,
            remote_id: r.id.clone(),
            prior: Value::Null,
            prior_outputs: Value::Null,
        };
        if r.kind.kind == "aws.ecs_service" && !r.id.contains('/') {
            return Err(ProviderError::Invalid(
                "import an ECS service as CLUSTER/SERVICE (names or the service ARN)".into(),
            ));
        }
        let mut response = self.read(ReadRequest { items: vec![item] }).await;
        let (_, result) = response
            .results
            .pop()
            .ok_or_else(|| ProviderError::NotFound(r.id.clone()))?;
        Ok(result?.map(|live| {
            let remote_id = match r.kind.kind {
                "aws.ecs_cluster" | "aws.ecs_service" => live
                    .outputs
                    .get("arn")
                    .as_str()
                    .unwrap_or(&r.id)
                    .to_string(),
                _ => r.id.clone(),
            };
            (
                Applied {
                    remote_id,
                    outputs: live.outputs.clone(),
                },
                live,
            )
        }))
    }
}

fn elb_kind(kind: &str) -> elb::ElbKind {
    match kind {
        "aws.lb" => elb::ElbKind::LoadBalancer,
        "aws.lb_target_group" => elb::ElbKind::TargetGroup,
        _ => elb::ElbKind::Listener,
    }
}

fn unknown_kind(kind: &str) -> ProviderError {
    ProviderError::UnknownKind {
        provider: "aws".into(),
        kind: kind.into(),
    }
}

/// Turns an SDK error into a provider error naming the operation: the service's error code
/// and message when it answered, the whole error chain otherwise (timeouts, connection errors).
pub(crate) fn api_error<E>(operation: &str, err: E) -> ProviderError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let message = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    ProviderError::Api {
        operation: operation.to_string(),
        message,
    }
}

/// The string-to-string tags of a properties map.
pub(crate) fn tags_of(properties: &Value) -> BTreeMap<String, String> {
    properties
        .get("tags")
        .as_map()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.reveal().as_str().map(str::to_string).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tags to set and tag keys to remove to go from `prior` to `desired`.
pub(crate) fn tag_changes(
    prior: &Value,
    desired: &Value,
) -> (BTreeMap<String, String>, Vec<String>) {
    let before = tags_of(prior);
    let after = tags_of(desired);
    let set = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// An object value from named fields.
pub(crate) fn object(fields: Vec<(&str, Value)>) -> Value {
    Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// The string at `key`, or "".
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).reveal().as_str().unwrap_or("")
}
