//! `aws.lb_listener` on ELBv2: reading listeners, and the forward weights rollouts move
//! (with the new target group's health).

use super::*;

impl Elb {
    pub(super) async fn describe_listeners(
        &self,
        arns: &[String],
    ) -> Result<BTreeMap<String, Live>, ProviderError> {
        let out = self
            .client
            .describe_listeners()
            .set_listener_arns(Some(arns.to_vec()))
            .send()
            .await;
        let listeners = match out {
            Ok(o) => o.listeners.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_listener_not_found_exception()) =>
            {
                return Err(ProviderError::NotFound("listener".into()));
            }
            Err(e) => return Err(api_error("elbv2:DescribeListeners", e)),
        };
        Ok(listeners
            .into_iter()
            .filter_map(|l| Some((l.listener_arn.clone()?, listener_live(&l))))
            .collect())
    }

    /// The listener's forward weights, by target group ARN.
    pub async fn weights(&self, listener_arn: &str) -> Result<Vec<(String, i32)>, ProviderError> {
        let listener = self
            .client
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| api_error("elbv2:DescribeListeners", e))?
            .listeners
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::NotFound(format!("listener {listener_arn}")))?;
        Ok(forward_weights(&listener))
    }

    /// DescribeTargetHealth: each registered target of the group, `ID:PORT` with its state
    /// (`healthy`, `initial`, `unhealthy`, `draining`…) and reason.
    pub async fn target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| api_error("elbv2:DescribeTargetHealth", e))?;
        Ok(out
            .target_health_descriptions
            .unwrap_or_default()
            .iter()
            .map(|d| {
                let target = d
                    .target
                    .as_ref()
                    .map(|t| {
                        format!(
                            "{}:{}",
                            t.id.as_deref().unwrap_or("?"),
                            t.port.unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                let health = d.target_health.as_ref();
                let mut state = health
                    .and_then(|h| h.state.as_ref())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into());
                if let Some(reason) = health.and_then(|h| h.reason.as_ref())
                    && state != "healthy"
                {
                    state = format!("{state} ({})", reason.as_str());
                }
                (target, state)
            })
            .collect())
    }

    /// The load balancer a listener belongs to.
    pub async fn listener_load_balancer(
        &self,
        listener_arn: &str,
    ) -> Result<String, ProviderError> {
        self.client
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| api_error("elbv2:DescribeListeners", e))?
            .listeners
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|l| l.load_balancer_arn)
            .ok_or_else(|| ProviderError::NotFound(format!("listener {listener_arn}")))
    }

    /// Sets the listener's default action to forward with these weights.
    pub async fn set_weights(
        &self,
        listener_arn: &str,
        weights: &[(String, i32)],
    ) -> Result<(), ProviderError> {
        self.client
            .modify_listener()
            .listener_arn(listener_arn)
            .default_actions(forward(weights))
            .send()
            .await
            .map_err(|e| api_error("elbv2:ModifyListener", e))?;
        Ok(())
    }
}

/// A forward action splitting traffic by `weights` (target group ARN, percent).
pub(super) fn forward(weights: &[(String, i32)]) -> Action {
    let groups = weights
        .iter()
        .map(|(arn, w)| {
            TargetGroupTuple::builder()
                .target_group_arn(arn)
                .weight(*w)
                .build()
        })
        .collect();
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .set_target_groups(Some(groups))
                .build(),
        )
        .build()
}

/// The forward weights of a listener's default action, by target group ARN.
pub(super) fn forward_weights(l: &Listener) -> Vec<(String, i32)> {
    let Some(action) = l.default_actions.as_ref().and_then(|a| a.first()) else {
        return Vec::new();
    };
    if let Some(groups) = action
        .forward_config
        .as_ref()
        .and_then(|f| f.target_groups.as_ref())
    {
        return groups
            .iter()
            .filter_map(|g| Some((g.target_group_arn.clone()?, g.weight.unwrap_or(1))))
            .collect();
    }
    action
        .target_group_arn
        .clone()
        .map(|a| vec![(a, 100)])
        .unwrap_or_default()
}

/// A listener's properties and outputs (`arn`).
pub(super) fn listener_live(l: &Listener) -> Live {
    let arn = l.listener_arn.clone().unwrap_or_default();
    let properties = object(vec![
        (
            "load_balancer_arn",
            Value::str(l.load_balancer_arn.clone().unwrap_or_default()),
        ),
        ("port", Value::int(i64::from(l.port.unwrap_or_default()))),
        (
            "protocol",
            Value::str(l.protocol.as_ref().map(|p| p.as_str()).unwrap_or("HTTP")),
        ),
        (
            "target_group_arns",
            Value::List(
                forward_weights(l)
                    .into_iter()
                    .map(|(a, _)| Value::str(a))
                    .collect(),
            ),
        ),
    ]);
    Live {
        properties,
        outputs: object(vec![("arn", Value::str(arn))]),
    }
}
