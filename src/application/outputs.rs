//! `converge output`: the outputs the last apply recorded, read from state (no cloud call);
//! a sensitive one revealed only on request, and only when state can give its value again.

use super::{Error, Settings, session};
use crate::model::Value;
use crate::plan::outputs::{StateLookup, evaluate};
use crate::state::StoredOutput;

/// One output as `converge output` prints it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// Its name.
    pub name: String,
    /// Its value; `None` for a sensitive output not revealed.
    pub value: Option<Value>,
    /// Whether it is sensitive.
    pub sensitive: bool,
    /// What it is.
    pub description: Option<String>,
}

/// The recorded outputs of the environment (only `name` when given). With `show_sensitive`,
/// sensitive values are recomputed from state through the files' expressions: state keeps
/// only digests of secrets, so an output whose value is a secret (or changed in the files
/// since the last apply) cannot be shown, and says so.
pub async fn read(
    s: &Settings,
    name: Option<&str>,
    show_sensitive: bool,
) -> Result<Vec<Shown>, Error> {
    let env_name = session::env_name(s)?;
    let store = session::open_state(s, &env_name).await?;
    let mut recorded = store.outputs().await?;
    if let Some(name) = name {
        let known: Vec<String> = recorded.iter().map(|o| o.name.clone()).collect();
        recorded.retain(|o| o.name == name);
        if recorded.is_empty() {
            return Err(Error::Usage(format!(
                "no output `{name}` in the state of {env_name} ({}); outputs are recorded by apply",
                if known.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has {}", known.join(", "))
                }
            )));
        }
    }
    let revealed = if show_sensitive && recorded.iter().any(|o| o.sensitive) {
        let env = session::load(s, &env_name)?;
        let rows = store.resources().await?;
        evaluate(&env.outputs, &StateLookup::new(&rows))
    } else {
        Vec::new()
    };
    recorded
        .into_iter()
        .map(|o| shown(o, show_sensitive, &revealed, &env_name))
        .collect()
}

fn shown(
    o: StoredOutput,
    show_sensitive: bool,
    revealed: &[StoredOutput],
    env: &str,
) -> Result<Shown, Error> {
    let value = if !o.sensitive {
        Some(o.value)
    } else if !show_sensitive {
        None
    } else {
        let again = revealed.iter().find(|r| r.name == o.name).map(|r| &r.value);
        match again {
            Some(v) if v.digests().is_empty() && !v.contains_unknown() && v.same_as(&o.value) => {
                Some(Value::from_json(&v.to_plain_json()))
            }
            _ => {
                return Err(Error::Refused(format!(
                    "output `{}` of {env} is sensitive and its value cannot be recomputed from state: state keeps only a digest of each secret (or the output changed in the files since the last apply)",
                    o.name
                )));
            }
        }
    };
    Ok(Shown {
        name: o.name,
        value,
        sensitive: o.sensitive,
        description: o.description,
    })
}
