//! Monthly cost of one resource from its properties and the shipped price tables (DESIGN §8):
//! priced, free, usage-based (a unit price), or unknown (said so, never $0).

use serde::{Deserialize, Serialize};

use super::{HOURS_PER_MONTH, fargate_monthly, fargate_price};
use crate::model::Value;

/// When the shipped Azure prices were taken from the Azure Retail Prices API.
pub const AZURE_PRICES_AS_OF: &str = "2026-11-01";

/// Application Load Balancer per hour (us-east-1 and the other shipped regions), LCUs extra.
const ALB_HOUR: f64 = 0.0225;

/// ACR per day, by SKU.
const ACR_DAY: &[(&str, f64)] = &[("Basic", 0.1666), ("Standard", 0.6666), ("Premium", 1.6666)];

/// Azure Linux pay-as-you-go per hour, by region and size.
const AZURE_VM_HOUR: &[(&str, &str, f64)] = &[
    ("westeurope", "Standard_B1s", 0.0114),
    ("westeurope", "Standard_B2s", 0.0456),
    ("westeurope", "Standard_D2s_v3", 0.115),
    ("eastus", "Standard_B1s", 0.0104),
    ("eastus", "Standard_B2s", 0.0416),
    ("eastus", "Standard_D2s_v3", 0.096),
];

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

/// The monthly cost of a resource of `kind` with properties `p`, in AWS `region`.
pub fn estimate(kind: &str, p: &Value, region: &str) -> Estimate {
    match kind {
        "aws.ecs_service" => match fargate_price(region) {
            Some(price) => {
                let count = p.get("desired_count").as_f64();
                let task = p.get("task");
                match (count, task.get("cpu").as_f64(), task.get("memory").as_f64()) {
                    (Some(count), Some(_), Some(_)) => Estimate::Monthly {
                        usd: fargate_monthly(&price, task, count),
                    },
                    _ => Estimate::Unknown {
                        reason: "task size or count known only after apply".into(),
                    },
                }
            }
            None => Estimate::Unknown {
                reason: format!("no Fargate price for region {region}"),
            },
        },
        "aws.ecr_repository" => Estimate::UsageBased {
            unit: "$0.10 per GB-month stored".into(),
        },
        "aws.lb" => Estimate::Monthly {
            usd: ALB_HOUR * HOURS_PER_MONTH,
        },
        "aws.ecs_cluster" | "aws.iam_role" | "aws.lb_target_group" | "aws.lb_listener" => {
            Estimate::Free
        }
        "azure.container_registry" => match ACR_DAY.iter().find(|(s, _)| *s == text(p, "sku")) {
            Some((_, day)) => Estimate::Monthly {
                usd: day * HOURS_PER_MONTH / 24.0,
            },
            None => Estimate::Unknown {
                reason: format!("no price for ACR SKU `{}`", text(p, "sku")),
            },
        },
        "azure.virtual_machine" => {
            let location = text(p, "location").to_ascii_lowercase().replace(' ', "");
            let size = text(p, "size");
            match AZURE_VM_HOUR
                .iter()
                .find(|(l, s, _)| *l == location && s.eq_ignore_ascii_case(size))
            {
                Some((_, _, hour)) => Estimate::Monthly {
                    usd: hour * HOURS_PER_MONTH,
                },
                None => Estimate::Unknown {
                    reason: format!("no price for VM size {size} in {location}"),
                },
            }
        }
        "azure.resource_group" | "azure.virtual_network" | "azure.service_principal" => {
            Estimate::Free
        }
        other => Estimate::Unknown {
            reason: format!("converge has no prices for {other}"),
        },
    }
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
            "aws.ecs_service",
            &props(serde_json::json!({"desired_count": 2, "task": {"cpu": 512, "memory": 1024}})),
            "us-east-1",
        );
        assert!((x86.usd().unwrap() - 36.0401).abs() < 1e-4, "{x86:?}");
        // Fargate ARM64: 2 × (0.5 × 0.03238 + 1 × 0.00356) × 730 = 2 × 0.01975 × 730 = 28.835
        let arm = estimate(
            "aws.ecs_service",
            &props(
                serde_json::json!({"desired_count": 2, "task": {"cpu": 512, "memory": 1024, "cpu_architecture": "ARM64"}}),
            ),
            "us-east-1",
        );
        assert!((arm.usd().unwrap() - 28.835).abs() < 1e-4, "{arm:?}");
        // ACR Standard: 0.6666 × 730 / 24 = 20.27575
        let acr = estimate(
            "azure.container_registry",
            &props(serde_json::json!({"sku": "Standard"})),
            "",
        );
        assert!((acr.usd().unwrap() - 20.27575).abs() < 1e-4, "{acr:?}");
        // Azure B2s in westeurope: 0.0456 × 730 = 33.288
        let vm = estimate(
            "azure.virtual_machine",
            &props(serde_json::json!({"size": "Standard_B2s", "location": "West Europe"})),
            "",
        );
        assert!((vm.usd().unwrap() - 33.288).abs() < 1e-4, "{vm:?}");
    }

    #[test]
    fn unknown_and_usage_based_are_never_zero() {
        assert!(matches!(
            estimate(
                "aws.ecs_service",
                &props(
                    serde_json::json!({"desired_count": 1, "task": {"cpu": 256, "memory": 512}})
                ),
                "mars-1"
            ),
            Estimate::Unknown { .. }
        ));
        assert_eq!(
            estimate("aws.ecr_repository", &Value::Null, "us-east-1").usd(),
            None
        );
        assert_eq!(
            estimate("aws.iam_role", &Value::Null, "us-east-1").usd(),
            Some(0.0)
        );
        assert!(matches!(
            estimate(
                "azure.virtual_machine",
                &props(serde_json::json!({"size": "Standard_M416ms_v2", "location": "westeurope"})),
                ""
            ),
            Estimate::Unknown { .. }
        ));
    }
}
