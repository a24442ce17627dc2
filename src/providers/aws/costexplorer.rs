//! Cost Explorer reads for `cost watch`: daily unblended cost of one environment, grouped by the
//! `converge:address` tag, every page followed.

use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity, GroupDefinition, GroupDefinitionType, TagValues,
};
use chrono::NaiveDate;

use super::api_error;
use crate::config::{ADDRESS_TAG, ENVIRONMENT_TAG};
use crate::cost::anomaly::CostData;
use crate::providers::ProviderError;

/// The Cost Explorer client.
pub struct CostExplorer {
    client: Client,
}

impl CostExplorer {
    /// Builds the client from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> CostExplorer {
        CostExplorer {
            client: super::clients::client!(shared, aws_sdk_costexplorer),
        }
    }

    /// Daily cost per address of `environment` from `start` to `end` (exclusive).
    pub async fn daily_cost(
        &self,
        environment: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<CostData, ProviderError> {
        let mut data = CostData::default();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_cost_and_usage()
                .time_period(
                    DateInterval::builder()
                        .start(start.to_string())
                        .end(end.to_string())
                        .build()
                        .map_err(|e| api_error_text(e.to_string()))?,
                )
                .granularity(Granularity::Daily)
                .metrics("UnblendedCost")
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Tag)
                        .key(ADDRESS_TAG)
                        .build(),
                )
                .filter(
                    Expression::builder()
                        .tags(
                            TagValues::builder()
                                .key(ENVIRONMENT_TAG)
                                .values(environment)
                                .build(),
                        )
                        .build(),
                )
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| api_error("ce:GetCostAndUsage", e))?;
            for period in out.results_by_time() {
                let Some(day) = period
                    .time_period()
                    .and_then(|p| p.start().parse::<NaiveDate>().ok())
                else {
                    continue;
                };
                data.days_present.insert(day);
                if period.estimated() {
                    data.days_estimated.insert(day);
                }
                for group in period.groups() {
                    // Keys are `converge:address$api.service`; `converge:address$` is untagged cost.
                    let key = group.keys().first().map(String::as_str).unwrap_or("");
                    let address = key
                        .strip_prefix(ADDRESS_TAG)
                        .and_then(|k| k.strip_prefix('$'))
                        .unwrap_or(key);
                    let usd = group
                        .metrics()
                        .and_then(|m| m.get("UnblendedCost"))
                        .and_then(|m| m.amount())
                        .and_then(|a| a.parse::<f64>().ok());
                    if let Some(usd) = usd {
                        data.add(address, day, usd);
                    }
                }
            }
            token = out.next_page_token().map(str::to_string);
            if token.is_none() {
                return Ok(data);
            }
        }
    }
}

fn api_error_text(message: String) -> ProviderError {
    ProviderError::Api {
        operation: "ce:GetCostAndUsage".into(),
        message,
    }
}
