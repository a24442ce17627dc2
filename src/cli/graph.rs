//! `converge graph`: an environment's dependency graph as DOT (the default), Mermaid or JSON;
//! with `--plan`, each resource marked with what the plan does to it.

use clap::Args;

use super::{CliError, EXIT_OK, Format, GlobalArgs, output};
use crate::application::plan::refresh_and_plan;
use crate::application::session;
use crate::plan::diagram::GraphView;

/// Flags of `graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Refresh and plan first (reads the cloud, as `plan` does), and mark each resource with
    /// its action: create, update, replace, delete or no_op.
    #[arg(long)]
    plan: bool,
}

pub(super) async fn run(g: &GlobalArgs, args: &GraphArgs) -> Result<i32, CliError> {
    if !matches!(
        g.format,
        Format::Text | Format::Dot | Format::Mermaid | Format::Json
    ) {
        return Err(CliError::Usage(
            "graph prints --format dot (the default), mermaid or json".into(),
        ));
    }
    let name = session::env_name(&g.settings)?;
    let view = if args.plan {
        let env = session::load(&g.settings, &name)?;
        let store = session::open_state(&g.settings, &name).await?;
        let registry = session::registry(&g.settings, &env).await;
        let planned =
            refresh_and_plan(&g.settings, &env, store.as_ref(), &registry, &[], false).await?;
        GraphView::of(&env).with_plan(&planned.plan)
    } else {
        GraphView::of(&session::load_without_secrets(&g.settings, &name)?)
    };
    match g.format {
        Format::Json => output::json(&view),
        Format::Mermaid => output::print(&view.mermaid()),
        _ => output::print(&view.dot()),
    }
    Ok(EXIT_OK)
}
