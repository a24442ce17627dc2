//! `aws.lb` on ELBv2: reading load balancers in batches and what converge sees of one.

use super::*;

impl Elb {
    pub(super) async fn describe_lbs(
        &self,
        arns: &[String],
    ) -> Result<BTreeMap<String, Live>, ProviderError> {
        let out = self
            .client
            .describe_load_balancers()
            .set_load_balancer_arns(Some(arns.to_vec()))
            .send()
            .await;
        let lbs = match out {
            Ok(o) => o.load_balancers.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
            {
                return Err(ProviderError::NotFound("load balancer".into()));
            }
            Err(e) => return Err(api_error("elbv2:DescribeLoadBalancers", e)),
        };
        Ok(lbs
            .into_iter()
            .filter_map(|lb| Some((lb.load_balancer_arn.clone()?, lb_live(&lb))))
            .collect())
    }
}

/// A load balancer's properties and outputs (`arn`, `dns_name`, `arn_suffix`).
pub(super) fn lb_live(lb: &LoadBalancer) -> Live {
    let arn = lb.load_balancer_arn.clone().unwrap_or_default();
    let mut subnets: Vec<Value> = lb
        .availability_zones
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|z| z.subnet_id.clone().map(Value::str))
        .collect();
    subnets.sort_by_key(|v| v.as_str().map(str::to_string));
    let properties = object(vec![
        (
            "name",
            Value::str(lb.load_balancer_name.clone().unwrap_or_default()),
        ),
        ("subnets", Value::List(subnets)),
        (
            "security_groups",
            Value::List(
                lb.security_groups
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(Value::str)
                    .collect(),
            ),
        ),
        (
            "internal",
            Value::Bool(lb.scheme.as_ref() == Some(&LoadBalancerSchemeEnum::Internal)),
        ),
    ]);
    let outputs = object(vec![
        ("arn", Value::str(&arn)),
        (
            "dns_name",
            Value::str(lb.dns_name.clone().unwrap_or_default()),
        ),
        ("arn_suffix", Value::str(arn_suffix(&arn))),
    ]);
    Live {
        properties,
        outputs,
    }
}
