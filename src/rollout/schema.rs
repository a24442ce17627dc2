//! The schema of a service's `rollout` block (DESIGN §5), shared by every kind a rollout drives.

use crate::model::schema::{Default, Prop, STRING, STRINGS, Type};

/// A rollout step: percent of traffic on the new revision.
const CANARY_STEP: Type = Type::CanaryStep;

const ON_FAIL: Type = Type::Enum(&["rollback", "alert"]);

const HTTP_GATE: &[Prop] = &[
    Prop::new("url", STRING, "URL probed with GET.").required(),
    Prop::new(
        "expect_status",
        Type::Integer(100, 599),
        "Status that passes.",
    )
    .default(Default::Int(200)),
    Prop::new("timeout", Type::Duration, "Probe timeout.").default(Default::Str("2s")),
    Prop::new(
        "failures",
        Type::Integer(1, 1_000),
        "Consecutive failed probes that fail the gate.",
    )
    .default(Default::Int(2)),
    Prop::new("on_fail", ON_FAIL, "rollback or alert.").default(Default::Str("rollback")),
];

const HTTP_GATE_TYPE: Type = Type::Object(HTTP_GATE);

const METRIC_GATE: &[Prop] = &[
    Prop::new(
        "name",
        Type::Enum(&["error_rate", "p95_latency"]),
        "error_rate (HTTPCode_Target_5XX_Count / RequestCount) or p95_latency (TargetResponseTime).",
    )
    .required(),
    Prop::new("max", Type::Number, "error_rate: highest rate that passes (0.05 = 5%)."),
    Prop::new(
        "max_ratio_to_baseline",
        Type::Number,
        "p95_latency: highest ratio to the old revision's p95 that passes.",
    ),
    Prop::new("for", Type::Duration, "Window the metric is read over.").default(Default::Str("1m")),
    Prop::new(
        "no_data",
        Type::Enum(&["fail", "pass", "wait"]),
        "What no datapoints mean: fail, pass, or wait (neither; the bake goes on).",
    )
    .default(Default::Str("wait")),
    Prop::new("on_fail", ON_FAIL, "rollback or alert.").default(Default::Str("rollback")),
];

const METRIC_GATE_TYPE: Type = Type::Object(METRIC_GATE);

const COMMAND_GATE: &[Prop] = &[
    Prop::new(
        "run",
        STRING,
        "Shell command; exit 0 passes. Gets CONVERGE_ROLLOUT_* variables.",
    )
    .required(),
    Prop::new(
        "timeout",
        Type::Duration,
        "Kill it and fail after this long.",
    )
    .default(Default::Str("5m")),
    Prop::new("on_fail", ON_FAIL, "rollback or alert.").default(Default::Str("rollback")),
];

const HEALTH: &[Prop] = &[
    Prop::new("http", HTTP_GATE_TYPE, "An HTTP probe of the new revision."),
    Prop::new(
        "alarms",
        STRINGS,
        "CloudWatch alarms that must not be in ALARM.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "metrics",
        Type::List(&METRIC_GATE_TYPE),
        "ALB metrics of the new revision's target group.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "command",
        Type::Object(COMMAND_GATE),
        "A smoke test run by converge.",
    ),
];

const TRAFFIC: &[Prop] = &[
    Prop::new(
        "listener_arn",
        STRING,
        "ALB listener whose forward weights move traffic.",
    )
    .required(),
    Prop::new(
        "target_groups",
        STRINGS,
        "The two target groups the revisions alternate on.",
    )
    .required(),
    Prop::new(
        "test_listener_arn",
        STRING,
        "A listener that forwards only to the new revision for the whole rollout (canary and blue_green); point health.http.url at it.",
    ),
];

const COST_ANOMALY: &[Prop] = &[
    Prop::new(
        "lookback",
        Type::Duration,
        "`cost watch` baseline window for this service (default 7d).",
    ),
    Prop::new(
        "threshold",
        Type::Percent,
        "`cost watch`: a day above the baseline by more than this is an anomaly (default 50%).",
    ),
    Prop::new(
        "min_daily",
        Type::Number,
        "`cost watch`: and by at least this many USD a day (default 1).",
    ),
];

