//! Azure: resource groups, container registries and virtual networks through Azure Resource
//! Manager (DESIGN §7).
//! Endpoints: the cloud's (`public`, `china`, `usgovernment`), or `CONVERGE_AZURE_RESOURCE_MANAGER_URL`;
//! token scopes stay the cloud's. Refresh reads each resource group's registries with one list
//! call, resource groups one GET each, in parallel with a bound.

mod arm;
mod credential;

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::{StreamExt, stream};
use reqwest::Method;
use serde_json::{Value as Json, json};

use super::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, Provider, ProviderError,
    ProviderOptions, ReadItem, ReadRequest, ReadResponse, UpdateRequest,
};
use crate::config::AzureSettings;
use crate::model::Value;

/// api-version of Microsoft.Resources resource groups (the version the SDK crates send).
pub const RESOURCES_API: &str = "2021-04-01";
/// api-version of Microsoft.ContainerRegistry.
pub const REGISTRY_API: &str = "2023-07-01";
/// api-version of Microsoft.Network.
pub const NETWORK_API: &str = "2024-03-01";

/// The Azure provider.
pub struct AzureProvider {
    arm: Result<arm::Arm, ProviderError>,
    subscription: String,
    parallelism: usize,
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
        let (default_endpoint, scope) =
            cloud_endpoint(settings.cloud.as_deref().unwrap_or("public"));
        let endpoint = std::env::var("CONVERGE_AZURE_RESOURCE_MANAGER_URL")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| default_endpoint.to_string());
        AzureProvider {
            arm: credential::from_environment(settings.tenant_id.as_deref())
                .map(|c| arm::Arm::new(&endpoint, scope, c)),
            subscription: settings.subscription_id.clone(),
            parallelism: options.parallelism.max(1),
        }
    }

    /// Whether a credential was found (checked before anything is planned).
    pub fn ready(&self) -> Result<(), ProviderError> {
        self.arm().map(|_| ())
    }

    fn arm(&self) -> Result<&arm::Arm, ProviderError> {
        self.arm.as_ref().map_err(Clone::clone)
    }

    fn group_id(&self, name: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{name}", self.subscription)
    }

    fn child_id(&self, kind: &str, group: &str, name: &str) -> String {
        format!(
            "{}/providers/{}/{name}",
            self.group_id(group),
            collection(kind)
        )
    }

    async fn read_groups(
        &self,
        items: Vec<ReadItem>,
    ) -> Vec<(crate::model::Address, Result<Option<Live>, ProviderError>)> {
        stream::iter(items)
            .map(|item| async move {
                let live = match self.arm() {
                    Ok(arm) => arm
                        .get(&item.remote_id, RESOURCES_API)
                        .await
                        .map(|g| g.map(|g| group_live(&g))),
                    Err(e) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    /// One list call per resource group and kind.
    async fn read_listed(
        &self,
        kind: &'static str,
        items: Vec<ReadItem>,
    ) -> Vec<(crate::model::Address, Result<Option<Live>, ProviderError>)> {
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
                            &format!("{}/providers/{}", self.group_id(&group), collection(kind)),
                            api_version(kind),
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
                                .map(|r| live_of(kind, r))),
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

    fn body(&self, kind: &str, p: &Value) -> Json {
        let tags = p.get("tags").to_plain_json();
        match kind {
            "azure.resource_group" => json!({ "location": text(p, "location"), "tags": tags }),
            "azure.virtual_network" => json!({
                "location": text(p, "location"),
                "tags": tags,
                "properties": {
                    "addressSpace": { "addressPrefixes": p.get("address_space").to_plain_json() },
                    "subnets": p.get("subnets").as_list().unwrap_or_default().iter().map(|s| json!({
                        "name": text(s, "name"),
                        "properties": { "addressPrefix": text(s, "address_prefix") },
                    })).collect::<Vec<_>>(),
                },
            }),
            _ => json!({
                "location": text(p, "location"),
                "tags": tags,
                "sku": { "name": text(p, "sku") },
                "properties": {
                    "adminUserEnabled": p.get("admin_user_enabled").as_bool().unwrap_or(false),
                    "publicNetworkAccess": text(p, "public_network_access"),
                },
            }),
        }
    }

    fn id_for(&self, kind: &str, p: &Value) -> String {
        match kind {
            "azure.resource_group" => self.group_id(text(p, "name")),
            _ => self.child_id(kind, text(p, "resource_group"), text(p, "name")),
        }
    }
}

fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).reveal().as_str().unwrap_or("")
}

fn api_version(kind: &str) -> &'static str {
    match kind {
        "azure.resource_group" => RESOURCES_API,
        "azure.virtual_network" => NETWORK_API,
        _ => REGISTRY_API,
    }
}

/// The ARM collection of a kind below a resource group.
fn collection(kind: &str) -> &'static str {
    match kind {
        "azure.virtual_network" => "Microsoft.Network/virtualNetworks",
        _ => "Microsoft.ContainerRegistry/registries",
    }
}

