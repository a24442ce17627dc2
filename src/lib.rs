//! converge: an infrastructure-as-code provisioner and deployment reconciler.

pub mod application;
pub mod apply;
pub mod audit;
pub mod cli;
pub mod config;
pub mod cost;
pub mod graph;
pub mod hosts;
pub mod kinds;
pub mod model;
pub mod plan;
pub mod policy;
pub mod promotion;
pub mod providers;
pub mod refresh;
pub mod rollout;
pub mod state;
