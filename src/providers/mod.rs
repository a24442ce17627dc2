//! The Provider trait (batched reads; create, update, delete, import as request/response) and
//! the registry that finds the provider of a kind.

pub mod aws;
pub mod azure;
pub mod github;
pub mod kind;
pub mod pricing;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::config;
use crate::model::schema::KindSchema;
use crate::model::{Address, Value};
pub use crate::model::{Live, LiveMap};

/// Errors from a cloud provider.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// A cloud API call failed (after the SDK's retries).
    #[error("{operation}: {message}")]
    Api {
        /// The API operation, e.g. `ecs:CreateService`.
        operation: String,
        /// The cloud's error, with its code.
        message: String,
    },
    /// The resource to update or delete no longer exists.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The environment does not configure this provider.
    #[error("no `providers.{0}` section in the environment file")]
    NotConfigured(String),
    /// The provider cannot handle this kind.
    #[error("provider {provider} does not manage kind {kind}")]
    UnknownKind {
        /// The provider.
        provider: String,
        /// The kind.
        kind: String,
    },
    /// A property value the cloud cannot take.
    #[error("{0}")]
    Invalid(String),
}

/// One resource to read.
#[derive(Debug, Clone)]
pub struct ReadItem {
    /// Its address.
    pub address: Address,
    /// Its kind.
    pub kind: &'static KindSchema,
    /// The cloud id recorded in state.
    pub remote_id: String,
    /// Properties as last applied (lets a provider skip reading what cannot have changed).
    pub prior: Value,
    /// Outputs as last applied.
    pub prior_outputs: Value,
}

/// A batch of resources to read; the provider batches and parallelizes the calls.
#[derive(Debug, Clone, Default)]
pub struct ReadRequest {
    /// What to read.
    pub items: Vec<ReadItem>,
}

/// The result of a read: per address, the live resource, `None` when it no longer exists.
#[derive(Debug, Default)]
pub struct ReadResponse {
    /// One entry per requested item.
    pub results: Vec<(Address, Result<Option<Live>, ProviderError>)>,
}

/// Create a resource from fully known properties.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Its address (used for idempotency tokens and messages).
    pub address: Address,
    /// Its kind.
    pub kind: &'static KindSchema,
    /// Desired properties, normalized, with secrets still wrapped.
    pub properties: Value,
    /// Outputs recorded for this address before, when it is created again after being deleted
    /// outside converge (lets a provider clean up what hung off the old one); null otherwise.
    pub previous_outputs: Value,
}

/// Update a resource in place.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    /// Its address.
    pub address: Address,
    /// Its kind.
    pub kind: &'static KindSchema,
    /// The cloud id.
    pub remote_id: String,
    /// Properties as they are now (live).
    pub prior: Value,
    /// Outputs as they are now.
    pub prior_outputs: Value,
    /// Desired properties.
    pub properties: Value,
}

/// Delete a resource.
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    /// Its address.
    pub address: Address,
    /// Its kind.
    pub kind: &'static KindSchema,
    /// The cloud id.
    pub remote_id: String,
    /// Properties as last known.
    pub prior: Value,
}

/// Adopt an existing resource by its cloud id.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The address it will have.
    pub address: Address,
    /// Its kind.
    pub kind: &'static KindSchema,
    /// The id the user gave (name or ARN, per kind).
    pub id: String,
}

/// What a create, update or import leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The cloud id to record.
    pub remote_id: String,
    /// Outputs.
    pub outputs: Value,
}

/// A cloud provider: reads live state in batches and applies changes one resource at a time.
///
/// Guarantees expected of implementations: `read` never fails as a whole (each item carries
/// its own result); `create`, `update` and `delete` are safe to retry (idempotency tokens where
/// the API has them) and return only once the change is complete.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Reads the given resources, batching and parallelizing within the provider's bounds.
    async fn read(&self, request: ReadRequest) -> ReadResponse;
    /// The cloud id a create will give the resource, recorded in state before the call so an
    /// interrupted create is re-read by the next plan instead of created twice.
    fn planned_id(&self, request: &CreateRequest) -> String;
    /// Creates a resource.
    async fn create(&self, request: CreateRequest) -> Result<Applied, ProviderError>;
    /// Updates a resource in place.
    async fn update(&self, request: UpdateRequest) -> Result<Applied, ProviderError>;
    /// Deletes a resource; deleting one already gone succeeds.
    async fn delete(&self, request: DeleteRequest) -> Result<(), ProviderError>;
    /// Reads an existing resource by its cloud id: `(remote id, live)`, `None` when absent.
    async fn import(
        &self,
        request: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError>;
    /// The import ids of every live resource of `kind` (`import --all KIND`).
    async fn list(&self, kind: &'static KindSchema) -> Result<Vec<String>, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "converge cannot list every {} yet",
            kind.kind
        )))
    }
}

/// The providers an environment uses.
#[derive(Clone, Default)]
pub struct Registry {
    aws: Option<Arc<aws::AwsProvider>>,
    azure: Option<Arc<azure::AzureProvider>>,
    host: Arc<crate::hosts::app::HostProvider>,
    calls: CallLog,
}

