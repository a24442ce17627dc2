//! Snapshots of the rendered text and JSON plans for the example `dev` environment.

use std::collections::BTreeMap;
use std::path::Path;

use converge::config::{self, VarOverrides};
use converge::model::LiveMap;
use converge::model::Value;
use converge::plan::{self, PlanOptions};
use converge::providers::Live;
use converge::state::{ResourceState, ResourceStatus};

fn dev() -> config::Environment {
    config::load(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "dev",
        &VarOverrides::default(),
    )
    .expect("example dev loads")
}

#[test]
fn plan_from_nothing_text_and_json() {
    let env = dev();
    let plan = plan::compute(&env, &[], &LiveMap::new(), 0, &PlanOptions::default());
    insta::assert_snapshot!("create_text", plain(&plan::render::text(&plan)));
    let mut json = serde_json::to_value(&plan).unwrap();
    json["files_hash"] = "(files hash)".into();
    insta::assert_json_snapshot!("create_json", json);
    insta::assert_snapshot!(
        "create_markdown",
        plan::markdown::markdown(&plan, None, plan::markdown::GITHUB_LIMIT)
    );
}

#[test]
fn plan_with_update_replace_and_delete() {
    let env = dev();
    let (state, live) = applied(&plan::compute(
        &env,
        &[],
        &LiveMap::new(),
        0,
        &PlanOptions::default(),
    ));
    // Plan again against that state so references to outputs are known, as after a real apply.
    let created = plan::compute(&env, &state, &live, 1, &PlanOptions::default());
    // Pretend everything was applied, then changed: the API scaled by hand, Container Insights
    // switched on in the console, the API's repository renamed (a replacement), and a resource
    // the files no longer declare.
    let (mut state, mut live) = applied(&created);
    for (address, l) in live.iter_mut() {
        let Some(Live {
            properties: Value::Map(m),
            ..
        }) = l
        else {
            continue;
        };
        match address.as_str() {
            "api.service" => {
                m.insert("desired_count".into(), Value::int(4));
            }
            "cluster" => {
                m.insert("container_insights".into(), Value::Bool(true));
            }
            "api.repo" => {
                m.insert("name".into(), Value::str("renamed"));
            }
            _ => {}
        }
    }
    let old: BTreeMap<String, Value> = [("name".to_string(), Value::str("legacy"))]
        .into_iter()
        .collect();
    let legacy = converge::model::Address::parse("legacy").unwrap();
    state.push(ResourceState {
        address: legacy.clone(),
        kind: "aws.ecr_repository".into(),
        remote_id: "legacy".into(),
        properties: Value::Map(old.clone()),
        outputs: Value::map(),
        dependencies: Vec::new(),
        status: ResourceStatus::Applied,
    });
    live.insert(legacy, None);
    let plan = plan::compute(&env, &state, &live, 7, &PlanOptions::default());
    insta::assert_snapshot!("changes_text", plain(&plan::render::text(&plan)));
    let md = plan::markdown::markdown(&plan, Some("pr.tfplan"), plan::markdown::GITHUB_LIMIT);
    insta::assert_snapshot!("changes_markdown", md);
    // Replacements and deletions come first in the table, flagged.
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    assert!(table[0].contains("**replace**"), "{table:?}");
    assert!(table[1].contains("**destroy**"), "{table:?}");
    assert_eq!(plan.summary.destroy, 1);
    assert_eq!(
        plan.summary.replace, 1,
        "renaming the repository replaces it"
    );
    assert_eq!(
        plan.summary.change, 2,
        "the cluster's insights and the API service (count, image)"
    );
}

fn plain(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}

/// State and live state as if `plan` had been applied.
fn applied(created: &plan::Plan) -> (Vec<ResourceState>, LiveMap) {
    let mut state = Vec::new();
    let mut live = LiveMap::new();
    for change in &created.changes {
        let after = change.after.clone().unwrap();
        let outputs: Value = [(
            "arn".to_string(),
            Value::str(format!("arn:aws:test:{}", change.address)),
        )]
        .into_iter()
        .chain([(
            "uri".to_string(),
            Value::str(format!("uri/{}", change.address)),
        )])
        .collect();
        let live_props = after.clone();
        state.push(ResourceState {
            address: change.address.clone(),
            kind: change.kind.clone(),
            remote_id: change.address.to_string(),
            properties: after,
            outputs: outputs.clone(),
            dependencies: Vec::new(),
            status: ResourceStatus::Applied,
        });
        live.insert(
            change.address.clone(),
            Some(Live {
                properties: live_props,
                outputs,
            }),
        );
    }
    (state, live)
}

