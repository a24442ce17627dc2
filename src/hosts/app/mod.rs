//! `host.app` (DESIGN §10): a containerised app on Linux hosts over SSH. `schema.rs` is the
//! kind, `spec.rs` its typed settings, `docker.rs` and `nginx.rs` the text a host runs and
//! reads, `host.rs` one open host, `deploy.rs` how a change becomes a rollout, `target.rs` the
//! rollout target (colours behind nginx) and
//! `provider.rs` the reads (drift) and deletes.

pub mod deploy;
pub mod docker;
pub mod host;
pub mod nginx;
pub mod provider;
pub mod schema;
pub mod spec;
pub mod target;

pub use provider::{AcceptedKeys, HostOptions, HostProvider};
