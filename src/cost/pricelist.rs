//! Reads the clouds' published price data into price table entries: AWS Price List bulk offer
//! files (one per service and region) and Azure Retail Prices API pages. Pure parsing; the
//! fetching is `providers::pricing`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::prices::{AwsRegionPrices, AzureRegionPrices, FargatePrice};

/// The AWS offers converge reads, by offer code.
pub const AWS_OFFERS: &[&str] = &["AmazonECS", "AWSELB", "AmazonECR", "AmazonEC2"];

/// Price data that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceListError {
    /// Not valid JSON, or not the expected shape (a truncated download ends up here).
    #[error("{source_name}: line {line}, column {column}: {message}")]
    Malformed {
        /// The URL or file it came from.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Parsed, but a price converge needs is not in it.
    #[error("{source_name}: {message}")]
    Missing {
        /// The URL or file it came from.
        source_name: String,
        /// What is missing.
        message: String,
    },
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], source_name: &str) -> Result<T, PriceListError> {
    serde_json::from_slice(bytes).map_err(|e| PriceListError::Malformed {
        source_name: source_name.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// The top index of the AWS Price List bulk API (`/offers/v1.0/aws/index.json`).
#[derive(Debug, Deserialize)]
pub struct OfferIndex {
    /// Offers by code.
    pub offers: BTreeMap<String, OfferRef>,
}

/// One offer of the index.
#[derive(Debug, Deserialize)]
pub struct OfferRef {
    /// Path of the offer's region index, e.g. `/offers/v1.0/aws/AmazonECS/current/region_index.json`.
    #[serde(rename = "currentRegionIndexUrl")]
    pub current_region_index_url: String,
}

/// An offer's region index.
#[derive(Debug, Deserialize)]
pub struct RegionIndex {
    /// Regions by code.
    pub regions: BTreeMap<String, RegionRef>,
}

/// One region of a region index.
#[derive(Debug, Deserialize)]
pub struct RegionRef {
    /// Path of the region's offer file.
    #[serde(rename = "currentVersionUrl")]
    pub current_version_url: String,
}

/// Parses the top offer index.
pub fn offer_index(bytes: &[u8], source_name: &str) -> Result<OfferIndex, PriceListError> {
    parse(bytes, source_name)
}

/// Parses an offer's region index.
pub fn region_index(bytes: &[u8], source_name: &str) -> Result<RegionIndex, PriceListError> {
    parse(bytes, source_name)
}

#[derive(Debug, Deserialize)]
struct OfferFile {
    #[serde(rename = "offerCode")]
    offer_code: String,
    #[serde(rename = "publicationDate", default)]
    publication_date: Option<String>,
    products: BTreeMap<String, Product>,
    terms: Terms,
}

#[derive(Debug, Deserialize)]
struct Product {
    #[serde(rename = "productFamily", default)]
    product_family: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
}

impl Product {
    fn attr(&self, key: &str) -> &str {
        self.attributes
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }
}

#[derive(Debug, Deserialize)]
struct Terms {
    #[serde(rename = "OnDemand", default)]
    on_demand: BTreeMap<String, BTreeMap<String, Term>>,
}

#[derive(Debug, Deserialize)]
struct Term {
    #[serde(rename = "priceDimensions")]
    price_dimensions: BTreeMap<String, Dimension>,
}

#[derive(Debug, Deserialize)]
struct Dimension {
    #[serde(rename = "pricePerUnit")]
    price_per_unit: BTreeMap<String, String>,
    #[serde(rename = "beginRange", default)]
    begin_range: Option<String>,
}

impl OfferFile {
    /// The on-demand USD price of a SKU's first tier.
    fn on_demand_usd(&self, sku: &str) -> Option<f64> {
        self.terms
            .on_demand
            .get(sku)?
            .values()
            .flat_map(|t| t.price_dimensions.values())
            .filter(|d| d.begin_range.as_deref().is_none_or(|b| b == "0"))
            .find_map(|d| d.price_per_unit.get("USD")?.parse().ok())
    }

    /// Products with their on-demand price, in `region` when they name one.
    fn priced<'a>(&'a self, region: &'a str) -> impl Iterator<Item = (&'a Product, f64)> + 'a {
        self.products.iter().filter_map(move |(sku, p)| {
            let code = p.attr("regionCode");
            if !code.is_empty() && code != region {
                return None;
            }
            Some((p, self.on_demand_usd(sku)?))
        })
    }
}

/// True when `usagetype` is `name` with at most a region prefix (`USE1-name`): not a Spot,
/// Windows or other variant that merely ends the same way.
fn usage_is(usagetype: &str, name: &str) -> bool {
    usagetype == name
        || usagetype
            .strip_suffix(name)
            .and_then(|p| p.strip_suffix('-'))
            .is_some_and(|prefix| !prefix.is_empty() && !prefix.contains('-'))
}

/// The prices an AWS offer file gives for `region`, checked for the ones converge needs;
/// returns them with the file's publication date.
pub fn aws_offer(
    bytes: &[u8],
    source_name: &str,
    region: &str,
) -> Result<(AwsRegionPrices, Option<String>), PriceListError> {
    let offer: OfferFile = parse(bytes, source_name)?;
    let missing = |what: &str| PriceListError::Missing {
        source_name: source_name.to_string(),
        message: format!(
            "no {what} for {region} in offer {} (a partial file, or the format changed)",
            offer.offer_code
        ),
    };
    let mut out = AwsRegionPrices::default();
    match offer.offer_code.as_str() {
        "AmazonECS" => {
            let find = |name: &str| {
                offer
                    .priced(region)
                    .find(|(p, _)| usage_is(p.attr("usagetype"), name))
                    .map(|(_, usd)| usd)
            };
            let price = FargatePrice {
                vcpu_hour: find("Fargate-vCPU-Hours:perCPU")
                    .ok_or_else(|| missing("Fargate vCPU-hour price"))?,
                gb_hour: find("Fargate-GB-Hours")
                    .ok_or_else(|| missing("Fargate GB-hour price"))?,
                arm_vcpu_hour: find("Fargate-ARM-vCPU-Hours:perCPU")
                    .ok_or_else(|| missing("Fargate ARM vCPU-hour price"))?,
                arm_gb_hour: find("Fargate-ARM-GB-Hours")
                    .ok_or_else(|| missing("Fargate ARM GB-hour price"))?,
            };
            out.fargate = Some(price);
        }
        "AWSELB" => {
            out.alb_hour = offer
                .priced(region)
                .find(|(p, _)| {
                    p.product_family.as_deref() == Some("Load Balancer-Application")
                        && usage_is(p.attr("usagetype"), "LoadBalancerUsage")
                })
                .map(|(_, usd)| usd);
            out.alb_hour
                .ok_or_else(|| missing("Application Load Balancer hourly price"))?;
        }
        "AmazonECR" => {
            out.ecr_gb_month = offer
                .priced(region)
                .find(|(p, _)| usage_is(p.attr("usagetype"), "TimedStorage-ByteHrs"))
                .map(|(_, usd)| usd);
            out.ecr_gb_month
                .ok_or_else(|| missing("ECR storage price"))?;
        }
        "AmazonEC2" => {
            for (p, usd) in offer.priced(region) {
                let linux_on_demand = p.product_family.as_deref() == Some("Compute Instance")
                    && p.attr("operatingSystem") == "Linux"
                    && p.attr("tenancy") == "Shared"
                    && p.attr("preInstalledSw") == "NA"
                    && matches!(p.attr("capacitystatus"), "Used" | "")
                    && p.attr("usagetype").contains("BoxUsage");
                if linux_on_demand && usd > 0.0 {
                    out.ec2_hour.insert(p.attr("instanceType").to_string(), usd);
                }
            }
            if out.ec2_hour.is_empty() {
                return Err(missing("EC2 Linux on-demand price"));
            }
        }
        other => {
            return Err(PriceListError::Missing {
                source_name: source_name.to_string(),
                message: format!("offer {other} is not one converge reads"),
            });
        }
    }
    let date = offer.publication_date.map(|d| d.chars().take(10).collect());
    Ok((out, date))
}

/// One page of the Azure Retail Prices API.
#[derive(Debug, Deserialize)]
pub struct RetailPage {
    /// The prices on this page.
    #[serde(rename = "Items")]
    pub items: Vec<RetailItem>,
    /// The next page, absent on the last.
    #[serde(rename = "NextPageLink", default)]
    pub next_page_link: Option<String>,
}

/// One meter's retail price.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetailItem {
    /// `USD`.
    pub currency_code: String,
    /// The retail price per unit.
    pub retail_price: f64,
    /// e.g. `westeurope`.
    pub arm_region_name: String,
    /// e.g. `Standard_B2s` (empty for some meters).
    #[serde(default)]
    pub arm_sku_name: String,
    /// e.g. `B2s` or `B2s Spot`.
    pub sku_name: String,
    /// e.g. `Virtual Machines BS Series` or `... Windows`.
    pub product_name: String,
    /// e.g. `Virtual Machines`, `Container Registry`.
    pub service_name: String,
    /// e.g. `Standard Registry Unit`.
    pub meter_name: String,
    /// `Consumption`, `Reservation`, `DevTestConsumption`.
    #[serde(rename = "type")]
    pub price_type: String,
    /// `1 Hour`, `1/Day`.
    pub unit_of_measure: String,
    /// When the price took effect.
    pub effective_start_date: String,
}

