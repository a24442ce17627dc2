//! What every resource kind's cloud side must do: the [`Handler`] each kind file implements
//! for its provider, with no default methods, so a new kind that forgets a part does not compile.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, ProviderError, ReadItem,
    UpdateRequest,
};
use crate::model::Address;
use crate::model::schema::KindSchema;

/// One read result: the address and its live resource (`None` when it no longer exists).
pub type ReadResult = (Address, Result<Option<Live>, ProviderError>);

/// A kind's reads and changes against provider `P`'s clients.
///
/// Guarantees expected of implementations (as of [`super::Provider`]): `read` answers every
/// item (batched and parallel within the provider's bounds); `create`, `update` and `delete`
/// are safe to repeat and return once the change is complete; deleting what is gone succeeds.
#[async_trait]
pub trait Handler<P: Sync + ?Sized>: Send + Sync {
    /// Reads resources of this kind.
    async fn read(&self, provider: &P, items: Vec<ReadItem>) -> Vec<ReadResult>;
    /// The cloud id a create will give, recorded before the call so an interrupted create is
    /// found again (empty when the cloud assigns it and nothing can find it).
    fn planned_id(&self, provider: &P, request: &CreateRequest) -> String;
    /// Creates one resource.
    async fn create(&self, provider: &P, request: CreateRequest) -> Result<Applied, ProviderError>;
    /// Updates one resource in place.
    async fn update(&self, provider: &P, request: UpdateRequest) -> Result<Applied, ProviderError>;
    /// Deletes one resource.
    async fn delete(&self, provider: &P, request: DeleteRequest) -> Result<(), ProviderError>;
    /// Reads an existing resource by the id `converge import` was given (the schema's
    /// `import_id`): its remote id and outputs, and its live form; `None` when absent.
    async fn import(
        &self,
        provider: &P,
        request: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError>;
    /// The import ids of every live resource of this kind (`import --all KIND`), every page
    /// followed; kinds that cannot be listed say so.
    async fn list(
        &self,
        _provider: &P,
        kind: &'static KindSchema,
    ) -> Result<Vec<String>, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "converge cannot list every {} yet: import them one by one with `converge import ADDR ID --generate FILE`",
            kind.kind
        )))
    }
}

/// Reads `items` of any kinds through their handlers: one batch per kind, all kinds at once.
pub async fn read_by_kind<P: Sync>(
    provider: &P,
    items: Vec<ReadItem>,
    handler: fn(&KindSchema) -> Result<&'static dyn Handler<P>, ProviderError>,
) -> Vec<ReadResult> {
    let mut by_kind: BTreeMap<&str, Vec<ReadItem>> = BTreeMap::new();
    for item in items {
        by_kind.entry(item.kind.kind).or_default().push(item);
    }
    let reads = by_kind.into_values().map(|items| async move {
        match handler(items[0].kind) {
            Ok(h) => h.read(provider, items).await,
            Err(e) => items
                .into_iter()
                .map(|i| (i.address, Err(e.clone())))
                .collect(),
        }
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}
