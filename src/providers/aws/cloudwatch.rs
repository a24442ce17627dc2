//! CloudWatch reads the rollout gates make: alarm states and ALB metrics of a target group.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};

use super::api_error;
use crate::providers::ProviderError;

/// The CloudWatch client and the reads rollouts need.
pub struct CloudWatch {
    client: Client,
}

/// An alarm's name and whether it is in ALARM (`None` when it does not exist).
pub type AlarmState = (String, Option<bool>);

impl CloudWatch {
    /// Builds the client from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> CloudWatch {
        CloudWatch {
            client: super::clients::client!(shared, aws_sdk_cloudwatch),
        }
    }

    /// The SDK client (for `aws.cloudwatch_alarm`).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The state of each named alarm (100 names per DescribeAlarms call).
    pub async fn alarms(&self, names: &[String]) -> Result<Vec<AlarmState>, ProviderError> {
        let mut found = std::collections::BTreeMap::new();
        for chunk in names.chunks(100) {
            let out = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| api_error("cloudwatch:DescribeAlarms", e))?;
            for alarm in out.metric_alarms.unwrap_or_default() {
                found.insert(
                    alarm.alarm_name.unwrap_or_default(),
                    alarm.state_value == Some(StateValue::Alarm),
                );
            }
            for alarm in out.composite_alarms.unwrap_or_default() {
                found.insert(
                    alarm.alarm_name.unwrap_or_default(),
                    alarm.state_value == Some(StateValue::Alarm),
                );
            }
        }
        Ok(names
            .iter()
            .map(|n| (n.clone(), found.get(n).copied()))
            .collect())
    }

    /// One statistic of an `AWS/ApplicationELB` metric for a target group over the last
    /// `window`, per 60 s period; `None` when there are no datapoints. Sums add up; other
    /// statistics take the latest datapoint.
    pub async fn elb_metric(
        &self,
        metric: &str,
        stat: &str,
        load_balancer: &str,
        target_group: &str,
        window: Duration,
        since: Option<SystemTime>,
    ) -> Result<Option<f64>, ProviderError> {
        let now = SystemTime::now();
        let start = (now - window.max(Duration::from_secs(60))).max(since.unwrap_or(UNIX_EPOCH));
        let query = MetricDataQuery::builder()
            .id("m")
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/ApplicationELB")
                            .metric_name(metric)
                            .dimensions(
                                Dimension::builder()
                                    .name("LoadBalancer")
                                    .value(load_balancer)
                                    .build(),
                            )
                            .dimensions(
                                Dimension::builder()
                                    .name("TargetGroup")
                                    .value(target_group)
                                    .build(),
                            )
                            .build(),
                    )
                    .period(60)
                    .stat(stat)
                    .build(),
            )
            .return_data(true)
            .build();
        let out = self
            .client
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(now + Duration::from_secs(60)))
            .send()
            .await
            .map_err(|e| api_error("cloudwatch:GetMetricData", e))?;
        let values: Vec<f64> = out
            .metric_data_results
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.values.unwrap_or_default())
            .collect();
        if values.is_empty() {
            return Ok(None);
        }
        Ok(Some(if stat == "Sum" {
            values.iter().sum()
        } else {
            values[0]
        }))
    }
}

#[async_trait::async_trait]
impl super::Tagging for CloudWatch {
    async fn tag(
        &self,
        arn: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| {
                        aws_sdk_cloudwatch::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| api_error("cloudwatch:TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| api_error("cloudwatch:UntagResource", e))?;
        Ok(())
    }
}
