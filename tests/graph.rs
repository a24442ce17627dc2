//! `converge graph` (issue 25 §3): the example project's dev environment as DOT, Mermaid and
//! JSON (modules as clusters, an edge from each resource to what it depends on), and with
//! `--plan` against moto each resource marked with its planned action.

mod support;

use support::{Moto, Project};

#[test]
fn the_graph_has_every_resource_modules_as_clusters_and_its_dependencies() {
    let p = Project::example();
    let json = p
        .converge(&["-e", "dev", "--format", "json", "graph"])
        .expect(0)
        .json();
    assert_eq!(json["environment"], "dev");
    let nodes = json["nodes"].as_array().unwrap();
    let node = |address: &str| {
        nodes
            .iter()
            .find(|n| n["address"] == address)
            .unwrap_or_else(|| panic!("no {address} in {nodes:?}"))
            .clone()
    };
    assert_eq!(node("cluster")["kind"], "aws.ecs_cluster");
    assert!(node("cluster")["module"].is_null());
    assert_eq!(node("api.service")["module"], "api");
    assert!(
        node("api.service").get("action").is_none(),
        "no action without --plan"
    );
    let edges = json["edges"].as_array().unwrap();
    let edge = |from: &str, to: &str| edges.iter().any(|e| e["from"] == from && e["to"] == to);
    // The API's service uses the cluster (a module input) and its own repository.
    assert!(edge("api.service", "cluster"), "{edges:?}");
    assert!(edge("api.service", "api.repo"), "{edges:?}");
    assert!(
        !edge("cluster", "api.service"),
        "edges point at what a resource depends on"
    );

    let dot = p.converge(&["-e", "dev", "graph"]).expect(0).stdout();
    assert!(dot.starts_with("digraph \"dev\" {\n"), "{dot}");
    assert!(
        dot.contains("  subgraph \"cluster_api\" {\n    label = \"module api\";\n"),
        "{dot}"
    );
    assert!(
        dot.contains("    \"api.service\" [label = \"api.service\\n(aws.ecs_service)\"];"),
        "{dot}"
    );
    assert!(dot.contains("  \"api.service\" -> \"cluster\";"), "{dot}");
    assert_eq!(
        p.converge(&["-e", "dev", "--format", "dot", "graph"])
            .expect(0)
            .stdout(),
        dot,
        "DOT is the default"
    );

    let mermaid = p
        .converge(&["-e", "dev", "--format", "mermaid", "graph"])
        .expect(0)
        .stdout();
    assert!(mermaid.starts_with("flowchart RL\n"), "{mermaid}");
    assert!(
        mermaid.contains("  subgraph module_api[\"module api\"]\n"),
        "{mermaid}"
    );
    let id = |address: &str| {
        let line = mermaid
            .lines()
            .find(|l| l.contains(&format!("[\"{address}<br/>")))
            .unwrap_or_else(|| panic!("no {address} in {mermaid}"));
        line.trim().split('[').next().unwrap().to_string()
    };
    assert!(
        mermaid.contains(&format!("  {} --> {}\n", id("api.service"), id("cluster"))),
        "{mermaid}"
    );

    // Formats that are not a graph's are refused, and dot is the graph's alone.
    let bad = p
        .converge(&["-e", "dev", "--format", "csv", "graph"])
        .expect(1);
    assert!(
        bad.stderr()
            .contains("graph prints --format dot (the default), mermaid or json"),
        "{}",
        bad.stderr()
    );
    let bad = p
        .converge(&["-e", "dev", "--format", "dot", "validate"])
        .expect(1);
    assert!(
        bad.stderr()
            .contains("--format dot and --format mermaid are for graph"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn with_plan_each_resource_says_what_the_plan_does_to_it() {
    let moto = Moto::start();
    let network = moto.network();
    let p = Project::example().with_moto(&moto);
    let args = |format: &str| {
        let mut a: Vec<String> = vec!["-e".into(), "dev".into()];
        a.extend(network.iter().cloned());
        a.extend([
            "--format".into(),
            format.into(),
            "graph".into(),
            "--plan".into(),
        ]);
        a
    };
    let json_args = args("json");
    let json_args: Vec<&str> = json_args.iter().map(String::as_str).collect();
    let json = p.converge(&json_args).expect(0).json();
    for node in json["nodes"].as_array().unwrap() {
        assert_eq!(node["action"], "create", "nothing is applied yet: {node}");
    }
    let mermaid_args = args("mermaid");
    let mermaid_args: Vec<&str> = mermaid_args.iter().map(String::as_str).collect();
    let mermaid = p.converge(&mermaid_args).expect(0).stdout();
    assert!(
        mermaid.contains("  classDef create fill:#d4f7d4\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("<br/>aws.ecs_service<br/>create\"]"),
        "{mermaid}"
    );

    // The Markdown plan (the PR comment) draws what changes, up to --graph-max resources.
    let plan = |extra: &[&str]| {
        let mut a: Vec<&str> = vec!["-e", "dev"];
        a.extend(network.iter().map(String::as_str));
        a.extend(["--format", "markdown", "plan"]);
        a.extend(extra);
        p.converge(&a).expect(0).stdout()
    };
    let md = plan(&[]);
    assert!(md.contains("```mermaid\nflowchart RL\n"), "{md}");
    assert!(md.contains("<br/>aws.ecs_service<br/>create\"]"), "{md}");
    let md = plan(&["--graph-max", "2"]);
    assert!(
        !md.contains("```mermaid"),
        "more than 2 change: no diagram\n{md}"
    );
}
