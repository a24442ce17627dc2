//! Fetches public price data: the AWS Price List bulk API (offer index → region index →
//! regional offer files) and the Azure Retail Prices API (pages followed by `NextPageLink`).
//! Neither needs credentials. Parsing is `cost::pricelist`.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use crate::cost::pricelist::{self, AWS_OFFERS, PriceListError};
use crate::cost::prices::{AwsRegionPrices, AzureRegionPrices};

/// The AWS Price List bulk API.
pub const AWS_PRICING_URL: &str = "https://pricing.us-east-1.amazonaws.com";
/// The Azure Retail Prices API.
pub const AZURE_PRICES_URL: &str = "https://prices.azure.com/api/retail/prices";
/// The Retail Prices API version asked for.
const AZURE_PRICES_API_VERSION: &str = "2023-01-01-preview";
/// More pages than any query converge makes needs: a loop guard.
const MAX_PAGES: usize = 2000;
/// Downloads at once.
const PARALLEL_DOWNLOADS: usize = 4;

/// Where price data comes from.
#[derive(Debug, Clone)]
pub struct PriceSources {
    /// Base URL of the AWS Price List bulk API.
    pub aws: String,
    /// URL of the Azure Retail Prices API.
    pub azure: String,
}

impl PriceSources {
    /// The public endpoints, or `CONVERGE_AWS_PRICING_URL` / `CONVERGE_AZURE_PRICES_URL`.
    pub fn from_env() -> PriceSources {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        PriceSources {
            aws: var("CONVERGE_AWS_PRICING_URL", AWS_PRICING_URL)
                .trim_end_matches('/')
                .to_string(),
            azure: var("CONVERGE_AZURE_PRICES_URL", AZURE_PRICES_URL),
        }
    }
}

/// Fetching prices failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The request did not complete.
    #[error("GET {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The server answered with an error status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The data could not be used.
    #[error(transparent)]
    List(#[from] PriceListError),
    /// A region index does not list a region converge was asked for.
    #[error("{offer} has no prices for region {region} ({url})")]
    NoRegion {
        /// The offer.
        offer: String,
        /// The region.
        region: String,
        /// The region index read.
        url: String,
    },
    /// A next-page link points somewhere else than the API asked.
    #[error("refusing to follow NextPageLink {link}: it leaves {base}")]
    ForeignLink {
        /// The link.
        link: String,
        /// The API asked.
        base: String,
    },
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, PricingError> {
    let http = |e: reqwest::Error| PricingError::Http {
        url: url.to_string(),
        message: e.to_string(),
    };
    let response = client.get(url).send().await.map_err(http)?;
    if !response.status().is_success() {
        return Err(PricingError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    response.bytes().await.map(|b| b.to_vec()).map_err(http)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("converge/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .expect("an HTTP client with default TLS settings builds")
}

/// AWS prices for `regions` from every offer converge reads, merged per region, with the
/// newest publication date among the files.
pub async fn fetch_aws(
    sources: &PriceSources,
    regions: &[String],
) -> Result<(BTreeMap<String, AwsRegionPrices>, Option<String>), PricingError> {
    let client = client();
    let index_url = format!("{}/offers/v1.0/aws/index.json", sources.aws);
    let index = pricelist::offer_index(&get(&client, &index_url).await?, &index_url)?;
    let mut files = Vec::new();
    for offer in AWS_OFFERS {
        let Some(reference) = index.offers.get(*offer) else {
            return Err(PriceListError::Missing {
                source_name: index_url.clone(),
                message: format!("offer {offer} is not in the index"),
            }
            .into());
        };
        let url = format!("{}{}", sources.aws, reference.current_region_index_url);
        let region_index = pricelist::region_index(&get(&client, &url).await?, &url)?;
        for region in regions {
            let Some(r) = region_index.regions.get(region) else {
                return Err(PricingError::NoRegion {
                    offer: offer.to_string(),
                    region: region.clone(),
                    url,
                });
            };
            files.push((
                region.clone(),
                format!("{}{}", sources.aws, r.current_version_url),
            ));
        }
    }
    let parsed: Vec<(String, AwsRegionPrices, Option<String>)> = futures::stream::iter(files)
        .map(|(region, url)| {
            let client = client.clone();
            async move {
                let bytes = get(&client, &url).await?;
                let (prices, date) = pricelist::aws_offer(&bytes, &url, &region)?;
                Ok::<_, PricingError>((region, prices, date))
            }
        })
        .buffer_unordered(PARALLEL_DOWNLOADS)
        .try_collect()
        .await?;
    let mut out: BTreeMap<String, AwsRegionPrices> = BTreeMap::new();
    let mut newest: Option<String> = None;
    for (region, prices, date) in parsed {
        let entry = out.entry(region).or_default();
        entry.fargate = entry.fargate.or(prices.fargate);
        entry.alb_hour = entry.alb_hour.or(prices.alb_hour);
        entry.ecr_gb_month = entry.ecr_gb_month.or(prices.ecr_gb_month);
        entry.ec2_hour.extend(prices.ec2_hour);
        newest = newest.max(date);
    }
    Ok((out, newest))
}

/// Azure prices for `regions`: Linux pay-as-you-go VM sizes and ACR SKUs, every page read.
/// Returns them with the number of pages read.
pub async fn fetch_azure(
    sources: &PriceSources,
    regions: &[String],
) -> Result<(BTreeMap<String, AzureRegionPrices>, usize), PricingError> {
    let client = client();
    let base = reqwest::Url::parse(&sources.azure).map_err(|e| PricingError::Http {
        url: sources.azure.clone(),
        message: e.to_string(),
    })?;
    let mut items = Vec::new();
    let mut pages = 0;
    for region in regions {
        for service in ["Virtual Machines", "Container Registry"] {
            let mut url = base.clone();
            url.query_pairs_mut()
                .append_pair("api-version", AZURE_PRICES_API_VERSION)
                .append_pair(
                    "$filter",
                    &format!(
                        "serviceName eq '{service}' and armRegionName eq '{region}' and priceType eq 'Consumption'"
                    ),
                );
            let mut next = Some(url.to_string());
            while let Some(page_url) = next.take() {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(PriceListError::Missing {
                        source_name: sources.azure.clone(),
                        message: format!("more than {MAX_PAGES} pages: stopped"),
                    }
                    .into());
                }
                let page = pricelist::retail_page(&get(&client, &page_url).await?, &page_url)?;
                items.extend(page.items);
                if let Some(link) = page.next_page_link.filter(|l| !l.is_empty()) {
                    let same_origin = reqwest::Url::parse(&link)
                        .is_ok_and(|l| l.origin() == base.origin() && l.path() == base.path());
                    if !same_origin {
                        return Err(PricingError::ForeignLink {
                            link,
                            base: sources.azure.clone(),
                        });
                    }
                    next = Some(link);
                }
            }
        }
    }
    // All pages first: an older price on a later page must not win over a newer one.
    let mut out = BTreeMap::new();
    pricelist::add_retail_items(&mut out, &items);
    pricelist::check_azure_regions(&out, regions, &sources.azure)?;
    Ok((out, pages))
}
