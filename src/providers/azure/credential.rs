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
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::ClientMethodOptions;
use azure_identity::{
    AzureCliCredential, ClientAssertion, ClientAssertionCredential, ClientSecretCredential,
    ManagedIdentityCredential, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
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

/// A credential that could not be built (an authority host that is not HTTPS, an empty id).
fn refused(source: &str, e: Error) -> ProviderError {
    ProviderError::Invalid(format!("Azure credential from {source}: {e}"))
}

/// The first configured credential, or an error naming the chain that was tried.
pub fn from_environment(tenant: Option<&str>) -> Result<Arc<dyn TokenCredential>, ProviderError> {
    let tenant = tenant
        .map(str::to_string)
        .or_else(|| var("AZURE_TENANT_ID"));
    let client = var("AZURE_CLIENT_ID");
    if let (Some(tenant), Some(client)) = (&tenant, &client) {
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            return ClientSecretCredential::new(tenant, client.clone(), Secret::new(secret), None)
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| refused("AZURE_CLIENT_SECRET", e));
        }
        if let Some(file) = var("AZURE_FEDERATED_TOKEN_FILE") {
            return WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                client_id: Some(client.clone()),
                tenant_id: Some(tenant.clone()),
                token_file_path: Some(file.into()),
                ..Default::default()
            }))
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| refused("AZURE_FEDERATED_TOKEN_FILE", e));
        }
        if let (Some(url), Some(request_token)) = (
            var("ACTIONS_ID_TOKEN_REQUEST_URL"),
            var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ) {
            return ClientAssertionCredential::new(
                tenant.clone(),
                client.clone(),
                GitHubOidc { url, request_token },
                None,
            )
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| refused("GitHub Actions OIDC", e));
        }
    }
    if on_path("az") {
        return AzureCliCredential::new(None)
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| refused("the Azure CLI", e));
    }
    if var("CONVERGE_AZURE_IMDS_DISABLED").is_none() {
        return ManagedIdentityCredential::new(None)
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| refused("managed identity", e));
    }
    Err(ProviderError::Invalid(format!(
        "no Azure credential: tried {CHAIN} (disabled by CONVERGE_AZURE_IMDS_DISABLED)"
    )))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// GitHub's OIDC token as the client assertion of a Microsoft Entra token request (no secret
/// anywhere): asked for on each token request, as azure_identity's assertion credentials do.
#[derive(Debug)]
struct GitHubOidc {
    url: String,
    request_token: String,
}

#[async_trait]
impl ClientAssertion for GitHubOidc {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}audience={GITHUB_AUDIENCE}", self.url);
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&self.request_token)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| {
                Error::with_error(
                    ErrorKind::Credential,
                    e,
                    "GitHub Actions OIDC token request failed",
                )
            })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        match body["value"].as_str() {
            Some(token) if status.is_success() => Ok(token.to_string()),
            _ => Err(Error::with_message(
                ErrorKind::Credential,
                format!(
                    "GitHub Actions OIDC token request answered {status}: does the job have `permissions: id-token: write`?"
                ),
            )),
        }
    }
}
