//! `aws.ecs_cluster` and `aws.ecs_service`: every Amazon ECS call converge makes.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Cluster, ClusterField, ClusterSetting, ClusterSettingName,
    Compatibility, ContainerDefinition, CpuArchitecture, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentController, DeploymentControllerType, KeyValuePair,
    LaunchType, LoadBalancer, NetworkConfiguration, NetworkMode, OsFamily, PortMapping,
    RuntimePlatform, Scale, ScaleUnit, Secret, Service, ServiceField, Tag, TaskDefinition, TaskSet,
    TransportProtocol,
};
use futures::{StreamExt, stream};

use super::{api_error, object, tag_changes, tags_of, text};
use crate::model::{Address, Value};
use crate::providers::{Applied, Live, ProviderError, ReadItem};

/// DescribeClusters takes at most 100 clusters.
const CLUSTER_BATCH: usize = 100;
/// DescribeServices takes at most 10 services.
const SERVICE_BATCH: usize = 10;

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

    // ---- clusters ----

    /// Reads clusters, 100 per DescribeClusters call, batches in parallel.
    pub async fn read_clusters(&self, items: Vec<ReadItem>) -> Vec<ReadResult> {
        let batches: Vec<Vec<ReadItem>> = items
            .chunks(CLUSTER_BATCH)
            .map(<[ReadItem]>::to_vec)
            .collect();
        stream::iter(batches)
            .map(|batch| async move {
                let ids: Vec<String> = batch.iter().map(|i| i.remote_id.clone()).collect();
                let out = self
                    .client
                    .describe_clusters()
                    .set_clusters(Some(ids))
                    .include(ClusterField::Tags)
                    .include(ClusterField::Settings)
                    .send()
                    .await;
                match out {
                    Ok(out) => {
                        let clusters = out.clusters.unwrap_or_default();
                        batch
                            .into_iter()
                            .map(|item| {
                                let found = clusters.iter().find(|c| {
                                    c.cluster_arn.as_deref() == Some(&item.remote_id)
                                        || c.cluster_name.as_deref() == Some(&item.remote_id)
                                });
                                let live = found
                                    .filter(|c| c.status.as_deref() != Some("INACTIVE"))
                                    .map(cluster_live);
                                (item.address, Ok(live))
                            })
                            .collect::<Vec<_>>()
                    }
                    Err(e) => {
                        let err = api_error("ecs:DescribeClusters", e);
                        batch
                            .into_iter()
                            .map(|i| (i.address, Err(err.clone())))
                            .collect()
                    }
                }
            })
            .buffer_unordered(self.parallelism)
            .flat_map(stream::iter)
            .collect()
            .await
    }

    /// CreateCluster with its settings and tags.
    pub async fn create_cluster(&self, p: &Value) -> Result<Applied, ProviderError> {
        let out = self
            .client
            .create_cluster()
            .cluster_name(text(p, "name"))
            .settings(insights(p))
            .set_tags(Some(ecs_tags(&tags_of(p))).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| api_error("ecs:CreateCluster", e))?;
        let cluster = out
            .cluster
            .ok_or_else(|| ProviderError::Invalid("CreateCluster returned nothing".into()))?;
        let arn = cluster.cluster_arn.clone().unwrap_or_default();
        Ok(Applied {
            remote_id: arn.clone(),
            outputs: object(vec![("arn", Value::str(arn))]),
        })
    }

    /// UpdateClusterSettings and tags, as far as they differ.
    pub async fn update_cluster(
        &self,
        arn: &str,
        prior: &Value,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        if !prior
            .get("container_insights")
            .same_as(p.get("container_insights"))
        {
            self.client
                .update_cluster_settings()
                .cluster(arn)
                .settings(insights(p))
                .send()
                .await
                .map_err(|e| api_error("ecs:UpdateClusterSettings", e))?;
        }
        self.retag(arn, prior, p).await?;
        Ok(Applied {
            remote_id: arn.to_string(),
            outputs: object(vec![("arn", Value::str(arn))]),
        })
    }

    /// DeleteCluster; a cluster already gone counts as deleted.
    pub async fn delete_cluster(&self, arn: &str) -> Result<(), ProviderError> {
        match self.client.delete_cluster().cluster(arn).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_cluster_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("ecs:DeleteCluster", e)),
        }
    }

    // ---- services ----

    /// Reads services grouped by cluster, 10 per DescribeServices call, in parallel; task
    /// definitions are described only when the service runs a revision converge did not record
    /// (revisions are immutable, so a recorded one is known).
    pub async fn read_services(&self, items: Vec<ReadItem>) -> Vec<ReadResult> {
        let mut by_cluster: BTreeMap<String, Vec<ReadItem>> = BTreeMap::new();
        for item in items {
            let (cluster, _) = split_service_id(&item.remote_id, &item.prior);
            by_cluster.entry(cluster).or_default().push(item);
        }
        let batches: Vec<(String, Vec<ReadItem>)> = by_cluster
            .into_iter()
            .flat_map(|(cluster, items)| {
                items
                    .chunks(SERVICE_BATCH)
                    .map(|c| (cluster.clone(), c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let described: Vec<(ReadItem, Result<Option<Service>, ProviderError>)> =
            stream::iter(batches)
                .map(|(cluster, batch)| async move {
                    let names: Vec<String> = batch
                        .iter()
                        .map(|i| split_service_id(&i.remote_id, &i.prior).1)
                        .collect();
                    match self
                        .client
                        .describe_services()
                        .cluster(&cluster)
                        .set_services(Some(names))
                        .include(ServiceField::Tags)
                        .send()
                        .await
                    {
                        Ok(out) => {
                            let services = out.services.unwrap_or_default();
                            batch
                                .into_iter()
                                .map(|item| {
                                    let name = split_service_id(&item.remote_id, &item.prior).1;
                                    let found = services
                                        .iter()
                                        .find(|s| s.service_name.as_deref() == Some(&name))
                                        .filter(|s| s.status.as_deref() == Some("ACTIVE"))
                                        .cloned();
                                    (item, Ok(found))
                                })
                                .collect::<Vec<_>>()
                        }
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_cluster_not_found_exception()) =>
                        {
                            batch.into_iter().map(|i| (i, Ok(None))).collect()
                        }
                        Err(e) => {
                            let err = api_error("ecs:DescribeServices", e);
                            batch.into_iter().map(|i| (i, Err(err.clone()))).collect()
                        }
                    }
                })
                .buffer_unordered(self.parallelism)
                .flat_map(stream::iter)
                .collect()
                .await;
        stream::iter(described)
            .map(|(item, service)| async move {
                let live = match service {
                    Ok(Some(s)) => self.service_live(&item, &s).await.map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    async fn service_live(&self, item: &ReadItem, s: &Service) -> Result<Live, ProviderError> {
        let external = is_external(s);
        let primary = primary_task_set(s);
        let td_arn = if external {
            primary
                .and_then(|t| t.task_definition.clone())
                .unwrap_or_default()
        } else {
            s.task_definition.clone().unwrap_or_default()
        };
        let task = if item.prior_outputs.get("task_definition_arn").as_str()
            == Some(td_arn.as_str())
            && !item.prior.get("task").is_null()
        {
            item.prior.get("task").clone()
        } else {
            let td = self
                .client
                .describe_task_definition()
                .task_definition(&td_arn)
                .send()
                .await
                .map_err(|e| api_error("ecs:DescribeTaskDefinition", e))?
                .task_definition
                .ok_or_else(|| ProviderError::NotFound(format!("task definition {td_arn}")))?;
            task_value(&td)
        };
        let cluster_arn = s.cluster_arn.clone().unwrap_or_default();
        // Keep the form (name or ARN) the file uses, so an equal cluster is no change.
        let prior_cluster = text(&item.prior, "cluster");
        let cluster = if !prior_cluster.is_empty()
            && (cluster_arn == prior_cluster || cluster_arn.ends_with(&format!("/{prior_cluster}")))
        {
            prior_cluster.to_string()
        } else {
            cluster_arn
        };
        let network_source = if external {
            primary.and_then(|t| t.network_configuration.as_ref())
        } else {
            s.network_configuration.as_ref()
        };
        let network = network_source
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .map(|v| {
                object(vec![
                    (
                        "subnets",
                        Value::List(v.subnets.iter().map(Value::str).collect()),
                    ),
                    (
                        "security_groups",
                        Value::List(v.security_groups.iter().flatten().map(Value::str).collect()),
                    ),
                    (
                        "assign_public_ip",
                        Value::Bool(v.assign_public_ip == Some(AssignPublicIp::Enabled)),
                    ),
                ])
            })
            .unwrap_or_default();
        // Under a rollout the target group belongs to the revision, not the service.
        let load_balancer = if external {
            primary
                .and_then(|t| t.load_balancers.as_deref())
                .and_then(|l| l.first())
                .map(|lb| {
                    object(vec![
                        ("container", lb.container_name.clone().into()),
                        ("port", lb.container_port.map(i64::from).into()),
                    ])
                })
                .unwrap_or_default()
        } else {
            s.load_balancers
                .as_deref()
                .and_then(|l| l.first())
                .map(|lb| {
                    object(vec![
                        ("target_group_arn", lb.target_group_arn.clone().into()),
                        ("container", lb.container_name.clone().into()),
                        ("port", lb.container_port.map(i64::from).into()),
                    ])
                })
                .unwrap_or_default()
        };
        let tags: Value = s
            .tags
            .iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t.key.clone()?,
                    Value::str(t.value.clone().unwrap_or_default()),
                ))
            })
            .collect();
        let properties = object(vec![
            ("name", s.service_name.clone().into()),
            ("cluster", Value::str(cluster)),
            (
                "launch_type",
                Value::str(
                    if external {
                        primary.and_then(|t| t.launch_type.as_ref())
                    } else {
                        s.launch_type.as_ref()
                    }
                    .map(|l| l.as_str())
                    .unwrap_or("FARGATE"),
                ),
            ),
            ("desired_count", Value::int(i64::from(s.desired_count))),
            ("task", task),
            ("network", network),
            ("load_balancer", load_balancer),
            // The rollout settings live only in the files; an EXTERNAL service has them.
            (
                "rollout",
                if external {
                    item.prior.get("rollout").clone()
                } else {
                    Value::Null
                },
            ),
            ("tags", if tags.is_null() { Value::map() } else { tags }),
        ]);
        let mut outputs = service_outputs(s);
        if let Value::Map(m) = &mut outputs {
            m.insert("task_definition_arn".into(), Value::str(&td_arn));
        }
        Ok(Live {
            properties,
            outputs,
        })
    }

    /// Registers the task definition, then CreateService with the deployment circuit breaker
    /// (and its rollback) on; an idempotency token makes a retried call create nothing twice.
    pub async fn create_service(
        &self,
        address: &Address,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        if let Some(traffic) = rollout_traffic(p) {
            return self.create_external_service(address, p, &traffic).await;
        }
        let td_arn = self.register_task(p.get("task")).await?;
        let token = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{address}/{td_arn}").as_bytes(),
        );
        let mut call = self
            .client
            .create_service()
            .cluster(text(p, "cluster"))
            .service_name(text(p, "name"))
            .task_definition(&td_arn)
            .desired_count(p.get("desired_count").as_i64().unwrap_or(1) as i32)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network_config(p.get("network"))?)
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(DeploymentControllerType::Ecs)
                    .build()?,
            )
            .deployment_configuration(rolling())
            .client_token(token.to_string())
            .set_tags(Some(ecs_tags(&tags_of(p))).filter(|t| !t.is_empty()));
        if let Some(lb) = load_balancer(p.get("load_balancer")) {
            call = call.load_balancers(lb);
        }
        let service = call
            .send()
            .await
            .map_err(|e| api_error("ecs:CreateService", e))?
            .service
            .ok_or_else(|| ProviderError::Invalid("CreateService returned nothing".into()))?;
        let arn = service.service_arn.clone().unwrap_or_default();
        Ok(Applied {
            remote_id: arn,
            outputs: service_outputs(&service),
        })
    }

    /// A service under a rollout (EXTERNAL deployment controller): the service itself, then
    /// its first revision as a task set on the first target group at 100% scale, made primary,
    /// with the listener forwarding everything to that group.
    async fn create_external_service(
        &self,
        address: &Address,
        p: &Value,
        traffic: &RolloutTraffic,
    ) -> Result<Applied, ProviderError> {
        let td_arn = self.register_task(p.get("task")).await?;
        let token = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{address}/external").as_bytes(),
        );
        let cluster = text(p, "cluster").to_string();
        let name = text(p, "name").to_string();
        let service = self
            .client
            .create_service()
            .cluster(&cluster)
            .service_name(&name)
            .desired_count(p.get("desired_count").as_i64().unwrap_or(1) as i32)
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(DeploymentControllerType::External)
                    .build()?,
            )
            .client_token(token.to_string())
            .set_tags(Some(ecs_tags(&tags_of(p))).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| api_error("ecs:CreateService", e))?
            .service
            .ok_or_else(|| ProviderError::Invalid("CreateService returned nothing".into()))?;
        let first = traffic.target_groups.first().cloned().unwrap_or_default();
        let task_set = self
            .create_task_set(&cluster, &name, &td_arn, &first, p)
            .await?;
        self.make_primary(&cluster, &name, &task_set).await?;
        let mut outputs = service_outputs(&service);
        if let Value::Map(m) = &mut outputs {
            m.insert("task_definition_arn".into(), Value::str(td_arn));
        }
        Ok(Applied {
            remote_id: service.service_arn.clone().unwrap_or_default(),
            outputs,
        })
    }

    /// The task sets of an EXTERNAL service.
    pub async fn task_sets(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<TaskSetInfo>, ProviderError> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| api_error("ecs:DescribeServices", e))?;
        let service = out
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.status.as_deref() == Some("ACTIVE"))
            .ok_or_else(|| ProviderError::NotFound(format!("service {service}")))?;
        Ok(service
            .task_sets
            .unwrap_or_default()
            .iter()
            .map(TaskSetInfo::from)
            .collect())
    }

    /// CreateTaskSet: the revision on `target_group` at 100% scale, with the service's network;
    /// returns the task set's ARN.
    pub async fn create_task_set(
        &self,
        cluster: &str,
        service: &str,
        td_arn: &str,
        target_group: &str,
        p: &Value,
    ) -> Result<String, ProviderError> {
        let lb = p.get("load_balancer");
        let mut call = self
            .client
            .create_task_set()
            .cluster(cluster)
            .service(service)
            .task_definition(td_arn)
            .external_id(uuid::Uuid::new_v4().to_string())
            .launch_type(LaunchType::Fargate)
            .network_configuration(network_config(p.get("network"))?)
            .scale(
                Scale::builder()
                    .unit(ScaleUnit::Percent)
                    .value(100.0)
                    .build(),
            );
        if !target_group.is_empty() {
            call = call.load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(target_group)
                    .set_container_name(lb.get("container").as_str().map(str::to_string))
                    .set_container_port(lb.get("port").as_i64().map(|p| p as i32))
                    .build(),
            );
        }
        let set = call
            .send()
            .await
            .map_err(|e| api_error("ecs:CreateTaskSet", e))?
            .task_set
            .ok_or_else(|| ProviderError::Invalid("CreateTaskSet returned nothing".into()))?;
        Ok(set.task_set_arn.or(set.id).unwrap_or_default())
    }

    /// UpdateServicePrimaryTaskSet.
    pub async fn make_primary(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
    ) -> Result<(), ProviderError> {
        self.client
            .update_service_primary_task_set()
            .cluster(cluster)
            .service(service)
            .primary_task_set(task_set)
            .send()
            .await
            .map_err(|e| api_error("ecs:UpdateServicePrimaryTaskSet", e))?;
        Ok(())
    }

    /// DeleteTaskSet (forced); one already gone succeeds.
    pub async fn delete_task_set(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
    ) -> Result<(), ProviderError> {
        match self
            .client
            .delete_task_set()
            .cluster(cluster)
            .service(service)
            .task_set(task_set)
            .force(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_task_set_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("ecs:DeleteTaskSet", e)),
        }
    }

    /// Registers a task definition revision; returns its ARN.
    pub async fn register(&self, task: &Value) -> Result<String, ProviderError> {
        self.register_task(task).await
    }

    /// A changed task registers a new revision; UpdateService moves the service onto it (ECS
    /// rolling deployment) and sets count, network and load balancer; tags follow. A service
    /// under a rollout takes only count and tags here (its revisions move by rollout).
    pub async fn update_service(
        &self,
        arn: &str,
        prior: &Value,
        prior_outputs: &Value,
        p: &Value,
    ) -> Result<Applied, ProviderError> {
        if rollout_traffic(p).is_some() {
            self.client
                .update_service()
                .cluster(text(p, "cluster"))
                .service(text(p, "name"))
                .desired_count(p.get("desired_count").as_i64().unwrap_or(1) as i32)
                .send()
                .await
                .map_err(|e| api_error("ecs:UpdateService", e))?;
            self.retag(arn, prior, p).await?;
            return Ok(Applied {
                remote_id: arn.to_string(),
                outputs: prior_outputs.clone(),
            });
        }
        let td_arn = if prior.get("task").same_as(p.get("task")) {
            text(prior_outputs, "task_definition_arn").to_string()
        } else {
            self.register_task(p.get("task")).await?
        };
        let mut call = self
            .client
            .update_service()
            .cluster(text(p, "cluster"))
            .service(text(p, "name"))
            .task_definition(&td_arn)
            .desired_count(p.get("desired_count").as_i64().unwrap_or(1) as i32)
            .network_configuration(network_config(p.get("network"))?)
            .deployment_configuration(rolling());
        if !prior.get("load_balancer").same_as(p.get("load_balancer")) {
            call = call.set_load_balancers(Some(
                load_balancer(p.get("load_balancer")).into_iter().collect(),
            ));
        }
        let service = call
            .send()
            .await
            .map_err(|e| api_error("ecs:UpdateService", e))?
            .service
            .ok_or_else(|| ProviderError::Invalid("UpdateService returned nothing".into()))?;
        self.retag(arn, prior, p).await?;
        let mut outputs = service_outputs(&service);
        if let Value::Map(m) = &mut outputs {
            m.insert("task_definition_arn".into(), Value::str(td_arn));
        }
        Ok(Applied {
            remote_id: arn.to_string(),
            outputs,
        })
    }

    /// DeleteService (forced: it scales to zero first) and waits until it is inactive.
    pub async fn delete_service(&self, arn: &str, prior: &Value) -> Result<(), ProviderError> {
        let (cluster, name) = split_service_id(arn, prior);
        match self
            .client
            .delete_service()
            .cluster(&cluster)
            .service(&name)
            .force(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_service_not_found_exception() || s.is_cluster_not_found_exception()
                }) =>
            {
                return Ok(());
            }
            Err(e) => return Err(api_error("ecs:DeleteService", e)),
        }
        use aws_sdk_ecs::client::Waiters;
        // moto and AWS differ on how long a deleted service stays DRAINING; wait, bounded.
        let _ = self
            .client
            .wait_until_services_inactive()
            .cluster(&cluster)
            .services(&name)
            .wait(Duration::from_secs(600))
            .await;
        Ok(())
    }

    async fn register_task(&self, task: &Value) -> Result<String, ProviderError> {
        let containers = task
            .get("containers")
            .as_list()
            .unwrap_or_default()
            .iter()
            .map(container_definition)
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .register_task_definition()
            .family(text(task, "family"))
            .cpu(task.get("cpu").as_i64().unwrap_or(256).to_string())
            .memory(task.get("memory").as_i64().unwrap_or(512).to_string())
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::from(
                        task.get("cpu_architecture").as_str().unwrap_or("X86_64"),
                    ))
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .set_execution_role_arn(
                task.get("execution_role_arn")
                    .reveal()
                    .as_str()
                    .map(str::to_string),
            )
            .set_task_role_arn(
                task.get("task_role_arn")
                    .reveal()
                    .as_str()
                    .map(str::to_string),
            )
            .set_container_definitions(Some(containers))
            .send()
            .await
            .map_err(|e| api_error("ecs:RegisterTaskDefinition", e))?;
        out.task_definition
            .and_then(|t| t.task_definition_arn)
            .ok_or_else(|| ProviderError::Invalid("RegisterTaskDefinition returned no ARN".into()))
    }

    async fn retag(&self, arn: &str, prior: &Value, p: &Value) -> Result<(), ProviderError> {
        let (set, remove) = tag_changes(prior, p);
        if !remove.is_empty() {
            self.client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| api_error("ecs:UntagResource", e))?;
        }
        if !set.is_empty() {
            self.client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(ecs_tags(&set)))
                .send()
                .await
                .map_err(|e| api_error("ecs:TagResource", e))?;
        }
        Ok(())
    }
}

