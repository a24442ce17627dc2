//! `aws.secretsmanager_secret`: a Secrets Manager secret whose value comes from a sensitive
//! variable. converge writes values and never reads one back: state keeps the value's keyed
//! digest, and drift is a change of the AWSCURRENT version id (ListSecrets, 10 names a call).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry, Tag};

use super::{AwsProvider, api_error, object, tags_of, text};
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, TAGS, Type, no_rules,
};
use crate::model::{Address, Value};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, ProviderError, ReadItem,
    UpdateRequest,
};

/// The registration of `aws.secretsmanager_secret`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&SecretsManagerSecret),
    deploy: None,
};

/// `aws.secretsmanager_secret`: a Secrets Manager secret.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "aws.secretsmanager_secret",
    doc: "An AWS Secrets Manager secret; its value comes from a sensitive variable and is never read back.",
    props: &[
        Prop::new("name", STRING, "Secret name.").required().replace(),
        Prop::new("description", STRING, "Description."),
        Prop::new(
            "value",
            STRING,
            "The secret string, from a sensitive variable (a literal is an error); a change puts a new version.",
        )
        .required()
        .secret()
        .renews("version_id"),
        Prop::new(
            "recovery_window_days",
            Type::Integer(7, 30),
            "Days a deleted secret can be restored (DeleteSecret's RecoveryWindowInDays).",
        )
        .default(Default::Int(30)),
        Prop::new(
            "force_delete",
            Type::Bool,
            "Delete without a recovery window (ForceDeleteWithoutRecovery).",
        )
        .default(Default::Bool(false)),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "arn",
            ty: STRING,
        },
        Output {
            name: "name",
            ty: STRING,
        },
        Output {
            name: "version_id",
            ty: STRING,
        },
    ],
    price: PriceRule::Unlisted(
        "Secrets Manager is not in converge's price table yet (AWS lists $0.40 per secret-month)",
    ),
    import_id: "secret name",
    rules: no_rules,
    rollout_summary: None,
};

/// The stage Secrets Manager gives the version GetSecretValue returns by default.
const CURRENT: &str = "AWSCURRENT";

/// Names per ListSecrets call (the most values one filter takes).
const NAMES_PER_CALL: usize = 10;

