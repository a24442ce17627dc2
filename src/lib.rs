//! converge: an infrastructure-as-code provisioner and deployment reconciler.

pub mod config;
pub mod graph;
pub mod model;
pub mod audit;
pub mod state;
pub mod providers;
pub mod plan;
pub mod apply;
pub mod cli;
