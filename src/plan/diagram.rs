//! The dependency graph as people and tools read it (`converge graph`): resources as nodes
//! (kind, module instance, and with `--plan` the action), edges from a resource to what it
//! depends on (as `terraform graph` draws them), printed as DOT, Mermaid or JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Plan;
use crate::config::Environment;
use crate::model::Address;

/// One resource of the graph.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphNode {
    /// Its address.
    pub address: Address,
    /// Its kind.
    pub kind: String,
    /// The module instance it belongs to (`None`: the environment's own).
    pub module: Option<String>,
    /// What the plan does to it (`create`, `update`, `replace`, `delete`, `forget`, `moved`,
    /// `no_op`), with `--plan` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// `from` depends on `to` (a reference or `depends_on`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphEdge {
    /// The dependent.
    pub from: Address,
    /// What it depends on.
    pub to: Address,
}

/// An environment's graph, ready to print.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphView {
    /// The environment.
    pub environment: String,
    /// Its resources, by address.
    pub nodes: Vec<GraphNode>,
    /// Its dependencies, sorted.
    pub edges: Vec<GraphEdge>,
}

impl GraphView {
    /// The graph of `env`'s desired resources.
    pub fn of(env: &Environment) -> GraphView {
        let nodes = env
            .resources
            .values()
            .map(|r| GraphNode {
                address: r.address.clone(),
                kind: r.kind.kind.to_string(),
                module: module_of(&r.address),
                action: None,
            })
            .collect();
        let mut edges: Vec<GraphEdge> = env
            .resources
            .values()
            .flat_map(|r| {
                r.depends_on.iter().map(|d| GraphEdge {
                    from: r.address.clone(),
                    to: d.clone(),
                })
            })
            .collect();
        edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        GraphView {
            environment: env.name.clone(),
            nodes,
            edges,
        }
    }