/// The Secrets Manager client and converge's verbs on it.
pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    /// Builds the client from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> SecretsManager {
        SecretsManager {
            client: super::clients::client!(shared, aws_sdk_secretsmanager),
        }
    }

    /// The value of one version of a secret (`version`: its id; `None`: AWSCURRENT), for a host
    /// app's env file: the only place converge reads a secret's value.
    pub async fn value(&self, arn: &str, version: Option<&str>) -> Result<String, ProviderError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| super::api_error("secretsmanager:GetSecretValue", e))?;
        out.secret_string()
            .map(str::to_string)
            .ok_or_else(|| ProviderError::Invalid(format!("{arn} holds no secret string")))
    }

    /// The secrets with these exact names, not scheduled for deletion (ListSecrets filters by
    /// name prefix, 10 names a call; the exact matches are kept).
    async fn list(&self, names: &[String]) -> Result<BTreeMap<String, Secret>, ProviderError> {
        let mut found = BTreeMap::new();
        for chunk in names.chunks(NAMES_PER_CALL) {
            let filter = Filter::builder()
                .key(FilterNameStringType::Name)
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut pages = self
                .client
                .list_secrets()
                .filters(filter)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| api_error("secretsmanager:ListSecrets", e))?;
                for entry in page.secret_list.unwrap_or_default() {
                    let name = entry.name.clone().unwrap_or_default();
                    if chunk.contains(&name) {
                        found.insert(name, Secret::from(entry));
                    }
                }
            }
        }
        Ok(found)
    }

    /// One secret by name, scheduled for deletion or not (DescribeSecret).
    async fn describe(&self, name: &str) -> Result<Option<Secret>, ProviderError> {
        match self.client.describe_secret().secret_id(name).send().await {
            Ok(out) => Ok(Some(Secret {
                arn: out.arn.unwrap_or_default(),
                name: out.name.unwrap_or_default(),
                description: out.description,
                tags: tag_map(out.tags.unwrap_or_default()),
                current_version: current_version(out.version_ids_to_stages.unwrap_or_default()),
                scheduled_for_deletion: out.deleted_date.is_some(),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(api_error("secretsmanager:DescribeSecret", e)),
        }
    }

    /// CreateSecret; a same-named secret scheduled for deletion is restored and given the
    /// value and description instead (Secrets Manager refuses to create over it).
    async fn create(&self, address: &Address, p: &Value) -> Result<Applied, ProviderError> {
        let name = text(p, "name");
        if let Some(old) = self.describe(name).await? {
            if !old.scheduled_for_deletion {
                return Err(ProviderError::Invalid(format!(
                    "a secret named {name} already exists outside converge's state; \
                     adopt it with `converge import {address} {name}`"
                )));
            }
            self.client
                .restore_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| api_error("secretsmanager:RestoreSecret", e))?;
            self.describe_and_update(address, &old, p).await?;
            let before = object(vec![("tags", tag_value(&old.tags))]);
            super::retag(self, &old.arn, &before, p).await?;
            return self.applied(name).await;
        }
        let tags: Vec<Tag> = tags_of(p)
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.client
            .create_secret()
            .name(name)
            .set_description(p.get("description").as_str().map(str::to_string))
            .secret_string(secret_string(p))
            .client_request_token(token(address, "", p))
            .set_tags(Some(tags).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| api_error("secretsmanager:CreateSecret", e))?;
        self.applied(name).await
    }

    /// UpdateSecret's description and PutSecretValue, each only when it changed from `prior`.
    async fn update(
        &self,
        address: &Address,
        name: &str,
        prior: &Value,
        prior_outputs: &Value,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        if !prior.get("description").same_as(p.get("description")) {
            self.client
                .update_secret()
                .secret_id(name)
                .description(text(p, "description"))
                .send()
                .await
                .map_err(|e| api_error("secretsmanager:UpdateSecret", e))?;
        }
        if !prior.get("value").same_as(p.get("value")) {
            self.put_value(address, name, text(prior_outputs, "version_id"), p)
                .await?;
        }
        let done = self.applied(name).await?;
        super::retag(self, text(&done.outputs, "arn"), prior, p).await?;
        Ok(done)
    }

    /// After a restore: the files' description and value (a new version: converge cannot tell
    /// whether the restored one holds the same value).
    async fn describe_and_update(
        &self,
        address: &Address,
        old: &Secret,
        p: &Value,
    ) -> Result<(), ProviderError> {
        self.client
            .update_secret()
            .secret_id(&old.name)
            .description(text(p, "description"))
            .send()
            .await
            .map_err(|e| api_error("secretsmanager:UpdateSecret", e))?;
        let after = old.current_version.clone().unwrap_or_default();
        self.put_value(address, &old.name, &after, p).await
    }

    /// PutSecretValue with a token derived from the version it replaces and the value's keyed
    /// digest: a retry after a crash puts the same version once.
    async fn put_value(
        &self,
        address: &Address,
        name: &str,
        replaces: &str,
        p: &Value,
    ) -> Result<(), ProviderError> {
        self.client
            .put_secret_value()
            .secret_id(name)
            .secret_string(secret_string(p))
            .client_request_token(token(address, replaces, p))
            .send()
            .await
            .map_err(|e| api_error("secretsmanager:PutSecretValue", e))?;
        Ok(())
    }

    async fn applied(&self, name: &str) -> Result<Applied, ProviderError> {
        let secret = self
            .describe(name)
            .await?
            .ok_or_else(|| ProviderError::NotFound(format!("secret {name} after writing it")))?;
        Ok(Applied {
            remote_id: name.to_string(),
            outputs: secret.outputs(),
        })
    }

    /// DeleteSecret with the recovery window, or without one when `force_delete`.
    async fn delete(&self, name: &str, prior: &Value) -> Result<(), ProviderError> {
        let call = self.client.delete_secret().secret_id(name);
        let call = if prior.get("force_delete").as_bool() == Some(true) {
            call.force_delete_without_recovery(true)
        } else {
            call.recovery_window_in_days(prior.get("recovery_window_days").as_i64().unwrap_or(30))
        };
        match call.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("secretsmanager:DeleteSecret", e)),
        }
    }

    async fn read(&self, items: Vec<ReadItem>) -> Vec<KindRead> {
        let names: Vec<String> = items.iter().map(|i| i.remote_id.clone()).collect();
        let found = match self.list(&names).await {
            Ok(f) => f,
            Err(e) => {
                return items
                    .into_iter()
                    .map(|i| (i.address, Err(e.clone())))
                    .collect();
            }
        };
        items
            .into_iter()
            .map(|item| {
                let live = found.get(&item.remote_id).map(|s| s.live(&item));
                (item.address, Ok(live))
            })
            .collect()
    }
}

