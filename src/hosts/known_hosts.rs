//! Host keys, checked before converge runs anything on a host: the keys a host offers
//! (`ssh-keyscan`) against the ones recorded for it in a `known_hosts` file in OpenSSH's format
//! (`ssh-keygen -F`, which understands hashed entries and `[host]:port`). An unknown host is
//! refused with its SHA256 fingerprints unless new keys are accepted (OpenSSH's `accept-new`,
//! recorded in the file); a changed key is always refused, with both fingerprints. OpenSSH then
//! checks the key again itself when it connects (`StrictHostKeyChecking=yes`), so a key swapped
//! between the scan and the connection is refused too.

use std::path::Path;

use tokio::process::Command;

use crate::model::grammar::HostAddress;

/// Why a host's key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// The known_hosts file has no key for the host.
    #[error(
        "the host key of {host} is not known (offered: {}); check it out of band, then add it to {file} or pass --accept-new-host-keys",
        offered.join(", ")
    )]
    Unknown {
        /// `host` or `[host]:port`.
        host: String,
        /// The known_hosts file.
        file: String,
        /// SHA256 fingerprints of the keys it offered.
        offered: Vec<String>,
    },
    /// The host offers none of the keys recorded for it.
    #[error(
        "the host key of {host} has CHANGED: {file} has {}, the host offers {}; this may be an attack, and is refused even with --accept-new-host-keys: if the host was rebuilt, remove its line from {file}",
        known.join(", "),
        offered.join(", ")
    )]
    Changed {
        /// `host` or `[host]:port`.
        host: String,
        /// The known_hosts file.
        file: String,
        /// SHA256 fingerprints recorded for it.
        known: Vec<String>,
        /// SHA256 fingerprints of the keys it offers now.
        offered: Vec<String>,
    },
    /// The host could not be scanned, or a tool failed.
    #[error("{0}")]
    Unreachable(String),
}

/// The name a host has in known_hosts: `host` on port 22, `[host]:port` otherwise.
pub fn host_pattern(address: &HostAddress, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// A key as `type base64`, the part two known_hosts or keyscan lines share for the same key.
fn key_of(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let _hosts = fields.next()?;
    let kind = fields.next()?;
    let blob = fields.next()?;
    Some(format!("{kind} {blob}"))
}

async fn output(cmd: &mut Command, what: &str) -> Result<std::process::Output, HostKeyError> {
    cmd.output()
        .await
        .map_err(|e| HostKeyError::Unreachable(format!("{what}: {e}")))
}

/// The keys `known_hosts` records for `pattern` (hashed entries included).
pub async fn known(file: &Path, pattern: &str) -> Result<Vec<String>, HostKeyError> {
    if !file.exists() {
        return Ok(Vec::new());
    }
    let out = output(
        Command::new("ssh-keygen")
            .arg("-F")
            .arg(pattern)
            .arg("-f")
            .arg(file),
        "ssh-keygen -F",
    )
    .await?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(key_of)
        .collect())
}

