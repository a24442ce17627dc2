//! `converge prices update` against local fixture servers shaped like the AWS Price List bulk API
//! and the Azure Retail Prices API (paged), and `prices show`: new prices land in
//! prices.json and in plans; a truncated or malformed answer leaves the previous table in place.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use support::serve::{Served, serve};
use support::{Moto, Project};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pricing");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

/// How the fake AWS Price List server misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum AwsFault {
    None,
    /// The ECS regional file is cut in half, as a dropped download would be.
    TruncatedEcs,
}

/// The AWS Price List bulk API: offer index → region index → regional offer files.
fn aws_server(fault: AwsFault) -> Served {
    serve(move |req| async move {
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["offers", "v1.0", "aws", "index.json"] => respond(200, fixture("aws-index.json")),
            [
                "offers",
                "v1.0",
                "aws",
                offer,
                "current",
                "region_index.json",
            ] => {
                match std::fs::read_to_string(format!("{FIXTURES}/aws-{offer}-region_index.json")) {
                    Ok(text) => respond(200, text),
                    Err(_) => respond(404, "{}"),
                }
            }
            [
                "offers",
                "v1.0",
                "aws",
                offer,
                _version,
                "us-east-1",
                "index.json",
            ] => {
                let text = fixture(&format!("aws-{offer}-us-east-1.json"));
                if fault == AwsFault::TruncatedEcs && *offer == "AmazonECS" {
                    respond(200, text[..text.len() / 2].to_string())
                } else {
                    respond(200, text)
                }
            }
            _ => respond(404, "{}"),
        }
    })
}

/// How the fake Retail Prices API misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum AzureFault {
    None,
    /// The second page of VM prices is not JSON.
    MalformedPage,
    /// NextPageLink points off this server.
    ForeignLink,
}

/// The Azure Retail Prices API: pages of `Items` joined by `NextPageLink` (`$skip`).
fn azure_server(fault: AzureFault, pages_served: Arc<AtomicUsize>) -> Served {
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let base_in = base.clone();
    let served = serve(move |req| {
        let base = base_in.clone();
        let pages_served = pages_served.clone();
        async move {
            if req.path != "/api/retail/prices" {
                return respond(404, "{}");
            }
            let url = reqwest::Url::parse(&format!("http://x{}", req.path_and_query)).unwrap();
            let q: std::collections::HashMap<String, String> =
                url.query_pairs().into_owned().collect();
            let filter = q.get("$filter").cloned().unwrap_or_default();
            let skip: usize = q.get("$skip").map(|s| s.parse().unwrap()).unwrap_or(0);
            let pages: Vec<serde_json::Value> = if filter
                .contains("serviceName eq 'Virtual Machines'")
                && filter.contains("armRegionName eq 'westeurope'")
            {
                serde_json::from_str(&fixture("azure-vm-pages.json")).unwrap()
            } else if filter.contains("serviceName eq 'Container Registry'")
                && filter.contains("armRegionName eq 'westeurope'")
            {
                serde_json::from_str(&fixture("azure-acr-pages.json")).unwrap()
            } else {
                vec![serde_json::json!([])]
            };
            pages_served.fetch_add(1, Ordering::SeqCst);
            if fault == AzureFault::MalformedPage && skip == 1 && filter.contains("Virtual") {
                return respond(
                    200,
                    "{\"BillingCurrency\": \"USD\", \"Items\": [ {\"currencyCode\": ",
                );
            }
            let next = (skip + 1 < pages.len()).then(|| {
                let host = if fault == AzureFault::ForeignLink {
                    "https://prices.azure.com".to_string()
                } else {
                    base.get().unwrap().clone()
                };
                let mut next = reqwest::Url::parse(&format!("{host}/api/retail/prices")).unwrap();
                next.query_pairs_mut()
                    .append_pair("api-version", "2023-01-01-preview")
                    .append_pair("$filter", &filter)
                    .append_pair("$skip", &(skip + 1).to_string());
                next.to_string()
            });
            let items = pages[skip].clone();
            respond(
                200,
                serde_json::json!({
                    "BillingCurrency": "USD",
                    "CustomerEntityId": "Default",
                    "CustomerEntityType": "Retail",
                    "Items": items,
                    "NextPageLink": next,
                    "Count": items.as_array().map(Vec::len).unwrap_or(0),
                })
                .to_string(),
            )
        }
    });
    base.set(served.base.clone()).unwrap();
    served
}

