//! AWS: configuration from the standard chain (honouring `AWS_ENDPOINT_URL`), retries with
//! backoff on throttling, and dispatch of each kind to the file that owns its API client.

mod clients;
pub mod cloudwatch;
pub mod cloudwatch_alarm;
pub mod costexplorer;
pub mod ec2_instance;
pub mod ecr_images;
pub mod ecr_pull;
pub mod ecr_repository;
pub mod ecs;
pub mod ecs_cluster;
pub mod ecs_service;
pub mod elb;
pub mod iam_role;
pub mod lb;
pub mod lb_listener;
pub mod lb_target_group;
pub mod logs;
pub mod s3;
pub mod secretsmanager_secret;

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::kind::Handler;
use super::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, Provider, ProviderError,
    ProviderOptions, ReadRequest, ReadResponse, UpdateRequest,
};
use crate::config::AwsSettings;
use crate::model::Value;
use crate::model::schema::KindSchema;

/// The AWS provider: one client per service, shared by all kinds.
pub struct AwsProvider {
    ecr: ecr_repository::Ecr,
    ecr_pull: ecr_pull::EcrPull,
    ecs: ecs::Ecs,
    elb: elb::Elb,
    iam: iam_role::Iam,
    cloudwatch: cloudwatch::CloudWatch,
    cost_explorer: costexplorer::CostExplorer,
    ec2: ec2_instance::Ec2,
    secrets: secretsmanager_secret::SecretsManager,
    logs: logs::Logs,
    s3: s3::S3,
}

impl AwsProvider {
    /// Builds clients for the environment's region from the standard credential chain.
    pub async fn new(settings: &AwsSettings, options: &ProviderOptions) -> AwsProvider {
        let shared =
            clients::Shared::load(&settings.region, options.parallelism, options.calls.clone())
                .await;
        AwsProvider {
            ecr: ecr_repository::Ecr::new(&shared),
            ecr_pull: ecr_pull::EcrPull::new(&shared),
            ecs: ecs::Ecs::new(&shared),
            elb: elb::Elb::new(&shared),
            iam: iam_role::Iam::new(&shared),
            cloudwatch: cloudwatch::CloudWatch::new(&shared),
            cost_explorer: costexplorer::CostExplorer::new(&shared),
            ec2: ec2_instance::Ec2::new(&shared),
            secrets: secretsmanager_secret::SecretsManager::new(&shared),
            logs: logs::Logs::new(&shared),
            s3: s3::S3::new(&shared),
        }
    }
}

impl AwsProvider {
    /// S3, for copies of host backups.
    pub fn s3(&self) -> &s3::S3 {
        &self.s3
    }

    /// ECS task sets and revisions, for rollouts.
    pub fn ecs(&self) -> &ecs::Ecs {
        &self.ecs
    }

    /// Secrets Manager, for the values a host app's env file needs.
    pub fn secrets(&self) -> &secretsmanager_secret::SecretsManager {
        &self.secrets
    }

    /// CloudWatch Logs, for a failed hook's last lines.
    pub fn logs(&self) -> &logs::Logs {
        &self.logs
    }

    /// ECR, for image lookups (undo, promotion).
    pub fn ecr(&self) -> &ecr_repository::Ecr {
        &self.ecr
    }

    /// Pull-only ECR tokens for hosts.
    pub fn ecr_pull(&self) -> &ecr_pull::EcrPull {
        &self.ecr_pull
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

/// The handler of an AWS kind, from the registry.
fn handler(kind: &KindSchema) -> Result<&'static dyn Handler<AwsProvider>, ProviderError> {
    match crate::kinds::find(kind.kind).map(|k| k.handler) {
        Some(crate::kinds::Handler::Aws(h)) => Ok(h),
        _ => Err(ProviderError::UnknownKind {
            provider: "aws".into(),
            kind: kind.kind.into(),
        }),
    }
}

#[async_trait]
impl Provider for AwsProvider {
    async fn read(&self, request: ReadRequest) -> ReadResponse {
        ReadResponse {
            results: super::kind::read_by_kind(self, request.items, handler).await,
        }
    }

    fn planned_id(&self, r: &CreateRequest) -> String {
        handler(r.kind)
            .map(|h| h.planned_id(self, r))
            .unwrap_or_default()
    }

    async fn create(&self, r: CreateRequest) -> Result<Applied, ProviderError> {
        handler(r.kind)?.create(self, r).await
    }

    async fn update(&self, r: UpdateRequest) -> Result<Applied, ProviderError> {
        handler(r.kind)?.update(self, r).await
    }

    async fn delete(&self, r: DeleteRequest) -> Result<(), ProviderError> {
        handler(r.kind)?.delete(self, r).await
    }

    async fn import(&self, r: ImportRequest) -> Result<Option<(Applied, Live)>, ProviderError> {
        handler(r.kind)?.import(self, r).await
    }

    async fn list(&self, kind: &'static KindSchema) -> Result<Vec<String>, ProviderError> {
        handler(kind)?.list(self, kind).await
    }
}

/// Imports by reading the given id as the remote id; the id recorded is the output named
/// `id_output` when there is one (e.g. the ARN of a cluster given by name), else the given id.
async fn import_by_reading(
    kind: &dyn Handler<AwsProvider>,
    aws: &AwsProvider,
    r: ImportRequest,
    id_output: Option<&str>,
) -> Result<Option<(Applied, Live)>, ProviderError> {
    let item = super::ReadItem {
        address: r.address.clone(),
        kind: r.kind,
        remote_id: r.id.clone(),
        prior: Value::Null,
        prior_outputs: Value::Null,
    };
    let (_, result) = kind
        .read(aws, vec![item])
        .await
        .pop()
        .ok_or_else(|| ProviderError::NotFound(r.id.clone()))?;
    Ok(result?.map(|live| {
        let remote_id = id_output
            .and_then(|o| live.outputs.get(o).as_str())
            .unwrap_or(&r.id)
            .to_string();
        (
            Applied {
                remote_id,
                outputs: live.outputs.clone(),
            },
            live,
        )
    }))
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

/// Tagging through one AWS client: the two calls each service names differently. One
/// implementation per client wrapper; [`retag`] does the rest.
#[async_trait]
pub(crate) trait Tagging: Sync {
    /// Sets these tags (adding or overwriting) on the resource `id`.
    async fn tag(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError>;
    /// Removes the tags with these keys from the resource `id`.
    async fn untag(&self, id: &str, keys: Vec<String>) -> Result<(), ProviderError>;
}

/// Moves the tags of `id` from `prior`'s to `desired`'s: removed keys untagged, new or
/// changed ones tagged (each call only when there is something to do).
pub(crate) async fn retag(
    client: &impl Tagging,
    id: &str,
    prior: &Value,
    desired: &Value,
) -> Result<(), ProviderError> {
    let (set, remove) = tag_changes(prior, desired);
    apply_tag_changes(client, id, &set, remove).await
}

/// Applies computed tag changes (see [`tag_changes`]).
pub(crate) async fn apply_tag_changes(
    client: &impl Tagging,
    id: &str,
    set: &BTreeMap<String, String>,
    remove: Vec<String>,
) -> Result<(), ProviderError> {
    if !remove.is_empty() {
        client.untag(id, remove).await?;
    }
    if !set.is_empty() {
        client.tag(id, set).await?;
    }
    Ok(())
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
