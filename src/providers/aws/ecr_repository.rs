//! `aws.ecr_repository`: every Amazon ECR call converge makes.

use std::collections::BTreeMap;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Repository, Tag};
use futures::{StreamExt, stream};

use super::{api_error, object, tags_of, text};
use crate::model::{Address, Value};
use crate::providers::{Applied, Live, ProviderError, ReadItem};
use async_trait::async_trait;

use super::AwsProvider;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, TAGS, Type, no_rules,
};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};

/// The registration of `aws.ecr_repository`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&EcrRepository),
    deploy: None,
};

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
pub const SCHEMA: KindSchema = KindSchema {
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
    rollout_summary: None,
};

/// The handler of `aws.ecr_repository`.
struct EcrRepository;

#[async_trait]
impl kind::Handler<AwsProvider> for EcrRepository {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        aws.ecr.read(items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        text(&r.properties, "name").to_string()
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.ecr.create(&r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.ecr.update(&r.remote_id, &r.prior, &r.properties).await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.ecr.delete(&r.remote_id).await
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        super::import_by_reading(self, aws, r, None).await
    }

    async fn list(
        &self,
        aws: &AwsProvider,
        _: &'static KindSchema,
    ) -> Result<Vec<String>, ProviderError> {
        aws.ecr.list().await
    }
}

/// DescribeRepositories takes at most 100 names.
const DESCRIBE_BATCH: usize = 100;

/// tag:GetResources takes at most 100 ARNs.
const TAGS_BATCH: usize = 100;

/// The ECR client (and the tagging API, for tags in batches) and converge's verbs on them.
pub struct Ecr {
    client: Client,
    tagging: aws_sdk_resourcegroupstagging::Client,
    parallelism: usize,
}

/// Tags by key.
type Tags = BTreeMap<String, String>;

type ReadResult = (Address, Result<Option<Live>, ProviderError>);

impl Ecr {
    /// Builds the clients from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> Ecr {
        Ecr {
            client: super::clients::client!(shared, aws_sdk_ecr),
            tagging: super::clients::client!(shared, aws_sdk_resourcegroupstagging),
            parallelism: shared.parallelism,
        }
    }

