//! Terminal output: colour choice, logging, progress, and the one place errors are printed.

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme};

use super::CliError;

/// Sets colour, logging and diagnostics rendering from the flags and environment.
pub fn setup(no_color: bool, verbose: u8, quiet: bool) {
    let no_color = no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if no_color {
        anstream::ColorChoice::Never.write_global();
    }
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "converge=info",
        _ => "converge=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!no_color && std::io::stderr().is_terminal())
        .try_init();
}

/// Whether colours go to stderr.
fn stderr_colors() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

/// The project root given with `--root`, for annotation paths.
static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Remembers the project root (`--root`) for annotations.
pub fn set_root(root: &std::path::Path) {
    let mut root = root.strip_prefix(".").unwrap_or(root).to_path_buf();
    // An absolute root inside the working directory (the checkout) becomes relative to it.
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(inside) = root.strip_prefix(&cwd)
    {
        root = inside.to_path_buf();
    }
    let _ = ROOT.set(root);
}

/// Prints an error (with source snippets for file errors) to stderr.
pub fn report(err: &CliError) {
    let theme = if stderr_colors() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(2);
    let mut out = String::new();
    if handler.render_report(&mut out, err).is_err() {
        out = format!("error: {err}");
    }
    let mut stderr = anstream::stderr();
    let _ = writeln!(stderr, "{out}");
    if let CliError::Config(errors) = err
        && super::github::in_actions()
    {
        let root = ROOT.get().cloned().unwrap_or_default();
        for e in &errors.errors {
            if let Some(l) = &e.location {
                // Paths relative to the repository (the job's working directory), so the
                // annotation lands on the pull request's diff.
                let file = root.join(&l.file);
                println!(
                    "::error file={},line={},col={}::{}",
                    super::github::escape_property(&file.to_string_lossy()),
                    l.line,
                    l.column,
                    super::github::escape_data(&e.message)
                );
            }
        }
    }
}

/// In GitHub Actions, an annotation per policy message: `::error` for a denial, `::warning` for
/// a warning, at the resource's file:line when the message names a declared resource.
pub fn policy_annotations(
    env: &crate::config::Environment,
    verdict: Option<&crate::plan::policy::PolicyVerdict>,
) {
    let Some(v) = verdict else { return };
    if !super::github::in_actions() {
        return;
    }
    let root = ROOT.get().cloned().unwrap_or_default();
    let findings = v
        .denials
        .iter()
        .map(|f| ("error", f))
        .chain(v.warnings.iter().map(|f| ("warning", f)));
    for (level, f) in findings {
        let location = f
            .address
            .as_deref()
            .and_then(crate::model::Address::parse)
            .and_then(|a| env.resources.get(&a))
            .and_then(|r| r.location.as_ref());
        let at = location
            .map(|l| {
                format!(
                    " file={},line={},col={}",
                    super::github::escape_property(&root.join(&l.file).to_string_lossy()),
                    l.line,
                    l.column
                )
            })
            .unwrap_or_default();
        println!(
            "::{level}{at},title={}::{}",
            super::github::escape_property(&format!("policy {} ({})", f.policy, f.rule)),
            super::github::escape_data(&f.line())
        );
    }
}

/// Writes text to stdout, styles stripped when colour is off.
pub fn print(text: &str) {
    let mut stdout = anstream::stdout();
    let _ = write!(stdout, "{text}");
    let _ = stdout.flush();
}

/// Writes a line to stderr (progress and status for people).
pub fn status(text: &str) {
    let mut stderr = anstream::stderr();
    let _ = writeln!(stderr, "{text}");
}

/// Prints a value as pretty JSON on stdout.
pub fn json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => status(&format!("error: cannot encode JSON: {e}")),
    }
}

/// A spinner on stderr while slow work runs; invisible when stderr is not a terminal.
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// The terminal as the use cases' [`Ui`](crate::application::Ui): lines to stderr, a spinner
/// when stderr is a terminal.
#[derive(Debug, Default)]
pub struct Terminal;

impl crate::application::Ui for Terminal {
    fn status(&self, line: &str) {
        status(line);
    }

    fn spinner(&self, message: &str) -> indicatif::ProgressBar {
        spinner(message)
    }
}