impl From<aws_smithy_types::error::operation::BuildError> for ProviderError {
    fn from(e: aws_smithy_types::error::operation::BuildError) -> Self {
        ProviderError::Invalid(e.to_string())
    }
}

/// (cluster, service name) of a service from its ARN
/// (`arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`), `CLUSTER/NAME`, or prior properties.
fn split_service_id(id: &str, prior: &Value) -> (String, String) {
    let tail = id.rsplit_once(":service/").map(|(_, t)| t).unwrap_or(id);
    match tail.split_once('/') {
        Some((cluster, name)) => (cluster.to_string(), name.to_string()),
        None => (text(prior, "cluster").to_string(), tail.to_string()),
    }
}

fn rolling() -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(true)
                .rollback(true)
                .build(),
        )
        .maximum_percent(200)
        .minimum_healthy_percent(100)
        .build()
}

fn insights(p: &Value) -> ClusterSetting {
    let on = p.get("container_insights").as_bool().unwrap_or(false);
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

fn cluster_live(c: &Cluster) -> Live {
    let insights = c.settings.iter().flatten().any(|s| {
        s.name == Some(ClusterSettingName::ContainerInsights)
            && s.value.as_deref() == Some("enabled")
    });
    let tags: Value = c
        .tags
        .iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.key.clone()?,
                Value::str(t.value.clone().unwrap_or_default()),
            ))
        })
        .collect();
    Live {
        properties: object(vec![
            ("name", c.cluster_name.clone().into()),
            ("container_insights", Value::Bool(insights)),
            ("tags", if tags.is_null() { Value::map() } else { tags }),
        ]),
        outputs: object(vec![("arn", c.cluster_arn.clone().into())]),
    }
}

