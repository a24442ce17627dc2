//! `aws.ec2_instance` end to end against moto, checked through the AWS SDK: create with user
//! data and tags, a clean plan, an instance type changed in place (stop, modify, start: the
//! same instance), user data that replaces it, drift, destroy; and its price in the plan.

mod support;

use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use support::{Moto, Project};

fn env_file(subnet: &str, ami: &str, instance_type: &str, user_data: &str) -> String {
    format!(
        r#"environment: vm
providers:
  aws: {{ region: us-east-1 }}
resources:
  web:
    type: aws.ec2_instance
    properties:
      name: web-1
      ami: {ami}
      instance_type: {instance_type}
      subnet_id: {subnet}
      user_data: "{user_data}"
      tags: {{ team: platform }}
"#
    )
}

async fn live(ec2: &aws_sdk_ec2::Client) -> Vec<Instance> {
    let out = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:Name").values("web-1").build())
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_is_created_resized_in_place_replaced_and_destroyed() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.9.1.0/24")
        .send()
        .await
        .unwrap();
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    let images = ec2.describe_images().send().await.unwrap();
    let amis: Vec<String> = images
        .images()
        .iter()
        .filter_map(|i| i.image_id().map(str::to_string))
        .take(2)
        .collect();
    assert_eq!(amis.len(), 2, "moto ships images");

    let p = Project::empty().with_moto(&moto);
    let write = |ami: &str, ty: &str, user_data: &str| {
        p.write(
            "environments/vm.yaml",
            &env_file(&subnet, ami, ty, user_data),
        )
    };
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "vm"];
        all.extend(args);
        p.converge(&all)
    };

    write(&amis[0], "t3.micro", "#!/bin/sh\\necho hello");
    let plan = run(&["plan", "--format", "json"]).expect(0).json();
    // t3.micro in us-east-1: 0.0104 × 730 = 7.592 a month.
    assert!(
        (plan["cost"]["after_monthly"].as_f64().unwrap() - 7.592).abs() < 1e-9,
        "{}",
        plan["cost"]
    );
    run(&["apply", "--auto-approve"]).expect(0);
    let instances = live(&ec2).await;
    assert_eq!(instances.len(), 1);
    let first = instances[0].clone();
    let id = first.instance_id().unwrap().to_string();
    assert_eq!(first.instance_type().unwrap().as_str(), "t3.micro");
    assert_eq!(first.image_id(), Some(amis[0].as_str()));
    assert_eq!(first.subnet_id(), Some(subnet.as_str()));
    assert_eq!(
        first.state().and_then(|s| s.name()),
        Some(&InstanceStateName::Running)
    );
    let tag = |i: &Instance, k: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(tag(&first, "team").as_deref(), Some("platform"));
    assert_eq!(tag(&first, "converge:address").as_deref(), Some("web"));
    let data = ec2
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = data
        .user_data()
        .and_then(|u| u.value())
        .unwrap()
        .to_string();
    assert_eq!(
        aws_smithy_types::base64::decode(&encoded).unwrap(),
        b"#!/bin/sh\necho hello"
    );
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // A bigger type: changed in place, the same instance, running again.
    write(&amis[0], "t3.small", "#!/bin/sh\\necho hello");
    let plan = run(&["plan"]).expect(0);
    assert!(
        plan.stdout()
            .contains("~ web (aws.ec2_instance) will be updated in place"),
        "{}",
        plan.stdout()
    );
    run(&["apply", "--auto-approve"]).expect(0);
    let resized = live(&ec2).await;
    assert_eq!(resized.len(), 1);
    assert_eq!(resized[0].instance_id(), Some(id.as_str()), "same instance");
    assert_eq!(resized[0].instance_type().unwrap().as_str(), "t3.small");
    assert_eq!(
        resized[0].state().and_then(|s| s.name()),
        Some(&InstanceStateName::Running)
    );
    run(&["plan", "--detailed-exitcode"]).expect(0);

    // New user data: a new instance, the old one terminated.
    write(&amis[0], "t3.small", "#!/bin/sh\\necho v2");
    let plan = run(&["plan"]).expect(0);
    assert!(
        plan.stdout()
            .contains("-/+ web (aws.ec2_instance) must be replaced"),
        "{}",
        plan.stdout()
    );
    run(&["apply", "--auto-approve"]).expect(0);
    let replaced = live(&ec2).await;
    assert_eq!(replaced.len(), 1);
    assert_ne!(
        replaced[0].instance_id(),
        Some(id.as_str()),
        "a new instance"
    );

    // Drift: a tag changed by hand.
    let new_id = replaced[0].instance_id().unwrap().to_string();
    ec2.create_tags()
        .resources(&new_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("team")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drift = run(&["drift"]).expect(2);
    assert!(
        drift
            .stdout()
            .contains("~ web (aws.ec2_instance) changed outside converge"),
        "{}",
        drift.stdout()
    );
    run(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        tag(&live(&ec2).await[0], "team").as_deref(),
        Some("platform")
    );

    run(&["destroy", "--auto-approve"]).expect(0);
    assert!(live(&ec2).await.is_empty(), "terminated");

    // An instance made by hand, with user data, imported: the plan is clean, not a replacement.
    let made = ec2
        .run_instances()
        .image_id(&amis[1])
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .subnet_id(&subnet)
        .user_data(aws_smithy_types::base64::encode("#!/bin/sh\necho hello"))
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value("web-1")
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("team")
                        .value("platform")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let made_id = made.instances()[0].instance_id().unwrap().to_string();
    write(&amis[1], "t3.micro", "#!/bin/sh\\necho hello");
    run(&["import", "web", &made_id]).expect(0);
    let plan = run(&["plan"]).expect(0);
    assert!(
        plan.stdout()
            .contains("~ web (aws.ec2_instance) will be updated in place"),
        "only converge's tags are added: {}",
        plan.stdout()
    );
    assert!(
        !plan.stdout().contains("must be replaced"),
        "{}",
        plan.stdout()
    );
}

