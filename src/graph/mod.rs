//! The dependency DAG between resources: ordering and cycle detection.

use std::collections::{BTreeMap, HashSet};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::DesiredResource;
use crate::model::Address;

/// A DAG of addresses; an edge `a -> b` means `a` must be handled before `b`.
#[derive(Debug, Default)]
pub struct DependencyGraph {
    graph: DiGraph<Address, ()>,
    index: BTreeMap<Address, NodeIndex>,
    /// The edges added, so adding one is constant time whatever a node's degree (petgraph's
    /// `update_edge` scans the node's edges: a cluster every service depends on made loading
    /// quadratic).
    edges: HashSet<(NodeIndex, NodeIndex)>,
}

impl DependencyGraph {
    /// The graph of desired resources: each comes after what it depends on.
    pub fn from_desired<'a>(resources: impl IntoIterator<Item = &'a DesiredResource>) -> Self {
        let mut g = DependencyGraph::default();
        let resources: Vec<&DesiredResource> = resources.into_iter().collect();
        for r in &resources {
            g.node(&r.address);
        }
        for r in &resources {
            for dep in &r.depends_on {
                g.edge(dep, &r.address);
            }
        }
        g
    }

    /// Adds a node (once) and returns its index.
    pub fn node(&mut self, address: &Address) -> NodeIndex {
        if let Some(i) = self.index.get(address) {
            return *i;
        }
        let i = self.graph.add_node(address.clone());
        self.index.insert(address.clone(), i);
        i
    }

    /// Adds an edge: `before` is handled before `after`.
    pub fn edge(&mut self, before: &Address, after: &Address) {
        let a = self.node(before);
        let b = self.node(after);
        if self.edges.insert((a, b)) {
            self.graph.add_edge(a, b, ());
        }
    }

    /// `Ok` when acyclic; otherwise the addresses on one cycle, sorted.
    pub fn check_acyclic(&self) -> Result<(), Vec<Address>> {
        if toposort(&self.graph, None).is_ok() {
            return Ok(());
        }
        let cycle = tarjan_scc(&self.graph)
            .into_iter()
            .find(|scc| scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]))
            .unwrap_or_default();
        let mut names: Vec<Address> = cycle.into_iter().map(|i| self.graph[i].clone()).collect();
        names.sort();
        Err(names)
    }

    /// All addresses in an order where each comes after everything it depends on.
    pub fn order(&self) -> Result<Vec<Address>, Vec<Address>> {
        match toposort(&self.graph, None) {
            Ok(nodes) => Ok(nodes.into_iter().map(|i| self.graph[i].clone()).collect()),
            Err(_) => Err(self.check_acyclic().err().unwrap_or_default()),
        }
    }

    /// The addresses that must be handled before `address`.
    pub fn predecessors(&self, address: &Address) -> Vec<Address> {
        self.index
            .get(address)
            .map(|i| {
                self.graph
                    .neighbors_directed(*i, petgraph::Direction::Incoming)
                    .map(|n| self.graph[n].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everything that comes (transitively) after `address`.
    pub fn descendants(&self, address: &Address) -> Vec<Address> {
        let Some(start) = self.index.get(address) else {
            return Vec::new();
        };
        let mut dfs = petgraph::visit::Dfs::new(&self.graph, *start);
        let mut out = Vec::new();
        while let Some(n) = dfs.next(&self.graph) {
            if n != *start {
                out.push(self.graph[n].clone());
            }
        }
        out
    }
}
