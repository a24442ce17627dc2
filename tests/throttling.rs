//! A throttling storm: a third of all AWS calls answered with each protocol's throttling error
//! and some with 503, by a proxy in front of moto. A 25-resource apply, plan, drift and destroy
//! all succeed, and each resource is created and deleted exactly once.

mod support;

use support::{FaultyProxy, FleetCount, Moto, Project, count_fleet, write_fleet};

/// 2 + 2 × 11 + 1 shared repository = 25 resources.
const SERVICES: usize = 11;

#[tokio::test(flavor = "multi_thread")]
async fn apply_plan_drift_destroy_converge_through_a_throttling_storm() {
    let moto = Moto::start();
    let vars = moto.network();
    let proxy = FaultyProxy::start(&moto.endpoint, 0.30, 0.05);
    let project = Project::example().with_endpoint(&proxy.endpoint);
    write_fleet(&project, "storm", SERVICES);
    let file = project.read("environments/storm.yaml");
    project.write(
        "environments/storm.yaml",
        &format!(
            "{file}  shared:\n    type: aws.ecr_repository\n    properties: {{ name: storm-shared, tags: {{ team: platform }} }}\n"
        ),
    );
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["-e", "storm", "--parallelism", "8"];
        args.extend(vars.iter().map(String::as_str));
        args.extend(extra);
        project.converge(&args)
    };
    let seed = proxy.seed;

    let apply = run(&["apply", "--auto-approve", "--format", "json"]);
    let report = apply.json();
    assert_eq!(apply.code(), 0, "seed {seed}: {report}\n{}", apply.stderr());
    assert_eq!(report["summary"]["done"], 25, "seed {seed}: {report}");
    let full = FleetCount {
        repositories: SERVICES + 1,
        services: SERVICES,
        service_names_unique: true,
        clusters: 1,
        roles: 1,
    };
    assert_eq!(count_fleet(&moto, "storm").await, full, "seed {seed}");
    let stats = proxy.stats();
    for (operation, times) in [
        ("CreateRepository", SERVICES + 1),
        ("CreateService", SERVICES),
        ("RegisterTaskDefinition", SERVICES),
        ("CreateCluster", 1),
        ("CreateRole", 1),
    ] {
        assert_eq!(
            stats.forwarded(operation),
            times,
            "seed {seed}: {operation} must reach AWS exactly once per resource: {stats:?}"
        );
    }

    run(&["plan", "--detailed-exitcode"]).expect(0);
    run(&["drift"]).expect(0);

    let destroy = run(&["destroy", "--auto-approve"]);
    assert_eq!(destroy.code(), 0, "seed {seed}: {}", destroy.stderr());
    let gone = FleetCount {
        repositories: 0,
        services: 0,
        service_names_unique: true,
        clusters: 0,
        roles: 0,
    };
    assert_eq!(count_fleet(&moto, "storm").await, gone, "seed {seed}");
    let stats = proxy.stats();
    for (operation, times) in [
        ("DeleteRepository", SERVICES + 1),
        ("DeleteService", SERVICES),
        ("DeleteCluster", 1),
        ("DeleteRole", 1),
    ] {
        assert_eq!(
            stats.forwarded(operation),
            times,
            "seed {seed}: {operation} must reach AWS exactly once per resource: {stats:?}"
        );
    }
    let total: usize =
        stats.forwarded.values().sum::<usize>() + stats.throttled + stats.unavailable;
    assert!(
        stats.throttled as f64 > 0.2 * total as f64 && stats.unavailable > 0,
        "the storm really happened: {} throttled and {} unavailable of {total} calls",
        stats.throttled,
        stats.unavailable
    );
}
