//! The request validator the local Azure test server uses: every official example request body
//! of the operations converge calls validates, and the mistakes a client makes are caught with
//! the path of the offending value.

mod support;

use serde_json::json;
use support::swagger::Specs;

const ACR: &str = "specification/containerregistry/resource-manager/Microsoft.ContainerRegistry/stable/2023-07-01/containerregistry.json";
const RESOURCES: &str =
    "specification/resources/resource-manager/Microsoft.Resources/stable/2024-03-01/resources.json";
const REGISTRY: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/reg";
const GROUP: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg";

fn example(spec: &str, name: &str) -> serde_json::Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/azure-specs/arm")
        .join(spec)
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(dir).unwrap()).unwrap()
}

#[test]
fn official_examples_validate() {
    let specs = Specs::load();
    let create = example(ACR, "RegistryCreate.json");
    specs
        .validate_body(ACR, "PUT", REGISTRY, &create["parameters"]["registry"])
        .unwrap();
    let update = example(ACR, "RegistryUpdate.json");
    specs
        .validate_body(
            ACR,
            "PATCH",
            REGISTRY,
            &update["parameters"]["registryUpdateParameters"],
        )
        .unwrap();
    specs
        .validate_body(
            RESOURCES,
            "PUT",
            GROUP,
            &json!({"location": "westeurope", "tags": {"team": "platform"}}),
        )
        .unwrap();
}

#[test]
fn mistakes_are_rejected_with_their_path() {
    let specs = Specs::load();
    let errors = |body: serde_json::Value| {
        specs
            .validate_body(ACR, "PUT", REGISTRY, &body)
            .expect_err("the spec rejects this body")
            .join("\n")
    };
    let missing_sku = errors(json!({"location": "westus"}));
    assert!(
        missing_sku.contains("$: required property `sku` is missing"),
        "{missing_sku}"
    );
    // `sku.name` is an extensible enum in the spec (modelAsString), `identity.type` is closed.
    let bad_identity = errors(
        json!({"location": "westus", "sku": {"name": "Basic"}, "identity": {"type": "Everyone"}}),
    );
    assert!(
        bad_identity.contains("$.identity.type: \"Everyone\" is not one of"),
        "{bad_identity}"
    );
    let typo = errors(
        json!({"location": "westus", "sku": {"name": "Basic"}, "properties": {"adminUserEnable": true}}),
    );
    assert!(
        typo.contains("$.properties: unknown property `adminUserEnable`"),
        "{typo}"
    );
    let wrong_type = errors(
        json!({"location": "westus", "sku": {"name": "Basic"}, "properties": {"adminUserEnabled": "yes"}}),
    );
    assert!(
        wrong_type.contains("$.properties.adminUserEnabled: expected boolean"),
        "{wrong_type}"
    );
    let tags = errors(json!({"location": "westus", "sku": {"name": "Basic"}, "tags": {"team": 7}}));
    assert!(tags.contains("$.tags.team: expected string"), "{tags}");
    assert!(
        specs
            .body_schema(ACR, "PUT", "/subscriptions/x/nothing")
            .is_none()
    );
}
