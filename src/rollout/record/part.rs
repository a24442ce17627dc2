//! A target's own part of a rollout record: typed by the target that writes it, stored as
//! JSON under a `type` tag naming that target, and read back only by it. A part that does not
//! decode is an error, never an empty default.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The target-specific details a rollout keeps (ECS task sets, a host app's hosts).
pub trait TargetRecord: Serialize + DeserializeOwned {
    /// The tag naming the target in the record (`ecs`, `host`).
    const TAG: &'static str;
}

/// Why a record's target part cannot be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The record holds no part yet (its target never began), or another target's.
    #[error("the rollout record holds {found} part, not the {expected} part this target keeps")]
    WrongTarget {
        /// The tag this target reads.
        expected: &'static str,
        /// What the record holds (`no`, or `the TAG`).
        found: String,
    },
    /// The part is this target's but does not decode (edited by hand).
    #[error("the rollout record's {tag} part cannot be read: {reason}")]
    Undecodable {
        /// The target's tag.
        tag: &'static str,
        /// What serde said.
        reason: String,
    },
    /// The part cannot be written as JSON.
    #[error("the rollout record's {tag} part cannot be written: {reason}")]
    Unwritable {
        /// The target's tag.
        tag: &'static str,
        /// What serde said.
        reason: String,
    },
}

/// The target's part of a record: `{"type": TAG, …fields}`, or null before the target began.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TargetPart(serde_json::Value);

impl TargetPart {
    /// The part as the target wrote it, tag included (what `rollout status` shows).
    pub fn raw(&self) -> &serde_json::Value {
        &self.0
    }

    /// The tag of the target that wrote it, if any did.
    pub fn tag(&self) -> Option<&str> {
        self.0.get("type").and_then(|t| t.as_str())
    }

    /// Decodes the part as `T`: an error when it is absent, another target's, or malformed.
    pub fn get<T: TargetRecord>(&self) -> Result<T, RecordError> {
        match self.tag() {
            Some(tag) if tag == T::TAG => {}
            found => {
                return Err(RecordError::WrongTarget {
                    expected: T::TAG,
                    found: found.map_or_else(|| "no".to_string(), |t| format!("the {t}")),
                });
            }
        }
        let mut fields = self.0.clone();
        if let Some(map) = fields.as_object_mut() {
            map.remove("type");
        }
        serde_json::from_value(fields).map_err(|e| RecordError::Undecodable {
            tag: T::TAG,
            reason: e.to_string(),
        })
    }

    /// The part holding `details`, tagged as `T`'s.
    pub fn of<T: TargetRecord>(details: &T) -> Result<TargetPart, RecordError> {
        let unwritable = |reason: String| RecordError::Unwritable {
            tag: T::TAG,
            reason,
        };
        let value = serde_json::to_value(details).map_err(|e| unwritable(e.to_string()))?;
        let serde_json::Value::Object(mut map) = value else {
            return Err(unwritable("its details are not a mapping".into()));
        };
        map.insert("type".into(), serde_json::Value::from(T::TAG));
        Ok(TargetPart(serde_json::Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Colours {
        live: String,
    }
    impl TargetRecord for Colours {
        const TAG: &'static str = "colours";
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Other {}
    impl TargetRecord for Other {
        const TAG: &'static str = "other";
    }

    #[test]
    fn a_part_reads_back_as_written_and_never_as_a_default() {
        let part = TargetPart::of(&Colours {
            live: "blue".into(),
        })
        .unwrap();
        assert_eq!(part.tag(), Some("colours"));
        assert_eq!(part.get::<Colours>().unwrap().live, "blue");
        assert!(matches!(
            part.get::<Other>(),
            Err(RecordError::WrongTarget { found, .. }) if found == "the colours"
        ));
        assert!(matches!(
            TargetPart::default().get::<Colours>(),
            Err(RecordError::WrongTarget { found, .. }) if found == "no"
        ));
        let broken = TargetPart(serde_json::json!({"type": "colours", "live": 7}));
        assert!(matches!(
            broken.get::<Colours>(),
            Err(RecordError::Undecodable { tag: "colours", .. })
        ));
    }
}