/// Parses one page of the Retail Prices API.
pub fn retail_page(bytes: &[u8], source_name: &str) -> Result<RetailPage, PriceListError> {
    parse(bytes, source_name)
}

/// Adds the prices converge uses from retail items to `regions` (Linux pay-as-you-go VMs per
/// hour, ACR per day by SKU); the newest effective price wins.
pub fn add_retail_items(regions: &mut BTreeMap<String, AzureRegionPrices>, items: &[RetailItem]) {
    let mut newest: BTreeMap<(String, bool, String), (&str, f64)> = BTreeMap::new();
    for item in items {
        if item.currency_code != "USD" || item.price_type != "Consumption" {
            continue;
        }
        let key = if item.service_name == "Virtual Machines"
            && item.unit_of_measure == "1 Hour"
            && !item.product_name.contains("Windows")
            && !item.product_name.contains("Cloud Services")
            && !item.sku_name.contains("Spot")
            && !item.sku_name.contains("Low Priority")
            && !item.arm_sku_name.is_empty()
        {
            (
                item.arm_region_name.clone(),
                true,
                item.arm_sku_name.clone(),
            )
        } else if item.service_name == "Container Registry" && item.unit_of_measure == "1/Day" {
            match item.meter_name.strip_suffix(" Registry Unit") {
                Some(sku @ ("Basic" | "Standard" | "Premium")) => {
                    (item.arm_region_name.clone(), false, sku.to_string())
                }
                _ => continue,
            }
        } else {
            continue;
        };
        let entry = newest
            .entry(key)
            .or_insert((&item.effective_start_date, item.retail_price));
        if item.effective_start_date.as_str() > entry.0 {
            *entry = (&item.effective_start_date, item.retail_price);
        }
    }
    for ((region, vm, name), (_, price)) in newest {
        let r = regions.entry(region).or_default();
        if vm {
            r.vm_hour.insert(name, price);
        } else {
            r.acr_day.insert(name, price);
        }
    }
}