/// The `ClientToken` sent to AWS (readable by anyone with ec2:DescribeInstances) is derived
/// from the stored form of the properties, in which a sensitive `user_data` is a digest keyed
/// by the state key: the same instance under another key gets another token, so the token
/// cannot be recomputed from a guessed value. It never contains the value.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_token_is_keyed_never_derived_from_a_secret_in_clear() {
    let mut tokens = Vec::new();
    for key in ["first-state-key", "second-state-key"] {
        let moto = Moto::start();
        let ec2 = aws_sdk_ec2::Client::new(&moto.sdk().await);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.9.0.0/16")
            .send()
            .await
            .unwrap();
        let subnet = ec2
            .create_subnet()
            .vpc_id(vpc.vpc().unwrap().vpc_id().unwrap())
            .cidr_block("10.9.1.0/24")
            .send()
            .await
            .unwrap();
        let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
        let images = ec2.describe_images().send().await.unwrap();
        let ami = images.images()[0].image_id().unwrap().to_string();
        let p = Project::empty()
            .with_moto(&moto)
            .with_env(vec![("CONVERGE_STATE_KEY".into(), key.into())]);
        p.write(
            "environments/vm.yaml",
            &env_file(&subnet, &ami, "t3.micro", "${var.boot}").replace(
                "resources:",
                "variables:\n  boot: { default: \"#!/bin/sh\\necho pw=s3cret\", sensitive: true }\nresources:",
            ),
        );
        p.converge(&["-e", "vm", "apply", "--auto-approve"])
            .expect(0);
        let instance = live(&ec2).await.remove(0);
        let token = instance.client_token().unwrap_or_default().to_string();
        assert!(token.starts_with("converge-"), "{token}");
        assert!(!token.contains("s3cret"));
        tokens.push(token);
    }
    assert_ne!(tokens[0], tokens[1], "the token depends on the state key");
}