    /// Every repository's name (DescribeRepositories, every page).
    pub async fn list(&self) -> Result<Vec<String>, ProviderError> {
        let mut names = Vec::new();
        let mut pages = self.client.describe_repositories().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("ecr:DescribeRepositories", e))?;
            names.extend(
                page.repositories()
                    .iter()
                    .filter_map(|r| r.repository_name().map(str::to_string)),
            );
        }
        Ok(names)
    }

    /// The SDK client (image lookups in `ecr_images.rs`).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads repositories, 100 names per DescribeRepositories call, batches in parallel.
    pub async fn read(&self, items: Vec<ReadItem>) -> Vec<ReadResult> {
        let batches: Vec<Vec<ReadItem>> = items
            .chunks(DESCRIBE_BATCH)
            .map(<[ReadItem]>::to_vec)
            .collect();
        let found: Vec<(ReadItem, Result<Option<Repository>, ProviderError>)> =
            stream::iter(batches)
                .map(|batch| self.describe_batch(batch))
                .buffer_unordered(self.parallelism)
                .flat_map(stream::iter)
                .collect()
                .await;
        let tagged: Vec<(String, bool)> = found
            .iter()
            .filter_map(|(item, repo)| match repo {
                Ok(Some(r)) => Some((
                    r.repository_arn.clone().unwrap_or_default(),
                    // Unknown (an import) counts as tagged: never assume no tags.
                    item.prior.is_null() || !tags_of(&item.prior).is_empty(),
                )),
                _ => None,
            })
            .collect();
        let mut tags: BTreeMap<String, Result<Tags, ProviderError>> = stream::iter(
            tagged
                .chunks(TAGS_BATCH)
                .map(<[(String, bool)]>::to_vec)
                .collect::<Vec<_>>(),
        )
        .map(|batch| self.tags_batch(batch))
        .buffer_unordered(self.parallelism)
        .flat_map(stream::iter)
        .collect()
        .await;
        let with_tags: Vec<_> = found
            .into_iter()
            .map(|(item, repo)| {
                let repo_tags = match &repo {
                    Ok(Some(r)) => tags
                        .remove(r.repository_arn.as_deref().unwrap_or_default())
                        .unwrap_or_else(|| Ok(Tags::new())),
                    _ => Ok(Tags::new()),
                };
                (item, repo, repo_tags)
            })
            .collect();
        stream::iter(with_tags)
            .map(|(item, repo, tags)| async move {
                let live = match (repo, tags) {
                    (Ok(Some(repo)), Ok(tags)) => self.details(&item, repo, tags).await.map(Some),
                    (Ok(Some(_)), Err(e)) => Err(e),
                    (Ok(None), _) => Ok(None),
                    (Err(e), _) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    /// Tags of up to 100 repositories in one tag:GetResources call. AWS returns every
    /// repository that has or had tags, so one absent that converge never tagged has none; one
    /// absent that converge did tag (the tagging index lags, or an emulator does not index
    /// ECR), or a caller without tag:GetResources, falls back to ListTagsForResource.
    async fn tags_batch(
        &self,
        batch: Vec<(String, bool)>,
    ) -> Vec<(String, Result<Tags, ProviderError>)> {
        let arns: Vec<String> = batch.iter().map(|(arn, _)| arn.clone()).collect();
        let mut found: BTreeMap<String, Tags> = BTreeMap::new();
        let mut token: Option<String> = None;
        let listed = loop {
            let out = self
                .tagging
                .get_resources()
                .set_resource_arn_list(Some(arns.clone()))
                .set_pagination_token(token.clone())
                .send()
                .await;
            match out {
                Ok(out) => {
                    for mapping in out.resource_tag_mapping_list.unwrap_or_default() {
                        let tags = mapping
                            .tags
                            .unwrap_or_default()
                            .into_iter()
                            .map(|t| (t.key, t.value))
                            .collect();
                        found.insert(mapping.resource_arn.unwrap_or_default(), tags);
                    }
                    match out.pagination_token.filter(|t| !t.is_empty()) {
                        Some(next) => token = Some(next),
                        None => break true,
                    }
                }
                Err(e) => {
                    tracing::debug!(
                        "tag:GetResources failed, reading ECR tags one by one: {}",
                        api_error("tag:GetResources", e)
                    );
                    break false;
                }
            }
        };
        stream::iter(batch)
            .map(|(arn, tagged_before)| {
                let known = found.remove(&arn);
                async move {
                    let tags = match known {
                        Some(tags) => Ok(tags),
                        None if listed && !tagged_before => Ok(Tags::new()),
                        None => self.list_tags(&arn).await,
                    };
                    (arn, tags)
                }
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    async fn list_tags(&self, arn: &str) -> Result<Tags, ProviderError> {
        Ok(self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| api_error("ecr:ListTagsForResource", e))?
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect())
    }

    async fn describe_batch(
        &self,
        batch: Vec<ReadItem>,
    ) -> Vec<(ReadItem, Result<Option<Repository>, ProviderError>)> {
        let names: Vec<String> = batch.iter().map(|i| i.remote_id.clone()).collect();
        match self
            .client
            .describe_repositories()
            .set_repository_names(Some(names))
            .send()
            .await
        {
            Ok(out) => {
                let by_name: BTreeMap<String, Repository> = out
                    .repositories
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| Some((r.repository_name.clone()?, r)))
                    .collect();
                batch
                    .into_iter()
                    .map(|i| {
                        let repo = by_name.get(&i.remote_id).cloned();
                        (i, Ok(repo))
                    })
                    .collect()
            }
            // One missing name fails the whole call: ask for each name on its own.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                stream::iter(batch)
                    .map(|item| async move {
                        let repo = self.describe_one(&item.remote_id).await;
                        (item, repo)
                    })
                    .buffer_unordered(self.parallelism)
                    .collect()
                    .await
            }
            Err(e) => {
                let err = api_error("ecr:DescribeRepositories", e);
                batch.into_iter().map(|i| (i, Err(err.clone()))).collect()
            }
        }
    }

    async fn describe_one(&self, name: &str) -> Result<Option<Repository>, ProviderError> {
        match self
            .client
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.repositories.unwrap_or_default().into_iter().next()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(api_error("ecr:DescribeRepositories", e)),
        }
    }

    /// Tags and lifecycle policy: the parts DescribeRepositories does not return.
    async fn details(
        &self,
        item: &ReadItem,
        repo: Repository,
        tags: Tags,
    ) -> Result<Live, ProviderError> {
        let name = repo.repository_name.clone().unwrap_or_default();
        // A policy is read when one is managed; an out-of-band policy on a repository whose
        // file sets none is left alone (it is not converge's).
        let lifecycle = if item.prior.get("lifecycle").is_null() && !item.prior.is_null() {
            Value::Null
        } else {
            self.lifecycle(&name).await?
        };
        let properties = object(vec![
            ("name", Value::str(&name)),
            (
                "image_tag_mutability",
                Value::str(
                    repo.image_tag_mutability
                        .as_ref()
                        .map(|m| m.as_str())
                        .unwrap_or("MUTABLE"),
                ),
            ),
            (
                "scan_on_push",
                Value::Bool(
                    repo.image_scanning_configuration
                        .as_ref()
                        .is_some_and(|c| c.scan_on_push),
                ),
            ),
            ("lifecycle", lifecycle),
            (
                "tags",
                Value::Map(
                    tags.iter()
                        .map(|(k, v)| (k.clone(), Value::str(v)))
                        .collect(),
                ),
            ),
        ]);
        Ok(Live {
            properties,
            outputs: outputs(&repo),
        })
    }

    async fn lifecycle(&self, name: &str) -> Result<Value, ProviderError> {
        match self
            .client
            .get_lifecycle_policy()
            .repository_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(parse_policy(
                out.lifecycle_policy_text.as_deref().unwrap_or(""),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) =>
            {
                Ok(Value::Null)
            }
            Err(e) => Err(api_error("ecr:GetLifecyclePolicy", e)),
        }
    }

    /// CreateRepository, then its lifecycle policy.
    pub async fn create(&self, p: &Value) -> Result<Applied, ProviderError> {
        let name = text(p, "name");
        let out = self
            .client
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(ImageTagMutability::from(text(p, "image_tag_mutability")))
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(p.get("scan_on_push").as_bool().unwrap_or(false))
                    .build(),
            )
            .set_tags(Some(ecr_tags(&tags_of(p))?).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| api_error("ecr:CreateRepository", e))?;
        let repo = out
            .repository
            .ok_or_else(|| ProviderError::Invalid("CreateRepository returned nothing".into()))?;
        if let Err(e) = self
            .put_lifecycle(name, &Value::Null, p.get("lifecycle"))
            .await
        {
            // Keep create all-or-nothing, so state never misses a repository that exists.
            if let Err(cleanup) = self.delete(name).await {
                tracing::warn!("could not remove half-created repository {name}: {cleanup}");
            }
            return Err(e);
        }
        Ok(Applied {
            remote_id: name.to_string(),
            outputs: outputs(&repo),
        })
    }

    /// Changes only what differs: mutability, scanning, tags, lifecycle.
    pub async fn update(
        &self,
        name: &str,
        prior: &Value,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        if !prior
            .get("image_tag_mutability")
            .same_as(p.get("image_tag_mutability"))
        {
            self.client
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(ImageTagMutability::from(text(p, "image_tag_mutability")))
                .send()
                .await
                .map_err(|e| api_error("ecr:PutImageTagMutability", e))?;
        }
        if !prior.get("scan_on_push").same_as(p.get("scan_on_push")) {
            self.client
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(p.get("scan_on_push").as_bool().unwrap_or(false))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| api_error("ecr:PutImageScanningConfiguration", e))?;
        }
        let repo = self
            .describe_one(name)
            .await?
            .ok_or_else(|| ProviderError::NotFound(format!("ECR repository {name}")))?;
        let arn = repo.repository_arn.clone().unwrap_or_default();
        super::retag(self, &arn, prior, p).await?;
        self.put_lifecycle(name, prior.get("lifecycle"), p.get("lifecycle"))
            .await?;
        Ok(Applied {
            remote_id: name.to_string(),
            outputs: outputs(&repo),
        })
    }

    async fn put_lifecycle(
        &self,
        name: &str,
        prior: &Value,
        desired: &Value,
    ) -> Result<(), ProviderError> {
        if prior.same_as(desired) {
            return Ok(());
        }
        match policy_text(desired) {
            Some(policy) => {
                self.client
                    .put_lifecycle_policy()
                    .repository_name(name)
                    .lifecycle_policy_text(policy)
                    .send()
                    .await
                    .map_err(|e| api_error("ecr:PutLifecyclePolicy", e))?;
            }
            None => match self
                .client
                .delete_lifecycle_policy()
                .repository_name(name)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) => {}
                Err(e) => return Err(api_error("ecr:DeleteLifecyclePolicy", e)),
            },
        }
        Ok(())
    }

    /// DeleteRepository without force: a repository that still holds images is not deleted.
    pub async fn delete(&self, name: &str) -> Result<(), ProviderError> {
        match self
            .client
            .delete_repository()
            .repository_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_empty_exception()) =>
            {
                Err(ProviderError::Invalid(format!(
                    "ECR repository {name} still holds images; converge does not delete images: remove them first"
                )))
            }
            Err(e) => Err(api_error("ecr:DeleteRepository", e)),
        }
    }
}

