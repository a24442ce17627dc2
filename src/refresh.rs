//! Refresh: reads the live state of every resource recorded in state through the providers,
//! in batches (the providers batch and parallelize per kind). It sits beside `apply`: the
//! plan only ever sees the resulting [`LiveMap`].

use crate::kinds;
use crate::model::{Address, LiveMap, ResourceState};
use crate::providers::{ProviderError, ReadItem, ReadRequest, Registry};

/// Reads the live state of every resource in `state`. Read errors are returned per address;
/// a resource that no longer exists maps to `None`; a kind this release does not know is
/// left out (the plan reports it).
pub async fn refresh(
    registry: &Registry,
    state: &[ResourceState],
) -> (LiveMap, Vec<(Address, ProviderError)>) {
    let items = state
        .iter()
        .filter_map(|s| {
            Some(ReadItem {
                address: s.address.clone(),
                kind: kinds::lookup(&s.kind)?,
                remote_id: s.remote_id.clone(),
                prior: s.properties.clone(),
                prior_outputs: s.outputs.clone(),
            })
        })
        .collect();
    let mut live = LiveMap::new();
    let mut errors = Vec::new();
    for (address, result) in registry.read(ReadRequest { items }).await.results {
        match result {
            Ok(l) => {
                live.insert(address, l);
            }
            Err(e) => errors.push((address, e)),
        }
    }
    (live, errors)
}
