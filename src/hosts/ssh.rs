//! Commands on a host over SSH: OpenSSH's client (`ssh`), run under converge's rules, as Ansible
//! runs it. Host keys are checked first (`known_hosts.rs`) and again by OpenSSH itself
//! (`StrictHostKeyChecking=yes` against converge's known_hosts file only); key authentication
//! only; no user or system ssh configuration is read.
//!
//! What a file gives never reaches ssh's command line as an option: the user and host are typed
//! values ([`SshUser`], [`HostAddress`]) passed as `-l USER -p PORT -- HOST`, and the only
//! remote commands are converge's own constants (`sh -s`, `docker system dial-stdio`): every
//! script goes to `sh` on stdin, whatever the deploy user's login shell, wrapped in a brace
//! group that is parsed whole before any of it runs (with its own stdin on /dev/null). Data a
//! script needs (a password, a file's content) travels inside it, base64 in a here-document,
//! never on a command line.
//!
//! A private key given as a value (from a sensitive variable) and the connection's control
//! socket live in a 0700 directory of this process (`converge-ssh-PID-…` in the temporary
//! directory), removed when the session ends; one left by a killed run is swept by the next
//! converge command ([`sweep_stale`]).

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::known_hosts::{self, HostKeyError, Verdict};
use crate::model::grammar::{HostAddress, SshUser};
use crate::model::secret::Secret;

/// Where a host is and who converge logs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Address or DNS name.
    pub address: HostAddress,
    /// SSH port (22 by default).
    pub port: u16,
    /// The deploy user (not root).
    pub user: SshUser,
}

impl Target {
    /// `address:port`, as converge names a host in messages.
    pub fn label(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }
}

/// The key converge logs in with.
#[derive(Debug, Clone)]
pub enum PrivateKey {
    /// The SSH agent (`SSH_AUTH_SOCK`).
    Agent,
    /// A key file.
    File(PathBuf),
    /// A key's text (a sensitive variable).
    Inline(Secret),
}

