//! The schema of `host.app` (DESIGN §10): hosts, how converge reaches them, the registry, the
//! stateless services rolled out blue/green behind nginx, the stateful accessories, and the
//! rollout block of a host app.

use crate::model::Value;
use crate::model::grammar::{
    self, ENV_NAME, HOST_ADDRESS, HOST_PATH, IMAGE, LOCAL_PATH, NAME, REGISTRY_SERVER, ROUTE_PATH,
    SERVER_NAME, SSH_USER, URL_PATH, VOLUME,
};
use crate::model::schema::{
    Default, KindSchema, Output, PORT, PriceRule, Problem, Prop, STRING, STRINGS, Type, WARNING,
};

const ADDRESS: Type = Type::Text(&HOST_ADDRESS);
const USER: Type = Type::Text(&SSH_USER);
const PATH_ON_HOST: Type = Type::Text(&HOST_PATH);
const REQUEST_PATH: Type = Type::Text(&URL_PATH);
const APP_NAME: Type = Type::Text(&NAME);
const ENVIRONMENT: Type = Type::Keyed(&ENV_NAME, &STRING);
const MOUNT: Type = Type::Text(&VOLUME);
const MOUNTS: Type = Type::List(&MOUNT);

const HOST: &[Prop] = &[
    Prop::new("address", ADDRESS, "IP address or DNS name.").required(),
    Prop::new("user", USER, "The deploy user (not root).").default(Default::Str("deploy")),
    Prop::new("port", PORT, "SSH port.").default(Default::Int(22)),
    Prop::new(
        "allow_root",
        Type::Bool,
        "Let `user: root` log in (refused otherwise: a deploy user with the docker group and one sudo rule is enough).",
    )
    .default(Default::Bool(false)),
];

const HOST_TYPE: Type = Type::Object(HOST);

const SSH: &[Prop] = &[
    Prop::new(
        "known_hosts",
        Type::Text(&LOCAL_PATH),
        "converge's known_hosts file (OpenSSH's format; hashed entries and [host]:port understood), relative to the project.",
    )
    .default(Default::Str(".converge/known_hosts")),
    Prop::new(
        "private_key",
        STRING,
        "The private key's text, from a sensitive variable; it touches disk only as a 0600 file removed on exit.",
    )
    .secret(),
    Prop::new(
        "private_key_file",
        Type::Text(&LOCAL_PATH),
        "A private key file (neither this nor private_key: the SSH agent).",
    ),
];

const BASIC: &[Prop] = &[
    Prop::new("username", STRING, "User name.").required(),
    Prop::new(
        "password",
        STRING,
        "Password, from a sensitive variable (sent over stdin only).",
    )
    .required()
    .secret(),
];

const ECR: &[Prop] = &[Prop::new(
    "role_arn",
    Type::Text(&grammar::ROLE_ARN),
    "The role converge assumes (sts:AssumeRole) to mint the hosts' token; the session is limited to pulls from the app's repositories, so a host never receives converge's own ECR rights.",
)
.required()];

const REGISTRY_AUTH: &[Prop] = &[
    Prop::new(
        "basic",
        Type::Object(BASIC),
        "A username and password (`docker login --password-stdin`).",
    ),
    Prop::new(
        "acr",
        Type::Bool,
        "Azure Container Registry, logged in to with the host's own managed identity (AcrPull): an IMDS token exchanged at the registry's /oauth2/exchange.",
    ),
    Prop::new(
        "ecr",
        Type::Object(ECR),
        "Amazon ECR: for each pull converge assumes `role_arn` with a session policy allowing only pulls from the app's repositories, and gives the host that role's token over stdin.",
    ),
];

const REGISTRY: &[Prop] = &[
    Prop::new(
        "server",
        Type::Text(&REGISTRY_SERVER),
        "Registry host (and port).",
    )
    .required(),
    Prop::new(
        "auth",
        Type::Object(REGISTRY_AUTH),
        "How hosts log in; each pull uses a throw-away DOCKER_CONFIG removed after it.",
    ),
];

const HTTP_CHECK: &[Prop] = &[
    Prop::new("path", REQUEST_PATH, "Path probed with GET.").default(Default::Str("/")),
    Prop::new(
        "expect_status",
        Type::Integer(100, 599),
        "Status that passes.",
    )
    .default(Default::Int(200)),
];

const SERVICE_HEALTH: &[Prop] = &[
    Prop::new(
        "http",
        Type::Object(HTTP_CHECK),
        "Probed by converge on the container's port through an SSH direct-tcpip tunnel.",
    ),
    Prop::new(
        "tcp",
        Type::Bool,
        "Healthy once the port accepts a connection.",
    ),
    Prop::new(
        "command",
        STRINGS,
        "A Docker healthcheck run inside the container (exit 0 is healthy).",
    ),
    Prop::new("interval", Type::Duration, "Time between probes.").default(Default::Str("2s")),
    Prop::new(
        "timeout",
        Type::Duration,
        "The new colour must be healthy within this long, or it is removed.",
    )
    .default(Default::Str("30s")),
];

