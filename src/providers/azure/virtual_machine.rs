//! `azure.virtual_machine`: a Linux VM (SSH key only, no password) with the network interface
//! it owns, optionally a Standard static public IP and a network security group on that
//! interface, cloud-init `custom_data`, a system-assigned managed identity, and role assignments
//! for that identity.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value as Json, json};

use super::arm::Arm;
use super::service_principal as principal;
use crate::model::Value;
use crate::providers::{Applied, Live, ProviderError};
use async_trait::async_trait;

use super::AzureProvider;
use super::service_principal::ROLE_ASSIGNMENT_TYPE;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PORT, PriceRule, Prop, STRING, TAGS, Type, no_rules,
};
use crate::providers::ReadItem;
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};
use futures::{StreamExt, stream};

/// The registration of `azure.virtual_machine`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Azure(&VirtualMachine),
    deploy: None,
};

const VM_IMAGE: &[Prop] = &[
    Prop::new("publisher", STRING, "Image publisher, e.g. Canonical.").required(),
    Prop::new("offer", STRING, "Image offer, e.g. ubuntu-24_04-lts.").required(),
    Prop::new("sku", STRING, "Image SKU, e.g. server.").required(),
    Prop::new("version", STRING, "Image version.").default(Default::Str("latest")),
];

const INBOUND: &[Prop] = &[
    Prop::new("port", PORT, "TCP port allowed in.").required(),
    Prop::new(
        "from",
        STRING,
        "Source: a CIDR (203.0.113.0/24), an address, or a service tag such as Internet.",
    )
    .default(Default::Str("Internet")),
];

const INBOUND_RULE: Type = Type::Object(INBOUND);

const VM_IDENTITY: &[Prop] = &[Prop::new(
    "system_assigned",
    Type::Bool,
    "Give the VM a system-assigned managed identity.",
)
.default(Default::Bool(true))];

/// `azure.virtual_machine`: a Linux VM (SSH key only) with its network interface.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "azure.virtual_machine",
    doc: "A Linux virtual machine (SSH key only) with its network interface, managed identity and role assignments.",
    props: &[
        Prop::new("name", STRING, "VM name.").required().replace(),
        Prop::new("resource_group", STRING, "Resource group it lives in.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region.")
            .required()
            .replace(),
        Prop::new("size", STRING, "VM size, e.g. Standard_B2s.").required(),
        Prop::new("image", Type::Object(VM_IMAGE), "Marketplace image.")
            .required()
            .replace(),
        Prop::new("admin_username", STRING, "Admin user.")
            .required()
            .replace(),
        Prop::new(
            "ssh_public_key",
            STRING,
            "The admin's SSH public key (no password login).",
        )
        .required()
        .replace(),
        Prop::new("subnet_id", STRING, "Subnet of its network interface.")
            .required()
            .replace(),
        Prop::new(
            "custom_data",
            STRING,
            "cloud-init user data (converge base64-encodes it); never read back; a change replaces the VM.",
        )
        .replace(),
        Prop::new(
            "public_ip",
            Type::Bool,
            "A Standard static public IP address on its network interface (output `public_ip`).",
        )
        .default(Default::Bool(false)),
        Prop::new(
            "inbound",
            Type::List(&INBOUND_RULE),
            "TCP traffic allowed in, e.g. [{ port: 22, from: 203.0.113.0/24 }]: a network security group on its network interface (Azure's default rules deny the rest from the Internet).",
        )
        .default(Default::EmptyList),
        Prop::new("identity", Type::Object(VM_IDENTITY), "Managed identity.")
            .default(Default::EmptyMap),
        Prop::new(
            "role_assignments",
            Type::List(&ROLE_ASSIGNMENT_TYPE),
            "Roles granted to the VM's managed identity, e.g. AcrPull on a registry.",
        )
        .unordered()
        .default(Default::EmptyList),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "principal_id",
            ty: STRING,
        },
        Output {
            name: "private_ip",
            ty: STRING,
        },
        Output {
            name: "public_ip_address",
            ty: STRING,
        },
    ],
    price: PriceRule::AzureVmSize,
    import_id: "VM resource id",
    rules: no_rules,
    rollout_summary: None,
};

