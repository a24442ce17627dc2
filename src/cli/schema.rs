//! `converge schema`: the JSON Schema of desired-state files, generated from the kind schemas.

use serde_json::{Value as Json, json};

use super::{CliError, EXIT_OK, output};
use crate::kinds;
use crate::model::schema::{Prop, Type};

/// Flags of `schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The JSON Schema of the input Rego policies judge (the plan's JSON with actor, commit
    /// and operation) instead of the desired-state files'.
    #[arg(long)]
    policy_input: bool,
}

pub(super) fn run(args: &SchemaArgs) -> Result<i32, CliError> {
    if args.policy_input {
        super::output::json(&crate::policy::input::schema());
        return Ok(EXIT_OK);
    }
    output::json(&document());
    Ok(EXIT_OK)
}

/// The JSON Schema (draft 2020-12) of `environments/*.yaml`; `$defs.module` covers module files.
pub fn document() -> Json {
    let resource_variants: Vec<Json> = kinds::schemas()
        .map(|k| {
            json!({
                "type": "object",
                "description": k.doc,
                "additionalProperties": false,
                "required": ["type"],
                "properties": {
                    "type": {"const": k.kind},
                    "properties": object_schema(k.props),
                    "depends_on": {"type": "array", "items": {"type": "string"}},
                    "usage": {
                        "type": "object",
                        "description": "Figures for usage-based prices (cost estimates only).",
                        "additionalProperties": false,
                        "properties": {"storage_gb": {"type": "number", "description": "GB stored (aws.ecr_repository)."}},
                    },
                },
            })
        })
        .collect();
    let resources = json!({"type": "object", "additionalProperties": {"oneOf": resource_variants}});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "converge environment",
        "type": "object",
        "additionalProperties": false,
        "required": ["environment"],
        "properties": {
            "environment": {"type": "string"},
            "providers": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "aws": {"type": "object", "additionalProperties": false, "required": ["region"], "properties": {"region": {"type": "string"}}},
                    "azure": {"type": "object", "additionalProperties": false, "required": ["subscription_id"], "properties": {
                        "subscription_id": {"type": "string"},
                        "tenant_id": {"type": "string"},
                        "cloud": {"enum": ["public", "china", "usgovernment"]},
                        "endpoints": {"type": "object", "additionalProperties": false, "properties": {"resource_manager": {"type": "string"}, "graph": {"type": "string"}}},
                    }},
                },
            },
            "budget": {
                "type": "object",
                "description": "USD; a plan over either fails unless --allow-over-budget.",
                "additionalProperties": false,
                "properties": {"monthly": {"type": "number", "minimum": 0}, "max_increase": {"type": "number", "minimum": 0}},
            },
            "notify": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"webhook": {"type": "string", "description": "Receives a JSON POST per cost anomaly."}},
            },
            "promotion": {
                "type": "object",
                "description": "apply rolls out only images that completed a rollout in `from`, proven from its audit trail (--allow-unpromoted REASON overrides).",
                "additionalProperties": false,
                "required": ["from"],
                "properties": {"from": {"type": "string"}, "state_url": {"type": "string", "description": "Where that environment's state lives (default: this environment's backend)."}},
            },
            "removed": {
                "type": "array",
                "description": "Resources taken out of the files: with destroy: false apply removes each from state and keeps it in the cloud; destroy defaults to true (deleted).",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["from"],
                    "properties": {"from": {"type": "string", "description": "KEY or INSTANCE.KEY, no longer declared."}, "destroy": {"type": "boolean", "default": true}},
                },
            },
            "outputs": {
                "type": "object",
                "description": "Values `converge output` prints after apply.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["value"],
                    "properties": {
                        "value": {"description": "Any value; references like \"${lb.dns_name}\"."},
                        "description": {"type": "string"},
                        "sensitive": {"type": "boolean", "default": false, "description": "Printed only with --show-sensitive; required for a value holding a secret."},
                    },
                },
            },
            "moved": {
                "type": "array",
                "description": "Renames carried over in state instead of a delete and a create (Terraform's moved blocks); chains resolve.",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "string", "description": "The old KEY, INSTANCE.KEY or module.INSTANCE, no longer declared."},
                        "to": {"type": "string", "description": "The new address, of the same sort."},
                    },
                },
            },
            "variables": {"type": "object"},
            "modules": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["source"],
                    "properties": {"source": {"type": "string"}, "inputs": {"type": "object"}},
                },
            },
            "resources": resources.clone(),
        },
        "$defs": {
            "module": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "inputs": {"type": "object", "additionalProperties": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "type": {"enum": ["string", "number", "bool", "list", "map", "any"]},
                            "default": {},
                            "sensitive": {"type": "boolean"},
                            "description": {"type": "string"},
                        },
                    }},
                    "resources": resources,
                    "outputs": {"type": "object"},
                    "moved": {
                        "type": "array",
                        "description": "Renames of this module's own resources (KEY to KEY), made in each instance.",
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["from", "to"],
                            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                        },
                    },
                },
            },
        },
    })
}

fn object_schema(props: &[Prop]) -> Json {
    let properties: serde_json::Map<String, Json> = props
        .iter()
        .map(|p| {
            let mut s = type_schema(&p.ty);
            let note = if p.replace {
                " Changing it replaces the resource."
            } else {
                ""
            };
            s["description"] = json!(format!("{}{note}", p.doc));
            (p.name.to_string(), s)
        })
        .collect();
    let required: Vec<&str> = props
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn type_schema(ty: &Type) -> Json {
    // Any value may also be a `${...}` reference, which is a string in the file.
    let reference = json!({"type": "string", "pattern": "\\$\\{"});
    let base = match ty {
        Type::String => return json!({"type": "string"}),
        Type::Text(g) => match g.pattern {
            Some(p) => json!({"type": "string", "pattern": p, "description": g.describe}),
            None => json!({"type": "string", "description": g.describe}),
        },
        Type::Number => json!({"type": "number"}),
        Type::Integer(min, max) => json!({"type": "integer", "minimum": min, "maximum": max}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Enum(values) => return json!({"anyOf": [{"enum": values}, reference]}),
        Type::List(inner) => json!({"type": "array", "items": type_schema(inner)}),
        Type::Map(inner) => json!({"type": "object", "additionalProperties": type_schema(inner)}),
        Type::Keyed(key, inner) => match key.pattern {
            Some(p) => {
                json!({"type": "object", "propertyNames": {"pattern": p}, "additionalProperties": type_schema(inner)})
            }
            None => json!({"type": "object", "additionalProperties": type_schema(inner)}),
        },
        Type::Object(props) => object_schema(props),
        Type::Any => return json!({}),
        Type::Duration => {
            return json!({"anyOf": [{"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$"}, reference]});
        }
        Type::CanaryStep => {
            return json!({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 100}, {"const": "pause"}, reference]});
        }
        Type::Percent => {
            return json!({"anyOf": [{"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$"}, {"type": "number"}, reference]});
        }
    };
    json!({"anyOf": [base, reference]})
}
