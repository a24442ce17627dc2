//! `aws.cloudwatch_alarm` against moto: created with PutMetricAlarm's fields (read back through
//! the SDK), no change on the next plan, drift when edited by hand, repaired by apply, deleted
//! by destroy.

mod support;

use support::{Moto, Project};

const FILE: &str = r#"environment: al
providers:
  aws: { region: us-east-1 }
resources:
  api_5xx:
    type: aws.cloudwatch_alarm
    properties:
      name: al-api-5xx
      namespace: AWS/ApplicationELB
      metric_name: HTTPCode_Target_5XX_Count
      dimensions: { LoadBalancer: app/al/123, TargetGroup: targetgroup/al-blue/456 }
      statistic: Sum
      period: 60
      evaluation_periods: 2
      threshold: 5
      comparison_operator: GreaterThanThreshold
      treat_missing_data: notBreaching
      tags: { team: platform }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_is_created_drifts_when_edited_by_hand_and_is_repaired() {
    let moto = Moto::start();
    let p = Project::empty().with_moto(&moto);
    p.write("environments/al.yaml", FILE);
    let run = |args: &[&str]| {
        let mut all = vec!["-e", "al"];
        all.extend(args);
        p.converge(&all)
    };
    run(&["apply", "--auto-approve"]).expect(0);
    let cw = aws_sdk_cloudwatch::Client::new(&moto.sdk().await);
    let alarm = cw
        .describe_alarms()
        .alarm_names("al-api-5xx")
        .send()
        .await
        .unwrap()
        .metric_alarms
        .unwrap()
        .remove(0);
    assert_eq!(alarm.threshold, Some(5.0));
    assert_eq!(alarm.evaluation_periods, Some(2));
    assert_eq!(alarm.treat_missing_data.as_deref(), Some("notBreaching"));
    assert_eq!(alarm.dimensions.unwrap_or_default().len(), 2);
    let tags = cw
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn.clone().unwrap())
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert!(
        tags.iter()
            .any(|t| t.key.as_deref() == Some("converge:address")
                && t.value.as_deref() == Some("api_5xx")),
        "{tags:?}"
    );
    assert_eq!(run(&["plan", "--detailed-exitcode"]).code(), 0);

    // Someone raises the threshold in the console.
    cw.put_metric_alarm()
        .alarm_name("al-api-5xx")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(2)
        .threshold(500.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("notBreaching")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("LoadBalancer")
                .value("app/al/123")
                .build(),
        )
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("TargetGroup")
                .value("targetgroup/al-blue/456")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drift = run(&["drift"]);
    assert_eq!(drift.code(), 2, "{}", drift.stdout());
    assert!(drift.stdout().contains("threshold"), "{}", drift.stdout());
    run(&["apply", "--auto-approve"]).expect(0);
    let threshold = cw
        .describe_alarms()
        .alarm_names("al-api-5xx")
        .send()
        .await
        .unwrap()
        .metric_alarms
        .unwrap()[0]
        .threshold;
    assert_eq!(threshold, Some(5.0));
    run(&["destroy", "--auto-approve"]).expect(0);
    let left = cw
        .describe_alarms()
        .alarm_names("al-api-5xx")
        .send()
        .await
        .unwrap()
        .metric_alarms
        .unwrap_or_default();
    assert!(left.is_empty());
}
