//! Commands on a host over SSH: OpenSSH's client (`ssh`), run under converge's rules, as Ansible
//! runs it. Host keys are checked first (`known_hosts.rs`) and again by OpenSSH itself
//! (`StrictHostKeyChecking=yes` against converge's known_hosts file only); key authentication
//! only; no user or system ssh configuration is read. A private key given as a value (from a
//! sensitive variable) touches disk only as a 0600 temporary file, removed when the session ends.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::known_hosts::{self, HostKeyError, Verdict};

/// Where a host is and who converge logs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Address or DNS name.
    pub address: String,
    /// SSH port (22 by default).
    pub port: u16,
    /// The deploy user (not root).
    pub user: String,
}

/// The key converge logs in with.
#[derive(Debug, Clone)]
pub enum PrivateKey {
    /// The SSH agent (`SSH_AUTH_SOCK`).
    Agent,
    /// A key file.
    File(PathBuf),
    /// A key's text (a sensitive variable).
    Inline(String),
}

/// Why a session could not be opened or a command not run.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host key check refused the host.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// OpenSSH could not log in (or the connection failed).
    #[error("{host}: ssh could not log in as {user}: {detail}")]
    Login {
        /// `host` or `[host]:port`.
        host: String,
        /// The user.
        user: String,
        /// What ssh said.
        detail: String,
    },
    /// ssh could not be run, or the key could not be written.
    #[error("{0}")]
    Local(String),
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its exit code (`None`: killed by a signal, or the connection dropped).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// An open session: the host checked and the login proven; commands run one ssh each.
#[derive(Debug)]
pub struct Session {
    target: Target,
    known_hosts: PathBuf,
    key: Option<PathBuf>,
    _key_file: Option<tempfile::TempPath>,
    /// The directory of the connection's control socket (OpenSSH's ControlMaster): one TCP
    /// connection and key exchange for every command of the session.
    control: tempfile::TempDir,
    /// Set when the host was unknown and its keys were recorded (the caller audits it).
    pub accepted: Option<Verdict>,
}

impl Session {
    /// Checks the host's key against `known_hosts` (recording it when unknown and
    /// `accept_new`), then logs in once to prove the key works.
    pub async fn open(
        target: Target,
        known_hosts_file: &Path,
        key: PrivateKey,
        accept_new: bool,
    ) -> Result<Session, SshError> {
        let verdict =
            known_hosts::check(known_hosts_file, &target.address, target.port, accept_new).await?;
        let (key, key_file) = match key {
            PrivateKey::Agent => (None, None),
            PrivateKey::File(path) => (Some(path), None),
            PrivateKey::Inline(text) => {
                let file = write_key(&text)?;
                (Some(file.to_path_buf()), Some(file))
            }
        };
        let control = tempfile::Builder::new()
            .prefix("converge-ssh-")
            .tempdir()
            .map_err(|e| {
                SshError::Local(format!("cannot create the ssh control directory: {e}"))
            })?;
        let session = Session {
            target,
            known_hosts: known_hosts_file.to_path_buf(),
            key,
            _key_file: key_file,
            control,
            accepted: matches!(verdict, Verdict::Accepted { .. }).then_some(verdict),
        };
        let proof = session.run("true", None).await?;
        if !proof.success() {
            return Err(SshError::Login {
                host: session.host(),
                user: session.target.user.clone(),
                detail: proof.stderr.trim().to_string(),
            });
        }
        Ok(session)
    }

    /// The private key file ssh is given (`None`: the agent); an inline key's file is removed
    /// when the session is dropped.
    pub fn key_file(&self) -> Option<&Path> {
        self.key.as_deref()
    }

    /// `host` or `[host]:port`, as known_hosts names it.
    pub fn host(&self) -> String {
        known_hosts::host_pattern(&self.target.address, self.target.port)
    }

    /// Runs `command` (a shell command line on the host), writing `stdin` to it when given
    /// (how secrets reach a host: never on a command line).
    pub async fn run(&self, command: &str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        let mut cmd = self.ssh();
        cmd.arg(format!("{}@{}", self.target.user, self.target.address))
            .arg("--")
            .arg(command)
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| SshError::Local(format!("cannot run ssh: {e}")))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data)
                .await
                .map_err(|e| SshError::Local(format!("writing to ssh: {e}")))?;
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| SshError::Local(format!("ssh: {e}")))?;
        // 255 is ssh's own failure (connection, authentication, host key), not the command's.
        if out.status.code() == Some(255) {
            return Err(SshError::Login {
                host: self.host(),
                user: self.target.user.clone(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        })
    }
}

