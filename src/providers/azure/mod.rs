//! Azure: resource groups, container registries and virtual networks through Azure Resource
//! Manager, service principals through Microsoft Graph (DESIGN §7).
//! Endpoints: the cloud's (`public`, `china`, `usgovernment`), or `CONVERGE_AZURE_RESOURCE_MANAGER_URL`;
//! token scopes stay the cloud's. Refresh reads each resource group's registries with one list
//! call, resource groups one GET each, in parallel with a bound.

mod arm;
pub mod container_registry;
pub mod costmanagement;
mod credential;
pub mod resource_group;
pub mod service_principal;
pub mod virtual_machine;
pub mod virtual_network;

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::{StreamExt, stream};
use reqwest::Method;
use serde_json::Value as Json;

use super::kind::{Handler, ReadResult};
use super::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, Provider, ProviderError,
    ProviderOptions, ReadItem, ReadRequest, ReadResponse, UpdateRequest,
};
use crate::config::AzureSettings;
use crate::model::Value;
use crate::model::schema::KindSchema;

/// api-version of Microsoft.Resources resource groups (the version the SDK crates send).
pub const RESOURCES_API: &str = "2021-04-01";
/// api-version of Microsoft.ContainerRegistry.
pub const REGISTRY_API: &str = "2023-07-01";
/// api-version of Microsoft.Network.
pub const NETWORK_API: &str = "2024-03-01";

/// The Azure provider.
pub struct AzureProvider {
    arm: Result<arm::Arm, ProviderError>,
    graph: Result<arm::Arm, ProviderError>,
    subscription: String,
    parallelism: usize,
}

fn graph_endpoint(cloud: &str) -> (&'static str, &'static str) {
    match cloud {
        "china" => (
            "https://microsoftgraph.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        "usgovernment" => (
            "https://graph.microsoft.us",
            "https://graph.microsoft.us/.default",
        ),
        _ => (
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/.default",
        ),
    }
}

fn cloud_endpoint(cloud: &str) -> (&'static str, &'static str) {
    match cloud {
        "china" => (
            "https://management.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/.default",
        ),
        "usgovernment" => (
            "https://management.usgovcloudapi.net",
            "https://management.usgovcloudapi.net/.default",
        ),
        _ => (
            "https://management.azure.com",
            "https://management.azure.com/.default",
        ),
    }
}

impl AzureProvider {
    /// Builds the ARM client; a missing credential surfaces on the first call, naming the chain.
    pub fn new(settings: &AzureSettings, options: &ProviderOptions) -> AzureProvider {
        let cloud = settings.cloud.as_deref().unwrap_or("public");
        // The environment's override wins, then the file's `endpoints`, then the cloud's.
        let endpoint = |var: &str, from_file: &Option<String>, default: &str| {
            std::env::var(var)
                .ok()
                .filter(|e| !e.is_empty())
                .or_else(|| from_file.clone())
                .unwrap_or_else(|| default.to_string())
        };
        let (arm_default, arm_scope) = cloud_endpoint(cloud);
        let (graph_default, graph_scope) = graph_endpoint(cloud);
        let credential = credential::from_environment(settings.tenant_id.as_deref());
        AzureProvider {
            arm: credential.clone().map(|c| {
                arm::Arm::new(
                    &endpoint(
                        "CONVERGE_AZURE_RESOURCE_MANAGER_URL",
                        &settings.resource_manager_endpoint,
                        arm_default,
                    ),
                    arm_scope,
                    c,
                )
            }),
            graph: credential.map(|c| {
                arm::Arm::new(
                    &endpoint(
                        "CONVERGE_AZURE_GRAPH_URL",
                        &settings.graph_endpoint,
                        graph_default,
                    ),
                    graph_scope,
                    c,
                )
            }),
            subscription: settings.subscription_id.clone(),
            parallelism: options.parallelism.max(1),
        }
    }