/// The prefix of the private directory each process's sessions use.
const PRIVATE_PREFIX: &str = "converge-ssh-";

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
    /// The session's private directory (0700): an inline key's file and the connection's
    /// control socket (OpenSSH's ControlMaster: one TCP connection and key exchange for every
    /// command of the session). Removed on drop.
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
        let control = private_dir()?;
        let key = match key {
            PrivateKey::Agent => None,
            PrivateKey::File(path) => Some(path),
            PrivateKey::Inline(text) => Some(write_key(control.path(), &text)?),
        };
        let session = Session {
            target,
            known_hosts: known_hosts_file.to_path_buf(),
            key,
            control,
            accepted: matches!(verdict, Verdict::Accepted { .. }).then_some(verdict),
        };
        let proof = session.run("true", None).await?;
        if !proof.success() {
            return Err(SshError::Login {
                host: session.host(),
                user: session.target.user.to_string(),
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

    /// Runs `script` (POSIX sh) on the host through `sh -s`; `data`, when given, is what the
    /// script's `converge_data` function prints (how secrets and files reach a host: never on
    /// a command line).
    pub async fn run(&self, script: &str, data: Option<&[u8]>) -> Result<Output, SshError> {
        let stdin = wrap_script(script, data);
        self.exec(REMOTE_SH, Some(stdin.as_bytes())).await
    }

    /// Starts `script` (POSIX sh, through `sh -s`) and hands back the running ssh with its
    /// standard output to read as it comes (a file too big to hold in memory); the caller waits
    /// on it for the exit status.
    pub async fn stream(&self, script: &str) -> Result<tokio::process::Child, SshError> {
        let stdin = wrap_script(script, None);
        self.spawn(REMOTE_SH, Some(stdin.as_bytes())).await
    }

    /// Runs one of converge's own constant remote commands with `stdin`.
    async fn exec(&self, command: &'static str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        let child = self.spawn(command, stdin).await?;
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| SshError::Local(format!("ssh: {e}")))?;
        // 255 is ssh's own failure (connection, authentication, host key), not the command's.
        if out.status.code() == Some(255) {
            return Err(SshError::Login {
                host: self.host(),
                user: self.target.user.to_string(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        })
    }

    /// Starts one of converge's own constant remote commands, `stdin` written and closed, its
    /// output and errors piped for the caller.
    async fn spawn(
        &self,
        command: &'static str,
        stdin: Option<&[u8]>,
    ) -> Result<tokio::process::Child, SshError> {
        let mut cmd = self.ssh();
        cmd.arg("--")
            .arg(self.target.address.as_str())
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
        Ok(child)
    }
}

impl Session {
    /// OpenSSH's client under converge's rules, for this host and user.
    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "none", "-T", "-p", &self.target.port.to_string()])
            .arg("-l")
            .arg(self.target.user.as_str())
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                ssh_file(&self.known_hosts)
            ))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "PasswordAuthentication=no"])
            .args(["-o", "KbdInteractiveAuthentication=no"])
            .args(["-o", "PreferredAuthentications=publickey"])
            .args(["-o", "ConnectTimeout=10"])
            .args(["-o", "LogLevel=ERROR"])
            .args(["-o", "ControlMaster=auto"])
            .arg("-o")
            .arg(format!("ControlPath={}", ssh_file(&self.control_path())))
            // The master outlives a converge killed outright by at most this long.
            .args(["-o", "ControlPersist=30s"]);
        if let Some(key) = &self.key {
            cmd.args(["-o", "IdentitiesOnly=yes", "-i"])
                .arg(ssh_file(key));
        }
        cmd
    }

    /// Runs `docker system dial-stdio` on the host: the Docker Engine API over the command's
    /// stdin and stdout, as `docker -H ssh://` reaches a daemon. Returns the running child.
    pub fn dial_docker(&self) -> Result<tokio::process::Child, SshError> {
        let mut cmd = self.ssh();
        cmd.arg("--")
            .arg(self.target.address.as_str())
            .arg(REMOTE_DOCKER)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn()
            .map_err(|e| SshError::Local(format!("cannot run ssh: {e}")))
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
            .arg("--")
            .arg(self.target.address.as_str())
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
                .arg(format!("ControlPath={}", ssh_file(&self.control_path())))
                .args(["-O", "exit", "-p", &self.target.port.to_string(), "-l"])
                .arg(self.target.user.as_str())
                .arg("--")
                .arg(self.target.address.as_str())
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

/// The remote command every script runs through: `sh` reading its script from stdin.
const REMOTE_SH: &str = "sh -s";
/// The remote command that carries the Docker Engine API.
const REMOTE_DOCKER: &str = "docker system dial-stdio";

/// A path as an ssh option value: `%` doubled (ssh expands `%` tokens in file options).
fn ssh_file(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

/// What `sh -s` reads for `script`: a brace group parsed whole before it runs, its stdin on
/// /dev/null (so no command in it reads the rest of the script), with `converge_data` printing
/// `data` (carried base64 in a here-document whose delimiter cannot occur in base64).
pub fn wrap_script(script: &str, data: Option<&[u8]>) -> String {
    use base64::Engine;
    let mut out = String::from("{\n");
    if let Some(data) = data {
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        out.push_str("converge_data() {\nbase64 -d <<'CONVERGE_DATA_END'\n");
        for chunk in encoded.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("CONVERGE_DATA_END\n}\n");
    }
    out.push_str(script);
    if !script.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("} </dev/null\n");
    out
}

/// A new private directory (0700) for this process's session: `converge-ssh-PID-…`.
fn private_dir() -> Result<tempfile::TempDir, SshError> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(&format!("{PRIVATE_PREFIX}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| SshError::Local(format!("cannot create the ssh session directory: {e}")))
}

/// Removes the private directories (an inline key, a control socket) that runs no longer alive
/// left behind (killed with `kill -9`, or a second Ctrl-C); returns how many. Only this user's.
pub fn sweep_stale() -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut swept = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(PRIVATE_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let mine = entry.metadata().is_ok_and(|m| m.uid() == me && m.is_dir());
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if mine && !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            swept += 1;
        }
    }
    swept
}

/// A private key's text as a 0600 file in the session's private directory.
fn write_key(dir: &Path, text: &Secret) -> Result<PathBuf, SshError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("key");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| SshError::Local(format!("cannot write the private key: {e}")))?;
    let mut text = text.expose().trim_end().to_string();
    text.push('\n');
    file.write_all(text.as_bytes())
        .map_err(|e| SshError::Local(format!("cannot write the private key: {e}")))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wrapped script runs in sh with its data exact (every byte), and a command in it that
    /// reads stdin reads nothing of the script.
    #[test]
    fn a_wrapped_script_gets_its_data_exactly_and_its_stdin_is_empty() {
        let data: Vec<u8> = (0u8..=255)
            .chain(b"CONVERGE_DATA_END\n'\"$x".iter().copied())
            .collect();
        let script = "converge_data > \"$OUT\"\nprintf 'stdin:%s' \"$(cat)\"\n";
        let dir = tempfile::tempdir().unwrap();
        let out_file = dir.path().join("out");
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .env("OUT", &out_file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                format!("{}echo after-the-group\n", wrap_script(script, Some(&data))).as_bytes(),
            )
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(std::fs::read(&out_file).unwrap(), data);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "stdin:after-the-group\n"
        );
    }

    #[test]
    fn percent_signs_in_paths_are_not_ssh_tokens() {
        assert_eq!(ssh_file(Path::new("/tmp/a%h/key")), "/tmp/a%%h/key");
    }
}