/// The ARM collection of VMs below a resource group.
const COLLECTION: &str = "Microsoft.Compute/virtualMachines";

/// The handler of `azure.virtual_machine`.
struct VirtualMachine;

#[async_trait]
impl kind::Handler<AzureProvider> for VirtualMachine {
    async fn read(&self, azure: &AzureProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        stream::iter(items)
            .map(|item| async move {
                let live = match azure.arm() {
                    Ok(arm) => read(arm, &item.remote_id, &item.prior).await,
                    Err(e) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(azure.parallelism)
            .collect()
            .await
    }

    fn planned_id(&self, azure: &AzureProvider, r: &CreateRequest) -> String {
        azure.child_id(
            COLLECTION,
            text(&r.properties, "resource_group"),
            text(&r.properties, "name"),
        )
    }

    async fn create(
        &self,
        azure: &AzureProvider,
        r: CreateRequest,
    ) -> Result<Applied, ProviderError> {
        let id = self.planned_id(azure, &r);
        create(azure.arm()?, &id, &r.properties, &r.previous_outputs).await
    }

    async fn update(
        &self,
        azure: &AzureProvider,
        r: UpdateRequest,
    ) -> Result<Applied, ProviderError> {
        update(
            azure.arm()?,
            &r.remote_id,
            &r.prior,
            &r.prior_outputs,
            &r.properties,
        )
        .await
    }

    async fn delete(&self, azure: &AzureProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        delete(azure.arm()?, &r.remote_id, &r.prior).await
    }

    async fn import(
        &self,
        azure: &AzureProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        let live = read(azure.arm()?, &r.id, &Value::Null).await?;
        Ok(live.map(|l| {
            (
                Applied {
                    remote_id: r.id.clone(),
                    outputs: l.outputs.clone(),
                },
                l,
            )
        }))
    }
}

/// api-version of Microsoft.Compute.
pub const COMPUTE_API: &str = "2024-07-01";

fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).reveal().as_str().unwrap_or("")
}

/// The network interface converge manages with the VM.
pub fn nic_id(vm_id: &str) -> String {
    let (group, name) = vm_id
        .split_once("/providers/Microsoft.Compute/virtualMachines/")
        .unwrap_or((vm_id, ""));
    format!("{group}/providers/Microsoft.Network/networkInterfaces/{name}-nic")
}

/// The public IP address converge manages with the VM (when `public_ip: true`).
pub fn public_ip_id(vm_id: &str) -> String {
    sibling(vm_id, "publicIPAddresses", "ip")
}

/// The network security group converge manages with the VM (when it has `inbound` rules).
pub fn nsg_id(vm_id: &str) -> String {
    sibling(vm_id, "networkSecurityGroups", "nsg")
}

fn sibling(vm_id: &str, collection: &str, suffix: &str) -> String {
    let (group, name) = vm_id
        .split_once("/providers/Microsoft.Compute/virtualMachines/")
        .unwrap_or((vm_id, ""));
    format!("{group}/providers/Microsoft.Network/{collection}/{name}-{suffix}")
}

/// The `inbound` rules as the security group's rules, priorities 100, 101, … in file order.
fn security_rules(p: &Value) -> Json {
    let rules: Vec<Json> = p
        .get("inbound")
        .as_list()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "name": format!("converge-inbound-{i}"),
                "properties": {
                    "protocol": "Tcp",
                    "sourcePortRange": "*",
                    "destinationPortRange": r.get("port").as_i64().unwrap_or(0).to_string(),
                    "sourceAddressPrefix": text(r, "from"),
                    "destinationAddressPrefix": "*",
                    "access": "Allow",
                    "priority": 100 + i,
                    "direction": "Inbound",
                },
            })
        })
        .collect();
    Json::Array(rules)
}

fn wants_public_ip(p: &Value) -> bool {
    p.get("public_ip").as_bool().unwrap_or(false)
}

