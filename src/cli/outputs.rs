//! `converge output [NAME]`: the outputs the last apply recorded, as `terraform output` prints
//! them (`--format text|json|raw`).

use clap::Args;

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::outputs::{Shown, read};
use crate::model::SENSITIVE_TEXT;

/// Flags of `output`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Only this output (`--format raw` needs one).
    name: Option<String>,
    /// Print sensitive values too (recomputed from state; refused when state keeps only a
    /// digest of the value).
    #[arg(long)]
    show_sensitive: bool,
}

pub(super) async fn run(g: &GlobalArgs, args: &OutputArgs) -> Result<i32, CliError> {
    if !matches!(g.format, Format::Text | Format::Json | Format::Raw) {
        return Err(CliError::Usage(
            "output prints --format text (the default), json or raw".into(),
        ));
    }
    if g.format == Format::Raw && args.name.is_none() {
        return Err(CliError::Usage(
            "--format raw prints one output: name it (`converge output NAME --format raw`)".into(),
        ));
    }
    let outputs = read(&g.settings, args.name.as_deref(), args.show_sensitive).await?;
    match (g.format, &args.name) {
        (Format::Raw, _) => output::print(&raw(&outputs[0])?),
        (Format::Json, Some(_)) => output::json(&value_json(&outputs[0])),
        (Format::Json, None) => output::json(&serde_json::Value::Object(
            outputs
                .iter()
                .map(|o| {
                    (
                        o.name.clone(),
                        serde_json::json!({
                            "value": value_json(o),
                            "sensitive": o.sensitive,
                            "description": o.description,
                        }),
                    )
                })
                .collect(),
        )),
        (_, Some(_)) => output::print(&format!("{}\n", text(&outputs[0]))),
        (_, None) => {
            let mut out = String::new();
            for o in &outputs {
                out.push_str(&format!("{} = {}\n", o.name, text(o)));
            }
            output::print(&out);
        }
    }
    Ok(EXIT_OK)
}

/// The value as JSON; `null` for a sensitive one not revealed.
fn value_json(o: &Shown) -> serde_json::Value {
    o.value
        .as_ref()
        .map_or(serde_json::Value::Null, |v| v.to_display_json())
}

/// The value as one line of JSON, `(sensitive)` for one not revealed.
fn text(o: &Shown) -> String {
    match &o.value {
        Some(v) => crate::model::grammar::escape_controls(&v.to_display_json().to_string()),
        None => SENSITIVE_TEXT.to_string(),
    }
}

/// The value bare, for shell scripts: a string without quotes, a number or a boolean, no
/// newline after it (as `terraform output -raw`).
fn raw(o: &Shown) -> Result<String, CliError> {
    let Some(v) = &o.value else {
        return Err(CliError::Usage(format!(
            "output `{}` is sensitive: add --show-sensitive to print it",
            o.name
        )));
    };
    match v.to_display_json() {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(CliError::Usage(format!(
            "output `{}` is not a string, number or boolean: --format raw prints only those (use --format json)",
            o.name
        ))),
    }
}
