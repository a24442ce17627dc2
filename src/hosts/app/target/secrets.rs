//! What a host app's containers are given and what is masked in what they print: secrets
//! (from variables and Secrets Manager), the environment, and registry logins (ECR tokens
//! minted under a pull-only session).

use super::*;

/// What to mask in whatever an app's containers print: its sensitive values from the files and
/// the Secrets Manager values it uses (read now: `converge logs` and a resumed rollout need
/// them before anything else reads them).
pub async fn masker_for(
    app: &AppSpec,
    desired: &Value,
    registry: &crate::providers::Registry,
) -> Result<Masker, ProviderError> {
    let mut masker = Masker::new(desired.sensitive_texts());
    for s in app.secret_values() {
        masker.add(&s);
    }
    for c in app.services.values().chain(app.accessories.values()) {
        for source in c.secret_sources() {
            if let SecretSource::SecretsManager { arn, version } = source {
                let aws = registry
                    .aws()
                    .ok_or_else(|| ProviderError::NotConfigured("aws".into()))?;
                masker.add(&aws.secrets().value(arn, version.as_deref()).await?);
            }
        }
    }
    Ok(masker)
}

impl HostTarget<'_> {
    /// Reads every Secrets Manager value the app uses, for masking, before anything runs (a
    /// resumed rollout may never read them again itself).
    pub async fn learn_secrets(&self) -> Result<(), TargetError> {
        for c in self
            .app
            .services
            .values()
            .chain(self.app.accessories.values())
        {
            for source in c.secret_sources() {
                self.secret_value(source).await?;
            }
        }
        Ok(())
    }

    /// The masker of what containers print: the app's sensitive values and every Secrets
    /// Manager value it uses (read first if this run has not yet, as after a resume: a
    /// container may print a secret the run never had to read itself).
    pub(super) async fn masker(&self) -> Masker {
        if !self.learned.load(std::sync::atomic::Ordering::Relaxed) {
            match self.learn_secrets().await {
                Ok(()) => self
                    .learned
                    .store(true, std::sync::atomic::Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!("cannot read the app's Secrets Manager values to mask them: {e}")
                }
            }
        }
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A secret's value: as the files give it, or read from Secrets Manager now (the version
    /// converge pinned) and added to what is masked.
    pub(super) async fn secret_value(&self, source: &SecretSource) -> Result<Secret, TargetError> {
        match source {
            SecretSource::Value(v) => Ok(v.clone()),
            SecretSource::SecretsManager { arn, version } => {
                let aws = self.aws.ok_or_else(|| {
                    TargetError::Unsupported(format!(
                        "a secret names the Secrets Manager secret {arn}, and the environment has no `providers.aws`"
                    ))
                })?;
                let value = aws
                    .secrets()
                    .value(arn, version.as_deref())
                    .await
                    .map_err(call)?;
                self.secrets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(&value);
                Ok(Secret::new(value))
            }
        }
    }

    /// `c`'s environment as Docker takes it (`NAME=value`, secrets resolved): data in the
    /// Engine API body, never a shell's input.
    pub(super) async fn env_of(&self, c: &Container) -> Result<Vec<String>, TargetError> {
        let mut out: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, source) in &c.secrets {
            let value = self.secret_value(source).await?;
            out.push(format!("{k}={}", value.expose()));
        }
        Ok(out)
    }

    /// ECR's docker login for this pull: a token minted under the app's `role_arn` with a
    /// session policy allowing only pulls from the app's repositories (valid 12 hours; given to
    /// the host over stdin and gone with its throw-away DOCKER_CONFIG).
    pub(super) async fn ecr_login(&self, role_arn: &str) -> Result<(String, Secret), TargetError> {
        let aws = self.aws.ok_or_else(|| {
            TargetError::Unsupported(
                "registry.auth.ecr needs `providers.aws` in the environment".into(),
            )
        })?;
        let repositories: Vec<String> = self
            .images()
            .iter()
            .map(|i| i.repository().to_string())
            .collect();
        let (user, password) = aws
            .ecr_pull()
            .token(role_arn, &repositories)
            .await
            .map_err(call)?;
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(password.expose());
        Ok((user, password))
    }

    /// Every image the app runs, once each.
    pub(super) fn images(&self) -> Vec<ImageRef> {
        let mut images: Vec<ImageRef> = self
            .app
            .services
            .values()
            .chain(self.app.accessories.values())
            .map(|c| c.image.clone())
            .collect();
        images.sort();
        images.dedup();
        images
    }
}
