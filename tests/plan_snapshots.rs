//! Snapshots of the rendered text and JSON plans for the example `dev` environment.

use std::collections::BTreeMap;
use std::path::Path;

use converge::config::{self, VarOverrides};
use converge::model::Value;
use converge::plan::{self, LiveMap, PlanOptions};
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
