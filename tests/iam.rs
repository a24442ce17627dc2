//! `aws.iam_role` inline policies against moto: PutRolePolicy on apply (read back through the
//! SDK), no change on the next plan, drift when edited by hand, repaired by apply, deleted when
//! removed from the files, and the role deleted with them by destroy.

mod support;

use support::{Moto, Project};

const FILE: &str = r#"environment: iam
providers:
  aws: { region: us-east-1 }
resources:
  task_role:
    type: aws.iam_role
    properties:
      name: iam-task
      assume_role_policy:
        Version: "2012-10-17"
        Statement:
          - { Effect: Allow, Principal: { Service: ecs-tasks.amazonaws.com }, Action: "sts:AssumeRole" }
      inline_policies:
        read-db-url:
          Version: "2012-10-17"
          Statement:
            - { Effect: Allow, Action: "secretsmanager:GetSecretValue", Resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-url-AbCdEf" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn inline_policies_are_put_read_back_drift_when_edited_and_removed() {
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto);
    p.write("environments/iam.yaml", FILE);
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "iam"];
        all.extend(args);
        p.converge(&all)
    };
    run(&["apply", "--auto-approve"]).expect(0);
    let iam = aws_sdk_iam::Client::new(&moto.sdk().await);
    let document = |doc: String| -> serde_json::Value {
        let decoded = percent_encoding::percent_decode_str(&doc)
            .decode_utf8_lossy()
            .to_string();
        serde_json::from_str(&decoded).unwrap()
    };
    let got = iam
        .get_role_policy()
        .role_name("iam-task")
        .policy_name("read-db-url")
        .send()
        .await
        .unwrap();
    assert_eq!(
        document(got.policy_document)["Statement"][0]["Resource"],
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-url-AbCdEf"
    );
    assert_eq!(run(&["plan", "--detailed-exitcode"]).code(), 0);

    // Someone widens it by hand.
    iam.put_role_policy()
        .role_name("iam-task")
        .policy_name("read-db-url")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let drift = run(&["drift"]);
    assert_eq!(drift.code(), 2, "{}", drift.stdout());
    assert!(
        drift.stdout().contains("inline_policies"),
        "{}",
        drift.stdout()
    );
    run(&["apply", "--auto-approve"]).expect(0);
    let got = iam
        .get_role_policy()
        .role_name("iam-task")
        .policy_name("read-db-url")
        .send()
        .await
        .unwrap();
    assert_ne!(
        document(got.policy_document)["Statement"][0]["Resource"],
        "*"
    );

    // Removed from the files: deleted from the role.
    let text = p.read("environments/iam.yaml");
    let cut = text.find("      inline_policies:").unwrap();
    p.write("environments/iam.yaml", &text[..cut]);
    run(&["apply", "--auto-approve"]).expect(0);
    let names = iam
        .list_role_policies()
        .role_name("iam-task")
        .send()
        .await
        .unwrap()
        .policy_names;
    assert!(names.is_empty(), "{names:?}");
    p.write("environments/iam.yaml", FILE);
    run(&["apply", "--auto-approve"]).expect(0);
    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(iam.get_role().role_name("iam-task").send().await.is_err());
}