/// Checks that each of `wanted` got VM and ACR prices.
pub fn check_azure_regions(
    regions: &BTreeMap<String, AzureRegionPrices>,
    wanted: &[String],
    source_name: &str,
) -> Result<(), PriceListError> {
    for region in wanted {
        let r = regions.get(region);
        let missing = |what: &str| PriceListError::Missing {
            source_name: source_name.to_string(),
            message: format!("no {what} for {region} (a partial answer, or the format changed)"),
        };
        if r.is_none_or(|r| r.vm_hour.is_empty()) {
            return Err(missing("Linux VM prices"));
        }
        for sku in ["Basic", "Standard", "Premium"] {
            if r.is_none_or(|r| !r.acr_day.contains_key(sku)) {
                return Err(missing(&format!("Container Registry {sku} price")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs_offer(with_arm: bool) -> String {
        let mut products = serde_json::json!({
            "A": {"sku": "A", "productFamily": "Compute", "attributes": {"regionCode": "us-east-1", "usagetype": "USE1-Fargate-vCPU-Hours:perCPU"}},
            "B": {"sku": "B", "productFamily": "Compute", "attributes": {"regionCode": "us-east-1", "usagetype": "USE1-Fargate-GB-Hours"}},
            "S": {"sku": "S", "productFamily": "Compute", "attributes": {"regionCode": "us-east-1", "usagetype": "USE1-SpotUsage-Fargate-vCPU-Hours:perCPU"}},
        });
        if with_arm {
            products["C"] = serde_json::json!({"sku": "C", "attributes": {"regionCode": "us-east-1", "usagetype": "USE1-Fargate-ARM-vCPU-Hours:perCPU"}});
            products["D"] = serde_json::json!({"sku": "D", "attributes": {"regionCode": "us-east-1", "usagetype": "USE1-Fargate-ARM-GB-Hours"}});
        }
        let term = |usd: &str| serde_json::json!({"T": {"priceDimensions": {"R": {"unit": "hours", "beginRange": "0", "pricePerUnit": {"USD": usd}}}}});
        serde_json::json!({
            "offerCode": "AmazonECS",
            "publicationDate": "2026-11-20T17:03:11Z",
            "products": products,
            "terms": {"OnDemand": {"A": term("0.0405"), "B": term("0.0045"), "S": term("0.0122"), "C": term("0.0324"), "D": term("0.0036")}}
        })
        .to_string()
    }

    #[test]
    fn fargate_prices_come_from_the_exact_usage_types() {
        let (prices, date) =
            aws_offer(ecs_offer(true).as_bytes(), "ecs.json", "us-east-1").unwrap();
        let f = prices.fargate.unwrap();
        assert_eq!(
            (f.vcpu_hour, f.gb_hour, f.arm_vcpu_hour, f.arm_gb_hour),
            (0.0405, 0.0045, 0.0324, 0.0036)
        );
        assert_eq!(date.as_deref(), Some("2026-11-20"));
    }

    #[test]
    fn a_partial_or_truncated_offer_is_an_error() {
        let err = aws_offer(ecs_offer(false).as_bytes(), "ecs.json", "us-east-1").unwrap_err();
        assert!(
            err.to_string()
                .contains("no Fargate ARM vCPU-hour price for us-east-1"),
            "{err}"
        );
        let full = ecs_offer(true);
        let err =
            aws_offer(&full.as_bytes()[..full.len() / 2], "ecs.json", "us-east-1").unwrap_err();
        assert!(matches!(err, PriceListError::Malformed { .. }), "{err}");
        assert!(
            err.to_string().starts_with("ecs.json: line 1, column"),
            "{err}"
        );
    }

    #[test]
    fn retail_items_keep_linux_pay_as_you_go_and_acr_units() {
        let page: RetailPage = serde_json::from_value(serde_json::json!({
            "Items": [
                {"currencyCode": "USD", "retailPrice": 0.0456, "armRegionName": "westeurope", "armSkuName": "Standard_B2s", "skuName": "B2s", "productName": "Virtual Machines BS Series", "serviceName": "Virtual Machines", "meterName": "B2s", "type": "Consumption", "unitOfMeasure": "1 Hour", "effectiveStartDate": "2020-01-01T00:00:00Z"},
                {"currencyCode": "USD", "retailPrice": 0.0496, "armRegionName": "westeurope", "armSkuName": "Standard_B2s", "skuName": "B2s", "productName": "Virtual Machines BS Series Windows", "serviceName": "Virtual Machines", "meterName": "B2s", "type": "Consumption", "unitOfMeasure": "1 Hour", "effectiveStartDate": "2020-01-01T00:00:00Z"},
                {"currencyCode": "USD", "retailPrice": 0.0091, "armRegionName": "westeurope", "armSkuName": "Standard_B2s", "skuName": "B2s Spot", "productName": "Virtual Machines BS Series", "serviceName": "Virtual Machines", "meterName": "B2s Spot", "type": "Consumption", "unitOfMeasure": "1 Hour", "effectiveStartDate": "2020-01-01T00:00:00Z"},
                {"currencyCode": "USD", "retailPrice": 0.6666, "armRegionName": "westeurope", "armSkuName": "", "skuName": "Standard", "productName": "Container Registry", "serviceName": "Container Registry", "meterName": "Standard Registry Unit", "type": "Consumption", "unitOfMeasure": "1/Day", "effectiveStartDate": "2017-01-01T00:00:00Z"}
            ],
            "NextPageLink": null
        }))
        .unwrap();
        let mut regions = BTreeMap::new();
        add_retail_items(&mut regions, &page.items);
        let we = &regions["westeurope"];
        assert_eq!(we.vm_hour["Standard_B2s"], 0.0456);
        assert_eq!(we.acr_day["Standard"], 0.6666);
        let err = check_azure_regions(&regions, &["westeurope".into()], "azure").unwrap_err();
        assert!(
            err.to_string().contains("Container Registry Basic price"),
            "{err}"
        );
    }
}
