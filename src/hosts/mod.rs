//! Apps on hosts (DESIGN §10): the second rollout target, containers on VMs reached over SSH.
//! This first part is how converge reaches a host: `ssh.rs` (OpenSSH's client under converge's
//! rules) and `known_hosts.rs` (the host-key checks that come before any command).

pub mod known_hosts;
pub mod preflight;
pub mod ssh;
