//! Shared test harness: a moto server on a free loopback port, a scratch copy of a project,
//! and a builder that runs the real `converge` binary against them.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

pub mod azure;
mod backend;
pub mod csdl;
mod faulty;
pub mod hosts;
mod http;
pub mod isolated_host;
pub mod records;
pub mod serve;
pub mod swagger;
pub mod tls;

pub use azure::AzureServer;
pub use backend::Backend;
pub use faulty::FaultyProxy;
pub use http::TestHttp;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A moto server started for one test, behind the ECS simulator (`scripts/ecs_sim.py`,
/// which answers deployment, task-set, target-health and one-off-task questions as ECS would);
/// both killed on drop.
pub struct Moto {
    child: Child,
    sim: Child,
    /// The simulator in front of moto, `http://127.0.0.1:PORT`: what converge talks to.
    pub endpoint: String,
    /// moto itself.
    pub upstream: String,
}

fn venv_tool(var: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    assert!(
        local.exists(),
        "{name} not found: run scripts/setup.sh (or scripts/test.sh), or set {var}"
    );
    local
}

impl Moto {
    /// Starts moto's server on a free port and waits until it answers.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(venv_tool("CONVERGE_MOTO_SERVER", "moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut sim = Command::new(venv_tool("CONVERGE_PYTHON", "python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ecs_sim.py"))
            .args(["--upstream", &endpoint])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scripts/ecs_sim.py");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sim.stdout.take().unwrap()),
            &mut line,
        )
        .expect("read the simulator's port");
        let sim_port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("ecs_sim.py said {line:?}"))
            .to_string();
        Moto {
            child,
            sim,
            endpoint: format!("http://127.0.0.1:{sim_port}"),
            upstream: endpoint,
        }
    }

    /// Tells the ECS simulator how revisions behave: `{"after": SECONDS, "rules": [...]}`
    /// (see `scripts/ecs_sim.py`).
    pub fn simulate(&self, settings: serde_json::Value) {
        let port: u16 = self.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let body = settings.to_string();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "POST /__sim__/rules HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "ecs_sim.py: {answer}");
    }

    /// What the ECS simulator holds (`GET /__sim__/state`): services, task sets, tasks.
    pub fn sim_state(&self) -> serde_json::Value {
        let port: u16 = self.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "GET /__sim__/state HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("ecs_sim.py state: {e}: {answer}"))
    }

    /// Creates a VPC with two subnets and a security group; returns converge `--var` flags.
    pub fn network(&self) -> Vec<String> {
        self.network_in("us-east-1")
    }

    /// [`Moto::network`] in another region (an example environment's own).
    pub fn network_in(&self, region: &str) -> Vec<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto-network.py");
        let out = Command::new(venv_tool("CONVERGE_PYTHON", "python"))
            .arg(script)
            .envs(aws_env(&self.endpoint))
            .env("AWS_DEFAULT_REGION", region)
            .output()
            .expect("run moto-network.py");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Runs `code` (Python, with boto3) against this moto; what it printed.
    pub fn python(&self, code: &str) -> String {
        let out = Command::new(venv_tool("CONVERGE_PYTHON", "python"))
            .args(["-c", code])
            .envs(aws_env(&self.endpoint))
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .expect("run python with boto3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// An SDK configuration pointing at this moto.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment for processes that talk to moto: dummy credentials, no IMDS.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A scratch project: the repository's example environments and modules, or given files.
pub struct Project {
    dir: tempfile::TempDir,
    /// The user's config directory converge sees (state keys live there, outside --root).
    config: tempfile::TempDir,
    endpoint: Option<String>,
    state_url: Option<String>,
    extra_env: Vec<(String, String)>,
}

impl Project {
    /// The user's config directory converge runs with (where it keeps state keys).
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// A copy of the example project.
    pub fn example() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&repo.join("environments"), &dir.path().join("environments"));
        copy_dir(&repo.join("modules"), &dir.path().join("modules"));
        Project {
            dir,
            config: tempfile::tempdir().unwrap(),
            endpoint: None,
            state_url: None,
            extra_env: Vec::new(),
        }
    }

    /// A copy of `examples/<name>` (a seed system's project).
    pub fn seed(name: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_dir(&src.join("environments"), &dir.path().join("environments"));
        if src.join("modules").exists() {
            copy_dir(&src.join("modules"), &dir.path().join("modules"));
        }
        // Files beside them (a compose file the environments read).
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
            }
        }
        Project {
            dir,
            config: tempfile::tempdir().unwrap(),
            endpoint: None,
            state_url: None,
            extra_env: Vec::new(),
        }
    }

    /// An empty project.
    pub fn empty() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("environments")).unwrap();
        Project {
            dir,
            config: tempfile::tempdir().unwrap(),
            endpoint: None,
            state_url: None,
            extra_env: Vec::new(),
        }
    }

    /// Points converge at a moto server.
    pub fn with_moto(mut self, moto: &Moto) -> Project {
        self.endpoint = Some(moto.endpoint.clone());
        self
    }

    /// Adds environment variables to every converge run (e.g. the local Azure's).
    pub fn with_env(mut self, vars: Vec<(String, String)>) -> Project {
        self.extra_env.extend(vars);
        self
    }

    /// Points converge at another AWS endpoint (a proxy in front of moto).
    pub fn with_endpoint(mut self, endpoint: &str) -> Project {
        self.endpoint = Some(endpoint.to_string());
        self
    }

    /// Keeps state in `backend` (passed as CONVERGE_STATE_URL).
    pub fn with_backend(mut self, backend: &Backend) -> Project {
        self.state_url = backend.state_url();
        self
    }

    /// The project folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the project root.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Reads a file relative to the project root.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap()
    }

    /// Replaces text in a file, asserting it was there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// Runs converge with `args` in this project.
    pub fn converge(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("run converge");
        Run {
            output,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The converge command for `args`, not started (for tests that signal or race it).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_converge"));
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.env("NO_COLOR", "1")
            .env("CONVERGE_ACTOR", "tester")
            .env_remove("GITHUB_ACTIONS");
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.env("XDG_CONFIG_HOME", self.config.path())
            .env_remove("CONVERGE_STATE_KEY")
            .env_remove("CONVERGE_STATE_KEY_PREVIOUS");
        if let Some(endpoint) = &self.endpoint {
            cmd.envs(aws_env(endpoint));
        }
        match &self.state_url {
            Some(url) => cmd.env("CONVERGE_STATE_URL", url),
            None => cmd.env_remove("CONVERGE_STATE_URL"),
        };
        // Only the credentials a test gives; never the instance metadata service.
        for k in [
            "AZURE_CLIENT_SECRET",
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_AUTHORITY_HOST",
            "AZURE_FEDERATED_TOKEN_FILE",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "IDENTITY_ENDPOINT",
            "MSI_ENDPOINT",
            // A test run inside GitHub Actions must not write to the job's summary or PR.
            "GITHUB_STEP_SUMMARY",
            "GITHUB_EVENT_PATH",
            "GITHUB_TOKEN",
            "GITHUB_REPOSITORY",
            "GITHUB_API_URL",
            "GITHUB_SHA",
            "GITHUB_ACTOR",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("CONVERGE_AZURE_IMDS_DISABLED", "true");
        cmd.envs(self.extra_env.iter().cloned());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The audit events of `env` whose action is `action`, in order (`audit log --format json`).
    pub fn audit_events(&self, env: &str, action: &str) -> Vec<serde_json::Value> {
        let log = self
            .converge(&["-e", env, "audit", "log", "--format", "json"])
            .expect(0)
            .json();
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }

    /// The path of an environment's SQLite state.
    pub fn state_db(&self, env: &str) -> PathBuf {
        self.root().join("state").join(format!("{env}.db"))
    }
}

/// A finished converge run.
pub struct Run {
    output: Output,
    args: Vec<String>,
}

impl Run {
    /// A run from a process the test started itself.
    pub fn from_output(output: Output, args: &[&str]) -> Run {
        Run {
            output,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Run {
    /// Its exit code.
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Its stdout.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Its stderr.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "converge {:?} exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout()))
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Writes `environments/{env}.yaml`: one cluster, one execution role and `services` copies of
/// the web-service module (an ECR repository and a Fargate service each): 2 + 2 × services
/// resources.
pub fn write_fleet(project: &Project, env: &str, services: usize) {
    let mut yaml = format!(
        "environment: {env}
providers:
  aws: {{ region: us-east-1 }}
variables:
  image_tag: v1.0.0
  subnet_a: subnet-00000000000000001
  subnet_b: subnet-00000000000000002
  security_group: sg-00000000000000001
  vpc_id: vpc-00000000000000001
modules:
"
    );
    for i in 0..services {
        yaml.push_str(&format!(
            "  svc{i:02}:
    source: web-service
    inputs:
      name: {env}-svc{i:02}
      image_tag: \"${{var.image_tag}}\"
      cluster_arn: \"${{cluster.arn}}\"
      execution_role_arn: \"${{execution_role.arn}}\"
      subnets: [\"${{var.subnet_a}}\", \"${{var.subnet_b}}\"]
      security_groups: [\"${{var.security_group}}\"]
"
        ));
    }
    yaml.push_str(&format!(
        "resources:
  cluster:
    type: aws.ecs_cluster
    properties: {{ name: {env} }}
  execution_role:
    type: aws.iam_role
    properties:
      name: {env}-ecs-execution
      assume_role_policy:
        Version: \"2012-10-17\"
        Statement:
          - Effect: Allow
            Principal: {{ Service: ecs-tasks.amazonaws.com }}
            Action: sts:AssumeRole
"
    ));
    project.write(&format!("environments/{env}.yaml"), &yaml);
}

/// What exists in moto for a fleet environment, counted through the AWS SDK.
#[derive(Debug, PartialEq, Eq)]
pub struct FleetCount {
    /// ECR repositories named `{env}-...`.
    pub repositories: usize,
    /// ACTIVE services in the environment's cluster.
    pub services: usize,
    /// Task definition families in use by those services (one per service).
    pub service_names_unique: bool,
    /// ACTIVE clusters named `{env}`.
    pub clusters: usize,
    /// IAM roles named `{env}-ecs-execution`.
    pub roles: usize,
}

/// Counts the fleet's resources in moto.
pub async fn count_fleet(moto: &Moto, env: &str) -> FleetCount {
    let sdk = moto.sdk().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let repos: Vec<String> = ecr
        .describe_repositories()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.repository_name)
        .filter(|n| n.starts_with(&format!("{env}-")))
        .collect();
    let clusters = ecs
        .describe_clusters()
        .clusters(env)
        .send()
        .await
        .unwrap()
        .clusters
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.status.as_deref() == Some("ACTIVE"))
        .count();
    let mut names = Vec::new();
    if clusters > 0 {
        let arns: Vec<String> = ecs
            .list_services()
            .cluster(env)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        for chunk in arns.chunks(10) {
            let out = ecs
                .describe_services()
                .cluster(env)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            names.extend(
                out.services
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.status.as_deref() == Some("ACTIVE"))
                    .filter_map(|s| s.service_name),
            );
        }
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    let roles = usize::from(
        iam.get_role()
            .role_name(format!("{env}-ecs-execution"))
            .send()
            .await
            .is_ok(),
    );
    FleetCount {
        repositories: repos.len(),
        services: names.len(),
        service_names_unique: unique.len() == names.len(),
        clusters,
        roles,
    }
}

/// The fleet's count once fully applied.
pub fn full_fleet(services: usize) -> FleetCount {
    FleetCount {
        repositories: services,
        services,
        service_names_unique: true,
        clusters: 1,
        roles: 1,
    }
}
