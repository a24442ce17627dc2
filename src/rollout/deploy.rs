//! The `Deploy` capability of a kind: how a change of a resource of that kind becomes a
//! rollout, and which [`Target`] runs it. A kind that deploys registers one implementation
//! (`kinds::Kind::deploy`); apply, the driver, pauses and undo ask it instead of naming kinds.
//! (The plan's half, the rollout summary a change shows, is the schema's plain function
//! `KindSchema::rollout_summary`, since the plan reads only schemas.)

use super::driver::{RolloutContext, RolloutRequest};
use super::error::RolloutError;
use super::spec::RolloutSpec;
use super::target::Target;
use crate::model::Value;
use crate::providers::{ProviderError, Registry};

/// How changes of one kind are deployed. Implementations are unit structs in the kind's own
/// folder.
#[async_trait::async_trait]
pub trait Deploy: Sync + std::fmt::Debug {
    /// The rollout settings of a resource of this kind, from its properties.
    fn spec(&self, properties: &Value) -> Result<RolloutSpec, DeployError>;

    /// The rollout an update from `prior` to `desired` runs, or `None` when the update is a
    /// plain one (settings only, or a deploy nobody waits for).
    fn update(&self, prior: &Value, desired: &Value) -> Result<Option<RolloutSpec>, DeployError>;

    /// The rollout that carries a create of `desired`, or `None` when the kind's own create
    /// handles it.
    fn create(&self, desired: &Value) -> Option<RolloutSpec>;

    /// The target that runs `req`.
    fn target<'a>(
        &self,
        ctx: &'a RolloutContext<'a>,
        req: &'a RolloutRequest,
    ) -> Result<Box<dyn Target + 'a>, RolloutError>;

    /// The revision a resource created at full traffic starts on (for `rollout history` and
    /// `undo`), when its create was not a rollout of its own.
    fn first_revision(&self, properties: &Value, outputs: &Value) -> Option<String>;

    /// What `rollout undo --to` names and how the current revision is read.
    fn revisions(&self) -> Revisions;

    /// Whether the revision `undo` would go back to (`revision`, running `images`) can still
    /// run (still registered, its images still there); what it returns are warnings for people
    /// (what could not be checked).
    async fn check_undo(
        &self,
        _registry: &Registry,
        _revision: &str,
        _images: &[String],
    ) -> Result<Vec<String>, UndoCheck> {
        Ok(Vec::new())
    }

    /// The manifest digests of `images` where the kind's registry resolves them, for the
    /// `rollout complete` event promotion compares across environments (best effort: `None`
    /// leaves the references to compare by).
    async fn digests(
        &self,
        _registry: &Registry,
        _images: &[String],
    ) -> Option<std::collections::BTreeMap<String, String>> {
        None
    }
}

/// Why `rollout undo` cannot go back to a revision.
#[derive(Debug, thiserror::Error)]
pub enum UndoCheck {
    /// The revision cannot run any more (deregistered, an image expired), with why.
    #[error("{0}")]
    Refused(String),
    /// The check itself failed.
    #[error(transparent)]
    Call(#[from] ProviderError),
}

/// How a kind's revisions are named for `rollout history` and `rollout undo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revisions {
    /// Registered revisions with an id of their own (an ECS task definition), read from this
    /// output.
    Registered {
        /// The output holding the current revision's id.
        output: &'static str,
    },
    /// Revisions named by the images they run (a host app).
    Images,
}

impl Revisions {
    /// The current revision's id in `outputs`, for kinds with registered revisions.
    pub fn current(&self, outputs: &Value) -> Option<String> {
        match self {
            Revisions::Registered { output } => outputs.get(output).as_str().map(|s| s.to_string()),
            Revisions::Images => None,
        }
    }
}

/// Why a resource's rollout settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("rollout: {0}")]
pub struct DeployError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl DeployError {
    /// An error from a message (a rule of the rollout block).
    pub fn msg(message: impl Into<String>) -> DeployError {
        DeployError(message.into().into())
    }
}
