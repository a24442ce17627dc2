//! Price tables ([`prices`]: shipped, dated, refreshed by `prices update`) and the run rates
//! computed from them: Fargate for the rollout cost gate, every priced kind's monthly estimate
//! for plans ([`estimate`]).

pub mod anomaly;
pub mod budget;
pub mod estimate;
pub mod pricelist;
pub mod prices;

use crate::model::Value;

pub use estimate::{Estimate, PriceRow, PriceRows, estimate, price_rows};
pub use prices::{FargatePrice, PriceTable};

/// Hours in a month, as AWS bills them.
pub const HOURS_PER_MONTH: f64 = 730.0;

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
        let price = PriceTable::shipped().fargate("us-east-1").unwrap();
        let task = Value::from_json(&serde_json::json!({"cpu": 1024, "memory": 2048}));
        // 2 tasks × (1 vCPU × 0.04048 + 2 GB × 0.004445) × 730 h = 2 × 0.04937 × 730 = 72.0802
        let monthly = fargate_monthly(&price, &task, 2.0);
        assert!((monthly - 72.0802).abs() < 1e-6, "{monthly}");
    }
}
