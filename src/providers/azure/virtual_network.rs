//! `azure.virtual_network`: a virtual network with its subnets (ARM, Microsoft.Network), read
//! with one list call per resource group.

use serde_json::{Value as Json, json};

use super::{ArmKind, NETWORK_API, group_of, tags_value, text};
use crate::kinds::{Handler, Kind};
use crate::model::Value;
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, STRING_MAP, STRINGS, TAGS, Type, no_rules,
};
use crate::providers::Live;

/// How it maps to ARM.
const ARM: ArmKind = ArmKind {
    api_version: NETWORK_API,
    collection: Some(COLLECTION),
    body,
    live: network_live,
    patch_update: false,
};

/// The registration of `azure.virtual_network`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Azure(&ARM),
    deploy: None,
};

const AZURE_SUBNET: &[Prop] = &[
    Prop::new("name", STRING, "Subnet name.").required(),
    Prop::new("address_prefix", STRING, "Its CIDR block.").required(),
];

const AZURE_SUBNET_TYPE: Type = Type::Object(AZURE_SUBNET);

/// `azure.virtual_network`: a virtual network with its subnets.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "azure.virtual_network",
    doc: "An Azure virtual network and its subnets.",
    props: &[
        Prop::new("name", STRING, "Virtual network name.")
            .required()
            .replace(),
        Prop::new("resource_group", STRING, "Resource group it lives in.")
            .required()
            .replace(),
        Prop::new("location", STRING, "Azure region.")
            .required()
            .replace(),
        Prop::new("address_space", STRINGS, "CIDR blocks of the network.")
            .required()
            .unordered(),
        Prop::new(
            "subnets",
            Type::List(&AZURE_SUBNET_TYPE),
            "Subnets, each with a name and a CIDR block inside the address space.",
        )
        .default(Default::EmptyList),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "id",
            ty: STRING,
        },
        Output {
            name: "subnet_ids",
            ty: STRING_MAP,
        },
    ],
    price: PriceRule::Free,
    import_id: "virtual network resource id",
    rules: no_rules,
    rollout_summary: None,
};

/// The ARM collection of virtual networks below a resource group.
const COLLECTION: &str = "Microsoft.Network/virtualNetworks";

/// The PUT body of a virtual network.
fn body(p: &Value) -> Json {
    json!({
        "location": text(p, "location"),
        "tags": p.get("tags").to_plain_json(),
        "properties": {
            "addressSpace": { "addressPrefixes": p.get("address_space").to_plain_json() },
            "subnets": p.get("subnets").as_list().unwrap_or_default().iter().map(|s| json!({
                "name": text(s, "name"),
                "properties": { "addressPrefix": text(s, "address_prefix") },
            })).collect::<Vec<_>>(),
        },
    })
}

/// A virtual network as read.
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
