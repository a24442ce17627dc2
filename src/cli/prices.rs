//! `converge prices update|show`: refresh the project's price table from the clouds' public
//! price APIs, and print the prices estimates use for a kind.

use clap::Subcommand;

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::cost::PriceTable;
use crate::cost::prices::{PRICES_FILE, PriceOrigin, azure_region_code};
use crate::kinds;
use crate::providers::pricing::{self, PriceSources};

/// `prices` subcommands.
#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Fetch current prices (AWS Price List, Azure Retail Prices) into ROOT/prices.json.
    Update {
        /// Also fetch this region (AWS `eu-west-3` or Azure `swedencentral`); repeatable.
        /// The regions already in the table are always refreshed.
        #[arg(long = "region", value_name = "REGION")]
        regions: Vec<String>,
    },
    /// Print the prices used for KIND (e.g. aws.ecs_service).
    Show {
        /// The resource kind.
        kind: String,
        /// Only this region (AWS region code or Azure location).
        #[arg(long)]
        region: Option<String>,
    },
}

pub(super) async fn run(g: &GlobalArgs, command: &PricesCommand) -> Result<i32, CliError> {
    match command {
        PricesCommand::Update { regions } => update(g, regions).await,
        PricesCommand::Show { kind, region } => show(g, kind, region.as_deref()),
    }
}

async fn update(g: &GlobalArgs, extra: &[String]) -> Result<i32, CliError> {
    let (mut table, _) = PriceTable::for_project(&g.root)?;
    let mut aws_regions: Vec<String> = table.aws.regions.keys().cloned().collect();
    let mut azure_regions: Vec<String> = table.azure.regions.keys().cloned().collect();
    for r in extra {
        // AWS region codes have dashes (`eu-west-1`); Azure region names never do.
        let list = if r.contains('-') {
            &mut aws_regions
        } else {
            &mut azure_regions
        };
        let r = if r.contains('-') {
            r.clone()
        } else {
            azure_region_code(r)
        };
        if !list.contains(&r) {
            list.push(r);
        }
    }
    let sources = PriceSources::from_env();
    let failed = |what: &str, e: pricing::PricingError| {
        CliError::Failed(format!(
            "prices update: {what}: {e}\n{PRICES_FILE} was not changed; estimates keep using the previous prices"
        ))
    };
    let spinner = output::spinner("Fetching AWS prices");
    let (aws, aws_date) = pricing::fetch_aws(&sources, &aws_regions)
        .await
        .map_err(|e| failed("AWS Price List", e))?;
    spinner.set_message("Fetching Azure prices");
    let (azure, pages) = pricing::fetch_azure(&sources, &azure_regions)
        .await
        .map_err(|e| failed("Azure Retail Prices", e))?;
    spinner.finish_and_clear();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let before = table.clone();
    table.aws.regions.extend(aws);
    table.aws.as_of = aws_date.unwrap_or_else(|| today.clone());
    table.aws.source = format!("{}/offers/v1.0/aws (fetched {today})", sources.aws);
    table.azure.regions.extend(azure);
    table.azure.as_of = today.clone();
    table.azure.source = format!("{} (fetched {today}, {pages} pages)", sources.azure);
    let path = table.save(&g.root)?;
    let changed = changed_prices(&before, &table);
    if g.format == Format::Json {
        output::json(&serde_json::json!({
            "file": path,
            "aws": { "as_of": table.aws.as_of, "regions": aws_regions },
            "azure": { "as_of": table.azure.as_of, "regions": azure_regions, "pages": pages },
            "changed_prices": changed,
        }));
    } else {
        output::print(&format!(
            "Updated {}: AWS {} regions (published {}), Azure {} regions ({pages} pages read); {changed} prices changed.\n",
            path.display(),
            aws_regions.len(),
            table.aws.as_of,
            azure_regions.len(),
        ));
    }
    Ok(EXIT_OK)
}

/// How many individual prices differ between two tables (new ones count).
fn changed_prices(before: &PriceTable, after: &PriceTable) -> usize {
    let flat = |t: &PriceTable| -> std::collections::BTreeMap<String, f64> {
        let json = serde_json::to_value(t).unwrap_or_default();
        let mut out = std::collections::BTreeMap::new();
        flatten("", &json, &mut out);
        out
    };
    let (b, a) = (flat(before), flat(after));
    a.iter().filter(|(k, v)| b.get(*k) != Some(v)).count()
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut std::collections::BTreeMap<String, f64>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}/{k}"), v, out);
            }
        }
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.insert(prefix.to_string(), f);
            }
        }
        _ => {}
    }
}

fn show(g: &GlobalArgs, kind: &str, region: Option<&str>) -> Result<i32, CliError> {
    let Some(schema) = kinds::lookup(kind) else {
        let names: Vec<&str> = kinds::schemas().map(|k| k.kind).collect();
        return Err(CliError::Usage(format!(
            "unknown kind `{kind}`; kinds: {}",
            names.join(", ")
        )));
    };
    let (table, origin) = PriceTable::for_project(&g.root)?;
    let wanted = |r: &str| region.is_none_or(|w| w == r || azure_region_code(w) == r);
    let Some(found) = crate::cost::price_rows(schema.price, &table, &wanted) else {
        let text = format!("{kind} is free: converge prices it at $0.\n");
        if g.format == Format::Json {
            output::json(&serde_json::json!({ "kind": kind, "free": true, "prices": [] }));
        } else {
            output::print(&text);
        }
        return Ok(EXIT_OK);
    };
    let origin = match origin {
        PriceOrigin::Shipped => "shipped with converge".to_string(),
        PriceOrigin::File(p) => p.display().to_string(),
    };
    let rows = found.rows;
    if rows.is_empty() {
        return Err(CliError::Failed(format!(
            "no prices for {kind}{} in {origin}",
            region.map(|r| format!(" in {r}")).unwrap_or_default()
        )));
    }
    let (as_of, source) = (found.as_of, found.source);
    if g.format == Format::Json {
        output::json(&serde_json::json!({
            "kind": kind, "as_of": as_of, "source": source, "file": origin, "currency": "USD", "prices": rows,
        }));
        return Ok(EXIT_OK);
    }
    let mut text = format!("Prices for {kind} (USD, as of {as_of}; {origin}; from {source})\n");
    let width = rows.iter().map(|r| r.item.len()).max().unwrap_or(0);
    for r in &rows {
        text.push_str(&format!(
            "  {:<14} {:<width$}  ${:<10} {}\n",
            r.region,
            r.item,
            trim_price(r.usd),
            r.unit
        ));
    }
    output::print(&text);
    Ok(EXIT_OK)
}

/// `0.04048` stays `0.04048`; `0.1` becomes `0.10`.
fn trim_price(usd: f64) -> String {
    let s = format!("{usd:.6}");
    let s = s.trim_end_matches('0');
    match s.split_once('.') {
        Some((_, frac)) if frac.len() < 2 => format!("{usd:.2}"),
        _ => s.to_string(),
    }
}
