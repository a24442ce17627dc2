//! Records written by the release before typed target parts (version 2), captured from its
//! own integration tests at named phases (`tests/fixtures/records/`): each decodes into
//! today's format with its target's part tagged, shows every documented field in `rollout
//! status --format json` as it did, and resumes where it stopped.

use super::*;

const ECS_PAUSED: &str =
    include_str!("../../../../tests/fixtures/records/v2-ecs-canary-paused.json");
const ECS_BAKING: &str =
    include_str!("../../../../tests/fixtures/records/v2-ecs-canary-killed-baking.json");
const HOST_BATCH: &str =
    include_str!("../../../../tests/fixtures/records/v2-host-blue-green-interrupted-batch.json");
const HOST_DONE: &str =
    include_str!("../../../../tests/fixtures/records/v2-host-blue-green-succeeded.json");

/// The fields `docs/commands.md` documents for `rollout status --format json`, less the two
/// status adds itself (`bake_left_seconds`, `pending_request`).
const DOCUMENTED: &[&str] = &[
    "id",
    "address",
    "strategy",
    "status",
    "phase",
    "hook",
    "traffic_started",
    "failures",
    "rollback_started",
    "aborting",
    "ready_started",
    "service_arn",
    "steps",
    "step",
    "weights",
    "old",
    "new",
    "gates",
    "reason",
    "rollback_seconds",
    "started_at",
    "updated_at",
    "finished_at",
];

fn decoded(text: &str) -> (serde_json::Value, Rollout) {
    let body: serde_json::Value = serde_json::from_str(text).unwrap();
    let address = crate::model::Address::root(body["address"].as_str().unwrap());
    let rec = Rollout::decode(&address, &body).unwrap_or_else(|e| panic!("{e}"));
    (body, rec)
}

fn assert_documented_fields_kept(body: &serde_json::Value, rec: &Rollout) {
    let shown = rec.status_json().unwrap();
    for key in DOCUMENTED {
        assert_eq!(shown[key], body[key], "`{key}` as version 2 showed it");
    }
    assert_eq!(shown["version"], RECORD_VERSION);
}

#[test]
fn an_ecs_canary_left_at_a_pause_decodes_and_still_waits_for_promote() {
    let (body, rec) = decoded(ECS_PAUSED);
    assert_eq!(rec.version, RECORD_VERSION);
    assert_eq!(rec.target.tag(), Some("ecs"));
    assert!(rec.old_revision.ends_with("task-definition/ro-api:1"));
    assert!(rec.new_revision.ends_with("task-definition/ro-api:2"));
    assert_eq!(rec.status, Status::Paused);
    assert_documented_fields_kept(&body, &rec);
    let mut s = spec(Strategy::Canary);
    s.pauses = vec![0];
    let t = next(&rec, &s, &Observation::Resumed, at(0));
    assert_eq!(
        t.step,
        Step::TakeRequest,
        "a resume only looks for a promote"
    );
    let t = next(&rec, &s, &Observation::Requested(Request::Promote), at(0));
    assert_eq!(t.step, Step::SetWeights([50, 50]), "promote moves to 50%");
}

#[test]
fn an_ecs_canary_killed_while_baking_decodes_and_resumes_at_its_step() {
    let (body, rec) = decoded(ECS_BAKING);
    assert_eq!(rec.phase, Phase::Baking);
    assert_documented_fields_kept(&body, &rec);
    let t = next(&rec, &spec(Strategy::Canary), &Observation::Resumed, at(0));
    assert_eq!(t.step, Step::SetWeights([50, 50]), "never back to 10%");
}

#[test]
fn a_host_blue_green_interrupted_in_a_batch_decodes_and_waits_for_that_batch_again() {
    let (body, rec) = decoded(HOST_BATCH);
    assert_eq!(rec.target.tag(), Some("host"));
    assert_eq!(
        (rec.old_revision.as_str(), rec.new_revision.as_str()),
        ("blue", "green")
    );
    assert_eq!(rec.target.raw()["hosts"], body["target"]["hosts"]);
    assert_documented_fields_kept(&body, &rec);
    let mut s = spec(Strategy::BlueGreen);
    s.steps = vec![50, 100];
    let t = next(&rec, &s, &Observation::Resumed, at(0));
    assert_eq!(t.record.phase, Phase::Batch, "{:?}", t.step);
    assert_eq!(t.record.step, 2);
    assert!(
        matches!(t.step, Step::AwaitReady { .. } | Step::StartRevision),
        "the batch is looked at again, nothing switched yet: {:?}",
        t.step
    );
}

#[test]
fn a_finished_host_rollout_decodes_as_finished() {
    let (body, rec) = decoded(HOST_DONE);
    assert_eq!(rec.status, Status::Succeeded);
    assert_documented_fields_kept(&body, &rec);
    let mut s = spec(Strategy::BlueGreen);
    s.steps = vec![50, 100];
    assert_eq!(
        next(&rec, &s, &Observation::Resumed, at(0)).step,
        Step::Stop(Outcome::Succeeded)
    );
}

#[test]
fn a_record_from_a_newer_release_is_refused_with_its_version() {
    let mut body: serde_json::Value = serde_json::from_str(HOST_DONE).unwrap();
    body["version"] = serde_json::json!(RECORD_VERSION + 1);
    let err = Rollout::decode(&crate::model::Address::root("app"), &body).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("version {} record", RECORD_VERSION + 1)),
        "{err}"
    );
    // Today's own records decode as written.
    let (_, rec) = decoded(HOST_DONE);
    let again = Rollout::decode(
        &crate::model::Address::root("app"),
        &serde_json::to_value(&rec).unwrap(),
    )
    .unwrap();
    assert_eq!(again, rec);
}
