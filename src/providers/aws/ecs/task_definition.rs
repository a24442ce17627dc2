//! ECS task definitions: registering revisions and reading them back as a `task` value.

use super::*;

impl Ecs {
    /// Whether a task definition revision is still ACTIVE (not deregistered).
    pub async fn task_definition_active(&self, arn: &str) -> Result<bool, ProviderError> {
        match self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .task_definition
                .and_then(|t| t.status)
                .is_some_and(|s| s.as_str() == "ACTIVE")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_client_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(api_error("ecs:DescribeTaskDefinition", e)),
        }
    }

    /// Registers a task definition revision; returns its ARN.
    pub async fn register(&self, task: &Value) -> Result<String, ProviderError> {
        self.register_task(task).await
    }

    pub(super) async fn register_task(&self, task: &Value) -> Result<String, ProviderError> {
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let containers = task
            .get("containers")
            .as_list()
            .unwrap_or_default()
            .iter()
            .map(|c| container_definition(c, &region))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .register_task_definition()
            .family(text(task, "family"))
            .cpu(task.get("cpu").as_i64().unwrap_or(256).to_string())
            .memory(task.get("memory").as_i64().unwrap_or(512).to_string())
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::from(
                        task.get("cpu_architecture").as_str().unwrap_or("X86_64"),
                    ))
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .set_execution_role_arn(
                task.get("execution_role_arn")
                    .reveal()
                    .as_str()
                    .map(str::to_string),
            )
            .set_task_role_arn(
                task.get("task_role_arn")
                    .reveal()
                    .as_str()
                    .map(str::to_string),
            )
            .set_container_definitions(Some(containers))
            .send()
            .await
            .map_err(|e| api_error("ecs:RegisterTaskDefinition", e))?;
        out.task_definition
            .and_then(|t| t.task_definition_arn)
            .ok_or_else(|| ProviderError::Invalid("RegisterTaskDefinition returned no ARN".into()))
    }
}

pub(super) fn container_definition(
    c: &Value,
    region: &str,
) -> Result<ContainerDefinition, ProviderError> {
    let mut def = ContainerDefinition::builder()
        .name(text(c, "name"))
        .image(text(c, "image"))
        .essential(c.get("essential").as_bool().unwrap_or(true))
        .set_cpu(c.get("cpu").as_i64().map(|v| v as i32))
        .set_memory(c.get("memory").as_i64().map(|v| v as i32));
    if let Some(port) = c.get("port").as_i64() {
        def = def.port_mappings(
            PortMapping::builder()
                .container_port(port as i32)
                .protocol(TransportProtocol::Tcp)
                .build(),
        );
    }
    for (k, v) in c.get("environment").as_map().into_iter().flatten() {
        let value = v
            .reveal()
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_plain_json().to_string());
        def = def.environment(KeyValuePair::builder().name(k).value(value).build());
    }
    for (k, v) in c.get("secrets").as_map().into_iter().flatten() {
        def = def.secrets(
            Secret::builder()
                .name(k)
                .value_from(v.reveal().as_str().unwrap_or(""))
                .build()?,
        );
    }
    let log = c.get("log");
    if !log.is_null() {
        def = def.log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", text(log, "group"))
                .options("awslogs-stream-prefix", text(log, "stream_prefix"))
                .options("awslogs-region", region)
                .build()?,
        );
    }
    Ok(def.build())
}

/// An awslogs configuration read back as the `log` block (another driver reads as none).
fn log_value(config: Option<&LogConfiguration>) -> Value {
    let Some(config) = config.filter(|c| c.log_driver == LogDriver::Awslogs) else {
        return Value::Null;
    };
    let option = |key: &str| {
        config
            .options
            .as_ref()
            .and_then(|o| o.get(key))
            .cloned()
            .into()
    };
    object(vec![
        ("group", option("awslogs-group")),
        ("stream_prefix", option("awslogs-stream-prefix")),
    ])
}

/// A task definition read back into the `task` property's shape.
pub(super) fn task_value(td: &TaskDefinition) -> Value {
    let num = |s: Option<&str>| {
        s.and_then(|s| s.parse::<i64>().ok())
            .map(Value::int)
            .unwrap_or_default()
    };
    let containers = td
        .container_definitions
        .iter()
        .flatten()
        .map(|c| {
            object(vec![
                ("name", c.name.clone().into()),
                ("image", c.image.clone().into()),
                (
                    "port",
                    c.port_mappings
                        .as_deref()
                        .and_then(|p| p.first())
                        .and_then(|p| p.container_port)
                        .map(i64::from)
                        .into(),
                ),
                (
                    "cpu",
                    if c.cpu == 0 {
                        Value::Null
                    } else {
                        Value::int(i64::from(c.cpu))
                    },
                ),
                ("memory", c.memory.map(i64::from).into()),
                (
                    "environment",
                    c.environment
                        .iter()
                        .flatten()
                        .filter_map(|kv| {
                            Some((
                                kv.name.clone()?,
                                Value::str(kv.value.clone().unwrap_or_default()),
                            ))
                        })
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                ),
                (
                    "secrets",
                    c.secrets
                        .iter()
                        .flatten()
                        .map(|s| (s.name.clone(), Value::str(s.value_from.clone())))
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                ),
                ("essential", Value::Bool(c.essential.unwrap_or(true))),
                ("log", log_value(c.log_configuration.as_ref())),
            ])
        })
        .collect();
    object(vec![
        ("family", td.family.clone().into()),
        ("cpu", num(td.cpu.as_deref())),
        ("memory", num(td.memory.as_deref())),
        (
            "cpu_architecture",
            Value::str(
                td.runtime_platform
                    .as_ref()
                    .and_then(|r| r.cpu_architecture.as_ref())
                    .map(|a| a.as_str())
                    .unwrap_or("X86_64"),
            ),
        ),
        ("execution_role_arn", td.execution_role_arn.clone().into()),
        ("task_role_arn", td.task_role_arn.clone().into()),
        ("containers", Value::List(containers)),
    ])
}
