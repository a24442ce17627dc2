//! `aws.ec2_instance`: one EC2 instance. `ami`, `subnet_id` and `user_data` replace it;
//! `instance_type` changes in place with the stop → ModifyInstanceAttribute → start it needs;
//! tags (with `Name` from `name`) change in place. Instances are read 100 ids per
//! DescribeInstances call; terminated ones count as gone.

use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    AttributeValue, Filter, Instance, InstanceStateName, InstanceType, ResourceType, Tag,
    TagSpecification,
};
use futures::{StreamExt, stream};

use super::{api_error, tag_changes, tags_of, text};
use crate::model::{Address, Value};
use crate::providers::{Applied, Live, ProviderError, ReadItem};
use async_trait::async_trait;

use super::AwsProvider;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{KindSchema, Output, PriceRule, Prop, STRING, TAGS, no_rules};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};

/// The registration of `aws.ec2_instance`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&Ec2Instance),
    deploy: None,
};

/// `aws.ec2_instance`: an Amazon EC2 instance (DESIGN §2).
pub const SCHEMA: KindSchema = KindSchema {
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
    rollout_summary: None,
};

/// The handler of `aws.ec2_instance`.
struct Ec2Instance;

#[async_trait]
impl kind::Handler<AwsProvider> for Ec2Instance {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        aws.ec2.read(items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        text(&r.properties, "name").to_string()
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.ec2.create(&r.address, &r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.ec2.update(&r.remote_id, &r.prior, &r.properties).await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.ec2.delete(&r.remote_id).await
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        super::import_by_reading(self, aws, r, None).await
    }
}

type ReadResult = (Address, Result<Option<Live>, ProviderError>);

/// How long a stop or start may take before converge gives up on it.
const STATE_WAIT: Duration = Duration::from_secs(15 * 60);

/// The EC2 client and converge's verbs on it.
pub struct Ec2 {
    client: Client,
    parallelism: usize,
}

#[async_trait]
impl super::Tagging for Ec2 {
    async fn tag(
        &self,
        id: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        self.client
            .create_tags()
            .resources(id)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| api_error("ec2:CreateTags", e))?;
        Ok(())
    }

