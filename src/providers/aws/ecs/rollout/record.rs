//! What an ECS rollout keeps in its record between steps: the task sets and target groups of
//! both revisions (the revisions themselves are the record's task definition ARNs), the
//! listener and its load balancer, and the service.

use serde::{Deserialize, Serialize};

use crate::rollout::record::TargetRecord;

/// One revision's place on ECS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsRevision {
    /// ECS task set id ("" until created; rolling: none).
    pub task_set: String,
    /// Target group ARN ("" for rolling).
    pub target_group: String,
    /// Rolling: the ECS deployment (`ecs-svc/…`) that carries it.
    pub deployment: String,
}

/// The ECS target's part of a rollout record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsRecord {
    /// Where the revision traffic leaves runs.
    pub old: EcsRevision,
    /// Where the revision that earns traffic runs.
    pub new: EcsRevision,
    /// The listener whose forward weights move.
    pub listener_arn: String,
    /// Its load balancer (CloudWatch dimension `app/NAME/ID`).
    pub load_balancer: String,
    /// The cluster's name.
    pub cluster: String,
    /// The ECS service's name.
    pub service: String,
    /// The service's ARN when the rollout created it (a rolling service's first deploy).
    pub service_arn: String,
}

impl TargetRecord for EcsRecord {
    const TAG: &'static str = "ecs";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Rollout;

    /// A version 2 record (ECS fields in the record itself) reads as this part, field by field.
    #[test]
    fn a_version_2_ecs_record_reads_as_the_ecs_part() {
        let body: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/records/v2-ecs-canary-killed-baking.json"
        ))
        .unwrap();
        let rec = Rollout::decode(&crate::model::Address::root("api"), &body).unwrap();
        let part = rec.details::<EcsRecord>().unwrap();
        for which in ["old", "new"] {
            let revision = if which == "old" { &part.old } else { &part.new };
            assert_eq!(revision.task_set, body[which]["task_set"], "{which}");
            assert_eq!(
                revision.target_group, body[which]["target_group"],
                "{which}"
            );
            assert_eq!(revision.deployment, "", "{which}");
        }
        assert_eq!(part.listener_arn, body["listener_arn"]);
        assert_eq!(part.load_balancer, "app/ro-alb/38a24313eff1259d");
        assert_eq!(
            (part.cluster.as_str(), part.service.as_str()),
            ("ro", "ro-api")
        );
        assert_eq!(part.service_arn, "");
    }
}
