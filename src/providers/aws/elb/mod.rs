//! Every Elastic Load Balancing v2 call converge makes, for the kinds `aws.lb`,
//! `aws.lb_target_group` and `aws.lb_listener` (their schemas in `aws/lb*.rs`): the batched
//! reads, creates, updates and deletes here; what each kind reads back in its own file
//! (`load_balancer.rs`, `target_group.rs`, `listener.rs`, the last with the listener weights
//! rollouts move).

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, IpAddressType, Listener, LoadBalancer,
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, Tag, TargetGroup, TargetGroupTuple,
    TargetTypeEnum,
};
use futures::{StreamExt, stream};

mod listener;
mod load_balancer;
mod target_group;

use listener::forward;
use load_balancer::lb_live;
use target_group::tg_live;

use super::AwsProvider;
use super::{api_error, object, tags_of, text};
use crate::model::Value;
use crate::providers::kind::{self, ReadResult};
use crate::providers::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, ProviderError, ReadItem,
    UpdateRequest,
};

/// Describe calls take at most 20 names or ARNs.
const BATCH: usize = 20;

/// The ELBv2 client and converge's verbs on it.
pub struct Elb {
    client: Client,
    parallelism: usize,
}

/// Which ELBv2 kind an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElbKind {
    /// `aws.lb`.
    LoadBalancer,
    /// `aws.lb_target_group`.
    TargetGroup,
    /// `aws.lb_listener`.
    Listener,
}