    async fn untag(&self, id: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .delete_tags()
            .resources(id)
            .set_tags(Some(
                keys.into_iter()
                    .map(|k| Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| api_error("ec2:DeleteTags", e))?;
        Ok(())
    }
}

fn name_tag(p: &Value) -> Vec<Tag> {
    let mut tags: Vec<Tag> = tags_of(p)
        .into_iter()
        .filter(|(k, _)| k != "Name")
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    tags.push(Tag::builder().key("Name").value(text(p, "name")).build());
    tags
}

fn live(i: &Instance, user_data: Option<String>) -> Live {
    let mut tags = Value::map();
    let mut name = String::new();
    for t in i.tags() {
        let (k, v) = (t.key().unwrap_or_default(), t.value().unwrap_or_default());
        if k == "Name" {
            name = v.to_string();
        } else {
            tags = tags.with_entry(k, Value::str(v));
        }
    }
    let properties = Value::map()
        .with_entry("name", Value::str(name))
        .with_entry("ami", Value::str(i.image_id().unwrap_or_default()))
        .with_entry(
            "instance_type",
            Value::str(i.instance_type().map(|t| t.as_str()).unwrap_or_default()),
        )
        .with_entry("subnet_id", Value::str(i.subnet_id().unwrap_or_default()))
        .with_entry(
            "user_data",
            user_data.map(Value::str).unwrap_or(Value::Null),
        )
        .with_entry("tags", tags);
    let outputs = Value::map()
        .with_entry("id", Value::str(i.instance_id().unwrap_or_default()))
        .with_entry(
            "private_ip",
            Value::str(i.private_ip_address().unwrap_or_default()),
        );
    Live {
        properties,
        outputs,
    }
}

impl Ec2 {
    /// Wraps a client built from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> Ec2 {
        Ec2 {
            client: super::clients::client!(shared, aws_sdk_ec2),
            parallelism: shared.parallelism,
        }
    }

    async fn describe(&self, ids: &[String]) -> Result<Vec<Instance>, ProviderError> {
        let out = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(ids.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api_error("ec2:DescribeInstances", e))?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances().iter().cloned())
            .filter(|i| {
                !matches!(
                    i.state().and_then(|s| s.name()),
                    Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
                )
            })
            .collect())
    }

    /// The instance's user data as text (`None` when it has none).
    async fn user_data(&self, id: &str) -> Result<Option<String>, ProviderError> {
        let out = self
            .client
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .map_err(|e| api_error("ec2:DescribeInstanceAttribute", e))?;
        Ok(out
            .user_data()
            .and_then(|u| u.value())
            .filter(|v| !v.is_empty())
            .and_then(|v| aws_smithy_types::base64::decode(v).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Reads instances, 100 ids per DescribeInstances call. User data is not in that answer:
    /// it is read (one call per instance) only for instances whose file sets it, and on import.
    pub async fn read(&self, items: Vec<ReadItem>) -> Vec<ReadResult> {
        let batches: Vec<Vec<ReadItem>> = items.chunks(100).map(<[ReadItem]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| async move {
                let ids: Vec<String> = batch.iter().map(|i| i.remote_id.clone()).collect();
                let found = match self.describe(&ids).await {
                    Ok(found) => found,
                    Err(e) => {
                        return batch
                            .into_iter()
                            .map(|i| (i.address, Err(e.clone())))
                            .collect();
                    }
                };
                let mut out = Vec::new();
                for item in batch {
                    let instance = found
                        .iter()
                        .find(|i| i.instance_id() == Some(item.remote_id.as_str()));
                    let result = match instance {
                        None => Ok(None),
                        // An import (no prior) reads it too, so adopting an instance that has
                        // user data never plans a replacement.
                        Some(i)
                            if !item.prior.is_null() && item.prior.get("user_data").is_null() =>
                        {
                            Ok(Some(live(i, None)))
                        }
                        Some(i) => self
                            .user_data(&item.remote_id)
                            .await
                            .map(|u| Some(live(i, u))),
                    };
                    out.push((item.address, result));
                }
                out
            })
            .buffer_unordered(self.parallelism)
            .collect::<Vec<Vec<ReadResult>>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// RunInstances with a client token derived from the address (a retried create never
    /// starts two instances), then waits until it runs.
    pub async fn create(&self, address: &Address, p: &Value) -> Result<Applied, ProviderError> {
        let token = format!(
            "converge-{}",
            // Over the stored form: secrets in it are keyed digests, never clear text.
            &sha_hex(&format!(
                "{address}|{}",
                serde_json::to_string(p).unwrap_or_default()
            ))[..32]
        );
        let user_data = p
            .get("user_data")
            .reveal()
            .as_str()
            .map(aws_smithy_types::base64::encode);
        let out = self
            .client
            .run_instances()
            .image_id(text(p, "ami"))
            .instance_type(InstanceType::from(text(p, "instance_type")))
            .subnet_id(text(p, "subnet_id"))
            .set_user_data(user_data)
            .min_count(1)
            .max_count(1)
            .client_token(token)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(name_tag(p)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api_error("ec2:RunInstances", e))?;
        let id = out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .ok_or_else(|| ProviderError::Invalid("RunInstances returned no instance".into()))?
            .to_string();
        let running = self.wait_for(&id, InstanceStateName::Running).await?;
        Ok(Applied {
            outputs: live(&running, None).outputs,
            remote_id: id,
        })
    }

    /// Polls until the instance reaches `state`.
    async fn wait_for(
        &self,
        id: &str,
        state: InstanceStateName,
    ) -> Result<Instance, ProviderError> {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            if let Some(i) = self.describe(&[id.to_string()]).await?.into_iter().next()
                && i.state().and_then(|s| s.name()) == Some(&state)
            {
                return Ok(i);
            }
            if started.elapsed() > STATE_WAIT {
                return Err(ProviderError::Invalid(format!(
                    "{id} did not reach {} within {} minutes",
                    state.as_str(),
                    STATE_WAIT.as_secs() / 60
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Tags in place; a new instance type stops the instance, modifies it and starts it again.
    pub async fn update(
        &self,
        id: &str,
        prior: &Value,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        let (mut set, remove) = tag_changes(prior, p);
        if text(prior, "name") != text(p, "name") {
            set.insert("Name".into(), text(p, "name").to_string());
        }
        // `Name` mirrors the `name` property: never removed as a tag of its own.
        let remove = remove.into_iter().filter(|k| k != "Name").collect();
        super::apply_tag_changes(self, id, &set, remove).await?;
        let resize = text(prior, "instance_type") != text(p, "instance_type");
        if resize {
            self.client
                .stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| api_error("ec2:StopInstances", e))?;
            self.wait_for(id, InstanceStateName::Stopped).await?;
            self.client
                .modify_instance_attribute()
                .instance_id(id)
                .instance_type(
                    AttributeValue::builder()
                        .value(text(p, "instance_type"))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| api_error("ec2:ModifyInstanceAttribute", e))?;
            self.client
                .start_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| api_error("ec2:StartInstances", e))?;
        }
        // Only a resize waits: a tag change leaves a stopped instance stopped.
        let instance = if resize {
            self.wait_for(id, InstanceStateName::Running).await?
        } else {
            self.describe(&[id.to_string()])
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| ProviderError::NotFound(id.to_string()))?
        };
        Ok(Applied {
            remote_id: id.to_string(),
            outputs: live(&instance, None).outputs,
        })
    }

    /// Terminates the instance and waits until it is gone.
    pub async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        match self
            .client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().and_then(|s| s.meta().code())
                    == Some("InvalidInstanceID.NotFound") =>
            {
                return Ok(());
            }
            Err(e) => return Err(api_error("ec2:TerminateInstances", e)),
        }
        let started = std::time::Instant::now();
        while !self.describe(&[id.to_string()]).await?.is_empty() {
            if started.elapsed() > STATE_WAIT {
                return Err(ProviderError::Invalid(format!(
                    "{id} is still shutting down"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
}

fn sha_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
