//! `aws.cloudwatch_alarm`: a CloudWatch metric alarm (PutMetricAlarm's fields in snake_case),
//! read 100 names per DescribeAlarms call; what rollout gates name in `health.alarms`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};

use super::{AwsProvider, api_error, object, tags_of, text};
use crate::kinds::{Handler, Kind};
use crate::model::Value;
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, STRING_MAP, STRINGS, TAGS, Type, no_rules,
};
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{
    Applied, CreateRequest, DeleteRequest, ImportRequest, Live, ProviderError, ReadItem,
    UpdateRequest,
};

/// The registration of `aws.cloudwatch_alarm`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Aws(&CloudWatchAlarm),
    deploy: None,
};

const STATISTICS: &[&str] = &["Average", "Sum", "Minimum", "Maximum", "SampleCount"];
const OPERATORS: &[&str] = &[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];

/// `aws.cloudwatch_alarm`: a CloudWatch metric alarm.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "aws.cloudwatch_alarm",
    doc: "An Amazon CloudWatch metric alarm.",
    props: &[
        Prop::new("name", STRING, "Alarm name.")
            .required()
            .replace(),
        Prop::new(
            "namespace",
            STRING,
            "Metric namespace, e.g. AWS/ApplicationELB.",
        )
        .required(),
        Prop::new(
            "metric_name",
            STRING,
            "Metric name, e.g. HTTPCode_Target_5XX_Count.",
        )
        .required(),
        Prop::new("dimensions", STRING_MAP, "Metric dimensions, NAME: value.")
            .default(Default::EmptyMap),
        Prop::new(
            "statistic",
            Type::Enum(STATISTICS),
            "Statistic over each period.",
        )
        .default(Default::Str("Sum")),
        Prop::new("period", Type::Integer(10, 86_400), "Seconds per period.")
            .default(Default::Int(60)),
        Prop::new(
            "evaluation_periods",
            Type::Integer(1, 1_440),
            "Periods compared with the threshold.",
        )
        .default(Default::Int(1)),
        Prop::new("threshold", Type::Number, "Threshold.").required(),
        Prop::new(
            "comparison_operator",
            Type::Enum(OPERATORS),
            "How the statistic is compared with the threshold.",
        )
        .required(),
        Prop::new(
            "treat_missing_data",
            Type::Enum(&["breaching", "notBreaching", "ignore", "missing"]),
            "What missing datapoints mean.",
        )
        .default(Default::Str("missing")),
        Prop::new(
            "alarm_actions",
            STRINGS,
            "ARNs notified on ALARM (e.g. SNS topics).",
        )
        .default(Default::EmptyList),
        TAGS,
    ],
    outputs: &[
        Output {
            name: "arn",
            ty: STRING,
        },
        Output {
            name: "name",
            ty: STRING,
        },
    ],
    price: PriceRule::Unlisted(
        "CloudWatch alarms are not in converge's price table yet (AWS lists $0.10 per standard alarm-month)",
    ),
    import_id: "alarm name",
    rules: no_rules,
    rollout_summary: None,
};

/// The handler of `aws.cloudwatch_alarm`.
struct CloudWatchAlarm;

#[async_trait]
impl kind::Handler<AwsProvider> for CloudWatchAlarm {
    async fn read(&self, aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        read(aws, items).await
    }

    fn planned_id(&self, _: &AwsProvider, r: &CreateRequest) -> String {
        text(&r.properties, "name").to_string()
    }

    async fn create(&self, aws: &AwsProvider, r: CreateRequest) -> Result<Applied, ProviderError> {
        put(aws, &r.properties, true).await?;
        applied(aws, text(&r.properties, "name")).await
    }

    async fn update(&self, aws: &AwsProvider, r: UpdateRequest) -> Result<Applied, ProviderError> {
        put(aws, &r.properties, false).await?;
        let done = applied(aws, &r.remote_id).await?;
        super::retag(
            aws.cloudwatch(),
            text(&done.outputs, "arn"),
            &r.prior,
            &r.properties,
        )
        .await?;
        Ok(done)
    }

    async fn delete(&self, aws: &AwsProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        aws.cloudwatch()
            .client()
            .delete_alarms()
            .alarm_names(&r.remote_id)
            .send()
            .await
            .map_err(|e| api_error("cloudwatch:DeleteAlarms", e))?;
        Ok(())
    }

    async fn import(
        &self,
        aws: &AwsProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        super::import_by_reading(self, aws, r, None).await
    }
}