fn outputs(repo: &Repository) -> Value {
    object(vec![
        (
            "arn",
            Value::str(repo.repository_arn.clone().unwrap_or_default()),
        ),
        (
            "uri",
            Value::str(repo.repository_uri.clone().unwrap_or_default()),
        ),
        (
            "registry_id",
            Value::str(repo.registry_id.clone().unwrap_or_default()),
        ),
    ])
}

#[async_trait]
impl super::Tagging for Ecr {
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(ecr_tags(tags)?))
            .send()
            .await
            .map_err(|e| api_error("ecr:TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| api_error("ecr:UntagResource", e))?;
        Ok(())
    }
}

fn ecr_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::Invalid(e.to_string()))
        })
        .collect()
}

/// The lifecycle policy JSON for `lifecycle: {keep_last_images, expire_untagged_after_days}`.
fn policy_text(lifecycle: &Value) -> Option<String> {
    let mut rules = Vec::new();
    if let Some(days) = lifecycle.get("expire_untagged_after_days").as_i64() {
        rules.push(serde_json::json!({
            "rulePriority": rules.len() + 1,
            "description": "converge: expire untagged images",
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days},
            "action": {"type": "expire"}
        }));
    }
    if let Some(keep) = lifecycle.get("keep_last_images").as_i64() {
        rules.push(serde_json::json!({
            "rulePriority": rules.len() + 1,
            "description": "converge: keep the newest images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"}
        }));
    }
    (!rules.is_empty()).then(|| serde_json::json!({ "rules": rules }).to_string())
}