/// A task set as rollouts see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetInfo {
    /// Its ARN (the id where there is none).
    pub id: String,
    /// PRIMARY or ACTIVE (or DRAINING).
    pub status: String,
    /// Its task definition.
    pub task_definition: String,
    /// The target group it registers with.
    pub target_group: String,
}

impl From<&TaskSet> for TaskSetInfo {
    fn from(t: &TaskSet) -> Self {
        TaskSetInfo {
            id: t
                .task_set_arn
                .clone()
                .or_else(|| t.id.clone())
                .unwrap_or_default(),
            status: t.status.clone().unwrap_or_default(),
            task_definition: t.task_definition.clone().unwrap_or_default(),
            target_group: t
                .load_balancers
                .as_deref()
                .and_then(|l| l.first())
                .and_then(|l| l.target_group_arn.clone())
                .unwrap_or_default(),
        }
    }
}

/// The listener and target groups of a service with a canary or blue/green rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutTraffic {
    /// The listener whose weights move.
    pub listener_arn: String,
    /// The target groups revisions alternate on.
    pub target_groups: Vec<String>,
}

/// The traffic settings of a service that rolls out under the EXTERNAL controller, if any
/// (`rolling`, or no rollout, keeps the ECS controller).
pub fn rollout_traffic(p: &Value) -> Option<RolloutTraffic> {
    let rollout = p.get("rollout");
    if rollout.is_null() || text(rollout, "strategy") == "rolling" {
        return None;
    }
    let traffic = rollout.get("traffic");
    Some(RolloutTraffic {
        listener_arn: text(traffic, "listener_arn").to_string(),
        target_groups: traffic
            .get("target_groups")
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.reveal().as_str().map(str::to_string))
            .collect(),
    })
}