/// Fields shared by services and accessories.
macro_rules! container_props {
    () => {
        [
            Prop::new("image", Type::Text(&IMAGE), "Image reference.").required(),
            Prop::new("command", STRINGS, "Command (default: the image's)."),
            Prop::new(
                "env",
                ENVIRONMENT,
                "Environment (names `[A-Za-z_][A-Za-z0-9_]*`), given to Docker as data, never to a shell.",
            )
            .default(Default::EmptyMap),
            Prop::new(
                "secrets",
                ENVIRONMENT,
                "Environment values from sensitive variables, or `${S.arn}` of an aws.secretsmanager_secret (read at deploy, one version): written only to the host's 0600 env file, shown as (sensitive).",
            )
            .secret()
            .pins_versions()
            .default(Default::EmptyMap),
            Prop::new(
                "volumes",
                MOUNTS,
                "Mounts, `HOST_PATH:CONTAINER_PATH[:ro]` or `VOLUME:CONTAINER_PATH[:ro]`.",
            )
            .default(Default::EmptyList),
            Prop::new("entrypoint", STRINGS, "Entrypoint (default: the image's)."),
            Prop::new(
                "user",
                Type::Text(&grammar::CONTAINER_USER),
                "User (and group) the container runs as: `NAME`, `UID` or `UID:GID`.",
            ),
            Prop::new("working_dir", PATH_ON_HOST, "Working directory in the container."),
            Prop::new(
                "depends_on",
                Type::Keyed(&NAME, &DEPENDENCY),
                "Containers of the app started first: `service_started`, `service_healthy` (its health check passed), or `service_completed_successfully` (a `job` that exited 0).",
            )
            .default(Default::EmptyMap),
            Prop::new(
                "runtime",
                Type::Object(RUNTIME),
                "Hardening and limits, given to Docker as written.",
            ),
            Prop::new(
                "files",
                Type::Map(&Type::Object(FILE)),
                "Files by container path, mounted read-only and owned by the container's user (root when none): a compose file's `secrets` and `configs`.",
            )
            .default(Default::EmptyMap),
        ]
    };
}

const FILE: &[Prop] = &[
    Prop::new(
        "secret",
        STRING,
        "The content, from a sensitive variable or `${S.arn}` of an aws.secretsmanager_secret (read at deploy, one version); never on a command line or in the plan.",
    )
    .secret()
    .pins_versions(),
    Prop::new("text", STRING, "The content, not secret (a configuration file)."),
    Prop::new(
        "mode",
        Type::Text(&grammar::FILE_MODE),
        "Permissions, octal (default 0400 for a secret, 0444 for a text).",
    ),
];

const CAPABILITY: Type = Type::Text(&grammar::CAPABILITY);
const LOG_DRIVER: Type = Type::Text(&NAME);
const LOG_DRIVERS: Type = Type::List(&LOG_DRIVER);
const CAPABILITIES: Type = Type::List(&CAPABILITY);

const DEPENDENCY: Type = Type::Enum(&[
    "service_started",
    "service_healthy",
    "service_completed_successfully",
]);

const ULIMIT: &[Prop] = &[
    Prop::new("soft", Type::Integer(-1, i64::MAX), "Soft limit.").required(),
    Prop::new("hard", Type::Integer(-1, i64::MAX), "Hard limit.").required(),
];

const LOGGING: &[Prop] = &[
    Prop::new("driver", Type::Text(&NAME), "Docker's logging driver.").required(),
    Prop::new("options", Type::Map(&STRING), "The driver's options.").default(Default::EmptyMap),
];

const RUNTIME: &[Prop] = &[
    Prop::new("read_only", Type::Bool, "A read-only root file system."),
    Prop::new(
        "cap_add",
        CAPABILITIES,
        "Capabilities added (each one must be in the app's `allow.capabilities`).",
    ),
    Prop::new(
        "cap_drop",
        CAPABILITIES,
        "Capabilities dropped (`ALL` for every one).",
    ),
    Prop::new(
        "security_opt",
        STRINGS,
        "Security options: `no-new-privileges:true` always; any other (a seccomp or AppArmor profile, an SELinux label, which can each lift the confinement) needs `allow.privileged`.",
    ),
    Prop::new(
        "tmpfs",
        Type::List(&PATH_ON_HOST),
        "tmpfs mounts at these container paths.",
    ),
    Prop::new("memory", Type::Integer(0, i64::MAX), "Memory limit, bytes."),
    Prop::new(
        "cpus",
        Type::Number,
        "CPU limit, in CPUs (0.5 is half of one).",
    ),
    Prop::new("pids_limit", Type::Integer(-1, i64::MAX), "Most processes."),
    Prop::new(
        "ulimits",
        Type::Keyed(&NAME, &Type::Object(ULIMIT)),
        "ulimits by name (`nofile`, `nproc`...).",
    ),
    Prop::new(
        "init",
        Type::Bool,
        "Run an init process as PID 1 (docker's tini).",
    ),
    Prop::new(
        "stop_signal",
        Type::Text(&grammar::SIGNAL),
        "Signal that stops the container (default: the image's, else SIGTERM).",
    ),
    Prop::new(
        "stop_grace_period",
        Type::Duration,
        "Time a stopping container gets before SIGKILL.",
    ),
    Prop::new(
        "labels",
        Type::Map(&STRING),
        "Labels (converge's own `converge.*` labels cannot be set).",
    ),
    Prop::new(
        "restart",
        Type::Enum(&["no", "always", "on-failure", "unless-stopped"]),
        "Docker's restart policy.",
    )
    .default(Default::Str("unless-stopped")),
    Prop::new("logging", Type::Object(LOGGING), "Docker's logging driver."),
    Prop::new(
        "privileged",
        Type::Bool,
        "Every capability and device (needs `allow.privileged`).",
    ),
    Prop::new(
        "host_network",
        Type::Bool,
        "The host's network namespace (needs `allow.host_network`).",
    ),
    Prop::new(
        "devices",
        Type::List(&PATH_ON_HOST),
        "Host devices given to the container (each one must be in `allow.devices`).",
    ),
];

