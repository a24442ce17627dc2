//! `azure.virtual_machine`: a Linux VM (SSH key only, no password) with the network interface
//! it owns, a system-assigned managed identity, and role assignments for that identity.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value as Json, json};

use super::arm::Arm;
use super::principal;
use crate::model::Value;
use crate::providers::{Applied, Live, ProviderError};

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
