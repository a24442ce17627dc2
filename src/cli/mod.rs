//! The command line: flags become checked settings, each command lives in its own file, and
//! errors are rendered once here and mapped to exit codes.

mod apply;
mod audit;
mod backups;
mod cost;
mod drift;
mod github;
mod graph;
mod history;
mod lock;
mod logs;
mod markdown;
mod output;
mod outputs;
mod plan;
mod policy;
mod prices;
mod rollout;
pub(crate) mod schema;
mod state;
mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit code: success / no changes / intact.
pub const EXIT_OK: i32 = 0;
/// Exit code: an error, a failed step, a broken chain.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: changes present (`plan --detailed-exitcode`) or drift found.
pub const EXIT_CHANGES: i32 = 2;

/// converge: plan, apply, drift and audit for cloud infrastructure.
#[derive(Debug, Parser)]
#[command(name = "converge", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// What the use cases get: these flags, with how this command reaches hosts (set after
    /// parsing).
    #[arg(skip)]
    settings: crate::application::Settings,
    /// Project folder holding environments/ and modules/.
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    /// Environment to act on (environments/NAME.yaml).
    #[arg(short = 'e', long = "env", global = true)]
    env: Option<String>,
    /// Set a variable, overriding the file and CONVERGE_VAR_KEY (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", global = true)]
    vars: Vec<String>,
    /// Where state lives: postgres://..., a path or sqlite://PATH (default: ROOT/state/ENV.db).
    #[arg(
        long,
        env = "CONVERGE_STATE_URL",
        global = true,
        hide_env_values = true
    )]
    state_url: Option<String>,
    /// Let a plan over the environment's budget through, recording REASON in the audit trail.
    #[arg(long, value_name = "REASON", global = true)]
    allow_over_budget: Option<String>,
    /// Roll out images that have not completed a rollout in the environment this one is
    /// promoted from (`promotion.from`), recording REASON in the audit trail.
    #[arg(long, value_name = "REASON", global = true)]
    allow_unpromoted: Option<String>,
    /// Record the SSH host key of a host converge has not met yet (OpenSSH's accept-new;
    /// audited) instead of refusing it. A changed key is refused all the same.
    #[arg(long, global = true)]
    accept_new_host_keys: bool,
    /// How long to wait for another run's write lock (e.g. 30s, 5m); 0 fails at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration, global = true)]
    lock_timeout: std::time::Duration,
    /// Rego policies judge every plan and apply: `*.rego` under DIR (default ROOT/policies).
    #[arg(long = "policy", value_name = "DIR", global = true)]
    policy_dir: Option<PathBuf>,
    /// Read the policy files as committed at git REF (e.g. origin/main), so a pull request
    /// cannot loosen the policy that judges it.
    #[arg(long, value_name = "REF", global = true)]
    policy_ref: Option<String>,
    /// JSON and YAML documents the policies read as `data` (as conftest's --data).
    #[arg(long = "data", value_name = "DIR", global = true)]
    policy_data: Option<PathBuf>,
    /// The Rego package of the deny, violation, warn and exception rules (default main).
    #[arg(long, value_name = "NS", global = true)]
    namespace: Option<String>,
    /// Output format (`audit export` takes jsonl or csv, `graph` dot or mermaid, `output` raw).
    #[arg(long, value_enum, default_value = "text", global = true)]
    format: Format,
    /// Never colour output (also NO_COLOR).
    #[arg(long, global = true)]
    no_color: bool,
    /// Steps and cloud reads in flight at most.
    #[arg(long, default_value_t = 10, global = true)]
    parallelism: usize,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