const ROLLOUT_COST: &[Prop] = &[
    Prop::new(
        "max_run_rate_increase",
        Type::Percent,
        "Refuse a revision whose run rate exceeds the old one's by more than this.",
    ),
    Prop::new(
        "anomaly",
        Type::Object(COST_ANOMALY),
        "Per-service overrides of `cost watch`'s lookback, threshold and minimum.",
    ),
];

const HOOK: &[Prop] = &[
    Prop::new(
        "run",
        STRINGS,
        "The command, run as a one-off ECS task of the NEW task definition (its container's command overridden).",
    )
    .required(),
    Prop::new(
        "container",
        STRING,
        "Container whose command is overridden and whose exit code counts (default: the first).",
    ),
    Prop::new(
        "timeout",
        Type::Duration,
        "Stop the task (StopTask) and fail the hook after this long.",
    )
    .default(Default::Str("5m")),
];

const HOOK_TYPE: Type = Type::Object(HOOK);

const HOOKS: &[Prop] = &[
    Prop::new(
        "pre_traffic",
        Type::List(&HOOK_TYPE),
        "Before any traffic moves (rolling: before UpdateService), e.g. migrations; a failure rolls back.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "post_traffic",
        Type::List(&HOOK_TYPE),
        "After 100%, before the old revision is removed, e.g. smoke tests; a failure rolls back.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "on_rollback",
        Type::List(&HOOK_TYPE),
        "After a rollback put traffic back on the old revision, e.g. a down-migration.",
    )
    .default(Default::EmptyList),
];

/// The fields of `rollout.notify` (ECS services and host apps alike).
pub const NOTIFY: &[Prop] = &[Prop::new(
    "webhook",
    STRING,
    "URL that receives a JSON POST per rollout event.",
)];

/// The fields of a `rollout` block.
pub const ROLLOUT: &[Prop] = &[
    Prop::new(
        "strategy",
        Type::Enum(&["canary", "blue_green", "rolling"]),
        "canary, blue_green, or rolling (ECS's own deployment with its circuit breaker; what a service without a rollout block does).",
    )
    .default(Default::Str("canary")),
    Prop::new(
        "ready_timeout",
        Type::Duration,
        "How long the new revision has to be running and healthy (rolling: ECS's deployment COMPLETED; canary/blue_green: task set steady, targets healthy) before anything else happens.",
    )
    .default(Default::Str("10m")),
    Prop::new(
        "on_timeout",
        Type::Enum(&["rollback", "leave"]),
        "At ready_timeout: rollback (go back to the old revision) or leave (ECS is left deploying; exit 1 says so).",
    )
    .default(Default::Str("rollback")),
    Prop::new(
        "wait",
        Type::Bool,
        "rolling: false returns as soon as ECS accepts the update (Terraform's default), without following the deployment.",
    )
    .default(Default::Bool(true)),
    Prop::new(
        "steps",
        Type::List(&CANARY_STEP),
        "canary: percent of traffic on the new revision at each step; `pause` waits (after the step before it and its bake) for `rollout promote`, up to pause_timeout.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "pause_timeout",
        Type::Duration,
        "How long a `pause` step waits for `rollout promote`; past it, the next converge command that touches the environment (apply, plan, drift, rollout) rolls back.",
    )
    .default(Default::Str("24h")),
    Prop::new(
        "bake",
        Type::Duration,
        "Per step (blue_green: pre-traffic checks).",
    )
    .default(Default::Str("5m")),
    Prop::new("interval", Type::Duration, "How often gates are evaluated.")
        .default(Default::Str("10s")),
    Prop::new(
        "termination_wait",
        Type::Duration,
        "blue_green: how long the old task set is kept after the switch.",
    )
    .default(Default::Str("5m")),
    Prop::new(
        "traffic",
        Type::Object(TRAFFIC),
        "Listener and target groups.",
    ),
    Prop::new(
        "health",
        Type::Object(HEALTH),
        "Gates evaluated during each bake.",
    ),
    Prop::new(
        "cost",
        Type::Object(ROLLOUT_COST),
        "Cost gate, before traffic moves.",
    ),
    Prop::new(
        "notify",
        Type::Object(NOTIFY),
        "Where rollout events are posted.",
    ),
    Prop::new(
        "hooks",
        Type::Object(HOOKS),
        "One-off ECS tasks at pre_traffic, post_traffic and on_rollback (CodeDeploy's lifecycle hooks).",
    ),
];