/// PutMetricAlarm with the file's fields (tags only when creating: PutMetricAlarm ignores
/// them on an existing alarm; updates retag).
async fn put(aws: &AwsProvider, p: &Value, create: bool) -> Result<(), ProviderError> {
    let dimensions: Vec<Dimension> = p
        .get("dimensions")
        .as_map()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    Dimension::builder()
                        .name(k)
                        .value(v.reveal().as_str().unwrap_or_default())
                        .build()
                })
                .collect()
        })
        .unwrap_or_default();
    let tags: Vec<Tag> = tags_of(p)
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    aws.cloudwatch()
        .client()
        .put_metric_alarm()
        .alarm_name(text(p, "name"))
        .namespace(text(p, "namespace"))
        .metric_name(text(p, "metric_name"))
        .set_dimensions(Some(dimensions))
        .statistic(Statistic::from(text(p, "statistic")))
        .period(p.get("period").as_i64().unwrap_or(60) as i32)
        .evaluation_periods(p.get("evaluation_periods").as_i64().unwrap_or(1) as i32)
        .threshold(p.get("threshold").as_f64().unwrap_or_default())
        .comparison_operator(ComparisonOperator::from(text(p, "comparison_operator")))
        .treat_missing_data(text(p, "treat_missing_data"))
        .set_alarm_actions(Some(strings(p.get("alarm_actions"))))
        .set_tags(Some(tags).filter(|t| create && !t.is_empty()))
        .send()
        .await
        .map_err(|e| api_error("cloudwatch:PutMetricAlarm", e))?;
    Ok(())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.reveal().as_str().map(str::to_string))
        .collect()
}

async fn applied(aws: &AwsProvider, name: &str) -> Result<Applied, ProviderError> {
    let alarm = describe(aws, &[name.to_string()])
        .await?
        .remove(name)
        .ok_or_else(|| ProviderError::NotFound(format!("alarm {name} after PutMetricAlarm")))?;
    Ok(Applied {
        remote_id: name.to_string(),
        outputs: outputs(&alarm),
    })
}

/// DescribeAlarms, 100 names a call.
async fn describe(
    aws: &AwsProvider,
    names: &[String],
) -> Result<BTreeMap<String, MetricAlarm>, ProviderError> {
    let mut found = BTreeMap::new();
    for chunk in names.chunks(100) {
        let out = aws
            .cloudwatch()
            .client()
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| api_error("cloudwatch:DescribeAlarms", e))?;
        for alarm in out.metric_alarms.unwrap_or_default() {
            found.insert(alarm.alarm_name.clone().unwrap_or_default(), alarm);
        }
    }
    Ok(found)
}

fn outputs(a: &MetricAlarm) -> Value {
    object(vec![
        ("arn", a.alarm_arn.clone().into()),
        ("name", a.alarm_name.clone().into()),
    ])
}

async fn read(aws: &AwsProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
    let names: Vec<String> = items.iter().map(|i| i.remote_id.clone()).collect();
    let found = match describe(aws, &names).await {
        Ok(f) => f,
        Err(e) => {
            return items
                .into_iter()
                .map(|i| (i.address, Err(e.clone())))
                .collect();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let live = match found.get(&item.remote_id) {
            None => Ok(None),
            Some(a) => live(aws, a).await.map(Some),
        };
        out.push((item.address, live));
    }
    out
}

async fn live(aws: &AwsProvider, a: &MetricAlarm) -> Result<Live, ProviderError> {
    let arn = a.alarm_arn.clone().unwrap_or_default();
    let tags: Value = aws
        .cloudwatch()
        .client()
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| api_error("cloudwatch:ListTagsForResource", e))?
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, Value::str(t.value.unwrap_or_default()))))
        .collect();
    let dimensions: Value = a
        .dimensions
        .iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.name.clone()?,
                Value::str(d.value.clone().unwrap_or_default()),
            ))
        })
        .collect();
    let properties = object(vec![
        ("name", a.alarm_name.clone().into()),
        ("namespace", a.namespace.clone().into()),
        ("metric_name", a.metric_name.clone().into()),
        (
            "dimensions",
            if dimensions.is_null() {
                Value::map()
            } else {
                dimensions
            },
        ),
        (
            "statistic",
            a.statistic.as_ref().map(|s| s.as_str().to_string()).into(),
        ),
        ("period", a.period.map(i64::from).into()),
        (
            "evaluation_periods",
            a.evaluation_periods.map(i64::from).into(),
        ),
        ("threshold", a.threshold.map(number).unwrap_or(Value::Null)),
        (
            "comparison_operator",
            a.comparison_operator
                .as_ref()
                .map(|s| s.as_str().to_string())
                .into(),
        ),
        (
            "treat_missing_data",
            Value::str(
                a.treat_missing_data
                    .clone()
                    .unwrap_or_else(|| "missing".into()),
            ),
        ),
        (
            "alarm_actions",
            Value::List(a.alarm_actions.iter().flatten().map(Value::str).collect()),
        ),
        ("tags", if tags.is_null() { Value::map() } else { tags }),
    ]);
    Ok(Live {
        properties,
        outputs: outputs(a),
    })
}

/// A number as the files write it: whole thresholds as integers (`5`, not `5.0`).
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        Value::int(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}