impl GlobalArgs {
    /// The use cases' settings from these flags.
    fn settings(&self, hosts: crate::hosts::app::HostOptions) -> crate::application::Settings {
        crate::application::Settings {
            root: self.root.clone(),
            env: self.env.clone(),
            vars: self.vars.clone(),
            state_url: self.state_url.clone(),
            allow_over_budget: self.allow_over_budget.clone(),
            allow_unpromoted: self.allow_unpromoted.clone(),
            hosts,
            lock_timeout: self.lock_timeout,
            policy: crate::application::policy::PolicySettings {
                dir: self.policy_dir.clone(),
                git_ref: self.policy_ref.clone(),
                data: self.policy_data.clone(),
                namespace: self.namespace.clone(),
            },
            parallelism: self.parallelism.max(1),
            ui: std::sync::Arc::new(output::Terminal),
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// Stable JSON (documented in the README).
    Json,
    /// JSON lines (audit export).
    Jsonl,
    /// CSV (audit export).
    Csv,
    /// GitHub-flavoured Markdown (plan, apply, drift, rollout status, cost watch, audit log).
    Markdown,
    /// Graphviz DOT (graph).
    Dot,
    /// A Mermaid flowchart (graph).
    Mermaid,
    /// One value bare, for shell scripts (output NAME).
    Raw,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse, resolve and type-check every environment (or --env).
    Validate,
    /// Refresh live state and show what apply would change.
    Plan(plan::PlanArgs),
    /// Apply a fresh plan, or a saved plan file.
    Apply(apply::ApplyArgs),
    /// Compare live state with the last applied state.
    Drift,
    /// Delete everything the environment manages, dependents first.
    Destroy(apply::DestroyArgs),
    /// Inspect and repair state.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Adopt an existing cloud resource at ADDR.
    Import(state::ImportArgs),
    /// See or break the environment's write lock.
    #[command(subcommand)]
    Lock(lock::LockCommand),
    /// See and steer rollouts (apply starts them).
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// The last lines of a host app's containers (secrets masked).
    Logs(logs::LogsArgs),
    /// The backups taken of a host app's accessories before its migrations, still kept.
    Backups(backups::BackupsArgs),
    /// Read, export and verify the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print the dependency graph of an environment (DOT, Mermaid or JSON).
    Graph(graph::GraphArgs),
    /// Print the outputs the last apply recorded (from state, no cloud call).
    Output(outputs::OutputArgs),
    /// Print the JSON Schema of desired-state files (or of the policy input).
    Schema(schema::SchemaArgs),
    /// Test the Rego policies (`policy test`, as `opa test`).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Watch daily cost per address for anomalies and name the deployments behind them.
    #[command(subcommand)]
    Cost(cost::CostCommand),
    /// Refresh and show the price tables cost estimates use.
    #[command(subcommand)]
    Prices(prices::PricesCommand),
}

/// An address given on the command line (`KEY` or `INSTANCE.KEY`), or a usage error.
fn address(raw: &str) -> Result<crate::model::Address, CliError> {
    crate::model::Address::parse(raw)
        .ok_or_else(|| CliError::Usage(format!("`{raw}` is not an address (KEY or INSTANCE.KEY)")))
}

/// Errors that reach the edge: the use cases' errors, rendered once with their chain of causes
/// and mapped to exit code 1.
pub use crate::application::Error as CliError;

/// Parses arguments, runs the command, prints any error once, and returns the exit code.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let mut cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    output::setup(cli.global.no_color, cli.global.verbose, cli.global.quiet);
    // What a killed run left in its private ssh directory (an inline key, a control socket).
    let swept = crate::hosts::ssh::sweep_stale();
    if swept > 0 {
        tracing::info!("removed {swept} ssh session directories of runs no longer alive");
    }
    output::set_root(&cli.global.root);
    // New host keys are recorded only by commands that write the audit trail.
    let hosts = crate::hosts::app::HostOptions {
        root: cli.global.root.clone(),
        accept_new: cli.global.accept_new_host_keys
            && matches!(cli.command, Command::Apply(_) | Command::Destroy(_)),
        tidy: matches!(cli.command, Command::Apply(_) | Command::Drift),
        accepted: Default::default(),
    };
    cli.global.settings = cli.global.settings(hosts);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            output::report(&e);
            EXIT_ERROR
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let g = &cli.global;
    let markdown_ok = matches!(
        &cli.command,
        Command::Cost(_)
            | Command::Plan(_)
            | Command::Drift
            | Command::Apply(_)
            | Command::Destroy(_)
            | Command::Rollout(rollout::RolloutCommand::Status { .. })
            | Command::Audit(audit::AuditCommand::Log { .. })
    );
    if g.format == Format::Markdown && !markdown_ok {
        return Err(CliError::Usage(
            "--format markdown is for plan, apply, destroy, drift, rollout status, cost watch and audit log".into(),
        ));
    }
    if matches!(g.format, Format::Dot | Format::Mermaid)
        && !matches!(&cli.command, Command::Graph(_))
    {
        return Err(CliError::Usage(
            "--format dot and --format mermaid are for graph".into(),
        ));
    }
    if g.format == Format::Raw && !matches!(&cli.command, Command::Output(_)) {
        return Err(CliError::Usage("--format raw is for output".into()));
    }
    match &cli.command {
        Command::Validate => validate::run(g).await,
        Command::Plan(a) => plan::run(g, a).await,
        Command::Apply(a) => apply::run(g, a).await,
        Command::Drift => drift::run(g).await,
        Command::Destroy(a) => apply::destroy(g, a).await,
        Command::State(c) => state::run(g, c).await,
        Command::Import(a) => state::import(g, a).await,
        Command::Lock(c) => lock::run(g, c).await,
        Command::Rollout(c) => rollout::run(g, c).await,
        Command::Logs(a) => logs::run(g, a).await,
        Command::Backups(a) => backups::run(g, a).await,
        Command::Audit(c) => audit::run(g, c).await,
        Command::Graph(a) => graph::run(g, a).await,
        Command::Output(a) => outputs::run(g, a).await,
        Command::Schema(a) => schema::run(a),
        Command::Policy(c) => policy::run(g, c).await,
        Command::Prices(c) => prices::run(g, c).await,
        Command::Cost(c) => cost::run(g, c).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command clap knows, as typed (`plan`, `rollout status`, ...).
    fn commands() -> std::collections::BTreeSet<String> {
        fn walk(prefix: &str, cmd: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let name = format!("{prefix}{}", sub.get_name());
                if sub.has_subcommands() {
                    walk(&format!("{name} "), sub, out);
                } else {
                    out.insert(name);
                }
            }
        }
        let mut out = std::collections::BTreeSet::new();
        walk("", &Cli::command(), &mut out);
        out
    }

    /// The commands table of `docs/commands.md` lists exactly the commands the binary has.
    #[test]
    fn the_commands_table_matches_the_binary() {
        let doc = include_str!("../../docs/commands.md");
        let known = commands();
        let mut documented = std::collections::BTreeSet::new();
        for row in doc.lines().filter(|l| l.starts_with("| `")) {
            let first_cell = row.split(" | ").next().unwrap_or_default();
            for code in first_cell.split('`').skip(1).step_by(2) {
                let words: Vec<&str> = code
                    .split_whitespace()
                    .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                    .collect();
                let name = match words.as_slice() {
                    [first, second, ..] if known.contains(&format!("{first} {second}")) => {
                        format!("{first} {second}")
                    }
                    [first, ..] => first.to_string(),
                    [] => continue,
                };
                assert!(
                    known.contains(&name),
                    "docs/commands.md documents `{name}`, which converge does not have"
                );
                documented.insert(name);
            }
        }
        let missing: Vec<_> = known.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "docs/commands.md's table lacks {missing:?}"
        );
    }
}