const ALLOW: &[Prop] = &[
    Prop::new(
        "privileged",
        Type::Bool,
        "Containers may run privileged (or unconfined).",
    )
    .default(Default::Bool(false)),
    Prop::new(
        "host_network",
        Type::Bool,
        "Containers may use the host's network namespace.",
    )
    .default(Default::Bool(false)),
    Prop::new(
        "capabilities",
        CAPABILITIES,
        "Capabilities containers may add.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "host_paths",
        Type::List(&PATH_ON_HOST),
        "Host directories (and what is below them) containers may mount.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "devices",
        Type::List(&PATH_ON_HOST),
        "Host devices containers may be given.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "log_drivers",
        LOG_DRIVERS,
        "Logging drivers that send output off the host (syslog, fluentd, gelf...) containers may use; json-file, local, journald and none always may.",
    )
    .default(Default::EmptyList),
];

const COMPOSE: &[Prop] = &[
    Prop::new(
        "file",
        Type::Text(&LOCAL_PATH),
        "The compose file, relative to the file that declares the app, inside the project.",
    )
    .required(),
    Prop::new(
        "project",
        APP_NAME,
        "Compose's project name: named volumes are `<project>_<volume>`, as `docker compose` names them (default: the app's name).",
    ),
    Prop::new(
        "dotenv",
        Type::Bool,
        "Also interpolate from the `.env` file beside the compose file (after converge's variables).",
    )
    .default(Default::Bool(false)),
    Prop::new(
        "profiles",
        STRINGS,
        "Compose profiles whose services are deployed too (services without `profiles` always are).",
    )
    .default(Default::EmptyList),
    Prop::new(
        "secrets",
        Type::Map(&STRING),
        "The compose file's secrets by name, from sensitive variables or `${S.arn}` of an aws.secretsmanager_secret (read at deploy): they win over the file's own `file:` or `environment:`.",
    )
    .secret()
    .pins_versions(),
];

const SERVICE: &[Prop] = &{
    let c = container_props!();
    [
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7],
        c[8],
        c[9],
        c[10],
        Prop::new(
            "port",
            PORT,
            "Container port nginx routes to (several services with one: see `rollout.proxy.routes`); without one the service is switched at the cut-over.",
        ),
        Prop::new(
            "job",
            Type::Bool,
            "Runs to completion (exit 0) once per deploy on each host, in the new colour, before the services that wait for it with `service_completed_successfully`; never restarted, never behind nginx (default: false).",
        ),
        Prop::new(
            "replicas",
            Type::Integer(1, 32),
            "Containers of this service per colour on each host: a web service's replicas are all servers of its nginx upstream, each on its own host port (default: 1).",
        ),
        Prop::new(
            "health",
            Type::Object(SERVICE_HEALTH),
            "When the new colour is healthy (default: running).",
        ),
    ]
};

const BACKUP: &[Prop] = &[
    Prop::new(
        "run",
        STRINGS,
        "The command run inside the accessory (`docker exec`, no shell) whose standard output is the backup, e.g. `[pg_dump, -U, app, app]`.",
    )
    .required(),
    Prop::new(
        "keep",
        Type::Integer(1, 1_000),
        "Backup files of this accessory each host keeps (the newest).",
    )
    .default(Default::Int(7)),
    Prop::new("timeout", Type::Duration, "How long the command may run.")
        .default(Default::Str("10m")),
    Prop::new(
        "copy_to",
        Type::Object(BACKUP_COPY),
        "Where each backup is also streamed (needs the environment's aws provider), so losing the host loses no backup.",
    ),
];

const S3_COPY: &[Prop] = &[
    Prop::new(
        "bucket",
        Type::Text(&grammar::S3_BUCKET),
        "The bucket (it must exist; converge only puts objects).",
    )
    .required(),
    Prop::new(
        "prefix",
        Type::Text(&grammar::S3_PREFIX),
        "Key prefix: objects are `<prefix><app>/<accessory>/<file>`.",
    )
    .default(Default::Str("")),
];

