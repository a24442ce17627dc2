//! Monthly cost of one resource from its properties and the shipped price tables (DESIGN §8):
//! priced, free, usage-based (a unit price), or unknown (said so, never $0).

use serde::{Deserialize, Serialize};

use super::{HOURS_PER_MONTH, PriceTable, fargate_monthly};
use crate::model::Value;
use crate::model::schema::PriceRule;

/// What a resource costs a month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimate {
    /// A figure in USD per month.
    Monthly {
        /// USD per month.
        usd: f64,
    },
    /// Nothing (IAM roles, resource groups, networks, role assignments...).
    Free,
    /// Billed by usage: the unit price, no total.
    UsageBased {
        /// e.g. `$0.10 per GB-month stored`.
        unit: String,
    },
    /// No price known: why.
    Unknown {
        /// e.g. `no Fargate price for region mars-1`.
        reason: String,
    },
}

impl Estimate {
    /// The figure, when there is one (free counts as 0).
    pub fn usd(&self) -> Option<f64> {
        match self {
            Estimate::Monthly { usd } => Some(*usd),
            Estimate::Free => Some(0.0),
            _ => None,
        }
    }
}

fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).reveal().as_str().unwrap_or("")
}

fn unknown(reason: String) -> Estimate {
    Estimate::Unknown { reason }
}

/// The monthly cost of a resource priced by `rule` with properties `p`, in AWS `region` (Azure
/// kinds use their `location`), from `prices`; `usage` is the resource's `usage:` block (figures
/// for usage-based prices, e.g. `storage_gb`), `Null` when it has none.
pub fn estimate(
    rule: PriceRule,
    p: &Value,
    region: &str,
    prices: &PriceTable,
    usage: &Value,
) -> Estimate {
    let aws = prices.aws_region(region);
    match rule {
        PriceRule::Free => Estimate::Free,
        PriceRule::Unlisted(note) => unknown(note.into()),
        PriceRule::FargateTasks => match prices.fargate(region) {
            Some(price) => {
                let count = p.get("desired_count").as_f64();
                let task = p.get("task");
                match (count, task.get("cpu").as_f64(), task.get("memory").as_f64()) {
                    (Some(count), Some(_), Some(_)) => Estimate::Monthly {
                        usd: fargate_monthly(&price, task, count),
                    },
                    _ => unknown("task size or count known only after apply".into()),
                }
            }
            None => unknown(format!("no Fargate price for region {region}")),
        },
        PriceRule::EcrStorage => match aws.and_then(|r| r.ecr_gb_month) {
            Some(per_gb) => match usage.get("storage_gb").as_f64() {
                Some(gb) => Estimate::Monthly { usd: gb * per_gb },
                None => Estimate::UsageBased {
                    unit: format!("${per_gb:.2} per GB-month stored"),
                },
            },
            None => unknown(format!("no ECR storage price for region {region}")),
        },
        PriceRule::LoadBalancerHour => match aws.and_then(|r| r.alb_hour) {
            Some(hour) => Estimate::Monthly {
                usd: hour * HOURS_PER_MONTH,
            },
            None => unknown(format!("no load balancer price for region {region}")),
        },
        PriceRule::Ec2Instance => {
            let size = text(p, "instance_type");
            match aws.and_then(|r| r.ec2_hour.get(size)) {
                Some(hour) => Estimate::Monthly {
                    usd: hour * HOURS_PER_MONTH,
                },
                None => unknown(format!("no EC2 price for {size} in {region}")),
            }
        }
        PriceRule::AcrSku => {
            let (sku, location) = (text(p, "sku"), text(p, "location"));
            match prices
                .azure_region(location)
                .and_then(|r| r.acr_day.get(sku))
            {
                Some(day) => Estimate::Monthly {
                    usd: day * HOURS_PER_MONTH / 24.0,
                },
                None => unknown(format!("no price for ACR SKU `{sku}` in {location}")),
            }
        }
        PriceRule::AzureVmSize => {
            let (size, location) = (text(p, "size"), text(p, "location"));
            let hour = prices.azure_region(location).and_then(|r| {
                r.vm_hour
                    .iter()
                    .find(|(s, _)| s.eq_ignore_ascii_case(size))
                    .map(|(_, h)| *h)
            });
            match hour {
                Some(hour) => Estimate::Monthly {
                    usd: hour * HOURS_PER_MONTH,
                },
                None => unknown(format!("no price for VM size {size} in {location}")),
            }
        }
    }
}

/// One line of a price table as `prices show` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceRow {
    /// AWS region or Azure region code.
    pub region: String,
    /// What is priced (`Fargate x86_64 vCPU`, an instance type, a SKU...).
    pub item: String,
    /// The price in USD.
    pub usd: f64,
    /// Per what (`per vCPU-hour`...).
    pub unit: &'static str,
}