    /// Signs in (a credential is found and accepted), before anything is planned.
    pub async fn ready(&self) -> Result<(), ProviderError> {
        self.arm()?.token().await.map(|_| ())
    }

    fn arm(&self) -> Result<&arm::Arm, ProviderError> {
        self.arm.as_ref().map_err(Clone::clone)
    }

    fn graph(&self) -> Result<&arm::Arm, ProviderError> {
        self.graph.as_ref().map_err(Clone::clone)
    }

    /// Reads each item with one GET (resource groups, VMs' own reads are their kind's).
    async fn read_each(
        &self,
        items: Vec<ReadItem>,
        api_version: &'static str,
        live_of: fn(&Json) -> Live,
    ) -> Vec<ReadResult> {
        stream::iter(items)
            .map(|item| async move {
                let live = match self.arm() {
                    Ok(arm) => arm
                        .get(&item.remote_id, api_version)
                        .await
                        .map(|g| g.as_ref().map(live_of)),
                    Err(e) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    /// Reads items of one ARM collection with one list call per resource group.
    async fn read_listed(
        &self,
        collection: &'static str,
        api_version: &'static str,
        live_of: fn(&Json) -> Live,
        items: Vec<ReadItem>,
    ) -> Vec<ReadResult> {
        let mut by_group: BTreeMap<String, Vec<ReadItem>> = BTreeMap::new();
        for item in items {
            by_group
                .entry(group_of(&item.remote_id))
                .or_default()
                .push(item);
        }
        stream::iter(by_group)
            .map(|(group, items)| async move {
                let listed = match self.arm() {
                    Ok(arm) => {
                        arm.list(
                            &format!("{}/providers/{collection}", self.group_id(&group)),
                            api_version,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                items
                    .into_iter()
                    .map(|item| {
                        let live = match &listed {
                            Ok(all) => Ok(all
                                .iter()
                                .find(|r| {
                                    r["id"]
                                        .as_str()
                                        .is_some_and(|id| id.eq_ignore_ascii_case(&item.remote_id))
                                })
                                .map(live_of)),
                            Err(e) => Err(e.clone()),
                        };
                        (item.address, live)
                    })
                    .collect::<Vec<_>>()
            })
            .buffer_unordered(self.parallelism)
            .flat_map(stream::iter)
            .collect()
            .await
    }

    /// Writes an ARM resource (PUT or PATCH, followed to its end) and returns it as applied.
    async fn write(
        &self,
        method: Method,
        id: &str,
        api_version: &str,
        body: &Json,
        live_of: fn(&Json) -> Live,
    ) -> Result<Applied, ProviderError> {
        let out = self.arm()?.write(method, id, api_version, body).await?;
        Ok(Applied {
            remote_id: out["id"].as_str().unwrap_or(id).to_string(),
            outputs: live_of(&out).outputs,
        })
    }

    /// Imports an ARM resource by its id.
    async fn import_arm(
        &self,
        id: &str,
        api_version: &str,
        live_of: fn(&Json) -> Live,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        let found = self.arm()?.get(id, api_version).await?;
        Ok(found.map(|j| {
            let live = live_of(&j);
            (
                Applied {
                    remote_id: j["id"].as_str().unwrap_or(id).to_string(),
                    outputs: live.outputs.clone(),
                },
                live,
            )
        }))
    }

    fn group_id(&self, name: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{name}", self.subscription)
    }

    /// The id of resource `name` of `collection` in resource group `group`.
    fn child_id(&self, collection: &str, group: &str, name: &str) -> String {
        format!("{}/providers/{collection}/{name}", self.group_id(group))
    }
}

fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).reveal().as_str().unwrap_or("")
}

/// The resource group named in an ARM id.
fn group_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| parts.get(i + 1))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn tags_value(j: &Json) -> Value {
    match j.get("tags") {
        Some(Json::Object(_)) => Value::from_json(&j["tags"]),
        _ => Value::map(),
    }
}

/// The handler of an Azure kind, from the registry.
fn handler(kind: &KindSchema) -> Result<&'static dyn Handler<AzureProvider>, ProviderError> {
    match crate::kinds::find(kind.kind).map(|k| k.handler) {
        Some(crate::kinds::Handler::Azure(h)) => Ok(h),
        _ => Err(ProviderError::UnknownKind {
            provider: "azure".into(),
            kind: kind.kind.into(),
        }),
    }
}

#[async_trait]
impl Provider for AzureProvider {
    async fn read(&self, request: ReadRequest) -> ReadResponse {
        ReadResponse {
            results: super::kind::read_by_kind(self, request.items, handler).await,
        }
    }

    fn planned_id(&self, r: &CreateRequest) -> String {
        handler(r.kind)
            .map(|h| h.planned_id(self, r))
            .unwrap_or_default()
    }

    async fn create(&self, r: CreateRequest) -> Result<Applied, ProviderError> {
        handler(r.kind)?.create(self, r).await
    }

    async fn update(&self, r: UpdateRequest) -> Result<Applied, ProviderError> {
        handler(r.kind)?.update(self, r).await
    }

    async fn delete(&self, r: DeleteRequest) -> Result<(), ProviderError> {
        handler(r.kind)?.delete(self, r).await
    }

    async fn import(&self, r: ImportRequest) -> Result<Option<(Applied, Live)>, ProviderError> {
        handler(r.kind)?.import(self, r).await
    }
}

/// How a plain ARM resource kind maps to Azure Resource Manager; its `Handler` does the rest
/// (reads: one GET each for resource groups, one list call per resource group otherwise).
pub struct ArmKind {
    /// The api-version its requests carry.
    pub api_version: &'static str,
    /// Its collection below a resource group; `None` for a resource group itself.
    pub collection: Option<&'static str>,
    /// The PUT body from its properties.
    pub body: fn(&Value) -> Json,
    /// Properties and outputs from the resource ARM returns.
    pub live: fn(&Json) -> Live,
    /// Updates PATCH the body without `location` (else they PUT the whole body).
    pub patch_update: bool,
}

#[async_trait]
impl Handler<AzureProvider> for ArmKind {
    async fn read(&self, azure: &AzureProvider, items: Vec<ReadItem>) -> Vec<ReadResult> {
        match self.collection {
            None => azure.read_each(items, self.api_version, self.live).await,
            Some(c) => {
                azure
                    .read_listed(c, self.api_version, self.live, items)
                    .await
            }
        }
    }

    fn planned_id(&self, azure: &AzureProvider, r: &CreateRequest) -> String {
        let name = text(&r.properties, "name");
        match self.collection {
            None => azure.group_id(name),
            Some(c) => azure.child_id(c, text(&r.properties, "resource_group"), name),
        }
    }

    async fn create(
        &self,
        azure: &AzureProvider,
        r: CreateRequest,
    ) -> Result<Applied, ProviderError> {
        let id = self.planned_id(azure, &r);
        let body = (self.body)(&r.properties);
        azure
            .write(Method::PUT, &id, self.api_version, &body, self.live)
            .await
    }

    async fn update(
        &self,
        azure: &AzureProvider,
        r: UpdateRequest,
    ) -> Result<Applied, ProviderError> {
        let mut body = (self.body)(&r.properties);
        let method = if self.patch_update {
            if let Json::Object(m) = &mut body {
                m.remove("location");
            }
            Method::PATCH
        } else {
            Method::PUT
        };
        azure
            .write(method, &r.remote_id, self.api_version, &body, self.live)
            .await
    }

    async fn delete(&self, azure: &AzureProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        azure.arm()?.delete(&r.remote_id, self.api_version).await
    }

    async fn import(
        &self,
        azure: &AzureProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        azure.import_arm(&r.id, self.api_version, self.live).await
    }
}
