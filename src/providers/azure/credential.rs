//! Azure credentials through `azure_identity`, first configured source wins (DESIGN §7):
//!
//! 1. a service principal: `AZURE_CLIENT_ID` + `AZURE_TENANT_ID` (or `providers.azure.tenant_id`)
//!    with `AZURE_CLIENT_SECRET`, or with `AZURE_FEDERATED_TOKEN_FILE` (workload identity);
//! 2. GitHub Actions OIDC: `ACTIONS_ID_TOKEN_REQUEST_URL` + `ACTIONS_ID_TOKEN_REQUEST_TOKEN`
//!    (a job with `id-token: write`): GitHub's token, requested for `api://AzureADTokenExchange`,
//!    is the client assertion, so there is no secret at all;
//! 3. the Azure CLI, when `az` is on the PATH;
//! 4. managed identity (IMDS), only when nothing else is configured and
//!    `CONVERGE_AZURE_IMDS_DISABLED` is not set.
//!
//! A source that is configured and then rejected ends the chain with its own error (as
//! DefaultAzureCredential does); nothing configured is one error naming the chain.
//! `AZURE_AUTHORITY_HOST` is honoured by every source.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::auth::{AccessToken, TokenCredential};
use azure_core::error::{Error, ErrorKind};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, TokenCredentialOptions,
    VirtualMachineManagedIdentityCredential, WorkloadIdentityCredential,
};

use crate::providers::ProviderError;

/// The audience GitHub's OIDC token is requested for, as Microsoft Entra expects it.
const GITHUB_AUDIENCE: &str = "api://AzureADTokenExchange";

const CHAIN: &str = "the environment (AZURE_CLIENT_ID, AZURE_TENANT_ID with AZURE_CLIENT_SECRET or \
AZURE_FEDERATED_TOKEN_FILE), GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL and \
ACTIONS_ID_TOKEN_REQUEST_TOKEN, with AZURE_CLIENT_ID and AZURE_TENANT_ID), the Azure CLI (az on the \
PATH), managed identity";

fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

/// The first configured credential, or an error naming the chain that was tried.
pub fn from_environment(tenant: Option<&str>) -> Result<Arc<dyn TokenCredential>, ProviderError> {
    let options = TokenCredentialOptions::default();
    let authority = options
        .authority_host()
        .map_err(|e| ProviderError::Invalid(format!("AZURE_AUTHORITY_HOST is not a URL: {e}")))?;
    let tenant = tenant
        .map(str::to_string)
        .or_else(|| var("AZURE_TENANT_ID"));
    let client = var("AZURE_CLIENT_ID");
    if let (Some(tenant), Some(client)) = (&tenant, &client) {
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            return Ok(Arc::new(ClientSecretCredential::new(
                options.http_client(),
                authority,
                tenant.clone(),
                client.clone(),
                secret,
            )));
        }
        if let Some(file) = var("AZURE_FEDERATED_TOKEN_FILE") {
            let token = std::fs::read_to_string(&file).map_err(|e| {
                ProviderError::Invalid(format!("AZURE_FEDERATED_TOKEN_FILE {file}: {e}"))
            })?;
            return Ok(Arc::new(WorkloadIdentityCredential::new(
                options.http_client(),
                authority,
                tenant.clone(),
                client.clone(),
                token.trim().to_string(),
            )));
        }
        if let (Some(url), Some(request_token)) = (
            var("ACTIONS_ID_TOKEN_REQUEST_URL"),
            var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ) {
            return Ok(Arc::new(GitHubOidcCredential {
                options,
                authority,
                tenant: tenant.clone(),
                client: client.clone(),
                url,
                request_token,
                inner: tokio::sync::OnceCell::new(),
            }));
        }
    }
    if on_path("az") {
        return Ok(Arc::new(AzureCliCredential::new()));
    }
    if var("CONVERGE_AZURE_IMDS_DISABLED").is_none() {
        return Ok(Arc::new(VirtualMachineManagedIdentityCredential::new(
            options,
        )));
    }
    Err(ProviderError::Invalid(format!(
        "no Azure credential: tried {CHAIN} (disabled by CONVERGE_AZURE_IMDS_DISABLED)"
    )))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// GitHub's OIDC token exchanged for a Microsoft Entra token (no secret anywhere).
#[derive(Debug)]
struct GitHubOidcCredential {
    options: TokenCredentialOptions,
    authority: url::Url,
    tenant: String,
    client: String,
    url: String,
    request_token: String,
    inner: tokio::sync::OnceCell<WorkloadIdentityCredential>,
}

impl GitHubOidcCredential {
    async fn github_token(&self) -> azure_core::Result<String> {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}audience={GITHUB_AUDIENCE}", self.url);
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&self.request_token)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| {
                Error::full(
                    ErrorKind::Credential,
                    e,
                    "GitHub Actions OIDC token request failed",
                )
            })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        match body["value"].as_str() {
            Some(token) if status.is_success() => Ok(token.to_string()),
            _ => Err(Error::message(
                ErrorKind::Credential,
                format!(
                    "GitHub Actions OIDC token request answered {status}: does the job have `permissions: id-token: write`?"
                ),
            )),
        }
    }
}

#[async_trait]
impl TokenCredential for GitHubOidcCredential {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        let inner = self
            .inner
            .get_or_try_init(|| async {
                let assertion = self.github_token().await?;
                Ok::<_, Error>(WorkloadIdentityCredential::new(
                    self.options.http_client(),
                    self.authority.clone(),
                    self.tenant.clone(),
                    self.client.clone(),
                    assertion,
                ))
            })
            .await?;
        inner.get_token(scopes).await
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        match self.inner.get() {
            Some(inner) => inner.clear_cache().await,
            None => Ok(()),
        }
    }
}