#[async_trait]
impl super::Tagging for SecretsManager {
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.client
            .tag_resource()
            .secret_id(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| api_error("secretsmanager:TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .untag_resource()
            .secret_id(arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| api_error("secretsmanager:UntagResource", e))?;
        Ok(())
    }
}

/// What converge reads of a secret: never its value.
struct Secret {
    arn: String,
    name: String,
    description: Option<String>,
    tags: BTreeMap<String, String>,
    current_version: Option<String>,
    scheduled_for_deletion: bool,
}

impl From<SecretListEntry> for Secret {
    fn from(e: SecretListEntry) -> Secret {
        Secret {
            arn: e.arn.unwrap_or_default(),
            name: e.name.unwrap_or_default(),
            description: e.description,
            tags: tag_map(e.tags.unwrap_or_default()),
            current_version: current_version(e.secret_versions_to_stages.unwrap_or_default()),
            scheduled_for_deletion: e.deleted_date.is_some(),
        }
    }
}

impl Secret {
    fn outputs(&self) -> Value {
        object(vec![
            ("arn", Value::str(&self.arn)),
            ("name", Value::str(&self.name)),
            ("version_id", self.current_version.clone().into()),
        ])
    }

    /// Live properties. The value is the one last applied while AWSCURRENT is still the
    /// version converge put; another version (put by hand, or by rotation) reads as a value
    /// that matches nothing, so plan puts the files' value back and drift reports it.
    fn live(&self, item: &ReadItem) -> Live {
        let recorded = item.prior_outputs.get("version_id").as_str();
        let value = match (&self.current_version, recorded) {
            (Some(now), Some(then)) if now == then => item.prior.get("value").clone(),
            (Some(now), _) => Value::Redacted(format!("version {now}, not put by converge")),
            (None, _) => Value::Null,
        };
        let properties = object(vec![
            ("name", Value::str(&self.name)),
            ("description", self.description.clone().into()),
            ("value", value),
            (
                "recovery_window_days",
                kept(&item.prior, "recovery_window_days", Value::int(30)),
            ),
            (
                "force_delete",
                kept(&item.prior, "force_delete", Value::Bool(false)),
            ),
            ("tags", tag_value(&self.tags)),
        ]);
        Live {
            properties,
            outputs: self.outputs(),
        }
    }
}

/// A setting only DeleteSecret takes (not readable): as last applied, else its default.
fn kept(prior: &Value, key: &str, default: Value) -> Value {
    match prior.get(key) {
        Value::Null => default,
        v => v.clone(),
    }
}

fn tag_map(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

fn tag_value(tags: &BTreeMap<String, String>) -> Value {
    Value::Map(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::str(v)))
            .collect(),
    )
}

/// The version that holds the AWSCURRENT stage.
fn current_version(stages: std::collections::HashMap<String, Vec<String>>) -> Option<String> {
    stages
        .into_iter()
        .find(|(_, s)| s.iter().any(|s| s == CURRENT))
        .map(|(v, _)| v)
}

/// The secret string: the value as given (a non-string value as its JSON).
fn secret_string(p: &Value) -> String {
    match p.get("value").reveal() {
        Value::String(s) => s.clone(),
        other => other.to_plain_json().to_string(),
    }
}

/// A ClientRequestToken from the address, the version it replaces and the value's keyed
/// digest (never the value): the same write retried is one version.
fn token(address: &Address, replaces: &str, p: &Value) -> String {
    let digest = crate::model::digest::keyring().digest(p.get("value"));
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("{address}/{replaces}/{digest}").as_bytes(),
    )
    .to_string()
}

/// The handler of `aws.secretsmanager_secret`.
struct SecretsManagerSecret;

#[async_trait]
impl kind::Handler<AwsProvider> for SecretsManagerSecret {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        aws.secrets.read(items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        text(&r.properties, "name").to_string()
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.secrets.create(&r.address, &r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.secrets
            .update(
                &r.address,
                &r.remote_id,
                &r.prior,
                &r.prior_outputs,
                &r.properties,
            )
            .await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.secrets.delete(&r.remote_id, &r.prior).await
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        super::import_by_reading(self, aws, r, None).await
    }
}
