//! ECS clusters: DescribeClusters 100 at a time, create, Container Insights, delete.

use super::*;

impl Ecs {
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
        super::super::retag(self, arn, prior, p).await?;
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
}

pub(super) fn insights(p: &Value) -> ClusterSetting {
    let on = p.get("container_insights").as_bool().unwrap_or(false);
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

pub(super) fn cluster_live(c: &Cluster) -> Live {
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