impl Session {
    /// OpenSSH's client under converge's rules, for this host and user.
    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "none", "-T", "-p", &self.target.port.to_string()])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "PasswordAuthentication=no"])
            .args(["-o", "KbdInteractiveAuthentication=no"])
            .args(["-o", "PreferredAuthentications=publickey"])
            .args(["-o", "ConnectTimeout=10"])
            .args(["-o", "LogLevel=ERROR"])
            .args(["-o", "ControlMaster=auto"])
            .arg("-o")
            .arg(format!("ControlPath={}", self.control_path().display()))
            // The master outlives a converge killed outright by at most this long.
            .args(["-o", "ControlPersist=30s"]);
        if let Some(key) = &self.key {
            cmd.args(["-o", "IdentitiesOnly=yes", "-i"]).arg(key);
        }
        cmd
    }

    fn control_path(&self) -> std::path::PathBuf {
        self.control.path().join("master")
    }

    /// Sends `request` to `127.0.0.1:port` on the host through an SSH `direct-tcpip` channel
    /// (`ssh -W`) and returns what came back before the far side closed, within `timeout`.
    /// Nothing is exposed beyond loopback on the host.
    pub async fn tunnel(
        &self,
        port: u16,
        request: &[u8],
        timeout: std::time::Duration,
    ) -> Result<Vec<u8>, TunnelError> {
        use tokio::io::AsyncReadExt;
        let mut cmd = self.ssh();
        cmd.arg("-W")
            .arg(format!("127.0.0.1:{port}"))
            .arg(format!("{}@{}", self.target.user, self.target.address))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| TunnelError::Failed(format!("cannot run ssh: {e}")))?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let exchange = async {
            // The request; the input stays open until the answer is in (nginx takes a client's
            // end of input for a client gone, and answers nothing). An empty request ends the
            // input at once: a connect check.
            let mut pipe = stdin.take();
            if let Some(p) = pipe.as_mut() {
                p.write_all(request).await.ok();
            }
            if request.is_empty() {
                drop(pipe.take());
            }
            let mut response = Vec::new();
            if let Some(out) = stdout.as_mut() {
                out.read_to_end(&mut response).await.ok();
            }
            drop(pipe);
            let status = child.wait_with_output().await;
            (response, status)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(TunnelError::Failed(format!(
                "no answer from 127.0.0.1:{port} within {}",
                humantime::format_duration(timeout)
            ))),
            Ok((response, _)) if !response.is_empty() => Ok(response),
            Ok((_, Ok(out))) => {
                let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if err.contains("open failed") || err.contains("forwarding failed") {
                    Err(TunnelError::Refused(format!("127.0.0.1:{port}: {err}")))
                } else {
                    Ok(Vec::new())
                }
            }
            Ok((_, Err(e))) => Err(TunnelError::Failed(format!("ssh: {e}"))),
        }
    }
}

impl Drop for Session {
    /// Ends the shared connection (its master would otherwise linger for ControlPersist).
    fn drop(&mut self) {
        if self.control_path().exists() {
            let _ = std::process::Command::new("ssh")
                .args(["-F", "none", "-o"])
                .arg(format!("ControlPath={}", self.control_path().display()))
                .args(["-O", "exit", "-p", &self.target.port.to_string()])
                .arg(format!("{}@{}", self.target.user, self.target.address))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Why a tunnelled exchange got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TunnelError {
    /// Nothing listens on the port.
    #[error("connection refused: {0}")]
    Refused(String),
    /// ssh failed, or the answer did not come in time.
    #[error("{0}")]
    Failed(String),
}

/// A private key's text as a 0600 temporary file, removed when dropped.
fn write_key(text: &str) -> Result<tempfile::TempPath, SshError> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("converge-key-")
        .tempfile()
        .map_err(|e| SshError::Local(format!("cannot write the private key: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| SshError::Local(format!("cannot protect the private key: {e}")))?;
    }
    let mut text = text.trim_end().to_string();
    text.push('\n');
    file.write_all(text.as_bytes())
        .map_err(|e| SshError::Local(format!("cannot write the private key: {e}")))?;
    Ok(file.into_temp_path())
}
