//! ECS services: DescribeServices 10 at a time with their task definitions, create (ECS
//! rolling deployment or the EXTERNAL controller for rollouts), update, delete.

use super::*;

impl Ecs {
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

    pub(super) async fn service_live(
        &self,
        item: &ReadItem,
        s: &Service,
    ) -> Result<Live, ProviderError> {
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
            // The rollout settings live only in the files: read back as last applied while the
            // service runs under the controller they pick (ECS's own for rolling or none).
            (
                "rollout",
                if external == rollout_traffic(&item.prior).is_some() {
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
        let service = self.create_rolling_service(address, p, &td_arn).await?;
        let arn = service.service_arn.clone().unwrap_or_default();
        Ok(Applied {
            remote_id: arn,
            outputs: service_outputs(&service),
        })
    }

    /// CreateService under ECS's own controller on the registered revision `td_arn`.
    pub(super) async fn create_rolling_service(
        &self,
        address: &Address,
        p: &Value,
        td_arn: &str,
    ) -> Result<Service, ProviderError> {
        let token = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{address}/{td_arn}").as_bytes(),
        );
        let mut call = self
            .client
            .create_service()
            .cluster(text(p, "cluster"))
            .service_name(text(p, "name"))
            .task_definition(td_arn)
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
        call.send()
            .await
            .map_err(|e| api_error("ecs:CreateService", e))?
            .service
            .ok_or_else(|| ProviderError::Invalid("CreateService returned nothing".into()))
    }

    /// A service under a rollout (EXTERNAL deployment controller): the service itself, then
    /// its first revision as a task set on the first target group at 100% scale, made primary,
    /// with the listener forwarding everything to that group.
    pub(super) async fn create_external_service(
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
            super::super::retag(self, arn, prior, p).await?;
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
        // The rollout block and tags are converge's own: a change of only those calls nothing.
        let settings_only = ["task", "network", "load_balancer", "desired_count"]
            .iter()
            .all(|k| prior.get(k).same_as(p.get(k)));
        let mut outputs = prior_outputs.clone();
        if !settings_only {
            let service = self.update_rolling_service(prior, p, &td_arn).await?;
            outputs = service_outputs(&service);
        }
        super::super::retag(self, arn, prior, p).await?;
        if let Value::Map(m) = &mut outputs {
            m.insert("task_definition_arn".into(), Value::str(td_arn));
        }
        Ok(Applied {
            remote_id: arn.to_string(),
            outputs,
        })
    }

    /// UpdateService of an ECS-controlled service onto the registered revision `td_arn`,
    /// with the count, network and (when changed) load balancer of `p`.
    pub(super) async fn update_rolling_service(
        &self,
        prior: &Value,
        p: &Value,
        td_arn: &str,
    ) -> Result<Service, ProviderError> {
        let mut call = self
            .client
            .update_service()
            .cluster(text(p, "cluster"))
            .service(text(p, "name"))
            .task_definition(td_arn)
            .desired_count(p.get("desired_count").as_i64().unwrap_or(1) as i32)
            .network_configuration(network_config(p.get("network"))?)
            .deployment_configuration(rolling());
        if !prior.get("load_balancer").same_as(p.get("load_balancer")) {
            call = call.set_load_balancers(Some(
                load_balancer(p.get("load_balancer")).into_iter().collect(),
            ));
        }
        call.send()
            .await
            .map_err(|e| api_error("ecs:UpdateService", e))?
            .service
            .ok_or_else(|| ProviderError::Invalid("UpdateService returned nothing".into()))
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
}

/// (cluster, service name) of a service from its ARN
/// (`arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`), `CLUSTER/NAME`, or prior properties.
pub(super) fn split_service_id(id: &str, prior: &Value) -> (String, String) {
    let tail = id.rsplit_once(":service/").map(|(_, t)| t).unwrap_or(id);
    match tail.split_once('/') {
        Some((cluster, name)) => (cluster.to_string(), name.to_string()),
        None => (text(prior, "cluster").to_string(), tail.to_string()),
    }
}

pub(super) fn rolling() -> DeploymentConfiguration {
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

pub(super) fn is_external(s: &Service) -> bool {
    s.deployment_controller
        .as_ref()
        .is_some_and(|d| d.r#type == DeploymentControllerType::External)
}

pub(super) fn primary_task_set(s: &Service) -> Option<&TaskSet> {
    s.task_sets
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|t| t.status.as_deref() == Some("PRIMARY"))
}

pub(super) fn service_outputs(s: &Service) -> Value {
    object(vec![
        ("arn", s.service_arn.clone().into()),
        ("task_definition_arn", s.task_definition.clone().into()),
    ])
}