impl Elb {
    /// Builds the client from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> Elb {
        Elb {
            client: super::clients::client!(shared, aws_sdk_elasticloadbalancingv2),
            parallelism: shared.parallelism,
        }
    }

    /// Reads resources of one kind: by ARN 20 per call; a resource whose create was
    /// interrupted (recorded by name, or a listener by `LB_ARN#PORT`) is looked up one by one.
    pub async fn read(&self, kind: ElbKind, items: Vec<ReadItem>) -> Vec<ReadResult> {
        let (by_arn, pending): (Vec<ReadItem>, Vec<ReadItem>) = items
            .into_iter()
            .partition(|i| i.remote_id.starts_with("arn:"));
        let batches: Vec<Vec<ReadItem>> = by_arn.chunks(BATCH).map(<[ReadItem]>::to_vec).collect();
        let mut out: Vec<ReadResult> = stream::iter(batches)
            .map(|batch| self.read_batch(kind, batch))
            .buffer_unordered(self.parallelism)
            .flat_map(stream::iter)
            .collect()
            .await;
        for item in pending {
            let found = self.find_pending(kind, &item.remote_id).await;
            let live = match found {
                Ok(Some(arn)) => {
                    let mut r = self
                        .read_batch(
                            kind,
                            vec![ReadItem {
                                remote_id: arn,
                                ..item.clone()
                            }],
                        )
                        .await;
                    r.pop().map(|(_, l)| l).unwrap_or(Ok(None))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            out.push((item.address, live));
        }
        out
    }

    async fn find_pending(&self, kind: ElbKind, id: &str) -> Result<Option<String>, ProviderError> {
        match kind {
            ElbKind::LoadBalancer => {
                match self.client.describe_load_balancers().names(id).send().await {
                    Ok(o) => Ok(o
                        .load_balancers
                        .unwrap_or_default()
                        .into_iter()
                        .find_map(|l| l.load_balancer_arn)),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(api_error("elbv2:DescribeLoadBalancers", e)),
                }
            }
            ElbKind::TargetGroup => {
                match self.client.describe_target_groups().names(id).send().await {
                    Ok(o) => Ok(o
                        .target_groups
                        .unwrap_or_default()
                        .into_iter()
                        .find_map(|t| t.target_group_arn)),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_target_group_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(api_error("elbv2:DescribeTargetGroups", e)),
                }
            }
            ElbKind::Listener => {
                let Some((lb, port)) = id.rsplit_once('#') else {
                    return Ok(None);
                };
                match self
                    .client
                    .describe_listeners()
                    .load_balancer_arn(lb)
                    .send()
                    .await
                {
                    Ok(o) => Ok(o
                        .listeners
                        .unwrap_or_default()
                        .into_iter()
                        .find(|l| l.port.map(|p| p.to_string()).as_deref() == Some(port))
                        .and_then(|l| l.listener_arn)),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(api_error("elbv2:DescribeListeners", e)),
                }
            }
        }
    }

    async fn read_batch(&self, kind: ElbKind, batch: Vec<ReadItem>) -> Vec<ReadResult> {
        let arns: Vec<String> = batch.iter().map(|i| i.remote_id.clone()).collect();
        let found: Result<BTreeMap<String, Live>, ProviderError> = match kind {
            ElbKind::LoadBalancer => self.describe_lbs(&arns).await,
            ElbKind::TargetGroup => self.describe_tgs(&arns).await,
            ElbKind::Listener => self.describe_listeners(&arns).await,
        };
        let found = match found {
            Ok(f) => f,
            // One missing ARN fails the whole call: ask for each on its own.
            Err(ProviderError::NotFound(_)) if batch.len() > 1 => {
                let mut out = Vec::new();
                for item in batch {
                    out.extend(Box::pin(self.read_batch(kind, vec![item])).await);
                }
                return out;
            }
            Err(ProviderError::NotFound(_)) => BTreeMap::new(),
            Err(e) => {
                return batch
                    .into_iter()
                    .map(|i| (i.address, Err(e.clone())))
                    .collect();
            }
        };
        let tags = if kind == ElbKind::Listener {
            Ok(BTreeMap::new())
        } else {
            self.tags(found.keys().cloned().collect()).await
        };
        batch
            .into_iter()
            .map(|item| {
                let live = match (&tags, found.get(&item.remote_id)) {
                    (_, None) => Ok(None),
                    (Err(e), Some(_)) => Err(e.clone()),
                    (Ok(tags), Some(live)) => {
                        let mut props = live.properties.clone();
                        if kind != ElbKind::Listener
                            && let Value::Map(m) = &mut props
                        {
                            let t = tags.get(&item.remote_id).cloned().unwrap_or_default();
                            m.insert(
                                "tags".into(),
                                Value::Map(
                                    t.into_iter().map(|(k, v)| (k, Value::str(v))).collect(),
                                ),
                            );
                        }
                        Ok(Some(Live {
                            properties: props,
                            outputs: live.outputs.clone(),
                        }))
                    }
                };
                (item.address, live)
            })
            .collect()
    }

    /// Tags of up to 20 resources per DescribeTags call.
    async fn tags(
        &self,
        arns: Vec<String>,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, ProviderError> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(BATCH) {
            let descs = self
                .client
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| api_error("elbv2:DescribeTags", e))?
                .tag_descriptions
                .unwrap_or_default();
            for d in descs {
                let tags = d
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
                    .collect();
                out.insert(d.resource_arn.unwrap_or_default(), tags);
            }
        }
        Ok(out)
    }

    /// Creates a resource of `kind` from its properties.
    pub async fn create(&self, kind: ElbKind, p: &Value) -> Result<Applied, ProviderError> {
        let tags = elb_tags(&tags_of(p));
        match kind {
            ElbKind::LoadBalancer => {
                let out = self
                    .client
                    .create_load_balancer()
                    .name(text(p, "name"))
                    .set_subnets(Some(strings(p.get("subnets"))))
                    .set_security_groups(
                        Some(strings(p.get("security_groups"))).filter(|s| !s.is_empty()),
                    )
                    .scheme(if p.get("internal").as_bool() == Some(true) {
                        LoadBalancerSchemeEnum::Internal
                    } else {
                        LoadBalancerSchemeEnum::InternetFacing
                    })
                    .r#type(LoadBalancerTypeEnum::Application)
                    .ip_address_type(IpAddressType::Ipv4)
                    .set_tags(Some(tags).filter(|t| !t.is_empty()))
                    .send()
                    .await
                    .map_err(|e| api_error("elbv2:CreateLoadBalancer", e))?;
                let lb = out
                    .load_balancers
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        ProviderError::Invalid("CreateLoadBalancer returned nothing".into())
                    })?;
                Ok(Applied {
                    remote_id: lb.load_balancer_arn.clone().unwrap_or_default(),
                    outputs: lb_live(&lb).outputs,
                })
            }
            ElbKind::TargetGroup => {
                let out = self
                    .client
                    .create_target_group()
                    .name(text(p, "name"))
                    .port(p.get("port").as_i64().unwrap_or(80) as i32)
                    .protocol(ProtocolEnum::from(text(p, "protocol")))
                    .vpc_id(text(p, "vpc_id"))
                    .target_type(TargetTypeEnum::from(text(p, "target_type")))
                    .health_check_path(text(p, "health_check_path"))
                    .set_tags(Some(tags).filter(|t| !t.is_empty()))
                    .send()
                    .await
                    .map_err(|e| api_error("elbv2:CreateTargetGroup", e))?;
                let tg = out
                    .target_groups
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        ProviderError::Invalid("CreateTargetGroup returned nothing".into())
                    })?;
                Ok(Applied {
                    remote_id: tg.target_group_arn.clone().unwrap_or_default(),
                    outputs: tg_live(&tg).outputs,
                })
            }
            ElbKind::Listener => {
                let groups = strings(p.get("target_group_arns"));
                let weights: Vec<(String, i32)> = groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (g.clone(), if i == 0 { 100 } else { 0 }))
                    .collect();
                let out = self
                    .client
                    .create_listener()
                    .load_balancer_arn(text(p, "load_balancer_arn"))
                    .port(p.get("port").as_i64().unwrap_or(80) as i32)
                    .protocol(ProtocolEnum::from(text(p, "protocol")))
                    .default_actions(forward(&weights))
                    .send()
                    .await
                    .map_err(|e| api_error("elbv2:CreateListener", e))?;
                let arn = out
                    .listeners
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .and_then(|l| l.listener_arn)
                    .unwrap_or_default();
                Ok(Applied {
                    remote_id: arn.clone(),
                    outputs: object(vec![("arn", Value::str(arn))]),
                })
            }
        }
    }

    /// Updates in place: tags, security groups, health check path, the listener's groups.
    pub async fn update(
        &self,
        kind: ElbKind,
        arn: &str,
        prior: &Value,
        p: &Value,
        prior_outputs: &Value,
    ) -> Result<Applied, ProviderError> {
        match kind {
            ElbKind::LoadBalancer => {
                if prior.get("security_groups") != p.get("security_groups") {
                    self.client
                        .set_security_groups()
                        .load_balancer_arn(arn)
                        .set_security_groups(Some(strings(p.get("security_groups"))))
                        .send()
                        .await
                        .map_err(|e| api_error("elbv2:SetSecurityGroups", e))?;
                }
            }
            ElbKind::TargetGroup => {
                if prior.get("health_check_path") != p.get("health_check_path") {
                    self.client
                        .modify_target_group()
                        .target_group_arn(arn)
                        .health_check_path(text(p, "health_check_path"))
                        .send()
                        .await
                        .map_err(|e| api_error("elbv2:ModifyTargetGroup", e))?;
                }
            }
            ElbKind::Listener => {
                if prior.get("target_group_arns") != p.get("target_group_arns") {
                    // Keep the weights of groups that stay; new ones start at 0 unless
                    // nothing else carries traffic.
                    let current = self.weights(arn).await?;
                    let mut weights: Vec<(String, i32)> = strings(p.get("target_group_arns"))
                        .into_iter()
                        .map(|g| {
                            let w = current
                                .iter()
                                .find(|(c, _)| *c == g)
                                .map(|(_, w)| *w)
                                .unwrap_or(0);
                            (g, w)
                        })
                        .collect();
                    if weights.iter().all(|(_, w)| *w == 0)
                        && let Some(first) = weights.first_mut()
                    {
                        first.1 = 100;
                    }
                    self.set_weights(arn, &weights).await?;
                }
            }
        }
        if kind != ElbKind::Listener {
            super::retag(self, arn, prior, p).await?;
        }
        Ok(Applied {
            remote_id: arn.to_string(),
            outputs: prior_outputs.clone(),
        })
    }

    /// Deletes; one already gone succeeds.
    pub async fn delete(&self, kind: ElbKind, arn: &str) -> Result<(), ProviderError> {
        if !arn.starts_with("arn:") {
            return Ok(());
        }
        match kind {
            ElbKind::LoadBalancer => self
                .client
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_error("elbv2:DeleteLoadBalancer", e)),
            ElbKind::TargetGroup => self
                .client
                .delete_target_group()
                .target_group_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_error("elbv2:DeleteTargetGroup", e)),
            ElbKind::Listener => match self.client.delete_listener().listener_arn(arn).send().await
            {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_listener_not_found_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(api_error("elbv2:DeleteListener", e)),
            },
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list()
        .map(|l| {
            l.iter()
                .filter_map(|x| x.reveal().as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl super::Tagging for Elb {
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
        self.client
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(|e| api_error("elbv2:AddTags", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| api_error("elbv2:RemoveTags", e))?;
        Ok(())
    }
}

fn elb_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The part of an ELB ARN CloudWatch uses as a dimension: `app/NAME/ID`, `targetgroup/NAME/ID`.
pub fn arn_suffix(arn: &str) -> String {
    arn.split_once(":loadbalancer/")
        .map(|(_, s)| s.to_string())
        .or_else(|| arn.rsplit_once(':').map(|(_, s)| s.to_string()))
        .unwrap_or_default()
}

/// The handler of the three ELBv2 kinds, by which one it is.
pub struct ElbHandler(pub ElbKind);

#[async_trait::async_trait]
impl kind::Handler<AwsProvider> for ElbHandler {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<ReadResult> {
        aws.elb.read(self.0, items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        match self.0 {
            // A listener is found again by its load balancer and port.
            ElbKind::Listener => format!(
                "{}#{}",
                text(&r.properties, "load_balancer_arn"),
                r.properties.get("port").as_i64().unwrap_or_default()
            ),
            ElbKind::LoadBalancer | ElbKind::TargetGroup => text(&r.properties, "name").to_string(),
        }
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        aws.elb.create(self.0, &r.properties).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        aws.elb
            .update(
                self.0,
                &r.remote_id,
                &r.prior,
                &r.properties,
                &r.prior_outputs,
            )
            .await
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.elb.delete(self.0, &r.remote_id).await
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        super::import_by_reading(self, aws, r, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::arn_suffix;

    #[test]
    fn cloudwatch_dimensions_are_the_arn_suffixes() {
        assert_eq!(
            arn_suffix(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
            ),
            "app/web/50dc6c495c0c9188"
        );
        assert_eq!(
            arn_suffix(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/73e2d6bc24d8a067"
            ),
            "targetgroup/blue/73e2d6bc24d8a067"
        );
    }
}
