//! `converge validate`: parse, resolve and type-check every environment, or --env.

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::session;
use crate::config::{self, ConfigErrors};

pub(super) async fn run(g: &GlobalArgs) -> Result<i32, CliError> {
    let names = match &g.env {
        Some(e) => vec![e.clone()],
        None => config::list_environments(&g.root).map_err(|e| {
            CliError::Usage(format!(
                "cannot list {}: {e}",
                g.root.join("environments").display()
            ))
        })?,
    };
    if names.is_empty() {
        return Err(CliError::Usage(format!(
            "no environments/*.yaml under {}",
            g.root.display()
        )));
    }
    let mut all = ConfigErrors { errors: Vec::new() };
    let mut summary = Vec::new();
    for name in &names {
        match session::load_without_secrets(&g.settings, name) {
            Ok(env) => {
                for w in &env.warnings {
                    output::status(&format!("warning: {w}"));
                }
                for n in &env.notes {
                    output::status(&format!("note: {n}"));
                }
                if !env.unset_secrets.is_empty() {
                    output::status(&format!(
                        "note: {name}: sensitive variables without a value, checked as unknown (plan and apply need them): {}",
                        env.unset_secrets.join(", ")
                    ));
                }
                summary.push(serde_json::json!({"environment": name, "valid": true, "resources": env.resources.len(), "warnings": env.warnings, "unset_secrets": env.unset_secrets}))
            }
            Err(CliError::Config(errors)) => {
                summary.push(serde_json::json!({
                    "environment": name,
                    "valid": false,
                    "errors": errors.errors.iter().map(|e| serde_json::json!({"message": e.message, "location": e.location})).collect::<Vec<_>>(),
                }));
                all.errors.extend(errors.errors);
            }
            Err(other) => return Err(other),
        }
    }
    if g.format == Format::Json {
        output::json(&summary);
    }
    if !all.errors.is_empty() {
        return Err(CliError::Config(all));
    }
    // The policies plan and apply will run: bad Rego is an error here too.
    let policies = crate::application::policy::load(&g.settings)?.map_or(0, |p| p.len());
    if g.format == Format::Text {
        if policies > 0 {
            output::print(&format!("policies: valid ({policies} files)\n"));
        }
        for s in &summary {
            output::print(&format!(
                "{}: valid ({} resources)\n",
                s["environment"].as_str().unwrap_or(""),
                s["resources"]
            ));
        }
    }
    Ok(EXIT_OK)
}