fn wants_nsg(p: &Value) -> bool {
    p.get("inbound").as_list().is_some_and(|l| !l.is_empty())
}

/// The public IP and security group the files ask for, then the NIC that uses them.
async fn put_network(arm: &Arm, vm_id: &str, p: &Value) -> Result<(), ProviderError> {
    let location = text(p, "location");
    if wants_public_ip(p) {
        arm.write(
            Method::PUT,
            &public_ip_id(vm_id),
            super::NETWORK_API,
            &json!({
                "location": location, "tags": tags(p),
                "sku": {"name": "Standard", "tier": "Regional"},
                "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
            }),
        )
        .await?;
    }
    if wants_nsg(p) {
        arm.write(
            Method::PUT,
            &nsg_id(vm_id),
            super::NETWORK_API,
            &json!({"location": location, "tags": tags(p), "properties": {"securityRules": security_rules(p)}}),
        )
        .await?;
    }
    let mut ip_config =
        json!({"subnet": {"id": text(p, "subnet_id")}, "privateIPAllocationMethod": "Dynamic"});
    if wants_public_ip(p) {
        ip_config["publicIPAddress"] = json!({"id": public_ip_id(vm_id)});
    }
    let mut nic = json!({
        "location": location,
        "tags": tags(p),
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]},
    });
    if wants_nsg(p) {
        nic["properties"]["networkSecurityGroup"] = json!({"id": nsg_id(vm_id)});
    }
    arm.write(Method::PUT, &nic_id(vm_id), super::NETWORK_API, &nic)
        .await?;
    Ok(())
}

/// Deletes the public IP or security group the files no longer ask for (after the NIC let go).
async fn remove_unwanted(arm: &Arm, vm_id: &str, p: &Value) -> Result<(), ProviderError> {
    if !wants_public_ip(p) {
        arm.delete(&public_ip_id(vm_id), super::NETWORK_API).await?;
    }
    if !wants_nsg(p) {
        arm.delete(&nsg_id(vm_id), super::NETWORK_API).await?;
    }
    Ok(())
}

fn tags(p: &Value) -> Json {
    p.get("tags").to_plain_json()
}

fn system_assigned(p: &Value) -> bool {
    p.get("identity")
        .get("system_assigned")
        .as_bool()
        .unwrap_or(true)
}

/// Creates the NIC, then the VM, then the identity's role assignments. A VM created again after
/// it was deleted outside converge first removes the assignments its old identity left behind
/// (Azure keeps them, orphaned).
pub async fn create(
    arm: &Arm,
    vm_id: &str,
    p: &Value,
    previous: &Value,
) -> Result<Applied, ProviderError> {
    let old_principal = previous.get("principal_id").as_str().unwrap_or("");
    if !old_principal.is_empty() {
        let scopes = principal::grants(p).into_iter().map(|(_, s)| s).collect();
        let orphaned = principal::assigned(arm, old_principal, &scopes).await?;
        principal::assign(
            arm,
            old_principal,
            "ServicePrincipal",
            &BTreeSet::new(),
            &orphaned,
        )
        .await?;
    }
    let nic = nic_id(vm_id);
    put_network(arm, vm_id, p).await?;
    let user = text(p, "admin_username");
    let image = p.get("image");
    let mut body = json!({
        "location": text(p, "location"),
        "tags": tags(p),
        "properties": {
            "hardwareProfile": {"vmSize": text(p, "size")},
            "storageProfile": {
                "imageReference": {
                    "publisher": text(image, "publisher"), "offer": text(image, "offer"),
                    "sku": text(image, "sku"), "version": text(image, "version"),
                },
                "osDisk": {"createOption": "FromImage", "deleteOption": "Delete", "managedDisk": {"storageAccountType": "Standard_LRS"}},
            },
            "osProfile": {
                "computerName": text(p, "name"),
                "adminUsername": user,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": true,
                    "ssh": {"publicKeys": [{"path": format!("/home/{user}/.ssh/authorized_keys"), "keyData": text(p, "ssh_public_key")}]},
                },
            },
            "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": true}}]},
        },
    });
    if system_assigned(p) {
        body["identity"] = json!({"type": "SystemAssigned"});
    }
    let custom_data = text(p, "custom_data");
    if !custom_data.is_empty() {
        use base64::Engine;
        body["properties"]["osProfile"]["customData"] =
            json!(base64::engine::general_purpose::STANDARD.encode(custom_data));
    }
    let vm = arm.write(Method::PUT, vm_id, COMPUTE_API, &body).await?;
    let principal = vm["identity"]["principalId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !principal.is_empty() {
        principal::assign(
            arm,
            &principal,
            "ServicePrincipal",
            &principal::grants(p),
            &BTreeSet::new(),
        )
        .await?;
    }
    let (private_ip, public_ip) = addresses(arm, vm_id).await?;
    Ok(Applied {
        remote_id: vm_id.to_string(),
        outputs: outputs(vm_id, &principal, &private_ip, public_ip.as_deref()),
    })
}

