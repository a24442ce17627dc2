//! `aws.iam_role`: every IAM call converge makes.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::{Role, Tag};
use futures::{StreamExt, stream};

use super::{api_error, object, tags_of, text};
use crate::model::{Address, Value};
use crate::providers::{Applied, Live, ProviderError, ReadItem};
use async_trait::async_trait;

use super::AwsProvider;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, STRINGS, TAGS, Type, no_rules,
};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};

/// The registration of `aws.iam_role`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&IamRole),
    deploy: None,
};

/// `aws.iam_role`: an IAM role.
pub const SCHEMA: KindSchema = KindSchema {
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
        Prop::new(
            "inline_policies",
            Type::Map(&Type::Any),
            "Inline policies, NAME: policy document (an object); compared as parsed JSON, so an edit by hand is drift.",
        )
        .default(Default::EmptyMap),
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
    rollout_summary: None,
};

/// The handler of `aws.iam_role`.
struct IamRole;

#[async_trait]
impl kind::Handler<AwsProvider> for IamRole {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        aws.iam.read(items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        text(&r.properties, "name").to_string()
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.iam.create(&r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.iam.update(&r.remote_id, &r.prior, &r.properties).await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.iam.delete(&r.remote_id).await
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
        aws.iam.list().await
    }
}

type ReadResult = (Address, Result<Option<Live>, ProviderError>);

/// The IAM client and converge's verbs on it.
pub struct Iam {
    client: Client,
    parallelism: usize,
}

impl Iam {
    /// Wraps a client built from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> Iam {
        Iam {
            client: super::clients::client!(shared, aws_sdk_iam),
            parallelism: shared.parallelism,
        }
    }

    /// Every role's name (ListRoles, every page), service-linked roles (`/aws-service-role/`)
    /// left out: AWS manages those.
    pub async fn list(&self) -> Result<Vec<String>, ProviderError> {
        let mut names = Vec::new();
        let mut pages = self.client.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("iam:ListRoles", e))?;
            names.extend(
                page.roles()
                    .iter()
                    .filter(|r| !r.path().starts_with("/aws-service-role/"))
                    .map(|r| r.role_name().to_string()),
            );
        }
        Ok(names)
    }

    /// Reads roles (IAM has no batch read: GetRole and ListAttachedRolePolicies per role,
    /// in parallel with a bound).
    pub async fn read(&self, items: Vec<ReadItem>) -> Vec<ReadResult> {
        stream::iter(items)
            .map(|item| async move {
                let live = self.read_one(&item.remote_id).await;
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    async fn read_one(&self, name: &str) -> Result<Option<Live>, ProviderError> {
        let role = match self.client.get_role().role_name(name).send().await {
            Ok(out) => out.role,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("iam:GetRole", e)),
        };
        let Some(role) = role else { return Ok(None) };
        let mut policies: Vec<String> = self
            .client
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|r| r.map(|p| p.policy_arn.unwrap_or_default()))
            .collect::<Result<_, _>>()
            .map_err(|e| api_error("iam:ListAttachedRolePolicies", e))?;
        policies.sort();
        let inline = self.inline_policies(name).await?;
        Ok(Some(role_live(&role, policies, inline)))
    }

    /// ListRolePolicies, then GetRolePolicy of each: NAME → parsed document.
    async fn inline_policies(&self, role: &str) -> Result<Value, ProviderError> {
        let names: Vec<String> = self
            .client
            .list_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| api_error("iam:ListRolePolicies", e))?;
        let mut out = std::collections::BTreeMap::new();
        for policy in names {
            let got = self
                .client
                .get_role_policy()
                .role_name(role)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| api_error("iam:GetRolePolicy", e))?;
            out.insert(policy, parse_document(&got.policy_document));
        }
        Ok(Value::Map(out))
    }

    /// PutRolePolicy of every inline policy that differs from `prior`'s; DeleteRolePolicy of
    /// those `prior` has and `p` does not.
    async fn put_inline_policies(
        &self,
        role: &str,
        prior: &Value,
        p: &Value,
    ) -> Result<(), ProviderError> {
        let empty = std::collections::BTreeMap::new();
        let before = prior.get("inline_policies").as_map().unwrap_or(&empty);
        let after = p.get("inline_policies").as_map().unwrap_or(&empty);
        for (name, doc) in after {
            if before.get(name).is_some_and(|b| b.same_as(doc)) {
                continue;
            }
            self.client
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(doc.to_plain_json().to_string())
                .send()
                .await
                .map_err(|e| api_error("iam:PutRolePolicy", e))?;
        }
        for name in before.keys().filter(|k| !after.contains_key(*k)) {
            self.delete_inline(role, name).await?;
        }
        Ok(())
    }

    async fn delete_inline(&self, role: &str, name: &str) -> Result<(), ProviderError> {
        match self
            .client
            .delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("iam:DeleteRolePolicy", e)),
        }
    }

    /// CreateRole, then attaches its managed policies.
    pub async fn create(&self, p: &Value) -> Result<Applied, ProviderError> {
        let name = text(p, "name");
        let out = self
            .client
            .create_role()
            .role_name(name)
            .assume_role_policy_document(p.get("assume_role_policy").to_plain_json().to_string())
            .set_description(p.get("description").reveal().as_str().map(str::to_string))
            .set_tags(Some(iam_tags(&tags_of(p))?).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| api_error("iam:CreateRole", e))?;
        let attached = async {
            for arn in policy_arns(p) {
                self.attach(name, &arn).await?;
            }
            self.put_inline_policies(name, &Value::Null, p).await
        };
        if let Err(e) = attached.await {
            // Keep create all-or-nothing, so state never misses a role that exists.
            if let Err(cleanup) = self.delete(name).await {
                tracing::warn!("could not remove half-created role {name}: {cleanup}");
            }
            return Err(e);
        }
        Ok(Applied {
            remote_id: name.to_string(),
            outputs: object(vec![("arn", out.role.map(|r| r.arn).into())]),
        })
    }

    /// Updates trust policy, description, attachments and tags, as far as they differ.
    pub async fn update(
        &self,
        name: &str,
        prior: &Value,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        if !prior
            .get("assume_role_policy")
            .same_as(p.get("assume_role_policy"))
        {
            self.client
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(p.get("assume_role_policy").to_plain_json().to_string())
                .send()
                .await
                .map_err(|e| api_error("iam:UpdateAssumeRolePolicy", e))?;
        }
        if !prior.get("description").same_as(p.get("description")) {
            self.client
                .update_role()
                .role_name(name)
                .description(text(p, "description"))
                .send()
                .await
                .map_err(|e| api_error("iam:UpdateRole", e))?;
        }
        let before = policy_arns(prior);
        let after = policy_arns(p);
        for arn in after.iter().filter(|a| !before.contains(a)) {
            self.attach(name, arn).await?;
        }
        for arn in before.iter().filter(|a| !after.contains(a)) {
            self.client
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| api_error("iam:DetachRolePolicy", e))?;
        }
        self.put_inline_policies(name, prior, p).await?;
        super::retag(self, name, prior, p).await?;
        let arn = self
            .read_one(name)
            .await?
            .map(|l| l.outputs)
            .ok_or_else(|| ProviderError::NotFound(format!("IAM role {name}")))?;
        Ok(Applied {
            remote_id: name.to_string(),
            outputs: arn,
        })
    }

    /// Detaches every managed policy and deletes every inline one, then DeleteRole; a role
    /// already gone counts as deleted.
    pub async fn delete(&self, name: &str) -> Result<(), ProviderError> {
        let (attached, inline) = match self.read_one(name).await? {
            Some(live) => (
                policy_arns(&live.properties),
                live.properties
                    .get("inline_policies")
                    .as_map()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
            None => return Ok(()),
        };
        for policy in inline {
            self.delete_inline(name, &policy).await?;
        }
        for arn in attached {
            self.client
                .detach_role_policy()
                .role_name(name)
                .policy_arn(&arn)
                .send()
                .await
                .map_err(|e| api_error("iam:DetachRolePolicy", e))?;
        }
        match self.client.delete_role().role_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("iam:DeleteRole", e)),
        }
    }

    async fn attach(&self, role: &str, arn: &str) -> Result<(), ProviderError> {
        self.client
            .attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| api_error("iam:AttachRolePolicy", e))?;
        Ok(())
    }
}

