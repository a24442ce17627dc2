//! Azure credentials through `azure_identity`. This first version reads a service principal
//! from the environment (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
//! `AZURE_AUTHORITY_HOST` honoured); a missing credential is one error naming what was tried,
//! before anything is planned. Managed identity (IMDS) is never tried implicitly.

use std::sync::Arc;

use azure_core::auth::TokenCredential;
use azure_identity::{ClientSecretCredential, TokenCredentialOptions};

use crate::providers::ProviderError;

/// The credential for ARM calls, or an error naming the chain that was tried.
pub fn from_environment(tenant: Option<&str>) -> Result<Arc<dyn TokenCredential>, ProviderError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let tenant = tenant
        .map(str::to_string)
        .or_else(|| var("AZURE_TENANT_ID"));
    match (tenant, var("AZURE_CLIENT_ID"), var("AZURE_CLIENT_SECRET")) {
        (Some(tenant), Some(client), Some(secret)) => {
            let options = TokenCredentialOptions::default();
            let authority = options.authority_host().map_err(|e| {
                ProviderError::Invalid(format!("AZURE_AUTHORITY_HOST is not a URL: {e}"))
            })?;
            Ok(Arc::new(ClientSecretCredential::new(
                options.http_client(),
                authority,
                tenant,
                client,
                secret,
            )))
        }
        _ => Err(ProviderError::Invalid(
            "no Azure credential: tried the environment (AZURE_TENANT_ID or providers.azure.tenant_id, \
             AZURE_CLIENT_ID, AZURE_CLIENT_SECRET); set them for a service principal"
                .into(),
        )),
    }
}