/// The keys the host at `address:port` offers (`type base64`). The host field of what
/// ssh-keyscan prints is never kept: converge names the host itself.
pub async fn offered(address: &HostAddress, port: u16) -> Result<Vec<String>, HostKeyError> {
    let out = output(
        Command::new("ssh-keyscan")
            .args(["-T", "5", "-p", &port.to_string(), "--"])
            .arg(address.as_str()),
        "ssh-keyscan",
    )
    .await?;
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(key_of)
        .filter(|k| valid_key(k))
        .collect();
    lines.dedup();
    if lines.is_empty() {
        return Err(HostKeyError::Unreachable(format!(
            "{}: no SSH host key could be read (is sshd listening?): {}",
            host_pattern(address, port),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(lines)
}

/// SHA256 fingerprints of keys (`type base64` or whole lines), as `ssh-keygen -l` prints them.
pub async fn fingerprints(keys: &[String]) -> Result<Vec<String>, HostKeyError> {
    let mut out = Vec::new();
    for key in keys {
        let key = key_of(key).unwrap_or_else(|| key.clone());
        let mut child = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| HostKeyError::Unreachable(format!("ssh-keygen -l: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(format!("host {key}\n").as_bytes()).await;
        }
        let done = child
            .wait_with_output()
            .await
            .map_err(|e| HostKeyError::Unreachable(format!("ssh-keygen -l: {e}")))?;
        let text = String::from_utf8_lossy(&done.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let kind = fields
            .last()
            .map(|k| k.trim_matches(['(', ')']))
            .unwrap_or("");
        if let Some(fp) = fields.get(1) {
            out.push(format!("{kind} {fp}"));
        }
    }
    Ok(out)
}

/// What the check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A recorded key matches.
    Known,
    /// The host was unknown and its keys were recorded (`accept-new`): audit this.
    Accepted {
        /// `host` or `[host]:port`.
        host: String,
        /// SHA256 fingerprints recorded.
        fingerprints: Vec<String>,
    },
}

/// Checks the host at `address:port` against `file`; with `accept_new`, records the keys of a
/// host that has none there yet.
pub async fn check(
    file: &Path,
    address: &HostAddress,
    port: u16,
    accept_new: bool,
) -> Result<Verdict, HostKeyError> {
    let host = host_pattern(address, port);
    let offered_keys = offered(address, port).await?;
    let known_keys = known(file, &host).await?;
    if known_keys.is_empty() {
        let offered = fingerprints(&offered_keys).await?;
        if !accept_new {
            return Err(HostKeyError::Unknown {
                host,
                file: file.display().to_string(),
                offered,
            });
        }
        record(file, &host, &offered_keys).await?;
        return Ok(Verdict::Accepted {
            host,
            fingerprints: offered,
        });
    }
    if offered_keys.iter().any(|k| known_keys.contains(k)) {
        return Ok(Verdict::Known);
    }
    Err(HostKeyError::Changed {
        host,
        file: file.display().to_string(),
        known: fingerprints(&known_keys).await?,
        offered: fingerprints(&offered_keys).await?,
    })
}

/// Whether `key` (`type base64`) is one known_hosts line's key part: a key type of letters,
/// digits, `-`, `.` and `@`, and base64 (a host answers what it likes; nothing else is written).
fn valid_key(key: &str) -> bool {
    let mut parts = key.split(' ');
    let (Some(kind), Some(blob), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '@'))
        && !blob.is_empty()
        && blob
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
}

/// Appends `host`'s keys to the known_hosts file (made 0600 if new), the host field written
/// by converge from the checked address and port.
async fn record(file: &Path, host: &str, keys: &[String]) -> Result<(), HostKeyError> {
    use std::io::Write;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| HostKeyError::Unreachable(format!("{}: {e}", dir.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(file)
        .map_err(|e| HostKeyError::Unreachable(format!("{}: {e}", file.display())))?;
    for key in keys.iter().filter(|k| valid_key(k)) {
        writeln!(f, "{host} {key}")
            .map_err(|e| HostKeyError::Unreachable(format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_by_type_and_blob_whatever_the_host_field_says() {
        assert_eq!(
            key_of("|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAAC3Nz"),
            key_of("[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz")
        );
        assert_eq!(key_of("# Host found: line 1"), None);
        assert_eq!(key_of("@cert-authority *.example ssh-rsa AAAA"), None);
        let a = |s: &str| HostAddress::try_from(s).unwrap();
        assert_eq!(host_pattern(&a("10.0.0.4"), 22), "10.0.0.4");
        assert_eq!(host_pattern(&a("127.0.0.1"), 2222), "[127.0.0.1]:2222");
        assert!(valid_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI+/="));
        assert!(!valid_key("ssh-ed25519 AAAA\n* ssh-rsa BBBB"));
        assert!(!valid_key("ssh-ed25519 AAAA extra"));
    }
}