    /// Marks each node with its planned action; a resource only state holds (to be deleted)
    /// joins the graph as a node of its own.
    pub fn with_plan(mut self, plan: &Plan) -> GraphView {
        // A resource a `moved` entry carries and nothing else changes is `moved`.
        let action = |c: &crate::plan::Change| {
            if c.action == crate::plan::Action::NoOp && c.moved_from.is_some() {
                return "moved".to_string();
            }
            serde_json::to_value(c.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        for node in &mut self.nodes {
            node.action = Some(
                plan.changes
                    .iter()
                    .find(|c| c.address == node.address)
                    .map_or_else(|| "no_op".to_string(), action),
            );
        }
        for c in &plan.changes {
            if !self.nodes.iter().any(|n| n.address == c.address) {
                self.nodes.push(GraphNode {
                    address: c.address.clone(),
                    kind: c.kind.clone(),
                    module: module_of(&c.address),
                    action: Some(action(c)),
                });
            }
        }
        self.nodes.sort_by(|a, b| a.address.cmp(&b.address));
        self
    }

    /// Only the resources the plan changes, and the edges between them (the Markdown plan's
    /// diagram).
    pub fn changed_only(mut self) -> GraphView {
        self.nodes
            .retain(|n| n.action.as_deref().is_some_and(|a| colour_of(a).is_some()));
        let kept: Vec<Address> = self.nodes.iter().map(|n| n.address.clone()).collect();
        self.edges
            .retain(|e| kept.contains(&e.from) && kept.contains(&e.to));
        self
    }

    /// Graphviz DOT: module instances as clusters, planned actions as colours.
    pub fn dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir = \"RL\";\n  node [shape = \"box\", fontname = \"sans-serif\"];\n",
            self.environment
        );
        let node = |n: &GraphNode, indent: &str| {
            let action = n
                .action
                .as_deref()
                .map(|a| format!("\\n{a}"))
                .unwrap_or_default();
            let colour = n
                .action
                .as_deref()
                .and_then(colour_of)
                .map(|c| format!(", style = \"filled\", fillcolor = \"{c}\""))
                .unwrap_or_default();
            format!(
                "{indent}\"{}\" [label = \"{}\\n({}){action}\"{colour}];\n",
                n.address, n.address, n.kind
            )
        };
        out.push_str(&self.grouped(
            |m| format!("  subgraph \"cluster_{m}\" {{\n    label = \"module {m}\";\n"),
            "  }\n",
            node,
        ));
        for e in &self.edges {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", e.from, e.to));
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart (GitHub renders it in Markdown): module instances as subgraphs,
    /// planned actions as classes.
    pub fn mermaid(&self) -> String {
        let ids: BTreeMap<&Address, String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (&n.address, format!("n{i}")))
            .collect();
        let mut out = String::from("flowchart RL\n");
        let node = |n: &GraphNode, indent: &str| {
            let action = n
                .action
                .as_deref()
                .map(|a| format!("<br/>{a}"))
                .unwrap_or_default();
            format!(
                "{indent}{}[\"{}<br/>{}{action}\"]\n",
                ids[&n.address], n.address, n.kind
            )
        };
        out.push_str(&self.grouped(
            |m| format!("  subgraph module_{m}[\"module {m}\"]\n"),
            "  end\n",
            node,
        ));
        for e in &self.edges {
            if let (Some(from), Some(to)) = (ids.get(&e.from), ids.get(&e.to)) {
                out.push_str(&format!("  {from} --> {to}\n"));
            }
        }
        let mut classes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in &self.nodes {
            if let Some(a) = n.action.as_deref().filter(|a| colour_of(a).is_some()) {
                classes.entry(a).or_default().push(&ids[&n.address]);
            }
        }
        for (action, members) in classes {
            let class = action.replace('-', "_");
            out.push_str(&format!(
                "  classDef {class} fill:{}\n  class {} {class}\n",
                colour_of(action).unwrap_or_default(),
                members.join(",")
            ));
        }
        out
    }

    /// The nodes as `node` prints them (with an indent), the environment's own first, each
    /// module instance's between `open(instance)` and `close`.
    fn grouped(
        &self,
        open: impl Fn(&str) -> String,
        close: &str,
        node: impl Fn(&GraphNode, &str) -> String,
    ) -> String {
        let mut by_module: BTreeMap<Option<&str>, Vec<&GraphNode>> = BTreeMap::new();
        for n in &self.nodes {
            by_module.entry(n.module.as_deref()).or_default().push(n);
        }
        let mut out = String::new();
        for (module, nodes) in by_module {
            let indent = if module.is_some() { "    " } else { "  " };
            if let Some(m) = module {
                out.push_str(&open(m));
            }
            for n in nodes {
                out.push_str(&node(n, indent));
            }
            if module.is_some() {
                out.push_str(close);
            }
        }
        out
    }
}

/// The module instance of a module resource's address (`api.repo`: `api`).
fn module_of(address: &Address) -> Option<String> {
    address
        .as_str()
        .split_once('.')
        .map(|(instance, _)| instance.to_string())
}

/// The fill colour of a planned action (none for `no-op`).
fn colour_of(action: &str) -> Option<&'static str> {
    match action {
        "create" => Some("#d4f7d4"),
        "update" => Some("#fff3c4"),
        "replace" => Some("#ffd8b0"),
        "delete" => Some("#ffc9c9"),
        "forget" => Some("#e4e4e4"),
        "moved" => Some("#d6e4ff"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resource a `moved` entry carries, nothing else changing, is `moved` and drawn as a
    /// change; one `removed` forgets is `forget`.
    #[test]
    fn moved_and_forgotten_resources_are_marked_and_kept_as_changes() {
        let change = |address: &str, action: &str, moved_from: Option<&str>| {
            serde_json::json!({
                "address": address, "kind": "host.app", "action": action,
                "before": {}, "after": {}, "changed": [], "replace_because": [],
                "moved_from": moved_from,
            })
        };
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "format_version": 1, "environment": "dev", "serial": 1, "files_hash": "",
            "changes": [
                change("backend.web", "no_op", Some("web")),
                change("old", "forget", None),
                change("same", "no_op", None),
            ],
            "summary": {"add": 0, "change": 0, "replace": 0, "destroy": 0},
        }))
        .unwrap();
        let view = GraphView {
            environment: "dev".into(),
            nodes: Vec::new(),
            edges: Vec::new(),
        }
        .with_plan(&plan)
        .changed_only();
        let marked: Vec<(String, String)> = view
            .nodes
            .iter()
            .map(|n| (n.address.to_string(), n.action.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            marked,
            [
                ("backend.web".to_string(), "moved".to_string()),
                ("old".to_string(), "forget".to_string())
            ]
        );
        assert!(
            view.mermaid().contains("classDef moved"),
            "{}",
            view.mermaid()
        );
    }
}