const BACKUP_COPY: &[Prop] = &[Prop::new(
    "s3",
    Type::Object(S3_COPY),
    "An S3 bucket, written with the environment's AWS credentials.",
)
.required()];

const ACCESSORY_HEALTH: &[Prop] = &[
    Prop::new(
        "command",
        STRINGS,
        "A Docker healthcheck run inside the accessory (exit 0 is healthy), e.g. `[pg_isready, -U, postgres]`: a rollout's hooks and traffic wait for it.",
    )
    .required(),
    Prop::new("interval", Type::Duration, "Time between probes.").default(Default::Str("2s")),
    Prop::new(
        "timeout",
        Type::Duration,
        "The accessory must be healthy within this long (it counts toward the rollout's ready_timeout).",
    )
    .default(Default::Str("30s")),
];

const ACCESSORY: &[Prop] = &{
    let c = container_props!();
    [
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7],
        c[8],
        c[9],
        c[10],
        Prop::new(
            "health",
            Type::Object(ACCESSORY_HEALTH),
            "When the accessory is healthy (default: running).",
        ),
        Prop::new(
            "backup",
            Type::Object(BACKUP),
            "Taken on every host before a rollout's pre_traffic hooks (migrations) run, stored 0600 under `~/.converge/backups/<app>/<accessory>/` of the deploy user; an empty or failed backup rolls the rollout back before any hook runs.",
        ),
    ]
};

const TLS: &[Prop] = &[
    Prop::new("certificate", PATH_ON_HOST, "Certificate file on the host.").required(),
    Prop::new("key", PATH_ON_HOST, "Key file on the host.").required(),
];

const NGINX: &[Prop] = &[
    Prop::new(
        "server_name",
        Type::Text(&SERVER_NAME),
        "The server block's server_name.",
    )
    .required(),
    Prop::new("listen", PORT, "Port the server block listens on.").default(Default::Int(80)),
    Prop::new(
        "server",
        Type::Bool,
        "false: only the upstream `<app>_live` is written, for a server block of your own.",
    )
    .default(Default::Bool(true)),
    Prop::new("tls", Type::Object(TLS), "Serve HTTPS with these files."),
    Prop::new(
        "config",
        PATH_ON_HOST,
        "nginx's main configuration file, given to `nginx -c` (default: nginx's own).",
    ),
    Prop::new(
        "include_dir",
        PATH_ON_HOST,
        "Directory the deploy user writes `<app>.conf` into, included from nginx's http block.",
    )
    .default(Default::Str("/etc/nginx/converge")),
    Prop::new(
        "pid_file",
        PATH_ON_HOST,
        "nginx's pid file (its workers are watched at a reload).",
    )
    .default(Default::Str("/run/nginx.pid")),
];

const ROUTE: &[Prop] = &[
    Prop::new(
        "service",
        APP_NAME,
        "The web service (one with a `port`) these requests go to.",
    )
    .required(),
    Prop::new(
        "path",
        Type::Text(&ROUTE_PATH),
        "Requests under this prefix (`/api` takes `/api` and `/api/...`; the longest prefix wins), passed to the service unchanged.",
    )
    .default(Default::Str("/")),
    Prop::new(
        "server_name",
        Type::Text(&SERVER_NAME),
        "A server block of its own for this name (default: nginx's server_name).",
    ),
];

const PROXY: &[Prop] = &[
    Prop::new(
        "nginx",
        Type::Object(NGINX),
        "nginx in front of the live colour.",
    )
    .required(),
    Prop::new(
        "routes",
        Type::List(&Type::Object(ROUTE)),
        "Which web service answers which server_name and path prefix; needed when more than one service has a port. All of them switch colour together, in one reload.",
    )
    .default(Default::EmptyList),
];

const HOOK: &[Prop] = &[
    Prop::new(
        "service",
        APP_NAME,
        "The service whose new image and environment the hook runs with.",
    )
    .required(),
    Prop::new(
        "run",
        STRINGS,
        "The command; exit 0 passes. No sensitive value: the hook gets its service's environment (secrets included), so read it from there.",
    )
    .required(),
    Prop::new(
        "timeout",
        Type::Duration,
        "Stop it and fail after this long.",
    )
    .default(Default::Str("5m")),
    Prop::new(
        "per_host",
        Type::Bool,
        "Run on every host the rollout reaches (pre_traffic: each batch's hosts before their switch) instead of once, on the first host.",
    )
    .default(Default::Bool(false)),
];

const HOOK_TYPE: Type = Type::Object(HOOK);

const HOOKS: &[Prop] = &[
    Prop::new(
        "pre_traffic",
        Type::List(&HOOK_TYPE),
        "Before the switch (migrations); a failure removes the new colour.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "post_traffic",
        Type::List(&HOOK_TYPE),
        "After the bake (smoke tests); a failure switches back.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "on_rollback",
        Type::List(&HOOK_TYPE),
        "After a rollback (a down-migration), at most once.",
    )
    .default(Default::EmptyList),
];