impl Registry {
    /// Builds the providers an environment configures (credentials are resolved lazily).
    pub async fn for_environment(
        settings: &config::Providers,
        options: &ProviderOptions,
    ) -> Registry {
        let aws = match &settings.aws {
            Some(s) => Some(Arc::new(aws::AwsProvider::new(s, options).await)),
            None => None,
        };
        let azure = settings
            .azure
            .as_ref()
            .map(|s| Arc::new(azure::AzureProvider::new(s, options)));
        Registry {
            aws,
            azure,
            host: Default::default(),
            calls: options.calls.clone(),
        }
    }

    /// With the host provider that logs in with these apps' `ssh` blocks.
    pub fn with_hosts(mut self, host: crate::hosts::app::HostProvider) -> Registry {
        self.host = Arc::new(host);
        self
    }

    /// Checks that every configured provider can sign in (Azure: a credential is found and
    /// accepted), so a bad credential stops a command before anything is planned.
    pub async fn ready(&self) -> Result<(), ProviderError> {
        match &self.azure {
            Some(azure) => azure.ready().await,
            None => Ok(()),
        }
    }

    /// The AWS provider, when the environment configures one (rollouts drive it directly).
    pub fn aws(&self) -> Option<&aws::AwsProvider> {
        self.aws.as_deref()
    }

    /// The provider of apps on hosts (its options: project root, host-key policy).
    pub fn hosts(&self) -> &crate::hosts::app::HostProvider {
        &self.host
    }

    /// The Azure provider, when the environment configures one.
    pub fn azure(&self) -> Option<&azure::AzureProvider> {
        self.azure.as_deref()
    }

    /// The API calls the providers made so far.
    pub fn calls(&self) -> &CallLog {
        &self.calls
    }

    /// The provider of a kind.
    pub fn for_kind(&self, kind: &KindSchema) -> Result<&dyn Provider, ProviderError> {
        let unknown = || ProviderError::UnknownKind {
            provider: kind.provider().into(),
            kind: kind.kind.into(),
        };
        match crate::kinds::find(kind.kind).ok_or_else(unknown)?.handler {
            crate::kinds::Handler::Aws(_) => self
                .aws
                .as_deref()
                .map(|p| p as &dyn Provider)
                .ok_or_else(|| ProviderError::NotConfigured("aws".into())),
            crate::kinds::Handler::Azure(_) => self
                .azure
                .as_deref()
                .map(|p| p as &dyn Provider)
                .ok_or_else(|| ProviderError::NotConfigured("azure".into())),
            crate::kinds::Handler::Host(_) => Ok(self.host.as_ref() as &dyn Provider),
        }
    }

    /// Reads everything in `request`, each provider's share in parallel.
    pub async fn read(&self, request: ReadRequest) -> ReadResponse {
        let mut by_provider: std::collections::BTreeMap<&str, Vec<ReadItem>> = Default::default();
        for item in request.items {
            by_provider
                .entry(item.kind.provider())
                .or_default()
                .push(item);
        }
        let reads = by_provider.into_iter().map(|(name, items)| async move {
            let first_kind = items[0].kind;
            match self.for_kind(first_kind) {
                Ok(p) => p.read(ReadRequest { items }).await,
                Err(e) => ReadResponse {
                    results: items
                        .into_iter()
                        .map(|i| (i.address, Err(e.clone())))
                        .collect(),
                },
            }
            .results
            .into_iter()
            .map(move |r| (name, r))
            .collect::<Vec<_>>()
        });
        let results = futures::future::join_all(reads)
            .await
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
            .collect();
        ReadResponse { results }
    }
}

/// Settings that apply to every provider.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// At most this many cloud calls in flight at once.
    pub parallelism: usize,
    /// Where providers count the API calls they make.
    pub calls: CallLog,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            parallelism: 10,
            calls: CallLog::default(),
        }
    }
}

/// Calls and attempts (retries included) of one cloud API operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCount {
    /// Operations made.
    pub calls: u64,
    /// HTTP attempts sent (more than calls when throttling or errors caused retries).
    pub attempts: u64,
}

/// Cloud API calls made by this process, per `SERVICE:Operation`; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<BTreeMap<String, CallCount>>>);

impl CallLog {
    fn with(&self, operation: &str, f: impl FnOnce(&mut CallCount)) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(operation.to_string()).or_default());
    }

    /// Counts one operation.
    pub fn call(&self, operation: &str) {
        self.with(operation, |c| c.calls += 1);
    }

    /// Counts one HTTP attempt of an operation.
    pub fn attempt(&self, operation: &str) {
        self.with(operation, |c| c.attempts += 1);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, CallCount> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `23 calls, 25 attempts (ECS:DescribeServices 10, ECR:DescribeRepositories 1, ...)`.
    pub fn summary(&self) -> String {
        let snap = self.snapshot();
        let calls: u64 = snap.values().map(|c| c.calls).sum();
        let attempts: u64 = snap.values().map(|c| c.attempts).sum();
        let each: Vec<String> = snap
            .iter()
            .map(|(op, c)| format!("{op} {}", c.calls))
            .collect();
        format!("{calls} calls, {attempts} attempts ({})", each.join(", "))
    }

    /// Total operations.
    pub fn total(&self) -> u64 {
        self.snapshot().values().map(|c| c.calls).sum()
    }
}