#[test]
fn a_rollout_plan_in_markdown() {
    let staging = |tag: &str| {
        let overrides = VarOverrides {
            cli: [("image_tag".to_string(), tag.to_string())]
                .into_iter()
                .collect(),
            env: BTreeMap::new(),
            without_secrets: false,
        };
        config::load(Path::new(env!("CARGO_MANIFEST_DIR")), "staging", &overrides)
            .expect("example staging loads")
    };
    let env = staging("v1.0.0");
    let (state, live) = applied(&plan::compute(
        &env,
        &[],
        &LiveMap::new(),
        0,
        &PlanOptions::default(),
    ));
    let created = plan::compute(&env, &state, &live, 1, &PlanOptions::default());
    let (state, live) = applied(&created);
    let plan = plan::compute(
        &staging("v1.1.0"),
        &state,
        &live,
        2,
        &PlanOptions::default(),
    );
    let md = plan::markdown::markdown(&plan, None, plan::markdown::GITHUB_LIMIT);
    assert!(md.contains("update (rollout)"), "{md}");
    assert!(md.contains("**Rollout:** canary 10% → 50% → 100%"), "{md}");
    insta::assert_snapshot!("rollout_markdown", md);
}

#[test]
fn a_400_resource_plan_stays_under_githubs_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("environments")).unwrap();
    let mut file =
        String::from("environment: big\nproviders:\n  aws: { region: us-east-1 }\nresources:\n");
    for i in 0..400 {
        file.push_str(&format!(
            "  repo{i}:\n    type: aws.ecr_repository\n    properties: {{ name: team-service-{i}, image_tag_mutability: IMMUTABLE, tags: {{ team: platform, service: service-{i} }} }}\n"
        ));
    }
    std::fs::write(dir.path().join("environments/big.yaml"), file).unwrap();
    let env = config::load(dir.path(), "big", &VarOverrides::default()).unwrap();
    let plan = plan::compute(&env, &[], &LiveMap::new(), 0, &PlanOptions::default());
    assert_eq!(plan.summary.add, 400);
    let md = plan::markdown::markdown(&plan, Some("big.tfplan"), plan::markdown::GITHUB_LIMIT);
    assert!(
        md.chars().count() <= 65_536,
        "{} characters",
        md.chars().count()
    );
    assert!(
        md.contains("| `+` | `repo399` |"),
        "every resource is in the table"
    );
    assert!(
        md.contains("Cut at 65536 characters (GitHub's limit)") && md.contains("`big.tfplan`"),
        "the cut is said, naming the plan file"
    );
    assert!(
        md.trim_end().ends_with("`big.tfplan`."),
        "the note comes last"
    );
    let blocks = md.matches("<details>").count();
    assert_eq!(
        md.matches("</details>").count(),
        blocks,
        "no block is cut in half"
    );
}

/// A host app's deploy is a rollout in the plan, as an ECS service's is: its update carries
/// the strategy (here two batches of hosts) in text, JSON and Markdown.
#[test]
fn a_host_app_update_is_a_rollout_in_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    let env_file = |tag: &str| {
        format!(
            r#"environment: hosts
providers: {{}}
resources:
  app:
    type: host.app
    properties:
      name: shop
      hosts: [{{ address: 192.0.2.10, user: deploy }}, {{ address: 192.0.2.11, user: deploy }}]
      services:
        web: {{ image: "registry.example.com/shop:{tag}", port: 8080, health: {{ http: {{ path: /health }} }} }}
      rollout:
        strategy: blue_green
        batch: 1
        proxy: {{ nginx: {{ server_name: shop.example.com }} }}
"#
        )
    };
    let load = |tag: &str| {
        std::fs::write(dir.path().join("environments/hosts.yaml"), env_file(tag)).unwrap();
        config::load(dir.path(), "hosts", &VarOverrides::default()).expect("hosts loads")
    };
    let env = load("v1");
    let (state, live) = applied(&plan::compute(
        &env,
        &[],
        &LiveMap::new(),
        0,
        &PlanOptions::default(),
    ));
    let plan = plan::compute(&load("v2"), &state, &live, 1, &PlanOptions::default());
    let change = &plan.changes[0];
    assert_eq!(change.action, plan::Action::Update);
    let rollout = change.rollout.as_deref().expect("the update is a rollout");
    assert!(rollout.starts_with("blue_green in 2 batches"), "{rollout}");
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["changes"][0]["rollout"], rollout, "JSON carries it");
    let md = plan::markdown::markdown(&plan, None, plan::markdown::GITHUB_LIMIT);
    assert!(md.contains("update (rollout)"), "{md}");
    insta::assert_snapshot!("host_app_rollout_text", plain(&plan::render::text(&plan)));
}