/// A project whose price table covers us-east-1 and westeurope only (so the fixtures cover it).
fn project_with_prices(aws: &Served, azure: &Served) -> Project {
    let project = Project::example().with_env(vec![
        ("CONVERGE_AWS_PRICING_URL".into(), aws.base.clone()),
        (
            "CONVERGE_AZURE_PRICES_URL".into(),
            format!("{}/api/retail/prices", azure.base),
        ),
    ]);
    let shipped = project
        .converge(&[
            "prices",
            "show",
            "aws.ecs_service",
            "--region",
            "us-east-1",
            "--format",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(
        shipped["prices"][0]["usd"], 0.04048,
        "the shipped price first"
    );
    let mut table: serde_json::Value =
        serde_json::from_str(include_str!("../src/cost/prices.json")).unwrap();
    table["aws"]["regions"]
        .as_object_mut()
        .unwrap()
        .retain(|r, _| r == "us-east-1");
    table["azure"]["regions"]
        .as_object_mut()
        .unwrap()
        .retain(|r, _| r == "westeurope");
    project.write(
        "prices.json",
        &serde_json::to_string_pretty(&table).unwrap(),
    );
    project
}

#[test]
fn prices_update_follows_every_page_and_plans_use_the_new_prices() {
    let pages = Arc::new(AtomicUsize::new(0));
    let (aws, azure) = (
        aws_server(AwsFault::None),
        azure_server(AzureFault::None, pages.clone()),
    );
    let moto = Moto::start();
    let project = project_with_prices(&aws, &azure).with_moto(&moto);
    let out = project.converge(&["prices", "update"]).expect(0);
    assert!(
        out.stdout()
            .contains("AWS 1 regions (published 2026-11-20)"),
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout().contains("Azure 1 regions (4 pages read)"),
        "{}",
        out.stdout()
    );
    assert_eq!(pages.load(Ordering::SeqCst), 4, "3 VM pages and 1 ACR page");

    let table: serde_json::Value = serde_json::from_str(&project.read("prices.json")).unwrap();
    let use1 = &table["aws"]["regions"]["us-east-1"];
    assert_eq!(use1["fargate"]["vcpu_hour"], 0.04112);
    assert_eq!(use1["fargate"]["gb_hour"], 0.004512);
    assert_eq!(use1["fargate"]["arm_vcpu_hour"], 0.0329);
    assert_eq!(use1["fargate"]["arm_gb_hour"], 0.00362);
    assert_eq!(
        use1["alb_hour"], 0.023,
        "the Application, not the Network, load balancer"
    );
    assert_eq!(use1["ecr_gb_month"], 0.1);
    assert_eq!(
        use1["ec2_hour"],
        serde_json::json!({"t3.micro": 0.0106, "t3.medium": 0.0424, "m5.large": 0.098}),
        "Linux, shared tenancy, no Windows/SQL/dedicated/reservation rows"
    );
    let we = &table["azure"]["regions"]["westeurope"];
    assert_eq!(
        we["vm_hour"],
        serde_json::json!({"Standard_B1s": 0.0116, "Standard_B2s": 0.0464, "Standard_D2s_v5": 0.118}),
        "B2s Linux is on the last page; Windows, Spot, Low Priority, DevTest and the older B1s price are skipped"
    );
    assert_eq!(
        we["acr_day"],
        serde_json::json!({"Basic": 0.1667, "Standard": 0.6667, "Premium": 1.6667})
    );
    assert_eq!(table["aws"]["as_of"], "2026-11-20");

    let shown = project
        .converge(&["prices", "show", "aws.ecs_service", "--region", "us-east-1"])
        .expect(0)
        .stdout();
    assert!(shown.contains("as of 2026-11-20"), "{shown}");
    assert!(shown.contains("$0.04112"), "{shown}");

    // Plans price with the new table: one dev-api task, 0.25 vCPU and 0.5 GB:
    // (0.25 × 0.04112 + 0.5 × 0.004512) × 730 = 0.012536 × 730 = 9.15128 a month.
    let plan = project
        .converge(&["-e", "dev", "plan", "--format", "json"])
        .expect(0)
        .json();
    let api = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "api.service")
        .unwrap()
        .clone();
    let after = api["cost"]["after_monthly"].as_f64().unwrap();
    assert!((after - 9.15128).abs() < 1e-9, "{api}");
}

#[test]
fn a_truncated_aws_file_leaves_the_previous_table_in_place() {
    let pages = Arc::new(AtomicUsize::new(0));
    let (aws, azure) = (
        aws_server(AwsFault::TruncatedEcs),
        azure_server(AzureFault::None, pages),
    );
    let project = project_with_prices(&aws, &azure);
    let before = project.read("prices.json");
    let out = project.converge(&["prices", "update"]).expect(1);
    for needle in [
        "AWS Price List",
        "/offers/v1.0/aws/AmazonECS/20261120170311/us-east-1/index.json: line ",
        "prices.json was not changed",
    ] {
        assert!(
            out.stderr().contains(needle),
            "{needle} in {}",
            out.stderr()
        );
    }
    assert_eq!(project.read("prices.json"), before);
}

#[test]
fn a_malformed_azure_page_or_a_foreign_next_link_changes_nothing() {
    for (fault, needle) in [
        (AzureFault::MalformedPage, "skip=1: line 1, column"),
        (
            AzureFault::ForeignLink,
            "refusing to follow NextPageLink https://prices.azure.com/",
        ),
    ] {
        let pages = Arc::new(AtomicUsize::new(0));
        let (aws, azure) = (aws_server(AwsFault::None), azure_server(fault, pages));
        let project = project_with_prices(&aws, &azure);
        let before = project.read("prices.json");
        let out = project.converge(&["prices", "update"]).expect(1);
        assert!(
            out.stderr().contains("Azure Retail Prices"),
            "{}",
            out.stderr()
        );
        assert!(
            out.stderr().contains(needle),
            "{needle} in {}",
            out.stderr()
        );
        assert_eq!(project.read("prices.json"), before);
    }
}

#[test]
fn a_broken_price_file_is_an_error_not_a_silent_fallback() {
    let project = Project::example();
    project.write("prices.json", "{\n  \"format_version\": 1,\n  \"aws\": {\n");
    let out = project.converge(&["-e", "dev", "plan"]).expect(1);
    assert!(out.stderr().contains("prices.json:4:"), "{}", out.stderr());
    assert!(
        out.stderr().contains("not a converge price table"),
        "{}",
        out.stderr()
    );
}