fn outputs(id: &str, principal: &str, ip: &str, public_ip: Option<&str>) -> Value {
    Value::from_json(
        &json!({"id": id, "principal_id": principal, "private_ip": ip, "public_ip_address": public_ip}),
    )
}

/// The NIC's private address and, when it has one, its public IP's address.
async fn addresses(arm: &Arm, vm_id: &str) -> Result<(String, Option<String>), ProviderError> {
    let nic = arm
        .get(&nic_id(vm_id), super::NETWORK_API)
        .await?
        .unwrap_or(Json::Null);
    let config = &nic["properties"]["ipConfigurations"][0]["properties"];
    let private = config["privateIPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let public = match config["publicIPAddress"]["id"].as_str() {
        Some(id) => arm
            .get(id, super::NETWORK_API)
            .await?
            .and_then(|ip| ip["properties"]["ipAddress"].as_str().map(str::to_string)),
        None => None,
    };
    Ok((private, public))
}

/// Reads the VM (404: gone), its NIC's subnet and the identity's role assignments.
pub async fn read(arm: &Arm, vm_id: &str, prior: &Value) -> Result<Option<Live>, ProviderError> {
    let Some(vm) = arm.get(vm_id, COMPUTE_API).await? else {
        return Ok(None);
    };
    let nic = arm
        .get(&nic_id(vm_id), super::NETWORK_API)
        .await?
        .unwrap_or(Json::Null);
    let ip_config = &nic["properties"]["ipConfigurations"][0]["properties"];
    let public_ip = match ip_config["publicIPAddress"]["id"].as_str() {
        Some(id) => arm
            .get(id, super::NETWORK_API)
            .await?
            .and_then(|ip| ip["properties"]["ipAddress"].as_str().map(str::to_string)),
        None => None,
    };
    let inbound: Vec<Json> = match nic["properties"]["networkSecurityGroup"]["id"].as_str() {
        Some(id) => {
            let nsg = arm.get(id, super::NETWORK_API).await?.unwrap_or(Json::Null);
            let mut rules: Vec<&Json> = nsg["properties"]["securityRules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["properties"]["direction"] == "Inbound")
                .collect();
            rules.sort_by_key(|r| r["properties"]["priority"].as_i64().unwrap_or(0));
            rules
                .iter()
                .map(|r| {
                    let port = r["properties"]["destinationPortRange"]
                        .as_str()
                        .and_then(|p| p.parse::<i64>().ok());
                    json!({"port": port, "from": r["properties"]["sourceAddressPrefix"]})
                })
                .collect()
        }
        None => Vec::new(),
    };
    let principal = vm["identity"]["principalId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let scopes: BTreeSet<String> = principal::grants(prior)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let held = if principal.is_empty() {
        BTreeSet::new()
    } else {
        principal::assigned(arm, &principal, &scopes).await?
    };
    let props = &vm["properties"];
    let image = &props["storageProfile"]["imageReference"];
    let keys = &props["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"];
    let id = vm["id"].as_str().unwrap_or(vm_id);
    let group = id.split('/').nth(4).unwrap_or("");
    Ok(Some(Live {
        properties: Value::from_json(&json!({
            "name": vm["name"],
            "resource_group": group,
            "location": vm["location"],
            "size": props["hardwareProfile"]["vmSize"],
            "image": {"publisher": image["publisher"], "offer": image["offer"], "sku": image["sku"], "version": image["version"]},
            "admin_username": props["osProfile"]["adminUsername"],
            "ssh_public_key": keys[0]["keyData"],
            "subnet_id": ip_config["subnet"]["id"],
            "public_ip": !ip_config["publicIPAddress"]["id"].is_null(),
            "inbound": inbound,
            "identity": {"system_assigned": vm["identity"]["type"].as_str().is_some_and(|t| t.contains("SystemAssigned"))},
            "role_assignments": held.iter().map(|(r, s)| json!({"role": r, "scope": s})).collect::<Vec<_>>(),
            "tags": vm.get("tags").cloned().unwrap_or(json!({})),
        })),
        outputs: outputs(
            id,
            &principal,
            ip_config["privateIPAddress"].as_str().unwrap_or(""),
            public_ip.as_deref(),
        ),
    }))
    .map(|live| live.map(|mut l| {
        // ARM never returns customData: it reads as last applied.
        if let Value::Map(m) = &mut l.properties {
            m.insert("custom_data".into(), prior.get("custom_data").clone());
        }
        l
    }))
}

/// Size, tags, identity, role assignments, the public IP and inbound rules in place.
pub async fn update(
    arm: &Arm,
    vm_id: &str,
    prior: &Value,
    prior_outputs: &Value,
    p: &Value,
) -> Result<Applied, ProviderError> {
    let mut patch =
        json!({"tags": tags(p), "properties": {"hardwareProfile": {"vmSize": text(p, "size")}}});
    patch["identity"] = json!({"type": if system_assigned(p) { "SystemAssigned" } else { "None" }});
    let vm = arm.write(Method::PATCH, vm_id, COMPUTE_API, &patch).await?;
    let principal = vm["identity"]["principalId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !principal.is_empty() {
        let before = principal::grants(prior);
        let after = principal::grants(p);
        principal::assign(
            arm,
            &principal,
            "ServicePrincipal",
            &after.difference(&before).cloned().collect(),
            &before.difference(&after).cloned().collect(),
        )
        .await?;
    }
    let network_changed = !prior.get("public_ip").same_as(p.get("public_ip"))
        || !prior.get("inbound").same_as(p.get("inbound"))
        || !prior.get("tags").same_as(p.get("tags"));
    if network_changed {
        put_network(arm, vm_id, p).await?;
        remove_unwanted(arm, vm_id, p).await?;
    }
    let (_, public_ip) = addresses(arm, vm_id).await?;
    let mut outputs = prior_outputs.clone();
    if let Value::Map(m) = &mut outputs {
        m.insert("principal_id".into(), Value::str(principal));
        m.insert("public_ip_address".into(), public_ip.into());
    }
    Ok(Applied {
        remote_id: vm_id.to_string(),
        outputs,
    })
}

/// Role assignments, the VM (its OS disk goes with it), then its NIC.
pub async fn delete(arm: &Arm, vm_id: &str, prior: &Value) -> Result<(), ProviderError> {
    if let Some(live) = read(arm, vm_id, prior).await? {
        let principal = live
            .outputs
            .get("principal_id")
            .as_str()
            .unwrap_or("")
            .to_string();
        if !principal.is_empty() {
            principal::assign(
                arm,
                &principal,
                "ServicePrincipal",
                &BTreeSet::new(),
                &principal::grants(&live.properties),
            )
            .await?;
        }
    }
    arm.delete(vm_id, COMPUTE_API).await?;
    arm.delete(&nic_id(vm_id), super::NETWORK_API).await?;
    arm.delete(&public_ip_id(vm_id), super::NETWORK_API).await?;
    arm.delete(&nsg_id(vm_id), super::NETWORK_API).await
}
