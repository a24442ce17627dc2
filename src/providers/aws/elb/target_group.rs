//! `aws.lb_target_group` on ELBv2: reading target groups in batches and what converge sees of one.

use super::*;

impl Elb {
    pub(super) async fn describe_tgs(
        &self,
        arns: &[String],
    ) -> Result<BTreeMap<String, Live>, ProviderError> {
        let out = self
            .client
            .describe_target_groups()
            .set_target_group_arns(Some(arns.to_vec()))
            .send()
            .await;
        let tgs = match out {
            Ok(o) => o.target_groups.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                return Err(ProviderError::NotFound("target group".into()));
            }
            Err(e) => return Err(api_error("elbv2:DescribeTargetGroups", e)),
        };
        Ok(tgs
            .into_iter()
            .filter_map(|tg| Some((tg.target_group_arn.clone()?, tg_live(&tg))))
            .collect())
    }
}

/// A target group's properties and outputs (`arn`, `arn_suffix`).
pub(super) fn tg_live(tg: &TargetGroup) -> Live {
    let arn = tg.target_group_arn.clone().unwrap_or_default();
    let properties = object(vec![
        (
            "name",
            Value::str(tg.target_group_name.clone().unwrap_or_default()),
        ),
        ("port", Value::int(i64::from(tg.port.unwrap_or_default()))),
        (
            "protocol",
            Value::str(tg.protocol.as_ref().map(|p| p.as_str()).unwrap_or("HTTP")),
        ),
        ("vpc_id", Value::str(tg.vpc_id.clone().unwrap_or_default())),
        (
            "target_type",
            Value::str(tg.target_type.as_ref().map(|t| t.as_str()).unwrap_or("ip")),
        ),
        (
            "health_check_path",
            Value::str(tg.health_check_path.clone().unwrap_or_else(|| "/".into())),
        ),
    ]);
    let outputs = object(vec![
        ("arn", Value::str(&arn)),
        ("arn_suffix", Value::str(arn_suffix(&arn))),
    ]);
    Live {
        properties,
        outputs,
    }
}
