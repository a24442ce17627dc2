//! Pull-only ECR tokens for hosts: converge assumes the role a host app names (STS AssumeRole)
//! with a session policy that allows nothing but pulls from the app's own repositories, and
//! asks ECR for a token with those session credentials. A token is as strong as the identity
//! that minted it, so the token a host receives can pull those repositories and do nothing
//! else, whatever converge's own credential may do.

use aws_sdk_sts::Client as Sts;

use super::api_error;
use crate::model::secret::Secret;
use crate::providers::ProviderError;

/// STS and what an ECR client under assumed credentials needs.
pub struct EcrPull {
    sts: Sts,
    sdk: aws_config::SdkConfig,
    region: String,
}

impl EcrPull {
    /// Builds the STS client from the shared SDK configuration.
    pub fn new(shared: &super::clients::Shared) -> EcrPull {
        EcrPull {
            sts: super::clients::client!(shared, aws_sdk_sts),
            sdk: shared.sdk.clone(),
            region: shared
                .sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
        }
    }

    /// A docker login (user, password) for `repositories` (image references without tags),
    /// minted under `role_arn` with a session policy allowing only pulls from them.
    pub async fn token(
        &self,
        role_arn: &str,
        repositories: &[String],
    ) -> Result<(String, Secret), ProviderError> {
        use base64::Engine;
        let policy = session_policy(repositories, &self.region);
        let assumed = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name("converge-host-pull")
            .duration_seconds(900)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|e| api_error("sts:AssumeRole", e))?;
        let creds = assumed.credentials().ok_or_else(|| {
            ProviderError::Invalid(format!("sts:AssumeRole of {role_arn} gave no credentials"))
        })?;
        let session = aws_sdk_ecr::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "converge-host-pull",
        );
        let ecr = aws_sdk_ecr::Client::from_conf(
            aws_sdk_ecr::config::Builder::from(&self.sdk)
                .credentials_provider(session)
                .build(),
        );
        let out = ecr
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| api_error("ecr:GetAuthorizationToken", e))?;
        let token = out
            .authorization_data()
            .first()
            .and_then(|d| d.authorization_token())
            .unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            ProviderError::Invalid("ecr:GetAuthorizationToken gave no usable token".into())
        })?;
        Ok((user.to_string(), Secret::new(password)))
    }
}

/// The repository ARN of an image repository reference: `ACCOUNT.dkr.ecr.REGION.amazonaws.com/
/// PATH` names its account and region; any other registry (a pull-through mirror) only the
/// path, in `region` of any account.
pub fn repository_arn(repository: &str, region: &str) -> String {
    let (registry, path) = repository.split_once('/').unwrap_or(("", repository));
    let labels: Vec<&str> = registry.split('.').collect();
    match labels.as_slice() {
        [account, "dkr", "ecr", region, rest @ ..]
            if account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) =>
        {
            let partition = if rest.last() == Some(&"cn") {
                "aws-cn"
            } else {
                "aws"
            };
            format!("arn:{partition}:ecr:{region}:{account}:repository/{path}")
        }
        _ => format!("arn:aws:ecr:{region}:*:repository/{path}"),
    }
}

/// The session policy: a token (GetAuthorizationToken takes no resource) and the three reads a
/// pull makes, on these repositories only.
pub fn session_policy(repositories: &[String], region: &str) -> serde_json::Value {
    let mut arns: Vec<String> = repositories
        .iter()
        .map(|r| repository_arn(r, region))
        .collect();
    arns.sort();
    arns.dedup();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "Token", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*" },
            {
                "Sid": "PullOnly",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": arns,
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_policy_allows_only_pulls_of_the_app_s_repositories() {
        let p = session_policy(
            &[
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/api".into(),
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/api".into(),
                "127.0.0.1:5000/mirror/web".into(),
            ],
            "us-east-1",
        );
        let text = p.to_string();
        assert!(
            !text.contains("ecr:*") && !text.contains("PutImage"),
            "{text}"
        );
        assert_eq!(
            p["Statement"][1]["Resource"],
            serde_json::json!([
                "arn:aws:ecr:eu-west-1:123456789012:repository/shop/api",
                "arn:aws:ecr:us-east-1:*:repository/mirror/web"
            ])
        );
        assert_eq!(p["Statement"][0]["Action"], "ecr:GetAuthorizationToken");
    }
}
