//! Drift: what changed behind converge's back, live state against the last applied state
//! (DESIGN §3 `converge drift`). Pure: the refresh has already read the live side.

use serde::Serialize;

use super::changed_keys;
use crate::kinds;
use crate::model::{LiveMap, ResourceState};

/// One drifted resource.
#[derive(Debug, Serialize)]
pub struct Drifted {
    /// Its address.
    pub address: String,
    /// Its kind.
    pub kind: String,
    /// `changed`, `deleted`, or `interrupted` (an apply stopped mid-operation on it).
    pub status: &'static str,
    /// The fields that differ (for `changed`).
    pub fields: Vec<Field>,
}

/// One drifted field, values in display form.
#[derive(Debug, Serialize)]
pub struct Field {
    /// The property.
    pub name: String,
    /// As last applied.
    pub last_applied: serde_json::Value,
    /// As read now.
    pub live: serde_json::Value,
}

/// Every resource in `stored` whose live state differs from what was last applied, is gone,
/// or was left mid-operation by an interrupted apply. Kinds this release does not know are
/// skipped.
pub fn compute(stored: &[ResourceState], live: &LiveMap) -> Vec<Drifted> {
    let mut drifted = Vec::new();
    for s in stored {
        let Some(kind) = kinds::lookup(&s.kind) else {
            continue;
        };
        if s.status.in_flight() {
            drifted.push(Drifted {
                address: s.address.to_string(),
                kind: s.kind.clone(),
                status: "interrupted",
                fields: Vec::new(),
            });
            continue;
        }
        match live.get(&s.address).cloned().flatten() {
            None => drifted.push(Drifted {
                address: s.address.to_string(),
                kind: s.kind.clone(),
                status: "deleted",
                fields: Vec::new(),
            }),
            Some(l) => {
                let last = kind.normalize(&s.properties);
                let now = kind.normalize(&l.properties).with_sensitivity_of(&last);
                let fields: Vec<Field> = changed_keys(&last, &now)
                    .into_iter()
                    .map(|k| Field {
                        last_applied: last.get(&k).to_display_json(),
                        live: now.get(&k).to_display_json(),
                        name: k,
                    })
                    .collect();
                if !fields.is_empty() {
                    drifted.push(Drifted {
                        address: s.address.to_string(),
                        kind: s.kind.clone(),
                        status: "changed",
                        fields,
                    });
                }
            }
        }
    }
    drifted
}