fn is_external(s: &Service) -> bool {
    s.deployment_controller
        .as_ref()
        .is_some_and(|d| d.r#type == DeploymentControllerType::External)
}

fn primary_task_set(s: &Service) -> Option<&TaskSet> {
    s.task_sets
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|t| t.status.as_deref() == Some("PRIMARY"))
}

fn service_outputs(s: &Service) -> Value {
    object(vec![
        ("arn", s.service_arn.clone().into()),
        ("task_definition_arn", s.task_definition.clone().into()),
    ])
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

fn container_definition(c: &Value) -> Result<ContainerDefinition, ProviderError> {
    let mut def = ContainerDefinition::builder()
        .name(text(c, "name"))
        .image(text(c, "image"))
        .essential(c.get("essential").as_bool().unwrap_or(true))
        .set_cpu(c.get("cpu").as_i64().map(|v| v as i32))
        .set_memory(c.get("memory").as_i64().map(|v| v as i32));
    if let Some(port) = c.get("port").as_i64() {
        def = def.port_mappings(
            PortMapping::builder()
                .container_port(port as i32)
                .protocol(TransportProtocol::Tcp)
                .build(),
        );
    }
    for (k, v) in c.get("environment").as_map().into_iter().flatten() {
        let value = v
            .reveal()
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_plain_json().to_string());
        def = def.environment(KeyValuePair::builder().name(k).value(value).build());
    }
    for (k, v) in c.get("secrets").as_map().into_iter().flatten() {
        def = def.secrets(
            Secret::builder()
                .name(k)
                .value_from(v.reveal().as_str().unwrap_or(""))
                .build()?,
        );
    }
    Ok(def.build())
}

