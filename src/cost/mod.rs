//! Prices converge ships with, dated, and the run rates computed from them: Fargate for the
//! rollout cost gate, and every priced kind's monthly estimate for plans ([`estimate`]).

pub mod estimate;

use crate::model::Value;

pub use estimate::{Estimate, estimate};

/// When the shipped prices were taken from the AWS price list.
pub const FARGATE_PRICES_AS_OF: &str = "2026-11-01";

/// Hours in a month, as AWS bills them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Fargate on-demand Linux prices of a region: per vCPU-hour and per GB-hour, x86 and ARM64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FargatePrice {
    /// x86_64 per vCPU-hour.
    pub vcpu_hour: f64,
    /// x86_64 per GB-hour.
    pub gb_hour: f64,
    /// ARM64 (Graviton) per vCPU-hour.
    pub arm_vcpu_hour: f64,
    /// ARM64 (Graviton) per GB-hour.
    pub arm_gb_hour: f64,
}

const FARGATE: &[(&str, FargatePrice)] = &[
    (
        "us-east-1",
        FargatePrice {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
            arm_vcpu_hour: 0.03238,
            arm_gb_hour: 0.00356,
        },
    ),
    (
        "us-east-2",
        FargatePrice {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
            arm_vcpu_hour: 0.03238,
            arm_gb_hour: 0.00356,
        },
    ),
    (
        "us-west-2",
        FargatePrice {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
            arm_vcpu_hour: 0.03238,
            arm_gb_hour: 0.00356,
        },
    ),
    (
        "eu-west-1",
        FargatePrice {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
            arm_vcpu_hour: 0.03238,
            arm_gb_hour: 0.00356,
        },
    ),
    (
        "eu-central-1",
        FargatePrice {
            vcpu_hour: 0.04656,
            gb_hour: 0.00511,
            arm_vcpu_hour: 0.03725,
            arm_gb_hour: 0.00409,
        },
    ),
];

/// The Fargate prices of a region, if converge ships them.
pub fn fargate_price(region: &str) -> Option<FargatePrice> {
    FARGATE.iter().find(|(r, _)| *r == region).map(|(_, p)| *p)
}

/// Monthly run rate in USD of `count` tasks of `task` (an `aws.ecs_service` task: cpu units,
/// memory MiB, optional `cpu_architecture`).
pub fn fargate_monthly(price: &FargatePrice, task: &Value, count: f64) -> f64 {
    let vcpu = task.get("cpu").as_f64().unwrap_or(256.0) / 1024.0;
    let gb = task.get("memory").as_f64().unwrap_or(512.0) / 1024.0;
    let arm = task.get("cpu_architecture").as_str() == Some("ARM64");
    let (per_vcpu, per_gb) = if arm {
        (price.arm_vcpu_hour, price.arm_gb_hour)
    } else {
        (price.vcpu_hour, price.gb_hour)
    };
    count * (vcpu * per_vcpu + gb * per_gb) * HOURS_PER_MONTH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_run_rate_matches_a_hand_computed_figure() {
        let price = fargate_price("us-east-1").unwrap();
        let task = Value::from_json(&serde_json::json!({"cpu": 1024, "memory": 2048}));
        // 2 tasks × (1 vCPU × 0.04048 + 2 GB × 0.004445) × 730 h = 2 × 0.04937 × 730 = 72.0802
        let monthly = fargate_monthly(&price, &task, 2.0);
        assert!((monthly - 72.0802).abs() < 1e-6, "{monthly}");
        assert!(fargate_price("mars-north-1").is_none());
    }
}
