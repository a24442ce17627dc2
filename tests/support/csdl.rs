//! Checks Microsoft Graph request bodies against the Graph v1.0 CSDL extract in
//! `tests/azure-specs/graph`: every property must exist on the entity type (or its base types)
//! unless the type is open, with the declared primitive type; non-nullable properties are
//! required on create.

use std::collections::BTreeMap;

use serde_json::Value;

/// One entity type's declared properties: name → (EDM type, nullable).
struct Entity {
    base: Option<String>,
    open: bool,
    properties: BTreeMap<String, (String, bool)>,
}

/// The entity types of the extract.
pub struct Csdl {
    entities: BTreeMap<String, Entity>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_string())
}

impl Csdl {
    /// Loads `tests/azure-specs/graph/msgraph-v1.0-cleanMetadata-subset.xml`.
    pub fn load() -> Csdl {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/azure-specs/graph/msgraph-v1.0-cleanMetadata-subset.xml");
        let xml = std::fs::read_to_string(path).unwrap();
        let mut entities = BTreeMap::new();
        let mut rest = xml.as_str();
        while let Some(at) = rest.find("<EntityType ") {
            let block_start = &rest[at..];
            let end = block_start
                .find("</EntityType>")
                .unwrap_or(block_start.len());
            let block = &block_start[..end];
            let head = &block[..block.find('>').unwrap_or(block.len())];
            let name = attr(head, "Name").unwrap_or_default();
            let mut properties = BTreeMap::new();
            for line in block.split("<Property ").skip(1) {
                let tag = &line[..line.find("/>").unwrap_or(line.len())];
                if let (Some(n), Some(t)) = (attr(tag, "Name"), attr(tag, "Type")) {
                    let nullable = attr(tag, "Nullable").as_deref() != Some("false");
                    properties.insert(n, (t, nullable));
                }
            }
            entities.insert(
                name,
                Entity {
                    base: attr(head, "BaseType")
                        .map(|b| b.trim_start_matches("graph.").to_string()),
                    open: attr(head, "OpenType").as_deref() == Some("true"),
                    properties,
                },
            );
            rest = &block_start[end..];
        }
        Csdl { entities }
    }

    fn property(&self, entity: &str, name: &str) -> Option<(String, bool)> {
        let e = self.entities.get(entity)?;
        e.properties
            .get(name)
            .cloned()
            .or_else(|| self.property(e.base.as_deref()?, name))
    }

    fn open(&self, entity: &str) -> bool {
        self.entities.get(entity).is_some_and(|e| e.open)
    }

    /// Problems with `body` as a create (`required`) or update of `entity`.
    pub fn check(&self, entity: &str, body: &Value, required: bool) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(map) = body.as_object() else {
            return vec![format!("{entity}: the body is not an object")];
        };
        if !self.entities.contains_key(entity) {
            return vec![format!("{entity} is not in the CSDL extract")];
        }
        for (k, v) in map {
            match self.property(entity, k) {
                None if self.open(entity) => {}
                None => errors.push(format!("{entity}: unknown property `{k}`")),
                Some((ty, _)) => {
                    let ok = match ty.as_str() {
                        "Edm.String" | "Edm.Guid" => v.is_string() || v.is_null(),
                        "Edm.Boolean" => v.is_boolean(),
                        "Collection(Edm.String)" => {
                            v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                        }
                        _ => true,
                    };
                    if !ok {
                        errors.push(format!("{entity}.{k}: expected {ty}, found {v}"));
                    }
                }
            }
        }
        if required && let Some(e) = self.entities.get(entity) {
            for (name, (_, nullable)) in &e.properties {
                if !nullable && name != "id" && !map.contains_key(name) {
                    errors.push(format!("{entity}: required property `{name}` is missing"));
                }
            }
        }
        errors
    }
}