/// The prices behind a rule, in the regions `wanted` keeps (AWS region names; Azure region
/// codes). `None` for free kinds.
pub fn price_rows(
    rule: PriceRule,
    table: &PriceTable,
    wanted: &dyn Fn(&str) -> bool,
) -> Option<PriceRows> {
    let mut rows = Vec::new();
    let mut row = |region: &str, item: &str, usd: f64, unit| {
        rows.push(PriceRow {
            region: region.to_string(),
            item: item.to_string(),
            usd,
            unit,
        })
    };
    let aws = || table.aws.regions.iter().filter(|(r, _)| wanted(r));
    let azure = || table.azure.regions.iter().filter(|(r, _)| wanted(r));
    match rule {
        PriceRule::Free | PriceRule::Unlisted(_) => return None,
        PriceRule::FargateTasks => {
            for (r, p) in aws() {
                if let Some(f) = p.fargate {
                    row(r, "Fargate x86_64 vCPU", f.vcpu_hour, "per vCPU-hour");
                    row(r, "Fargate x86_64 memory", f.gb_hour, "per GB-hour");
                    row(r, "Fargate ARM64 vCPU", f.arm_vcpu_hour, "per vCPU-hour");
                    row(r, "Fargate ARM64 memory", f.arm_gb_hour, "per GB-hour");
                }
            }
        }
        PriceRule::LoadBalancerHour => {
            for (r, p) in aws() {
                if let Some(h) = p.alb_hour {
                    row(r, "Application Load Balancer", h, "per hour (LCUs extra)");
                }
            }
        }
        PriceRule::EcrStorage => {
            for (r, p) in aws() {
                if let Some(gb) = p.ecr_gb_month {
                    row(r, "storage", gb, "per GB-month");
                }
            }
        }
        PriceRule::Ec2Instance => {
            for (r, p) in aws() {
                for (size, h) in &p.ec2_hour {
                    row(r, size, *h, "per hour (Linux, on demand)");
                }
            }
        }
        PriceRule::AcrSku => {
            for (r, p) in azure() {
                for (sku, d) in &p.acr_day {
                    row(r, sku, *d, "per day");
                }
            }
        }
        PriceRule::AzureVmSize => {
            for (r, p) in azure() {
                for (size, h) in &p.vm_hour {
                    row(r, size, *h, "per hour (Linux, pay-as-you-go)");
                }
            }
        }
    }
    let (as_of, source) = match rule {
        PriceRule::AcrSku | PriceRule::AzureVmSize => (&table.azure.as_of, &table.azure.source),
        _ => (&table.aws.as_of, &table.aws.source),
    };
    Some(PriceRows {
        as_of: as_of.clone(),
        source: source.clone(),
        rows,
    })
}

/// What `price_rows` found: the table's date and origin, and the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRows {
    /// The date the table's prices are from.
    pub as_of: String,
    /// Where the table came from (an API, or shipped).
    pub source: String,
    /// The prices.
    pub rows: Vec<PriceRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(j: serde_json::Value) -> Value {
        Value::from_json(&j)
    }

    #[test]
    fn hand_computed_figures() {
        // Fargate x86, us-east-1: 2 × (0.5 vCPU × 0.04048 + 1 GB × 0.004445) × 730 = 36.0401
        let x86 = estimate(
            PriceRule::FargateTasks,
            &props(serde_json::json!({"desired_count": 2, "task": {"cpu": 512, "memory": 1024}})),
            "us-east-1",
            PriceTable::shipped(),
            &Value::Null,
        );
        assert!((x86.usd().unwrap() - 36.0401).abs() < 1e-4, "{x86:?}");
        // Fargate ARM64: 2 × (0.5 × 0.03238 + 1 × 0.00356) × 730 = 2 × 0.01975 × 730 = 28.835
        let arm = estimate(
            PriceRule::FargateTasks,
            &props(
                serde_json::json!({"desired_count": 2, "task": {"cpu": 512, "memory": 1024, "cpu_architecture": "ARM64"}}),
            ),
            "us-east-1",
            PriceTable::shipped(),
            &Value::Null,
        );
        assert!((arm.usd().unwrap() - 28.835).abs() < 1e-4, "{arm:?}");
        // ACR Standard: 0.6666 × 730 / 24 = 20.27575
        let acr = estimate(
            PriceRule::AcrSku,
            &props(serde_json::json!({"sku": "Standard", "location": "westeurope"})),
            "",
            PriceTable::shipped(),
            &Value::Null,
        );
        assert!((acr.usd().unwrap() - 20.27575).abs() < 1e-4, "{acr:?}");
        // Azure B2s in westeurope: 0.0456 × 730 = 33.288
        let vm = estimate(
            PriceRule::AzureVmSize,
            &props(serde_json::json!({"size": "Standard_B2s", "location": "West Europe"})),
            "",
            PriceTable::shipped(),
            &Value::Null,
        );
        assert!((vm.usd().unwrap() - 33.288).abs() < 1e-4, "{vm:?}");
    }

    #[test]
    fn unknown_and_usage_based_are_never_zero() {
        assert!(matches!(
            estimate(
                PriceRule::FargateTasks,
                &props(
                    serde_json::json!({"desired_count": 1, "task": {"cpu": 256, "memory": 512}})
                ),
                "mars-1",
                PriceTable::shipped(),
                &Value::Null,
            ),
            Estimate::Unknown { .. }
        ));
        assert_eq!(
            estimate(
                PriceRule::EcrStorage,
                &Value::Null,
                "us-east-1",
                PriceTable::shipped(),
                &Value::Null
            )
            .usd(),
            None
        );
        assert_eq!(
            estimate(
                PriceRule::Free,
                &Value::Null,
                "us-east-1",
                PriceTable::shipped(),
                &Value::Null
            )
            .usd(),
            Some(0.0)
        );
        assert!(matches!(
            estimate(
                PriceRule::AzureVmSize,
                &props(serde_json::json!({"size": "Standard_M416ms_v2", "location": "westeurope"})),
                "",
                PriceTable::shipped(),
                &Value::Null,
            ),
            Estimate::Unknown { .. }
        ));
        // With `usage: { storage_gb: 50 }` ECR has a figure: 50 × $0.10.
        let ecr = estimate(
            PriceRule::EcrStorage,
            &Value::Null,
            "us-east-1",
            PriceTable::shipped(),
            &props(serde_json::json!({"storage_gb": 50})),
        );
        assert!((ecr.usd().unwrap() - 5.0).abs() < 1e-9, "{ecr:?}");
    }
}