const GATE_HTTP: &[Prop] = &[
    Prop::new(
        "path",
        REQUEST_PATH,
        "Path probed with GET through nginx (Host: server_name).",
    )
    .required(),
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
        "Consecutive failed probes that roll back.",
    )
    .default(Default::Int(2)),
];

const GATE_METRIC: &[Prop] = &[
    Prop::new(
        "name",
        Type::Enum(&["error_rate", "p95_latency"]),
        "error_rate (the share of the new colour's requests answered 5xx) or p95_latency (its request time), from converge's nginx access log.",
    )
    .required(),
    Prop::new(
        "max",
        Type::Number,
        "error_rate: highest rate that passes (0.05 = 5%); p95_latency: highest p95 that passes, milliseconds.",
    ),
    Prop::new(
        "max_ratio_to_baseline",
        Type::Number,
        "p95_latency: highest ratio to the old colour's p95 over the same window.",
    ),
    Prop::new("for", Type::Duration, "Window of the log read: requests of the last `for`.")
        .default(Default::Str("1m")),
    Prop::new(
        "min_requests",
        Type::Integer(0, 1_000_000),
        "Fewer requests of the new colour in the window count as no data.",
    )
    .default(Default::Int(1)),
    Prop::new(
        "no_data",
        Type::Enum(&["fail", "pass", "wait"]),
        "What too few requests mean: fail, pass, or wait (the bake goes on).",
    )
    .default(Default::Str("wait")),
    Prop::new("on_fail", Type::Enum(&["rollback", "alert"]), "rollback or alert.")
        .default(Default::Str("rollback")),
];

const GATES: &[Prop] = &[
    Prop::new(
        "http",
        Type::Object(GATE_HTTP),
        "Probed through the proxy after the switch, every interval of the bake.",
    ),
    Prop::new(
        "metrics",
        Type::List(&Type::Object(GATE_METRIC)),
        "Judged from what nginx saw (converge's access log for the app, read over SSH), per colour.",
    )
    .default(Default::EmptyList),
];

const TRAFFIC: &[Prop] = &[Prop::new(
    "sticky",
    Type::Enum(&["cookie"]),
    "canary: `cookie` keeps each client on the colour it first got (a cookie nginx sets and reads), so no user flips between versions mid-session.",
)];

const ROLLOUT: &[Prop] = &[
    Prop::new(
        "strategy",
        Type::Enum(&["blue_green", "canary", "recreate"]),
        "blue_green (the new colour beside the old, then nginx switched), canary (both colours on every host, nginx splitting requests by the steps' weights) or recreate (stop, then start).",
    )
    .default(Default::Str("blue_green")),
    Prop::new(
        "steps",
        Type::List(&Type::CanaryStep),
        "canary: percent of requests nginx sends to the new colour at each step; `pause` waits (after the step before it and its bake) for `rollout promote`, up to pause_timeout.",
    )
    .default(Default::EmptyList),
    Prop::new(
        "pause_timeout",
        Type::Duration,
        "How long a `pause` step waits for `rollout promote`; past it, the next converge command that touches the environment rolls back.",
    )
    .default(Default::Str("24h")),
    Prop::new("proxy", Type::Object(PROXY), "The proxy in front of the services.").required(),
    Prop::new(
        "traffic",
        Type::Object(TRAFFIC),
        "How a canary's requests are split.",
    ),
    Prop::new("hooks", Type::Object(HOOKS), "One-off containers of the new image."),
    Prop::new(
        "bake",
        Type::Duration,
        "After the switch (canary: after each step), gates are watched this long.",
    )
        .default(Default::Str("1m")),
    Prop::new("interval", Type::Duration, "How often gates are evaluated.")
        .default(Default::Str("10s")),
    Prop::new("health", Type::Object(GATES), "Gates of the bake."),
    Prop::new(
        "notify",
        Type::Object(crate::rollout::schema::NOTIFY),
        "Where rollout events (and a failed apply of the app) are posted.",
    ),
    Prop::new(
        "drain_timeout",
        Type::Duration,
        "The old colour serves in-flight requests this long at most (until nginx's old workers exit).",
    )
    .default(Default::Str("30s")),
    Prop::new(
        "keep_previous",
        Type::Duration,
        "The old colour stays, stopped, this long (removed by the next apply or drift).",
    )
    .default(Default::Str("1h")),
    Prop::new(
        "keep_images",
        Type::Integer(1, 100),
        "App images kept per host after a good deploy.",
    )
    .default(Default::Int(3)),
    Prop::new("batch", Type::Integer(1, 1_000), "Hosts deployed at a time.")
        .default(Default::Int(1)),
];

