//! `azure.container_registry`: an Azure Container Registry (ARM, Microsoft.ContainerRegistry),
//! read with one list call per resource group.

use serde_json::{Value as Json, json};

use super::{ArmKind, REGISTRY_API, group_of, tags_value, text};
use crate::kinds::{Handler, Kind};
use crate::model::Value;
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, TAGS, Type, no_rules,
};
use crate::providers::Live;

/// How it maps to ARM.
const ARM: ArmKind = ArmKind {
    api_version: REGISTRY_API,
    collection: Some(COLLECTION),
    body,
    live: registry_live,
    patch_update: true,
};

/// The registration of `azure.container_registry`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Azure(&ARM),
    deploy: None,
};

/// `azure.container_registry`: an Azure Container Registry.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "azure.container_registry",
    doc: "An Azure Container Registry.",
    props: &[
        Prop::new(
            "name",
            STRING,
            "Registry name (globally unique, alphanumeric).",
        )
        .required()
        .replace(),
        Prop::new("resource_group", STRING, "Resource group it lives in.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region.")
            .required()
            .replace(),
        Prop::new(
            "sku",
            Type::Enum(&["Basic", "Standard", "Premium"]),
            "Service tier.",
        )
        .default(Default::Str("Basic")),
        Prop::new(
            "admin_user_enabled",
            Type::Bool,
            "The admin user (a password login); off is safer.",
        )
        .default(Default::Bool(false)),
        Prop::new(
            "public_network_access",
            Type::Enum(&["Enabled", "Disabled"]),
            "Reachable from the internet.",
        )
        .default(Default::Str("Enabled")),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "login_server",
            ty: STRING,
        },
    ],
    price: PriceRule::AcrSku,
    import_id: "registry resource id",
    rules: no_rules,
    rollout_summary: None,
};

/// The ARM collection of registries below a resource group.
const COLLECTION: &str = "Microsoft.ContainerRegistry/registries";

/// The PUT body of a registry (PATCH takes it without `location`).
fn body(p: &Value) -> Json {
    json!({
        "location": text(p, "location"),
        "tags": p.get("tags").to_plain_json(),
        "sku": { "name": text(p, "sku") },
        "properties": {
            "adminUserEnabled": p.get("admin_user_enabled").as_bool().unwrap_or(false),
            "publicNetworkAccess": text(p, "public_network_access"),
        },
    })
}

/// A registry as read.
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