/// The live form of an ARM resource of `kind`.
fn live_of(kind: &str, j: &Json) -> Live {
    match kind {
        "azure.resource_group" => group_live(j),
        "azure.virtual_network" => network_live(j),
        _ => registry_live(j),
    }
}

fn network_live(n: &Json) -> Live {
    let id = n["id"].as_str().unwrap_or("");
    let subnets = n["properties"]["subnets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let subnet_ids: serde_json::Map<String, Json> = subnets
        .iter()
        .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["id"].clone())))
        .collect();
    Live {
        properties: Value::from_json(&json!({
            "name": n["name"],
            "resource_group": group_of(id),
            "location": n["location"],
            "address_space": n["properties"]["addressSpace"]["addressPrefixes"],
            "subnets": subnets.iter().map(|s| json!({
                "name": s["name"],
                "address_prefix": s["properties"]["addressPrefix"],
            })).collect::<Vec<_>>(),
        }))
        .with_entry("tags", tags_value(n)),
        outputs: Value::from_json(&json!({ "id": id, "subnet_ids": subnet_ids })),
    }
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

fn group_live(g: &Json) -> Live {
    Live {
        properties: Value::from_json(&json!({
            "name": g["name"], "location": g["location"],
        }))
        .with_entry("tags", tags_value(g)),
        outputs: Value::from_json(&json!({ "id": g["id"] })),
    }
}

fn registry_live(r: &Json) -> Live {
    let id = r["id"].as_str().unwrap_or("");
    Live {
        properties: Value::from_json(&json!({
            "name": r["name"],
            "resource_group": group_of(id),
            "location": r["location"],
            "sku": r["sku"]["name"],
            "admin_user_enabled": r["properties"]["adminUserEnabled"].as_bool().unwrap_or(false),
            "public_network_access": r["properties"]["publicNetworkAccess"].as_str().unwrap_or("Enabled"),
        }))
        .with_entry("tags", tags_value(r)),
        outputs: Value::from_json(&json!({
            "id": id,
            "login_server": r["properties"]["loginServer"],
        })),
    }
}

#[async_trait]
impl Provider for AzureProvider {
    async fn read(&self, request: ReadRequest) -> ReadResponse {
        let (groups, rest): (Vec<ReadItem>, Vec<ReadItem>) = request
            .items
            .into_iter()
            .partition(|i| i.kind.kind == "azure.resource_group");
        let (registries, rest): (Vec<ReadItem>, Vec<ReadItem>) = rest
            .into_iter()
            .partition(|i| i.kind.kind == "azure.container_registry");
        let (networks, unknown): (Vec<ReadItem>, Vec<ReadItem>) = rest
            .into_iter()
            .partition(|i| i.kind.kind == "azure.virtual_network");
        let (mut a, b, c) = futures::join!(
            self.read_groups(groups),
            self.read_listed("azure.container_registry", registries),
            self.read_listed("azure.virtual_network", networks)
        );
        a.extend(b);
        a.extend(c);
        a.extend(unknown.into_iter().map(|i| {
            let kind = i.kind.kind.to_string();
            (
                i.address,
                Err(ProviderError::UnknownKind {
                    provider: "azure".into(),
                    kind,
                }),
            )
        }));
        ReadResponse { results: a }
    }

    fn planned_id(&self, r: &CreateRequest) -> String {
        self.id_for(r.kind.kind, &r.properties)
    }

    async fn create(&self, r: CreateRequest) -> Result<Applied, ProviderError> {
        let id = self.id_for(r.kind.kind, &r.properties);
        let body = self.body(r.kind.kind, &r.properties);
        let out = self
            .arm()?
            .write(Method::PUT, &id, api_version(r.kind.kind), &body)
            .await?;
        Ok(applied(r.kind.kind, &out))
    }

    async fn update(&self, r: UpdateRequest) -> Result<Applied, ProviderError> {
        let kind = r.kind.kind;
        let out = if kind != "azure.container_registry" {
            self.arm()?
                .write(
                    Method::PUT,
                    &r.remote_id,
                    api_version(kind),
                    &self.body(kind, &r.properties),
                )
                .await?
        } else {
            let mut body = self.body(kind, &r.properties);
            if let Json::Object(m) = &mut body {
                m.remove("location");
            }
            self.arm()?
                .write(Method::PATCH, &r.remote_id, REGISTRY_API, &body)
                .await?
        };
        Ok(applied(kind, &out))
    }

    async fn delete(&self, r: DeleteRequest) -> Result<(), ProviderError> {
        self.arm()?
            .delete(&r.remote_id, api_version(r.kind.kind))
            .await
    }

    async fn import(&self, r: ImportRequest) -> Result<Option<(Applied, Live)>, ProviderError> {
        let found = self.arm()?.get(&r.id, api_version(r.kind.kind)).await?;
        Ok(found.map(|j| (applied(r.kind.kind, &j), live_of(r.kind.kind, &j))))
    }
}

fn applied(kind: &str, out: &Json) -> Applied {
    let live = live_of(kind, out);
    Applied {
        remote_id: out["id"].as_str().unwrap_or("").to_string(),
        outputs: live.outputs,
    }
}
