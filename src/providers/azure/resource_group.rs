//! `azure.resource_group`: a resource group (ARM, Microsoft.Resources).

use serde_json::{Value as Json, json};

use super::{ArmKind, RESOURCES_API, tags_value, text};
use crate::kinds::{Handler, Kind};
use crate::model::Value;
use crate::model::schema::{KindSchema, Output, PriceRule, Prop, STRING, TAGS, no_rules};
use crate::providers::Live;

/// How it maps to ARM.
const ARM: ArmKind = ArmKind {
    api_version: RESOURCES_API,
    collection: None,
    body,
    live: group_live,
    patch_update: false,
};

/// The registration of `azure.resource_group`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Azure(&ARM),
    deploy: None,
};

/// `azure.resource_group`: an Azure resource group.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "azure.resource_group",
    doc: "An Azure resource group.",
    props: &[
        Prop::new("name", STRING, "Resource group name.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region, e.g. westeurope.")
            .required()
            .replace(),
        TAGS,
    ],
    outputs: &[Output {
        name: "id",
        ty: STRING,
    }],
    price: PriceRule::Free,
    import_id: "resource group id (`/subscriptions/…/resourceGroups/NAME`)",
    rules: no_rules,
    rollout_summary: None,
};

/// The PUT body of a resource group.
fn body(p: &Value) -> Json {
    json!({ "location": text(p, "location"), "tags": p.get("tags").to_plain_json() })
}

/// A resource group as read.
fn group_live(g: &Json) -> Live {
    Live {
        properties: Value::from_json(&json!({
            "name": g["name"], "location": g["location"],
        }))
        .with_entry("tags", tags_value(g)),
        outputs: Value::from_json(&json!({ "id": g["id"] })),
    }
}