/// `host.app`.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "host.app",
    doc: "A containerised app on Linux hosts over SSH: services blue/green behind nginx, accessories in place.",
    props: &[
        Prop::new(
            "name",
            APP_NAME,
            "The app's name: containers, labels, the network converge-<name> and the nginx file.",
        )
        .required()
        .replace(),
        Prop::new(
            "hosts",
            Type::List(&HOST_TYPE),
            "Hosts, deployed `rollout.batch` at a time.",
        )
        .required(),
        Prop::new("ssh", Type::Object(SSH), "How converge logs in."),
        Prop::new(
            "registry",
            Type::Object(REGISTRY),
            "Where the images are pulled from.",
        ),
        Prop::new(
            "compose",
            Type::Object(COMPOSE),
            "A docker-compose.yml the services and accessories are read from (then not written here): web services (with `ports`) and workers roll out by colour, services with named volumes are accessories.",
        ),
        Prop::new(
            "allow",
            Type::Object(ALLOW),
            "What containers may do to their host, each refused unless allowed here.",
        ),
        Prop::new(
            "services",
            Type::Keyed(&NAME, &Type::Object(SERVICE)),
            "Stateless containers, rolled out by colour (from `compose` when it is given).",
        )
        .default(Default::EmptyMap),
        Prop::new(
            "accessories",
            Type::Keyed(&NAME, &Type::Object(ACCESSORY)),
            "Stateful containers: started once, replaced in place when changed, never doubled.",
        )
        .default(Default::EmptyMap),
        Prop::new(
            "rollout",
            Type::Object(ROLLOUT),
            "How a new version takes traffic.",
        )
        .required(),
    ],
    outputs: &[
        Output {
            name: "colour",
            ty: STRING,
        },
        Output {
            name: "ports",
            ty: Type::Map(&Type::Number),
        },
    ],
    price: PriceRule::Free,
    import_id: "(not importable: converge creates its containers)",
    rules,
    rollout_summary: Some(super::deploy::plan_summary),
};

/// Routes that reach web services: each names a service with a port, no two take the same
/// server name and path, every service with a port has one, and several services with a port
/// need them (one service with a port is routed `/` without any).
pub(super) fn route_problems(p: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let services = p.get("services").as_map().cloned().unwrap_or_default();
    let ported: Vec<&String> = services
        .iter()
        .filter(|(_, s)| !s.get("port").is_null())
        .map(|(k, _)| k)
        .collect();
    let proxy = p.get("rollout").get("proxy");
    let routes = proxy.get("routes").as_list().unwrap_or_default();
    let at = |i: usize, field: &str| {
        vec![
            "rollout".into(),
            "proxy".into(),
            "routes".into(),
            i.to_string(),
            field.to_string(),
        ]
    };
    if routes.is_empty() {
        if ported.len() > 1 {
            out.push((
                vec!["services".into(), ported[1].clone(), "port".into()],
                format!(
                    "`{}` and `{}` both have a port: say which requests go to which in `rollout.proxy.routes` ([{{service: {}, path: /}}, {{service: {}, path: /{}}}])",
                    ported[0], ported[1], ported[0], ported[1], ported[1]
                ),
            ));
        }
        return out;
    }
    if proxy.get("nginx").get("server").as_bool() == Some(false) {
        out.push((
            vec!["rollout".into(), "proxy".into(), "routes".into()],
            "routes are locations in converge's own server block: they need `proxy.nginx.server: true`".into(),
        ));
    }
    let default_name = proxy
        .get("nginx")
        .get("server_name")
        .as_str()
        .unwrap_or_default();
    let mut seen: std::collections::BTreeMap<(String, String), usize> =
        std::collections::BTreeMap::new();
    for (i, r) in routes.iter().enumerate() {
        let service = r.get("service").as_str().unwrap_or_default();
        if !service.is_empty() && !ported.iter().any(|s| s.as_str() == service) {
            out.push((
                at(i, "service"),
                if services.contains_key(service) {
                    format!("`{service}` has no `port`: nginx can only route to a web service")
                } else {
                    format!("no service `{service}` in services")
                },
            ));
        }
        let path = r.get("path").as_str().unwrap_or("/").to_string();
        let name = r
            .get("server_name")
            .as_str()
            .unwrap_or(default_name)
            .to_string();
        if let Some(first) = seen.insert((name.clone(), path.clone()), i) {
            out.push((
                at(i, "path"),
                format!("routes {first} and {i} both take {name}{path}"),
            ));
        }
    }
    for s in ported {
        if !routes
            .iter()
            .any(|r| r.get("service").as_str() == Some(s.as_str()))
        {
            out.push((
                vec!["services".into(), s.clone(), "port".into()],
                format!("`{s}` has a port but no route in `rollout.proxy.routes` reaches it"),
            ));
        }
    }
    out
}

/// Jobs and what waits for them: a job has no port (it completes, nginx has nothing to route
/// to), `service_completed_successfully` names a job, and an accessory (which outlives
/// deploys) waits for no job.
fn job_problems(
    services: &std::collections::BTreeMap<String, Value>,
    accessories: &std::collections::BTreeMap<String, Value>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let is_job = |name: &str| {
        services
            .get(name)
            .is_some_and(|s| s.get("job").as_bool() == Some(true))
    };
    for (name, s) in services {
        if s.get("job").as_bool() == Some(true) && !s.get("port").is_null() {
            out.push((
                vec!["services".into(), name.clone(), "port".into()],
                format!("`{name}` is a job: it runs to completion, so nginx has nothing to route to (remove `port`)"),
            ));
        }
    }
    for (group, map) in [("services", services), ("accessories", accessories)] {
        for (name, c) in map {
            for (dep, condition) in c.get("depends_on").as_map().cloned().unwrap_or_default() {
                let at = vec![group.into(), name.clone(), "depends_on".into(), dep.clone()];
                if condition.as_str() == Some("service_completed_successfully") && !is_job(&dep) {
                    out.push((
                        at,
                        format!("`{dep}` is not a job (`job: true`): only a job completes"),
                    ));
                } else if group == "accessories" && is_job(&dep) {
                    out.push((
                        at,
                        format!("accessory `{name}` waits for job `{dep}`: accessories start before and outlive each deploy, jobs run in one"),
                    ));
                }
            }
        }
    }
    out
}

