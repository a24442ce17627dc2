//! Use cases: what a front end (the CLI today; a server or a GitHub App tomorrow) calls to load
//! an environment, take its lock, plan, apply, expire pauses, judge promotion and undo. Nothing
//! here parses flags or renders results: a front end passes [`Settings`] and an [`Ui`] for
//! progress lines, and renders what comes back.

pub mod apply_policy;
pub mod backups;
pub mod cost_watch;
pub mod drift;
mod error;
pub mod history;
pub mod outputs;
pub mod pauses;
pub mod plan;
pub mod policy;
pub mod promotion;
pub mod session;
pub mod state_key;
pub mod state_ops;
pub mod steer;
pub mod undo;
mod undo_host;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::Error;

/// Where a use case tells people what it is doing: one line per event (the CLI prints to
/// stderr), and a spinner while something slow runs.
pub trait Ui: Send + Sync {
    /// Reports one line (a warning, a note, progress).
    fn status(&self, line: &str);
    /// A spinner shown while slow work runs (hidden unless the front end shows one).
    fn spinner(&self, _message: &str) -> indicatif::ProgressBar {
        indicatif::ProgressBar::hidden()
    }
}

/// A [`Ui`] that reports into the log (a front end with no terminal).
#[derive(Debug, Default)]
pub struct LogUi;

impl Ui for LogUi {
    fn status(&self, line: &str) {
        tracing::info!("{line}");
    }
}

/// What a use case needs to know about the run: the project, the environment, variables, the
/// state backend, the overrides people gave and how hosts are reached.
#[derive(Clone)]
pub struct Settings {
    /// Project folder holding environments/ and modules/.
    pub root: PathBuf,
    /// The environment to act on (`None`: not given).
    pub env: Option<String>,
    /// `KEY=VALUE` variable overrides, in the order given.
    pub vars: Vec<String>,
    /// Where state lives (default: ROOT/state/ENV.db).
    pub state_url: Option<String>,
    /// The reason an over-budget plan may go through (audited).
    pub allow_over_budget: Option<String>,
    /// The reason unpromoted images may roll out (audited).
    pub allow_unpromoted: Option<String>,
    /// How this run reaches hosts.
    pub hosts: crate::hosts::app::HostOptions,
    /// How long to wait for another run's write lock.
    pub lock_timeout: std::time::Duration,
    /// Where this run's policies come from.
    pub policy: policy::PolicySettings,
    /// Steps and cloud reads in flight at most.
    pub parallelism: usize,
    /// Where progress lines go.
    pub ui: Arc<dyn Ui>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("root", &self.root)
            .field("env", &self.env)
            .field("state_url", &self.state_url.as_ref().map(|_| "(set)"))
            .field("lock_timeout", &self.lock_timeout)
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            root: PathBuf::from("."),
            env: None,
            vars: Vec::new(),
            state_url: None,
            allow_over_budget: None,
            allow_unpromoted: None,
            hosts: Default::default(),
            lock_timeout: std::time::Duration::ZERO,
            policy: policy::PolicySettings::default(),
            parallelism: 10,
            ui: Arc::new(LogUi),
        }
    }
}

impl Settings {
    /// Reports one line through the front end.
    pub fn say(&self, line: &str) {
        self.ui.status(line);
    }
}
