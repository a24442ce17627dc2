//! First contact with a host: wait for SSH to answer (a VM just created is still booting) and
//! for cloud-init to finish where the host has it, then check what apps on hosts need —
//! Docker that the deploy user can reach, nginx, converge's include directory the deploy user
//! writes, and the sudo rule for the two root steps (with `-c FILE` when the app names nginx's
//! configuration) — and fail naming every missing piece with the command that fixes it. A
//! rollout runs it on each host before its first change there.

use std::time::{Duration, Instant};

use super::app::docker::quote;
use super::app::nginx;
use super::app::spec::Nginx;
use super::ssh::{Session, SshError, Target};
use crate::model::grammar::SshUser;

/// What first contact found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The Docker server's version.
    pub docker: String,
    /// nginx's version line.
    pub nginx: String,
    /// cloud-init's final status (`done`), when the host has cloud-init.
    pub cloud_init: Option<String>,
}

/// Why a host is not ready for apps.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// SSH did not answer within the wait.
    #[error("{host}: SSH did not answer within {waited}s")]
    NoSsh {
        /// `host:port`.
        host: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The session failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// Pieces are missing; each says how to fix it.
    #[error("{host} is not ready for apps:\n{}", missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Missing {
        /// `host` or `[host]:port`.
        host: String,
        /// What is missing, and the command that fixes it.
        missing: Vec<String>,
    },
}

/// Waits until `target`'s SSH port accepts connections, up to `wait`.
pub async fn wait_for_ssh(target: &Target, wait: Duration) -> Result<(), PreflightError> {
    let started = Instant::now();
    loop {
        let connect = tokio::net::TcpStream::connect((target.address.as_str(), target.port));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
            return Ok(());
        }
        if started.elapsed() >= wait {
            return Err(PreflightError::NoSsh {
                host: target.label(),
                waited: wait.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The checks, run as one shell script on the host; one `key=value` line each.
fn script(n: &Nginx) -> String {
    let mut s = String::from(
        "set -f\nPATH=\"$PATH:/usr/sbin:/sbin\"\n\
         if command -v cloud-init >/dev/null 2>&1; then\n\
           cloud-init status --wait >/dev/null 2>&1\n\
           echo \"cloud_init=$(cloud-init status 2>/dev/null | sed -n 's/^status: *//p')\"\n\
         fi\n\
         if ! command -v docker >/dev/null 2>&1; then echo docker=missing\n\
         elif v=$(docker version --format '{{.Server.Version}}' 2>/dev/null); then echo \"docker=$v\"\n\
         else echo docker=noaccess; fi\n\
         if command -v nginx >/dev/null 2>&1; then echo \"nginx=$(nginx -v 2>&1 | head -n 1)\"; else echo nginx=missing; fi\n\
         if ! command -v sudo >/dev/null 2>&1; then echo sudo=missing\n",
    );
    s.push_str("else\n");
    let nginx = nginx::command(n);
    for (i, args) in ["-t", "-s reload"].iter().enumerate() {
        s.push_str(&format!(
            "  if sudo -n -l {nginx} {args} >/dev/null 2>&1; then echo sudo{i}=ok; else echo sudo{i}=no; fi\n"
        ));
    }
    s.push_str("fi\n");
    let dir = quote(&n.include_dir);
    s.push_str(&format!(
        "if [ ! -d {dir} ]; then echo include=missing; elif [ ! -w {dir} ]; then echo include=readonly; else echo include=ok; fi\n"
    ));
    s
}

/// Runs the first-contact checks over `session` as `user`, for an app behind nginx `n`.
pub async fn check(session: &Session, user: &SshUser, n: &Nginx) -> Result<Facts, PreflightError> {
    let out = session.run(&script(n), None).await?;
    let value = |key: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let mut missing = Vec::new();
    let cloud_init = value("cloud_init");
    if let Some(status) = cloud_init
        .as_deref()
        .filter(|s| *s != "done" && *s != "disabled")
    {
        missing.push(format!(
            "cloud-init ended `{status}`, not `done`: see /var/log/cloud-init-output.log on the host"
        ));
    }
    let docker = value("docker").unwrap_or_else(|| "missing".into());
    match docker.as_str() {
        "missing" => missing.push("Docker: install it with `sudo apt-get install -y docker.io`".into()),
        "noaccess" => missing.push(format!(
            "Docker: {user} cannot reach the Docker daemon: `sudo usermod -aG docker {user}`, then log in again"
        )),
        _ => {}
    }
    let nginx = value("nginx").unwrap_or_else(|| "missing".into());
    if nginx == "missing" {
        missing.push("nginx: install it with `sudo apt-get install -y nginx`".into());
    }
    if value("sudo").as_deref() == Some("missing") {
        missing.push("sudo: install it with `apt-get install -y sudo` (as root)".into());
    } else {
        let commands = nginx::root_commands(n);
        let refused: Vec<&String> = commands
            .iter()
            .enumerate()
            .filter(|(i, _)| value(&format!("sudo{i}")).as_deref() != Some("ok"))
            .map(|(_, c)| c)
            .collect();
        if !refused.is_empty() {
            missing.push(format!(
                "sudo: {user} may not run {} without a password; add this line with `sudo visudo -f /etc/sudoers.d/converge`: {}",
                refused.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                nginx::sudoers_line(user.as_str(), n)
            ));
        }
    }
    match value("include").as_deref() {
        Some("missing") => missing.push(format!(
            "nginx include directory {dir}: create it for {user} with `sudo install -d -o {user} {dir}` and include `{dir}/*.conf` in nginx's http block",
            dir = n.include_dir
        )),
        Some("readonly") => missing.push(format!(
            "nginx include directory {dir}: {user} cannot write it: `sudo chown {user} {dir}`",
            dir = n.include_dir
        )),
        _ => {}
    }
    if !missing.is_empty() {
        return Err(PreflightError::Missing {
            host: session.host(),
            missing,
        });
    }
    Ok(Facts {
        docker,
        nginx,
        cloud_init,
    })
}