/// Rules types cannot say: routes to the services behind the proxy, jobs, hooks naming a service that
/// exists, no root login unless allowed, no sensitive value on a hook's command line, secrets
/// that are sensitive values or whole Secrets Manager ARNs, an ACR login server where the
/// host's identity is exchanged, and a warning for mounts that hand a container the host.
fn rules(p: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let services = p.get("services").as_map().cloned().unwrap_or_default();
    let accessories = p.get("accessories").as_map().cloned().unwrap_or_default();
    if services.is_empty() {
        out.push((
            vec!["services".into()],
            "an app needs at least one service".into(),
        ));
    }
    out.extend(route_problems(p));
    out.extend(job_problems(&services, &accessories));
    for (i, h) in p
        .get("hosts")
        .as_list()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if h.get("user").reveal().as_str() == Some("root")
            && h.get("allow_root").as_bool() != Some(true)
        {
            out.push((
                vec!["hosts".into(), i.to_string(), "user".into()],
                "converge does not log in as root: use a deploy user in the docker group with the sudo rule for nginx (or set `allow_root: true` on this host)".into(),
            ));
        }
    }
    for stage in ["pre_traffic", "post_traffic", "on_rollback"] {
        for (i, h) in p
            .get("rollout")
            .get("hooks")
            .get(stage)
            .as_list()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let at = |field: &str| {
                vec![
                    "rollout".into(),
                    "hooks".into(),
                    stage.into(),
                    i.to_string(),
                    field.to_string(),
                ]
            };
            if let Some(s) = h.get("service").as_str()
                && !services.contains_key(s)
            {
                out.push((at("service"), format!("no service `{s}` in services")));
            }
            if h.get("run").contains_sensitive() {
                out.push((
                    at("run"),
                    "a sensitive value may not be on a hook's command line (ps and docker inspect show it): give it to the service in `secrets` and read it from the environment the hook runs with".into(),
                ));
            }
        }
    }
    let migrates = !p
        .get("rollout")
        .get("hooks")
        .get("pre_traffic")
        .as_list()
        .unwrap_or_default()
        .is_empty();
    for (name, a) in accessories.iter() {
        let stateful = !a.get("volumes").as_list().unwrap_or_default().is_empty();
        if a.get("backup").get("run").contains_sensitive() {
            out.push((
                vec!["accessories".into(), name.clone(), "backup".into(), "run".into()],
                "a sensitive value may not be on a backup's command line (ps and docker inspect show it): give it to the accessory in `secrets`".into(),
            ));
        }
        if migrates && stateful && a.get("backup").is_null() {
            out.push((
                vec!["accessories".into(), name.clone()],
                format!(
                    "{WARNING}the rollout runs pre_traffic hooks (migrations) and accessory `{name}` keeps data in volumes without a `backup`: nothing can be restored if a migration goes wrong"
                ),
            ));
        }
    }
    for (group, map) in [("services", &services), ("accessories", &accessories)] {
        for (name, c) in map.iter() {
            for (key, v) in c.get("secrets").as_map().cloned().unwrap_or_default() {
                if let Some(text) = v.as_str()
                    && !v.contains_sensitive()
                    && text.starts_with("arn:")
                    && !grammar::is_secret_arn(text)
                {
                    out.push((
                        vec![group.into(), name.clone(), "secrets".into(), key],
                        "a host app's secret is a sensitive value or the whole ARN of a Secrets Manager secret (`${S.arn}` of an aws.secretsmanager_secret)".into(),
                    ));
                }
            }
            for (i, v) in c
                .get("volumes")
                .as_list()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let Some(mount) = v.as_str() else { continue };
                let source = mount.split(':').next().unwrap_or_default();
                if source.starts_with('/') && grammar::mounts_the_host(source) {
                    out.push((
                        vec![group.into(), name.clone(), "volumes".into(), i.to_string()],
                        format!(
                            "{WARNING}mounting `{source}` gives the container the host (or its Docker daemon); mount a directory of the app's own"
                        ),
                    ));
                }
            }
        }
    }
    out.extend(unallowed(p));
    for key in ["known_hosts", "private_key_file"] {
        if let Some(path) = p.get("ssh").get(key).reveal().as_str()
            && std::path::Path::new(path)
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            out.push((
                vec!["ssh".into(), key.into()],
                format!(
                    "`{}` leaves the project: a file converge reads or writes on this machine stays inside --root (or is an absolute path that exists)",
                    grammar::escape_controls(path)
                ),
            ));
        }
    }
    let registry = p.get("registry");
    let hosts: Vec<String> = p
        .get("hosts")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|h| {
            let address = h.get("address").reveal().as_str()?;
            Some(format!(
                "{address}:{}",
                h.get("port").as_i64().unwrap_or(22)
            ))
        })
        .collect();
    let auth = registry.get("auth");
    let received = if let Some(user) = auth.get("basic").get("username").reveal().as_str() {
        Some(format!(
            "the registry password of `{}` (over stdin, in a DOCKER_CONFIG removed after each pull)",
            grammar::escape_controls(user)
        ))
    } else if auth.get("acr").as_bool() == Some(true) {
        Some(
            "no credential from converge: each host exchanges its own managed identity's token"
                .into(),
        )
    } else {
        auth.get("ecr").get("role_arn").reveal().as_str().map(|role| {
            format!(
                "a 12-hour ECR token minted under {} with a session policy allowing only pulls from the app's repositories",
                grammar::escape_controls(role)
            )
        })
    };
    if let Some(received) = received
        && !hosts.is_empty()
    {
        out.push((
            vec!["registry".into()],
            format!(
                "{}{} receive{} {received}",
                crate::model::schema::NOTE,
                hosts.join(", "),
                if hosts.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    if registry.get("auth").get("acr").as_bool() == Some(true)
        && let Some(server) = registry.get("server").reveal().as_str()
        && !acr_login_server(server)
    {
        out.push((
            vec!["registry".into(), "server".into()],
            format!(
                "with `auth: {{ acr: true }}` the host sends its Azure token to the server: `{}` is not an Azure Container Registry login server (NAME.azurecr.io, .azurecr.cn or .azurecr.us; or a registry on the host's own loopback)",
                grammar::escape_controls(server)
            ),
        ));
    }
    out
}

/// What containers would do to their host without the app's `allow` saying they may:
/// privileged, the host's network, added capabilities, host devices.
pub fn unallowed(p: &Value) -> Vec<Problem> {
    let allow = crate::config::compose::Allow::of(p.get("allow"));
    let mut out = Vec::new();
    for group in ["services", "accessories"] {
        for (name, c) in p.get(group).as_map().cloned().unwrap_or_default() {
            let r = c.get("runtime");
            let at = |field: &str| {
                vec![
                    group.to_string(),
                    name.clone(),
                    "runtime".into(),
                    field.into(),
                ]
            };
            if r.get("privileged").as_bool() == Some(true) && !allow.privileged {
                out.push((at("privileged"), "a privileged container has every device and capability of the host: refused unless `allow: { privileged: true }`".into()));
            }
            if r.get("host_network").as_bool() == Some(true) && !allow.host_network {
                out.push((
                    at("host_network"),
                    "the host's network is refused unless `allow: { host_network: true }`".into(),
                ));
            }
            for cap in r.get("cap_add").as_list().unwrap_or_default() {
                let Some(cap) = cap.as_str() else { continue };
                let bare = cap.trim_start_matches("CAP_");
                if !allow
                    .capabilities
                    .iter()
                    .any(|a| a.trim_start_matches("CAP_") == bare)
                {
                    out.push((at("cap_add"), format!("capability `{bare}` is refused unless `allow: {{ capabilities: [{bare}] }}`")));
                }
            }
            for dev in r.get("devices").as_list().unwrap_or_default() {
                let Some(dev) = dev.as_str() else { continue };
                if !allow.devices.iter().any(|d| d == dev) {
                    out.push((
                        at("devices"),
                        format!(
                            "device `{}` is refused unless `allow: {{ devices: [{0}] }}`",
                            grammar::escape_controls(dev)
                        ),
                    ));
                }
            }
            if let Some(driver) = r.get("logging").get("driver").as_str()
                && !crate::config::compose::Allow::LOCAL_LOG_DRIVERS.contains(&driver)
                && !allow.log_drivers.iter().any(|d| d == driver)
            {
                out.push((at("logging"), format!("logging driver `{driver}` sends the container's output off the host: refused unless `allow: {{ log_drivers: [{driver}] }}`")));
            }
            for opt in r.get("security_opt").as_list().unwrap_or_default() {
                let Some(opt) = opt.as_str() else { continue };
                if !allow.security_opt(opt) {
                    out.push((at("security_opt"), format!("`{}` can lift the container's confinement (only `no-new-privileges` always may be given): refused unless `allow: {{ privileged: true }}`", grammar::escape_controls(opt))));
                }
            }
        }
    }
    out
}

/// Whether `server` is an Azure Container Registry login server (public and sovereign clouds),
/// or a registry on the host's own loopback (a local mirror; the token never leaves the host).
pub fn acr_login_server(server: &str) -> bool {
    let Ok(server) = grammar::RegistryServer::try_from(server) else {
        return false;
    };
    let host = server.host().to_ascii_lowercase();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback
        || [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
            .iter()
            .any(|suffix| {
                host.strip_suffix(suffix).is_some_and(|name| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
                })
            })
}