/// A task definition read back into the `task` property's shape.
fn task_value(td: &TaskDefinition) -> Value {
    let num = |s: Option<&str>| {
        s.and_then(|s| s.parse::<i64>().ok())
            .map(Value::int)
            .unwrap_or_default()
    };
    let containers = td
        .container_definitions
        .iter()
        .flatten()
        .map(|c| {
            object(vec![
                ("name", c.name.clone().into()),
                ("image", c.image.clone().into()),
                (
                    "port",
                    c.port_mappings
                        .as_deref()
                        .and_then(|p| p.first())
                        .and_then(|p| p.container_port)
                        .map(i64::from)
                        .into(),
                ),
                (
                    "cpu",
                    if c.cpu == 0 {
                        Value::Null
                    } else {
                        Value::int(i64::from(c.cpu))
                    },
                ),
                ("memory", c.memory.map(i64::from).into()),
                (
                    "environment",
                    c.environment
                        .iter()
                        .flatten()
                        .filter_map(|kv| {
                            Some((
                                kv.name.clone()?,
                                Value::str(kv.value.clone().unwrap_or_default()),
                            ))
                        })
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                ),
                (
                    "secrets",
                    c.secrets
                        .iter()
                        .flatten()
                        .map(|s| (s.name.clone(), Value::str(s.value_from.clone())))
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                ),
                ("essential", Value::Bool(c.essential.unwrap_or(true))),
            ])
        })
        .collect();
    object(vec![
        ("family", td.family.clone().into()),
        ("cpu", num(td.cpu.as_deref())),
        ("memory", num(td.memory.as_deref())),
        (
            "cpu_architecture",
            Value::str(
                td.runtime_platform
                    .as_ref()
                    .and_then(|r| r.cpu_architecture.as_ref())
                    .map(|a| a.as_str())
                    .unwrap_or("X86_64"),
            ),
        ),
        ("execution_role_arn", td.execution_role_arn.clone().into()),
        ("task_role_arn", td.task_role_arn.clone().into()),
        ("containers", Value::List(containers)),
    ])
}
