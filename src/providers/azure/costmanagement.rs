//! Cost Management reads for `cost watch`: the subscription's daily actual cost of one
//! environment, grouped by the `converge:address` tag (query API, `nextLink` pages followed).

use chrono::NaiveDate;
use serde_json::{Value as Json, json};

use super::AzureProvider;
use crate::config::{ADDRESS_TAG, ENVIRONMENT_TAG};
use crate::cost::anomaly::CostData;
use crate::providers::ProviderError;

/// api-version of Microsoft.CostManagement.
pub const COST_MANAGEMENT_API: &str = "2023-03-01";

/// The query body: daily actual cost, grouped by the address tag, filtered to `environment`.
pub fn query_body(environment: &str, start: NaiveDate, end: NaiveDate) -> Json {
    let last = end.pred_opt().unwrap_or(end);
    json!({
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {
            "from": format!("{start}T00:00:00Z"),
            "to": format!("{last}T23:59:59Z"),
        },
        "dataset": {
            "granularity": "Daily",
            "aggregation": { "totalCost": { "name": "Cost", "function": "Sum" } },
            "grouping": [ { "type": "TagKey", "name": ADDRESS_TAG } ],
            "filter": {
                "tags": { "name": ENVIRONMENT_TAG, "operator": "In", "values": [environment] }
            }
        }
    })
}

/// Adds one result page's rows to `data`, finding the columns by name.
pub fn add_rows(data: &mut CostData, page: &Json) -> Result<(), ProviderError> {
    let props = &page["properties"];
    let columns: Vec<&str> = props["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let find = |names: &[&str]| columns.iter().position(|c| names.contains(c));
    let (Some(cost), Some(date)) = (
        find(&["Cost", "PreTaxCost", "CostUSD"]),
        find(&["UsageDate"]),
    ) else {
        return Err(ProviderError::Invalid(format!(
            "Cost Management query: unexpected columns {columns:?}"
        )));
    };
    let tag_value = find(&["TagValue"]);
    for row in props["rows"].as_array().into_iter().flatten() {
        let Some(day) = row[date]
            .as_i64()
            .map(|d| d.to_string())
            .or_else(|| row[date].as_str().map(str::to_string))
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y%m%d").ok())
        else {
            continue;
        };
        let address = tag_value.and_then(|i| row[i].as_str()).unwrap_or("");
        if let Some(usd) = row[cost].as_f64() {
            data.add(address, day, usd);
        }
    }
    Ok(())
}

impl AzureProvider {
    /// Daily cost per address of `environment` in the subscription, `start` to `end` (exclusive).
    pub async fn daily_cost(
        &self,
        environment: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<CostData, ProviderError> {
        let body = query_body(environment, start, end);
        let arm = self.arm()?;
        let mut page = arm
            .post(
                &format!(
                    "/subscriptions/{}/providers/Microsoft.CostManagement/query?api-version={COST_MANAGEMENT_API}",
                    self.subscription
                ),
                &body,
            )
            .await?;
        let mut data = CostData::default();
        loop {
            add_rows(&mut data, &page)?;
            match page["properties"]["nextLink"]
                .as_str()
                .filter(|l| !l.is_empty())
            {
                Some(link) => page = arm.post_link(link, &body).await?,
                None => return Ok(data),
            }
        }
    }
}
