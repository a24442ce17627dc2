//! Azure: resource groups, container registries and virtual networks through Azure Resource
//! Manager, service principals through Microsoft Graph (DESIGN §7).
//! Endpoints: the cloud's (`public`, `china`, `usgovernment`), or `CONVERGE_AZURE_RESOURCE_MANAGER_URL`;
//! token scopes stay the cloud's. Refresh reads each resource group's registries with one list
//! call, resource groups one GET each, in parallel with a bound.

mod arm;
pub mod costmanagement;
mod credential;
mod principal;
mod vm;

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

    async fn read_machines(
        &self,
        items: Vec<ReadItem>,
    ) -> Vec<(crate::model::Address, Result<Option<Live>, ProviderError>)> {
        stream::iter(items)
            .map(|item| async move {
                let live = match self.arm() {
                    Ok(arm) => vm::read(arm, &item.remote_id, &item.prior).await,
                    Err(e) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
    }

    async fn read_principals(
        &self,
        items: Vec<ReadItem>,
    ) -> Vec<(crate::model::Address, Result<Option<Live>, ProviderError>)> {
        stream::iter(items)
            .map(|item| async move {
                let live = match (self.graph(), self.arm()) {
                    _ if item.remote_id.is_empty() => Ok(None),
                    (Ok(graph), Ok(arm)) => {
                        principal::read(graph, arm, &item.remote_id, &item.prior).await
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(self.parallelism)
            .collect()
            .await
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
        "azure.virtual_machine" => vm::COMPUTE_API,
        _ => REGISTRY_API,
    }
}

/// The ARM collection of a kind below a resource group.
fn collection(kind: &str) -> &'static str {
    match kind {
        "azure.virtual_network" => "Microsoft.Network/virtualNetworks",
        "azure.virtual_machine" => "Microsoft.Compute/virtualMachines",
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
        let (networks, rest): (Vec<ReadItem>, Vec<ReadItem>) = rest
            .into_iter()
            .partition(|i| i.kind.kind == "azure.virtual_network");
        let (principals, rest): (Vec<ReadItem>, Vec<ReadItem>) = rest
            .into_iter()
            .partition(|i| i.kind.kind == "azure.service_principal");
        let (machines, unknown): (Vec<ReadItem>, Vec<ReadItem>) = rest
            .into_iter()
            .partition(|i| i.kind.kind == "azure.virtual_machine");
        let (mut a, b, c, d, e) = futures::join!(
            self.read_groups(groups),
            self.read_listed("azure.container_registry", registries),
            self.read_listed("azure.virtual_network", networks),
            self.read_principals(principals),
            self.read_machines(machines)
        );
        a.extend(b);
        a.extend(c);
        a.extend(d);
        a.extend(e);
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
        if r.kind.kind == "azure.service_principal" {
            // Graph assigns the object id: an interrupted create cannot be found again.
            return String::new();
        }
        self.id_for(r.kind.kind, &r.properties)
    }

    async fn create(&self, r: CreateRequest) -> Result<Applied, ProviderError> {
        if r.kind.kind == "azure.service_principal" {
            return principal::create(self.graph()?, self.arm()?, &r.properties).await;
        }
        if r.kind.kind == "azure.virtual_machine" {
            let id = self.id_for(r.kind.kind, &r.properties);
            return vm::create(self.arm()?, &id, &r.properties, &r.previous_outputs).await;
        }
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
        if kind == "azure.virtual_machine" {
            return vm::update(
                self.arm()?,
                &r.remote_id,
                &r.prior,
                &r.prior_outputs,
                &r.properties,
            )
            .await;
        }
        if kind == "azure.service_principal" {
            return principal::update(
                self.graph()?,
                self.arm()?,
                &r.remote_id,
                &r.prior,
                &r.prior_outputs,
                &r.properties,
            )
            .await;
        }
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
        if r.kind.kind == "azure.service_principal" {
            return principal::delete(self.graph()?, self.arm()?, &r.remote_id, &r.prior).await;
        }
        if r.kind.kind == "azure.virtual_machine" {
            return vm::delete(self.arm()?, &r.remote_id, &r.prior).await;
        }
        self.arm()?
            .delete(&r.remote_id, api_version(r.kind.kind))
            .await
    }

    async fn import(&self, r: ImportRequest) -> Result<Option<(Applied, Live)>, ProviderError> {
        if r.kind.kind == "azure.virtual_machine" {
            let live = vm::read(self.arm()?, &r.id, &Value::Null).await?;
            return Ok(live.map(|l| {
                (
                    Applied {
                        remote_id: r.id.clone(),
                        outputs: l.outputs.clone(),
                    },
                    l,
                )
            }));
        }
        if r.kind.kind == "azure.service_principal" {
            // By application object id; role assignments are read once the files name them.
            let live = principal::read(self.graph()?, self.arm()?, &r.id, &Value::Null).await?;
            return Ok(live.map(|l| {
                (
                    Applied {
                        remote_id: r.id.clone(),
                        outputs: l.outputs.clone(),
                    },
                    l,
                )
            }));
        }
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
