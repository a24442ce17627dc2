//! `azure.virtual_machine`: a Linux VM (SSH key only, no password) with the network interface
//! it owns, a system-assigned managed identity, and role assignments for that identity.

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
    Default, KindSchema, Output, PriceRule, Prop, STRING, TAGS, Type, no_rules,
};
use crate::providers::ReadItem;
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};
use futures::{StreamExt, stream};

/// The registration of `azure.virtual_machine`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Azure(&VirtualMachine),
};

const VM_IMAGE: &[Prop] = &[
    Prop::new("publisher", STRING, "Image publisher, e.g. Canonical.").required(),
    Prop::new("offer", STRING, "Image offer, e.g. ubuntu-24_04-lts.").required(),
    Prop::new("sku", STRING, "Image SKU, e.g. server.").required(),
    Prop::new("version", STRING, "Image version.").default(Default::Str("latest")),
];

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
    ],
    price: PriceRule::AzureVmSize,
    import_id: "VM resource id",
    rules: no_rules,
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
    arm.write(
        Method::PUT,
        &nic,
        super::NETWORK_API,
        &json!({
            "location": text(p, "location"),
            "tags": tags(p),
            "properties": {"ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {"subnet": {"id": text(p, "subnet_id")}, "privateIPAllocationMethod": "Dynamic"},
            }]},
        }),
    )
    .await?;
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
    let private_ip = private_ip(arm, &nic).await?;
    Ok(Applied {
        remote_id: vm_id.to_string(),
        outputs: outputs(vm_id, &principal, &private_ip),
    })
}

fn outputs(id: &str, principal: &str, ip: &str) -> Value {
    Value::from_json(&json!({"id": id, "principal_id": principal, "private_ip": ip}))
}

async fn private_ip(arm: &Arm, nic: &str) -> Result<String, ProviderError> {
    Ok(arm
        .get(nic, super::NETWORK_API)
        .await?
        .and_then(|n| {
            n["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default())
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
            "identity": {"system_assigned": vm["identity"]["type"].as_str().is_some_and(|t| t.contains("SystemAssigned"))},
            "role_assignments": held.iter().map(|(r, s)| json!({"role": r, "scope": s})).collect::<Vec<_>>(),
            "tags": vm.get("tags").cloned().unwrap_or(json!({})),
        })),
        outputs: outputs(
            id,
            &principal,
            ip_config["privateIPAddress"].as_str().unwrap_or(""),
        ),
    }))
}

/// Size, tags, identity and role assignments in place.
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
    let mut outputs = prior_outputs.clone();
    if let Value::Map(m) = &mut outputs {
        m.insert("principal_id".into(), Value::str(principal));
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
    arm.delete(&nic_id(vm_id), super::NETWORK_API).await
}
