//! What `rollout undo` leaves behind: a pin on the service (the revision it went back to and
//! the one it went back from), which plan and apply honour until the files name other images.
//! Plain data, so the plan reads it without the rollout engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Address, Value};

/// Each pinned service's undo, by address.
pub type Pins = BTreeMap<Address, Undo>;

/// What `rollout undo` recorded: the service was sent back to an earlier revision, and apply
/// refuses to roll the files' revision out again until the files name other images (or
/// `apply --redo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    /// The task definition the service ran (and the files said) before the undo.
    pub from: String,
    /// Its images: while the files still name exactly these, apply refuses.
    pub from_images: Vec<String>,
    /// The task definition it went back to.
    pub to: String,
    /// Its images.
    pub to_images: Vec<String>,
    /// Who ran the undo.
    pub actor: String,
    /// When (RFC 3339).
    pub at: String,
}

impl Undo {
    /// `undone to rev N by ACTOR; the files still say rev M`.
    pub fn describe(&self) -> String {
        format!(
            "undone to rev {} by {} at {}; the files still say rev {}",
            revision_number(&self.to),
            self.actor,
            self.at,
            revision_number(&self.from)
        )
    }
}

/// The revision number of a task definition ARN (`…/api:7` → `7`).
pub fn revision_number(task_definition: &str) -> &str {
    task_definition
        .rsplit(':')
        .next()
        .unwrap_or(task_definition)
}

/// The images of a service's desired (or live) properties, in container order (a host
/// app's: its services' images, by service name).
pub fn images(properties: &Value) -> Vec<String> {
    if let Some(services) = properties.get("services").as_map() {
        return services
            .values()
            .filter_map(|s| s.get("image").reveal().as_str().map(str::to_string))
            .collect();
    }
    properties
        .get("task")
        .get("containers")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.get("image").reveal().as_str().map(str::to_string))
        .collect()
}

/// Whether `desired` still names the images the undo went back from (so the pin holds).
pub fn still_pinned(pin: &Undo, desired: &Value) -> bool {
    images(desired) == pin.from_images
}