/// Reads a policy back into `lifecycle` fields; a policy converge did not write shows as text.
fn parse_policy(text: &str) -> Value {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Value::str(text);
    };
    let mut keep = Value::Null;
    let mut untagged = Value::Null;
    for rule in json["rules"].as_array().into_iter().flatten() {
        let sel = &rule["selection"];
        let n = sel["countNumber"]
            .as_i64()
            .map(Value::int)
            .unwrap_or_default();
        match (sel["tagStatus"].as_str(), sel["countType"].as_str()) {
            (Some("untagged"), Some("sinceImagePushed")) => untagged = n,
            (Some("any"), Some("imageCountMoreThan")) => keep = n,
            _ => return Value::str(text),
        }
    }
    object(vec![
        ("keep_last_images", keep),
        ("expire_untagged_after_days", untagged),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_round_trips_through_policy_text() {
        let lifecycle = object(vec![
            ("keep_last_images", Value::int(30)),
            ("expire_untagged_after_days", Value::int(7)),
        ]);
        let policy = policy_text(&lifecycle).unwrap();
        assert!(policy.contains("imageCountMoreThan"));
        assert_eq!(parse_policy(&policy), lifecycle);
        assert_eq!(policy_text(&Value::Null), None);
        let foreign = "{\"rules\":[{\"selection\":{\"tagStatus\":\"tagged\"}}]}";
        assert!(
            parse_policy(foreign).as_str().is_some(),
            "a policy converge did not write shows as text"
        );
    }
}
