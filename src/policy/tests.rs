use super::*;

fn file(shown: &str, text: &str) -> PolicyFile {
    PolicyFile {
        shown: shown.into(),
        text: text.into(),
    }
}

fn input() -> serde_json::Value {
    serde_json::json!({
        "environment": "prod",
        "actor": "alice",
        "changes": [
            {"address": "web.sg", "kind": "aws.security_group", "action": "create",
             "after": {"ingress": [{"port": 22, "cidr": "0.0.0.0/0"}]}},
            {"address": "api", "kind": "aws.ecs_service", "action": "update", "after": {}},
        ],
    })
}

const PROD_ONLY_CI: &str = r#"package main
import rego.v1

deny contains msg if {
    input.environment == "prod"
    not startswith(input.actor, "github:")
    msg := sprintf("only CI may apply prod, not %s", [input.actor])
}
"#;

const NO_SSH: &str = r#"package main

deny_public_ssh contains {"msg": "no public ingress on 22", "address": c.address} if {
    some c in input.changes
    some rule in c.after.ingress
    rule.port == 22
    rule.cidr == "0.0.0.0/0"
}

warn contains "updates roll out" if {
    some c in input.changes
    c.action == "update"
}
"#;

#[test]
fn deny_and_warn_rules_are_traced_to_their_file_rule_and_address() {
    let policies = Policies::load(
        &[
            file("policies/ci.rego", PROD_ONLY_CI),
            file("policies/ingress.rego", NO_SSH),
        ],
        &[],
        "main",
    )
    .unwrap();
    let v = policies.evaluate(&input()).unwrap();
    assert!(v.denies());
    let denials: Vec<String> = v.denials.iter().map(PolicyFinding::line).collect();
    assert_eq!(
        denials,
        [
            "policies/ci.rego: deny: only CI may apply prod, not alice",
            "policies/ingress.rego: deny_public_ssh: no public ingress on 22 (web.sg)",
        ]
    );
    assert_eq!(v.warnings.len(), 1);
    assert_eq!(v.warnings[0].rule, "warn");
    assert_eq!(v.policies, ["policies/ci.rego", "policies/ingress.rego"]);

    let mut ci = input();
    ci["actor"] = "github:ci-bot".into();
    ci["changes"][0]["after"]["ingress"][0]["cidr"] = "10.0.0.0/8".into();
    let v = policies.evaluate(&ci).unwrap();
    assert!(!v.denies(), "{v:?}");
}

#[test]
fn exceptions_switch_rules_off_by_name() {
    let exception = r#"package main
exception contains rules if {
    input.environment == "prod"
    rules := ["public_ssh"]
}
"#;
    let policies = Policies::load(
        &[
            file("policies/ingress.rego", NO_SSH),
            file("policies/exceptions.rego", exception),
        ],
        &[],
        "main",
    )
    .unwrap();
    let v = policies.evaluate(&input()).unwrap();
    assert!(!v.denies(), "{v:?}");
    assert_eq!(v.exceptions, ["deny_public_ssh"]);
}

#[test]
fn rules_outside_the_namespace_are_not_decisions_and_data_is_read() {
    let limits = r#"package limits
import rego.v1
max_canary := data.org.max_canary
"#;
    let policy = r#"package converge
import rego.v1
violation contains msg if {
    data.limits.max_canary < 50
    msg := sprintf("canary steps above %d%% are not allowed", [data.limits.max_canary])
}
"#;
    let data = vec![(
        "data/org.json".to_string(),
        serde_json::json!({"org": {"max_canary": 25}}),
    )];
    let policies = Policies::load(
        &[
            file("policies/limits.rego", limits),
            file("policies/canary.rego", policy),
            file("policies/main.rego", PROD_ONLY_CI),
        ],
        &data,
        "converge",
    )
    .unwrap();
    let v = policies.evaluate(&input()).unwrap();
    let lines: Vec<String> = v.denials.iter().map(PolicyFinding::line).collect();
    assert_eq!(
        lines,
        ["policies/canary.rego: violation: canary steps above 25% are not allowed"]
    );
}

#[test]
fn bad_rego_is_an_error_located_in_its_file() {
    let err = Policies::load(
        &[file(
            "policies/broken.rego",
            "package main\n\ndeny contains msg if {\n  msg := \n}\n",
        )],
        &[],
        "main",
    )
    .err()
    .expect("a parse error");
    let text = err.to_string();
    assert!(text.contains("policies/broken.rego:"), "{text}");
}

#[test]
fn policy_tests_pass_and_fail_as_opa_test_says() {
    let tests = r#"package main
import rego.v1

test_denies_a_person_in_prod if {
    count(deny) == 1 with input as {"environment": "prod", "actor": "bob"}
}

test_allows_ci if {
    count(deny) == 0 with input as {"environment": "prod", "actor": "github:ci"}
}

test_wrong if {
    count(deny) == 5 with input as {"environment": "prod", "actor": "bob"}
}
"#;
    let results = testing::run(
        &[file("policies/ci.rego", PROD_ONLY_CI)],
        &[file("policies/ci_test.rego", tests)],
        &[],
    )
    .unwrap();
    let outcome: Vec<(String, bool)> = results.iter().map(|r| (r.name.clone(), r.passed)).collect();
    assert_eq!(
        outcome,
        [
            ("data.main.test_allows_ci".to_string(), true),
            ("data.main.test_denies_a_person_in_prod".to_string(), true),
            ("data.main.test_wrong".to_string(), false),
        ]
    );
}

#[test]
fn data_files_are_read_from_json_and_yaml_and_a_list_at_the_top_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/teams")).unwrap();
    std::fs::write(
        dir.path().join("data/org.json"),
        r#"{"org": {"max_canary": 25}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("data/teams/ci.yaml"),
        "ci_actors:\n  - ci:deploy\n",
    )
    .unwrap();
    let data = sources::read_data(dir.path(), &dir.path().join("data")).unwrap();
    let names: Vec<&str> = data.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["data/org.json", "data/teams/ci.yaml"]);
    assert_eq!(data[1].1["ci_actors"][0], "ci:deploy");
    let policy = "package main\nimport rego.v1\ndeny contains \"not CI\" if { not input.actor in data.ci_actors }\n";
    let policies = Policies::load(&[file("policies/ci.rego", policy)], &data, "main").unwrap();
    assert!(policies.evaluate(&input()).unwrap().denies());
    std::fs::write(dir.path().join("data/bad.yaml"), "- a\n- b\n").unwrap();
    let err = sources::read_data(dir.path(), &dir.path().join("data")).unwrap_err();
    assert!(err.to_string().contains("data/bad.yaml"), "{err}");
}
