//! Every Amazon ECS call converge makes (for `aws.ecs_cluster`, `aws.ecs_service` and rollouts),
//! one file per concern: `cluster.rs`, `service.rs`, `deployment.rs`, `task_definition.rs`,
//! `task_set.rs`; and the service kind's rollouts: `deploy.rs` (how a change becomes one) and
//! `rollout.rs` (the target: task sets behind ALB weights, or ECS's rolling deployment).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Cluster, ClusterField, ClusterSetting, ClusterSettingName,
    Compatibility, ContainerDefinition, CpuArchitecture, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentController, DeploymentControllerType, KeyValuePair,
    LaunchType, LoadBalancer, LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode,
    OsFamily, PortMapping, RuntimePlatform, Scale, ScaleUnit, Secret, Service, ServiceField, Tag,
    TaskDefinition, TaskSet, TransportProtocol,
};
use futures::{StreamExt, stream};

use super::{api_error, object, tags_of, text};
use crate::model::{Address, Value};
use crate::providers::{Applied, Live, ProviderError, ReadItem};

/// DescribeClusters takes at most 100 clusters.
const CLUSTER_BATCH: usize = 100;
/// DescribeServices takes at most 10 services.
const SERVICE_BATCH: usize = 10;

mod cluster;
pub mod deploy;
mod deployment;
pub mod gates;
pub mod rollout;
mod service;
pub mod spec;
mod task;
mod task_definition;
mod task_set;

pub use deployment::DeploymentInfo;
pub use service::{RolloutTraffic, rollout_traffic};
pub use task::TaskState;
use task_definition::task_value;
pub use task_set::TaskSetInfo;

type ReadResult = (Address, Result<Option<Live>, ProviderError>);

/// The ECS client and converge's verbs on it.
pub struct Ecs {
    client: Client,
    parallelism: usize,
}

impl Ecs {
    /// Wraps a client built from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> Ecs {
        Ecs {
            client: super::clients::client!(shared, aws_sdk_ecs),
            parallelism: shared.parallelism,
        }
    }

    /// Every cluster's ARN (ListClusters, every page).
    pub async fn list_clusters(&self) -> Result<Vec<String>, ProviderError> {
        let mut arns = Vec::new();
        let mut pages = self.client.list_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("ecs:ListClusters", e))?;
            arns.extend(page.cluster_arns().iter().cloned());
        }
        Ok(arns)
    }
}

#[async_trait::async_trait]
impl super::Tagging for Ecs {
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(ecs_tags(tags)))
            .send()
            .await
            .map_err(|e| api_error("ecs:TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| api_error("ecs:UntagResource", e))?;
        Ok(())
    }
}

impl From<aws_smithy_types::error::operation::BuildError> for ProviderError {
    fn from(e: aws_smithy_types::error::operation::BuildError) -> Self {
        ProviderError::Invalid(e.to_string())
    }
}

fn ecs_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn network_config(n: &Value) -> Result<NetworkConfiguration, ProviderError> {
    let strings = |key: &str| -> Vec<String> {
        n.get(key)
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.reveal().as_str().map(str::to_string))
            .collect()
    };
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(strings("subnets")))
        .set_security_groups(Some(strings("security_groups")))
        .assign_public_ip(if n.get("assign_public_ip").as_bool() == Some(true) {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

fn load_balancer(lb: &Value) -> Option<LoadBalancer> {
    if lb.is_null() {
        return None;
    }
    Some(
        LoadBalancer::builder()
            .target_group_arn(text(lb, "target_group_arn"))
            .container_name(text(lb, "container"))
            .container_port(lb.get("port").as_i64().unwrap_or(0) as i32)
            .build(),
    )
}
