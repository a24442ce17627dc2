//! The one error type of the use cases.

use crate::config::ConfigErrors;

/// Why a use case failed; a front end renders it once, with its chain of causes.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The desired-state files have errors.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigErrors),
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The project's price file could not be used.
    #[error(transparent)]
    Prices(#[from] crate::cost::prices::PriceFileError),
    /// The flags or arguments are wrong.
    #[error("{0}")]
    Usage(String),
    /// converge refused to go on (stale plan, no approval...).
    #[error("{0}")]
    Refused(String),
    /// A cloud provider call failed; `context` says what converge was doing, the cause follows.
    #[error("{context}")]
    Provider {
        /// What converge was doing (`staging: signing in`, `importing api.repo`).
        context: String,
        /// The provider's error.
        #[source]
        source: crate::providers::ProviderError,
    },
    /// Apply could not record a completed step.
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    /// A rollout record in state cannot be read.
    #[error(transparent)]
    Undecodable(#[from] crate::rollout::UndecodableRecord),
    /// The `rollout undo` pins could not be read.
    #[error(transparent)]
    Pins(#[from] crate::rollout::PinsError),
    /// An audit event's payload cannot be read.
    #[error(transparent)]
    Payload(#[from] crate::audit::PayloadError),
    /// The policies could not be read or evaluated.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// Something failed and has been reported already; only the exit code is left.
    #[error("{0}")]
    Failed(String),
}
