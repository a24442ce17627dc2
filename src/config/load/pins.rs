//! Version pins: in a property marked `pins_versions` (an ECS container's or a host app
//! service's `secrets`), a value
//! that is exactly `${R.arn}` of a kind with a `version_id` output is written
//! `${R.arn}:::${R.version_id}`, ECS's `valueFrom` for one version of a Secrets Manager secret.
//! A new version is then a new task definition, rolled out by the service's strategy, instead of
//! a value ECS would read only when some unrelated deploy starts new tasks.

use std::collections::BTreeMap;

use crate::config::DesiredResource;
use crate::model::schema::{KindSchema, Prop, Type};
use crate::model::{Address, Expr, Reference, Value};

/// The output a pinned reference adds.
pub const VERSION_OUTPUT: &str = "version_id";

/// Rewrites every pinnable reference in every resource's properties.
pub(super) fn pin_versions(resources: &mut BTreeMap<Address, DesiredResource>) {
    let kinds: BTreeMap<Address, &'static KindSchema> =
        resources.iter().map(|(a, r)| (a.clone(), r.kind)).collect();
    for r in resources.values_mut() {
        pin_object(r.kind.props, &mut r.properties, &kinds);
    }
}

fn pin_object(props: &[Prop], expr: &mut Expr, kinds: &BTreeMap<Address, &KindSchema>) {
    let Expr::Map(fields) = expr else { return };
    for prop in props {
        let Some(field) = fields.get_mut(prop.name) else {
            continue;
        };
        if prop.pins_versions {
            match &mut *field {
                Expr::Map(entries) => {
                    for value in entries.values_mut() {
                        pin(value, kinds);
                    }
                }
                one => pin(one, kinds),
            }
        }
        pin_typed(&prop.ty, field, kinds);
    }
}

fn pin_typed(ty: &Type, expr: &mut Expr, kinds: &BTreeMap<Address, &KindSchema>) {
    match (ty, expr) {
        (Type::Object(props), e) => pin_object(props, e, kinds),
        (Type::Map(inner) | Type::Keyed(_, inner), Expr::Map(entries)) => {
            for item in entries.values_mut() {
                pin_typed(inner, item, kinds);
            }
        }
        (Type::List(inner), Expr::List(items)) => {
            for item in items {
                pin_typed(inner, item, kinds);
            }
        }
        _ => {}
    }
}

fn pin(expr: &mut Expr, kinds: &BTreeMap<Address, &KindSchema>) {
    let Expr::Ref(r) = expr else { return };
    let versioned = kinds
        .get(&r.address)
        .is_some_and(|k| k.outputs.iter().any(|o| o.name == VERSION_OUTPUT));
    if r.attr != "arn" || !r.path.is_empty() || !versioned {
        return;
    }
    let version = Reference {
        address: r.address.clone(),
        attr: VERSION_OUTPUT.to_string(),
        path: Vec::new(),
    };
    *expr = Expr::Template(vec![
        Expr::Ref(r.clone()),
        Expr::Literal(Value::str(":::")),
        Expr::Ref(version),
    ]);
}