fn policy_arns(p: &Value) -> Vec<String> {
    let mut arns: Vec<String> = p
        .get("managed_policy_arns")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.reveal().as_str().map(str::to_string))
        .collect();
    arns.sort();
    arns
}

#[async_trait]
impl super::Tagging for Iam {
    async fn tag(
        &self,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        self.client
            .tag_role()
            .role_name(name)
            .set_tags(Some(iam_tags(tags)?))
            .send()
            .await
            .map_err(|e| api_error("iam:TagRole", e))?;
        Ok(())
    }

    async fn untag(&self, name: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .untag_role()
            .role_name(name)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| api_error("iam:UntagRole", e))?;
        Ok(())
    }
}

fn iam_tags(tags: &std::collections::BTreeMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
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

/// A policy document as IAM returns it (URL-encoded JSON), parsed.
fn parse_document(document: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(document)
        .decode_utf8_lossy()
        .to_string();
    serde_json::from_str::<serde_json::Value>(&decoded)
        .map(|j| Value::from_json(&j))
        .unwrap_or(Value::str(decoded))
}

fn role_live(role: &Role, policies: Vec<String>, inline: Value) -> Live {
    let document = role.assume_role_policy_document.clone().unwrap_or_default();
    let policy = parse_document(&document);
    let tags: Value = role
        .tags
        .iter()
        .flatten()
        .map(|t| (t.key.clone(), Value::str(&t.value)))
        .collect();
    Live {
        properties: object(vec![
            ("name", Value::str(&role.role_name)),
            ("assume_role_policy", policy),
            (
                "managed_policy_arns",
                Value::List(policies.into_iter().map(Value::str).collect()),
            ),
            ("inline_policies", inline),
            (
                "description",
                role.description.clone().filter(|d| !d.is_empty()).into(),
            ),
            ("tags", tags),
        ]),
        outputs: object(vec![("arn", Value::str(&role.arn))]),
    }
}
