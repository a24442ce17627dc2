//! Azure resource groups and container registries end to end against the local Azure test
//! server (ARM + token endpoint, every request body checked against the official specs):
//! lifecycle with drift and repair, a failed long-running operation, throttling, a missing
//! credential, and one environment mixing AWS (moto) and Azure.

mod support;

use serde_json::json;
use support::{AzureServer, Moto, Project};

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

fn project(server: &AzureServer, sku: &str, tags: &str) -> Project {
    let p = Project::empty().with_env(server.env());
    p.write(
        "environments/az.yaml",
        &format!(
            r#"environment: az
providers:
  azure: {{ subscription_id: "{SUB}" }}
resources:
  rg:
    type: azure.resource_group
    properties: {{ name: converge-az, location: westeurope, tags: {{ team: platform }} }}
  acr:
    type: azure.container_registry
    properties:
      name: convergeaz
      resource_group: "${{rg.name}}"
      location: "${{rg.location}}"
      sku: {sku}
      tags: {tags}
"#
        ),
    );
    p
}

fn group_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/converge-az")
}

fn registry_id() -> String {
    format!(
        "{}/providers/Microsoft.ContainerRegistry/registries/convergeaz",
        group_id()
    )
}

#[test]
fn lifecycle_with_drift_repair_and_destroy() {
    let server = AzureServer::start();
    let p = project(&server, "Basic", "{ team: platform }");
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "az"];
        all.extend(args);
        p.converge(&all)
    };
    run(&["plan", "--detailed-exitcode"]).expect(2);
    run(&["apply", "--auto-approve"]).expect(0);
    let acr = server
        .resource(&registry_id())
        .expect("the registry exists");
    assert_eq!(acr["sku"]["name"], "Basic");
    assert_eq!(acr["properties"]["adminUserEnabled"], false);
    assert_eq!(acr["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        server.resource(&group_id()).unwrap()["location"],
        "westeurope"
    );
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // Update: SKU and tags (PATCH, checked against RegistryUpdateParameters).
    let p2 = project(
        &server,
        "Standard",
        "{ team: platform, cost-center: \"42\" }",
    );
    std::fs::write(
        p.root().join("environments/az.yaml"),
        p2.read("environments/az.yaml"),
    )
    .unwrap();
    run(&["apply", "--auto-approve"]).expect(0);
    let acr = server.resource(&registry_id()).unwrap();
    assert_eq!(acr["sku"]["name"], "Standard");
    assert_eq!(acr["tags"]["cost-center"], "42");

    // Out of band, in the portal: SKU and admin user changed.
    server.edit(
        &registry_id(),
        json!({"sku": {"name": "Premium"}, "properties": {"adminUserEnabled": true}}),
    );
    let drift = run(&["drift", "--format", "json"]).expect(2).json();
    let fields: Vec<&str> = drift["drifted"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["admin_user_enabled", "sku"]);
    run(&["apply", "--auto-approve"]).expect(0);
    let acr = server.resource(&registry_id()).unwrap();
    assert_eq!(acr["sku"]["name"], "Standard");
    assert_eq!(acr["properties"]["adminUserEnabled"], false);

    // Deleted out of band: drift says so, apply creates it again.
    server.remove(&registry_id());
    let drift = run(&["drift", "--format", "json"]).expect(2).json();
    assert_eq!(drift["drifted"][0]["status"], "deleted");
    run(&["apply", "--auto-approve"]).expect(0);
    assert!(server.resource(&registry_id()).is_some());

    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(server.ids().is_empty(), "{:?}", server.ids());
    let log = server.log();
    let deletes: Vec<&String> = log.iter().filter(|l| l.starts_with("DELETE")).collect();
    assert!(
        deletes[0].contains("/registries/"),
        "the registry goes before its group: {deletes:?}"
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn a_failed_long_running_operation_fails_the_step_with_arms_code_and_message() {
    let server = AzureServer::start();
    let p = project(&server, "Basic", "{}");
    server.fail_next_operation(
        "QuotaExceeded",
        "The subscription has reached its registry quota.",
    );
    let run = p
        .converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(1);
    assert!(
        run.stderr().contains(
            "operation Failed: QuotaExceeded: The subscription has reached its registry quota."
        ),
        "{}",
        run.stderr()
    );
    // The group is recorded; the registry is still to do.
    let plan = p
        .converge(&["-e", "az", "plan", "--format", "json"])
        .expect(0)
        .json();
    let actions: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rg".into(), "no_op".into()),
            ("acr".into(), "create".into())
        ]
    );
    p.converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(0);
    assert!(server.resource(&registry_id()).is_some());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn throttled_calls_are_retried_honouring_retry_after() {
    let server = AzureServer::start();
    server.throttle_every(3);
    let p = project(&server, "Basic", "{}");
    p.converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(0);
    p.converge(&["-e", "az", "plan", "--detailed-exitcode"])
        .expect(0);
    assert!(server.resource(&registry_id()).is_some());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
    let retries = server.throttle_retries();
    assert!(
        retries.len() >= 2,
        "the server answered 429 at least twice: {retries:?}"
    );
    for (request, waited) in &retries {
        let waited = waited.unwrap_or_else(|| panic!("{request} was never retried after its 429"));
        // `Retry-After: 1`: the retry comes no sooner than one second later (a little slack
        // for timer granularity), and not absurdly later.
        assert!(
            waited >= std::time::Duration::from_millis(950)
                && waited < std::time::Duration::from_secs(20),
            "{request} retried after {waited:?}, not after the 1 s the server asked for"
        );
    }
}

#[test]
fn a_missing_credential_is_one_clear_error_before_anything_is_planned() {
    let server = AzureServer::start();
    let env: Vec<(String, String)> = server
        .env()
        .into_iter()
        .filter(|(k, _)| k != "AZURE_CLIENT_SECRET")
        .collect();
    let p = Project::empty().with_env(env);
    p.write(
        "environments/az.yaml",
        &project(&server, "Basic", "{}").read("environments/az.yaml"),
    );
    let run = p.converge(&["-e", "az", "plan"]).expect(1);
    assert!(
        run.stderr()
            .contains("no Azure credential: tried the environment"),
        "{}",
        run.stderr()
    );
    assert!(
        server.log().is_empty() && server.tokens_issued() == 0,
        "nothing was called"
    );
}

#[test]
fn one_environment_mixes_aws_and_azure() {
    let server = AzureServer::start();
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto).with_env(server.env());
    p.write(
        "environments/mixed.yaml",
        &format!(
            r#"environment: mixed
providers:
  aws: {{ region: us-east-1 }}
  azure: {{ subscription_id: "{SUB}" }}
resources:
  ecr:
    type: aws.ecr_repository
    properties: {{ name: mixed-app }}
  rg:
    type: azure.resource_group
    properties: {{ name: converge-az, location: westeurope }}
  acr:
    type: azure.container_registry
    properties: {{ name: convergeaz, resource_group: "${{rg.name}}", location: westeurope }}
"#
        ),
    );
    p.converge(&["-e", "mixed", "apply", "--auto-approve"])
        .expect(0);
    p.converge(&["-e", "mixed", "plan", "--detailed-exitcode"])
        .expect(0);
    assert!(server.resource(&registry_id()).is_some());
    let listed = p
        .converge(&["-e", "mixed", "state", "list", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[test]
fn github_actions_oidc_signs_in_with_no_secret_at_all() {
    let server = AzureServer::start();
    let p = Project::empty().with_env(server.github_actions_env());
    p.write(
        "environments/az.yaml",
        &project(&server, "Basic", "{}").read("environments/az.yaml"),
    );
    p.converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(0);
    assert!(server.resource(&registry_id()).is_some());
    assert_eq!(
        server.github_audiences(),
        vec!["api://AzureADTokenExchange"]
    );
    assert!(!server.grants().is_empty());
    assert!(
        server.grants().iter().all(|g| g == "client_assertion"),
        "GitHub's token was the client assertion: {:?}",
        server.grants()
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn a_configured_credential_that_is_rejected_ends_the_chain_with_its_own_error() {
    let server = AzureServer::start();
    let env: Vec<(String, String)> = server
        .env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AZURE_CLIENT_SECRET" {
                (k, "wrong".into())
            } else {
                (k, v)
            }
        })
        .collect();
    let p = Project::empty().with_env(env);
    p.write(
        "environments/az.yaml",
        &project(&server, "Basic", "{}").read("environments/az.yaml"),
    );
    let run = p
        .converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(1);
    assert!(
        run.stderr().contains("Azure sign-in failed"),
        "{}",
        run.stderr()
    );
    assert!(
        !run.stdout().contains("will perform"),
        "stopped before anything was planned: {}",
        run.stdout()
    );
    assert!(server.ids().is_empty());
}

#[test]
fn endpoints_can_come_from_the_file() {
    let server = AzureServer::start();
    let env: Vec<(String, String)> = server
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("CONVERGE_AZURE_"))
        .collect();
    let p = Project::empty().with_env(env);
    let file = project(&server, "Basic", "{}").read("environments/az.yaml");
    let from = format!("azure: {{ subscription_id: \"{SUB}\" }}");
    assert!(file.contains(&from));
    p.write(
        "environments/az.yaml",
        &file.replace(
            &from,
            &format!(
                "azure: {{ subscription_id: \"{SUB}\", endpoints: {{ resource_manager: \"{0}\", graph: \"{0}\" }} }}",
                server.base
            ),
        ),
    );
    p.converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(0);
    assert!(server.resource(&registry_id()).is_some());
}

#[test]
fn a_virtual_network_with_subnets_drifts_and_is_repaired() {
    let server = AzureServer::start();
    let p = Project::empty().with_env(server.env());
    p.write(
        "environments/net.yaml",
        &format!(
            r#"environment: net
providers:
  azure: {{ subscription_id: "{SUB}" }}
resources:
  rg:
    type: azure.resource_group
    properties: {{ name: converge-az, location: westeurope }}
  vnet:
    type: azure.virtual_network
    properties:
      name: converge-vnet
      resource_group: "${{rg.name}}"
      location: westeurope
      address_space: [10.10.0.0/16]
      subnets:
        - {{ name: app, address_prefix: 10.10.1.0/24 }}
        - {{ name: data, address_prefix: 10.10.2.0/24 }}
"#
        ),
    );
    p.converge(&["-e", "net", "apply", "--auto-approve"])
        .expect(0);
    let id = format!(
        "{}/providers/Microsoft.Network/virtualNetworks/converge-vnet",
        group_id()
    );
    let vnet = server.resource(&id).expect("the network exists");
    assert_eq!(vnet["properties"]["subnets"].as_array().unwrap().len(), 2);
    let shown = p
        .converge(&["-e", "net", "state", "show", "vnet", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(
        shown["outputs"]["subnet_ids"]["app"],
        format!("{id}/subnets/app"),
        "{shown}"
    );
    p.converge(&["-e", "net", "plan", "--detailed-exitcode"])
        .expect(0);
    // Someone deletes a subnet in the portal.
    server.edit(
        &id,
        json!({"properties": {"subnets": [vnet["properties"]["subnets"][0].clone()]}}),
    );
    let drift = p
        .converge(&["-e", "net", "drift", "--format", "json"])
        .expect(2)
        .json();
    assert_eq!(drift["drifted"][0]["fields"][0]["name"], "subnets");
    p.converge(&["-e", "net", "apply", "--auto-approve"])
        .expect(0);
    assert_eq!(
        server.resource(&id).unwrap()["properties"]["subnets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    p.converge(&["-e", "net", "destroy", "--auto-approve"])
        .expect(0);
    assert!(server.ids().is_empty());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn a_secretless_ci_principal_with_acr_push_converges_and_repairs() {
    let server = AzureServer::start();
    let p = project(&server, "Basic", "{}");
    let file = p.read("environments/az.yaml");
    p.write(
        "environments/az.yaml",
        &format!(
            r#"{file}  ci:
    type: azure.service_principal
    properties:
      display_name: converge-ci
      federated_credentials:
        - name: github-main
          issuer: https://token.actions.githubusercontent.com
          subject: repo:example/app:ref:refs/heads/main
          audiences: [api://AzureADTokenExchange]
      role_assignments:
        - {{ role: AcrPush, scope: "${{acr.id}}" }}
"#
        ),
    );
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "az"];
        all.extend(args);
        p.converge(&all)
    };
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);
    let apps = server.applications();
    assert_eq!(apps.len(), 1, "{apps:?}");
    let app = apps[0]["id"].as_str().unwrap().to_string();
    let assignments = server.role_assignments();
    assert_eq!(
        assignments.len(),
        1,
        "exactly once after two applies: {assignments:?}"
    );
    let a = &assignments[0]["properties"];
    assert_eq!(a["scope"], registry_id());
    assert!(
        a["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with("/8311e382-0749-4cb8-b61a-304f252e45ec"),
        "AcrPush's role definition id: {a}"
    );
    let shown = run(&["state", "show", "ci", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(
        a["principalId"], shown["outputs"]["object_id"],
        "assigned to the service principal, not the app"
    );
    assert_ne!(shown["outputs"]["client_id"], shown["outputs"]["object_id"]);
    assert_eq!(server.credentials(&app).len(), 1);

    // Out of band: the assignment and the credential are deleted.
    server.remove_role_assignment(assignments[0]["id"].as_str().unwrap());
    server.remove_credential(&app, "github-main");
    let drift = run(&["drift", "--format", "json"]).expect(2).json();
    let fields: Vec<&str> = drift["drifted"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["federated_credentials", "role_assignments"]);
    run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(server.role_assignments().len(), 1);
    assert_eq!(server.credentials(&app).len(), 1);

    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(server.applications().is_empty());
    assert!(server.role_assignments().is_empty());
    assert!(server.ids().is_empty(), "{:?}", server.ids());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn the_azure_dev_example_converges_with_each_role_assigned_once() {
    let server = AzureServer::start();
    let p = Project::example().with_env(server.env());
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "azure-dev"];
        all.extend(args);
        p.converge(&all)
    };
    run(&["plan", "--detailed-exitcode"]).expect(2);
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["plan", "--detailed-exitcode"]).expect(0);

    let sub = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/app-dev";
    let registry = format!("{sub}/providers/Microsoft.ContainerRegistry/registries/appdevregistry");
    let vm_id = format!("{sub}/providers/Microsoft.Compute/virtualMachines/app-dev-vm");
    let vm = server.resource(&vm_id).expect("the VM exists");
    assert_eq!(vm["identity"]["type"], "SystemAssigned");
    assert_eq!(
        vm["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"],
        true
    );
    let nic = server
        .resource(&format!(
            "{sub}/providers/Microsoft.Network/networkInterfaces/app-dev-vm-nic"
        ))
        .expect("its NIC exists");
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"],
        format!("{sub}/providers/Microsoft.Network/virtualNetworks/app-dev/subnets/vms")
    );
    let assignments = server.role_assignments();
    assert_eq!(
        assignments.len(),
        2,
        "AcrPush and AcrPull, once each: {assignments:?}"
    );
    let role_of = |principal: &serde_json::Value| {
        assignments
            .iter()
            .find(|a| a["properties"]["principalId"] == *principal)
            .map(|a| {
                a["properties"]["roleDefinitionId"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
    };
    assert_eq!(
        role_of(&vm["identity"]["principalId"]).as_deref(),
        Some("7f951dda-4ed3-4680-a7ca-43fe172d538d"),
        "AcrPull for the VM"
    );
    assert!(
        assignments
            .iter()
            .all(|a| a["properties"]["scope"] == registry.as_str())
    );
    let ci = run(&["state", "show", "ci", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(
        role_of(&ci["outputs"]["object_id"]).as_deref(),
        Some("8311e382-0749-4cb8-b61a-304f252e45ec"),
        "AcrPush for CI"
    );

    // The VM is deleted in the portal: drift reports it, apply builds it again.
    server.remove(&vm_id);
    let drift = run(&["drift", "--format", "json"]).expect(2).json();
    assert_eq!(drift["drifted"][0]["address"], "vm");
    assert_eq!(drift["drifted"][0]["status"], "deleted");
    run(&["apply", "--auto-approve"]).expect(0);
    assert!(server.resource(&vm_id).is_some());
    assert_eq!(server.role_assignments().len(), 2);

    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(server.ids().is_empty(), "{:?}", server.ids());
    assert!(server.applications().is_empty());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn existing_azure_resources_are_imported_and_then_match_the_files() {
    let server = AzureServer::start();
    // Someone made them by hand (here: another project's state).
    let made = project(&server, "Basic", "{}");
    made.converge(&["-e", "az", "apply", "--auto-approve"])
        .expect(0);
    let adopting = project(&server, "Basic", "{}");
    adopting
        .converge(&["-e", "az", "import", "rg", &group_id()])
        .expect(0);
    let nothere = format!(
        "{}/providers/Microsoft.ContainerRegistry/registries/nothere",
        group_id()
    );
    let missing = adopting
        .converge(&["-e", "az", "import", "acr", &nothere])
        .expect(1);
    assert!(
        missing
            .stderr()
            .contains("no azure.container_registry with id"),
        "{}",
        missing.stderr()
    );
    adopting
        .converge(&["-e", "az", "import", "acr", &registry_id()])
        .expect(0);
    adopting
        .converge(&["-e", "az", "plan", "--detailed-exitcode"])
        .expect(0);
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[test]
fn cost_watch_reads_cost_management_pages_and_flags_a_spike() {
    let server = AzureServer::start();
    let p = project(&server, "Standard", "{ team: platform }");
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "az"];
        all.extend(args);
        p.converge(&all)
    };
    run(&["apply", "--auto-approve"]).expect(0);
    // A week at $0.67/day for the registry and $2.00/day untagged, then $3.10 on the judged day.
    // Judged: today, the day the registry was created (so the create is in the window).
    let day = chrono::Utc::now().date_naive();
    let day_arg = day.to_string();
    let yyyymmdd = |d: chrono::NaiveDate| d.format("%Y%m%d").to_string().parse::<i64>().unwrap();
    let mut rows = Vec::new();
    for back in 1..=7 {
        let d = day - chrono::Duration::days(back);
        rows.push((0.6667, yyyymmdd(d), "acr".to_string()));
        rows.push((2.0, yyyymmdd(d), String::new()));
    }
    rows.push((3.10, yyyymmdd(day), "acr".to_string()));
    rows.push((2.0, yyyymmdd(day), String::new()));
    // Outside the window: must not be counted.
    rows.push((
        99.0,
        yyyymmdd(day - chrono::Duration::days(30)),
        "acr".to_string(),
    ));
    server.set_cost_rows(rows);

    let out = run(&["cost", "watch", "--day", &day_arg, "--format", "json"]).expect(2);
    let report = out.json();
    assert_eq!(report["anomalies"], 1, "{report}");
    let acr = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["address"] == "acr")
        .unwrap();
    assert_eq!(acr["verdict"], "anomaly");
    assert!(
        (acr["baseline_usd"].as_f64().unwrap() - 0.6667).abs() < 1e-9,
        "{acr}"
    );
    assert_eq!(acr["day_usd"], 3.1);
    assert_eq!(acr["deployments"][0]["action"], "create", "{acr}");
    let untagged = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["address"] == "(untagged)")
        .unwrap();
    assert_eq!(untagged["verdict"], "normal");
    assert_eq!(report["missing_days"], json!([]));
    // 16 rows in pages of two: every page was read with the same, spec-valid query.
    let queries = server.cost_queries();
    assert_eq!(queries.len(), 8, "{queries:?}");
    assert!(server.violations().is_empty(), "{:?}", server.violations());
    assert_eq!(
        queries[0]["timePeriod"]["from"],
        format!("{}T00:00:00Z", day - chrono::Duration::days(7))
    );
    assert_eq!(queries[0]["timePeriod"]["to"], format!("{day}T23:59:59Z"));
    assert_eq!(
        queries[0]["dataset"]["filter"]["tags"],
        json!({"name": "converge:environment", "operator": "In", "values": ["az"]})
    );

    let md = run(&["cost", "watch", "--day", &day_arg, "--format", "markdown"]).expect(2);
    assert!(
        md.stdout().contains("<!-- converge:cost-watch:az -->"),
        "{}",
        md.stdout()
    );
    assert!(
        md.stdout()
            .contains("| `acr` :warning: | $3.10 | $0.67 | +365% |"),
        "{}",
        md.stdout()
    );
    // The registry also carries converge's tags, so Cost Management can group by them.
    let registry = server.resource(&registry_id()).unwrap();
    assert_eq!(registry["tags"]["converge:address"], "acr");
    assert_eq!(registry["tags"]["converge:environment"], "az");
}

/// The VM of the azure-dev example with cloud-init, a public IP and inbound rules: the custom
/// data reaches ARM base64-encoded and appears in no output or state; the public IP is Standard
/// and static (output `public_ip`); the rules become a security group on the NIC; a rule edited
/// by hand is drift that apply repairs; turning both off removes them; destroy leaves nothing.
#[test]
fn a_vm_with_cloud_init_a_public_ip_and_inbound_rules() {
    let server = AzureServer::start();
    let p = Project::example().with_env(server.env());
    let cloud_init = "#cloud-config\nusers: [{ name: deploy }]\nwrite_files: [{ path: /etc/token, content: tok-7Qz }]\n";
    p.edit(
        "environments/azure-dev.yaml",
        "variables:\n",
        &format!(
            "variables:\n  cloud_init: {{ default: {}, sensitive: true }}\n",
            serde_json::to_string(cloud_init).unwrap()
        ),
    );
    p.edit(
        "environments/azure-dev.yaml",
        "      identity: { system_assigned: true }\n",
        "      identity: { system_assigned: true }\n      custom_data: \"${var.cloud_init}\"\n      public_ip: true\n      inbound: [{ port: 22, from: 203.0.113.0/24 }, { port: 80 }]\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "azure-dev"];
        all.extend(args);
        p.converge(&all)
    };
    let applied = run(&["apply", "--auto-approve"]).expect(0);
    assert!(!applied.stdout().contains("tok-7Qz"));
    run(&["plan", "--detailed-exitcode"]).expect(0);

    let group = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/app-dev";
    let vm = server
        .resource(&format!(
            "{group}/providers/Microsoft.Compute/virtualMachines/app-dev-vm"
        ))
        .unwrap();
    use base64::Engine;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(
            vm["properties"]["osProfile"]["customData"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(String::from_utf8(sent).unwrap(), cloud_init);
    let ip_id = format!("{group}/providers/Microsoft.Network/publicIPAddresses/app-dev-vm-ip");
    let nsg_id =
        format!("{group}/providers/Microsoft.Network/networkSecurityGroups/app-dev-vm-nsg");
    let ip = server.resource(&ip_id).expect("the public IP");
    assert_eq!(
        (
            ip["sku"]["name"].as_str(),
            ip["properties"]["publicIPAllocationMethod"].as_str()
        ),
        (Some("Standard"), Some("Static"))
    );
    let nic = server
        .resource(&format!(
            "{group}/providers/Microsoft.Network/networkInterfaces/app-dev-vm-nic"
        ))
        .unwrap();
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"],
        ip_id.as_str()
    );
    assert_eq!(
        nic["properties"]["networkSecurityGroup"]["id"],
        nsg_id.as_str()
    );
    let rules = server.resource(&nsg_id).unwrap()["properties"]["securityRules"].clone();
    let seen: Vec<(String, String, i64)> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["properties"]["destinationPortRange"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r["properties"]["sourceAddressPrefix"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r["properties"]["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("22".to_string(), "203.0.113.0/24".to_string(), 100),
            ("80".to_string(), "Internet".to_string(), 101)
        ]
    );
    let shown = run(&["state", "show", "vm", "--format", "json"]).expect(0);
    assert_eq!(
        shown.json()["outputs"]["public_ip_address"],
        ip["properties"]["ipAddress"]
    );
    let state = std::fs::read(p.root().join("state/azure-dev.db")).unwrap();
    assert!(!String::from_utf8_lossy(&state).contains("tok-7Qz"));

    // Someone opens SSH to the world in the portal: drift, and apply closes it again.
    let mut opened = rules.clone();
    opened[0]["properties"]["sourceAddressPrefix"] = serde_json::json!("*");
    server.edit(
        &nsg_id,
        serde_json::json!({"properties": {"securityRules": opened}}),
    );
    let drift = run(&["drift", "--format", "json"]).expect(2).json();
    assert_eq!(drift["drifted"][0]["address"], "vm", "{drift}");
    assert_eq!(
        drift["drifted"][0]["fields"][0]["name"], "inbound",
        "{drift}"
    );
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["drift"]).expect(0);

    // Both turned off: the NIC lets go of them and they are deleted.
    p.edit(
        "environments/azure-dev.yaml",
        "      public_ip: true\n      inbound: [{ port: 22, from: 203.0.113.0/24 }, { port: 80 }]\n",
        "",
    );
    run(&["apply", "--auto-approve"]).expect(0);
    assert!(server.resource(&ip_id).is_none());
    assert!(server.resource(&nsg_id).is_none());
    run(&["plan", "--detailed-exitcode"]).expect(0);
    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(server.ids().is_empty(), "{:?}", server.ids());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}
