//! Apps on hosts (DESIGN §10): the second rollout target, containers on VMs reached over SSH.
//! `ssh.rs` is OpenSSH's client under converge's rules, `known_hosts.rs` the host-key checks
//! that come before any command, `engine.rs` the Docker Engine API over the session,
//! `preflight.rs` first contact, and `app/` the `host.app` kind.

pub mod app;
pub mod engine;
pub mod known_hosts;
pub mod preflight;
pub mod ssh;
