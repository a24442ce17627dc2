//! Reaching a host (issue 15, first part) against a real OpenSSH server on loopback, started by
//! each test with a host key it generates: an unknown host key is refused with its SHA256
//! fingerprint; `accept_new` records it, after which commands run; a hashed known_hosts entry
//! for `[host]:port` is understood; a changed key is refused with both fingerprints even when new
//! keys are accepted; a wrong key does not log in; stdin reaches the command byte for byte; an
//! inline private key's 0600 file is gone when the session is. First contact waits for SSH, then
//! names every missing piece (Docker, its group, nginx, the sudo rule, a failed cloud-init) with
//! the command that fixes it; the host's tools are scripts on a PATH the test's sshd sets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use converge::hosts::app::nginx;
use converge::hosts::app::spec::Nginx;
use converge::hosts::known_hosts::{HostKeyError, Verdict};
use converge::hosts::preflight::{self, PreflightError};
use converge::hosts::ssh::{PrivateKey, Session, SshError, Target};
use converge::model::grammar::{HostAddress, HostPath, ServerName, SshUser};
use converge::model::secret::Secret;

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen {}", path.display());
}

fn fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public_key)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// An sshd on 127.0.0.1:PORT that lets the current user in with `client`'s key.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Sshd {
    fn start() -> Sshd {
        Sshd::start_with_path(None)
    }

    /// With `path`, the sessions' PATH is `path` then the system's (the host's own tools).
    fn start_with_path(path: Option<&Path>) -> Sshd {
        Sshd::start_with_config(
            path.map(|p| format!("SetEnv PATH={}:/usr/bin:/bin\n", p.display()))
                .unwrap_or_default(),
        )
    }

    /// With `extra` lines in sshd's configuration.
    fn start_with_config(extra: String) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("path"), extra).unwrap();
        keygen(&dir.path().join("client"));
        std::fs::copy(
            dir.path().join("client.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Sshd::run(dir.path(), port, "host_key");
        Sshd { dir, port, child }
    }

    fn run(dir: &Path, port: u16, key: &str) -> Child {
        let host_key = dir.join(key);
        if !host_key.exists() {
            keygen(&host_key);
        }
        let config = dir.join("sshd_config");
        let extra = std::fs::read_to_string(dir.join("path")).unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n{extra}",
                host_key.display(),
                dir.join("sshd.pid").display(),
                dir.join("authorized_keys").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start /usr/sbin/sshd (scripts/hosts.sh installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    }

    /// Replaces the host key (the host was rebuilt, or someone is in the middle).
    fn rekey(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Sshd::run(self.dir.path(), self.port, "other_host_key");
    }

    fn target(&self) -> Target {
        Target {
            address: HostAddress::try_from("127.0.0.1").unwrap(),
            port: self.port,
            user: SshUser::try_from(whoami::username().unwrap().as_str()).unwrap(),
        }
    }

    fn key(&self) -> PrivateKey {
        PrivateKey::Inline(Secret::new(
            std::fs::read_to_string(self.dir.path().join("client")).unwrap(),
        ))
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_unknown_host_is_refused_with_its_fingerprint_until_accepted() {
    let sshd = Sshd::start();
    let expected = fingerprint(&sshd.dir.path().join("host_key.pub"));
    let refused = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), false)
        .await
        .unwrap_err();
    match &refused {
        SshError::HostKey(HostKeyError::Unknown { offered, host, .. }) => {
            assert_eq!(host, &format!("[127.0.0.1]:{}", sshd.port));
            assert!(
                offered.iter().any(|f| f.ends_with(&expected)),
                "{offered:?} vs {expected}"
            );
        }
        other => panic!("expected an unknown host key, got {other}"),
    }
    assert!(refused.to_string().contains(&expected), "{refused}");
    assert!(!sshd.known_hosts().exists(), "nothing recorded");

    let session = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
        .await
        .unwrap();
    match &session.accepted {
        Some(Verdict::Accepted { fingerprints, .. }) => {
            assert!(fingerprints.iter().any(|f| f.ends_with(&expected)))
        }
        other => panic!("expected the key to be accepted, got {other:?}"),
    }
    let recorded = std::fs::read_to_string(sshd.known_hosts()).unwrap();
    assert!(
        recorded.starts_with(&format!("[127.0.0.1]:{} ", sshd.port)),
        "{recorded}"
    );
    let out = session
        .run("echo hello from $(hostname)", None)
        .await
        .unwrap();
    assert!(
        out.success() && out.stdout.starts_with("hello from "),
        "{out:?}"
    );

    // Known now: no acceptance needed, nothing more recorded.
    let again = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), false)
        .await
        .unwrap();
    assert_eq!(again.accepted, None);
    assert_eq!(
        std::fs::read_to_string(sshd.known_hosts()).unwrap(),
        recorded
    );
}

#[tokio::test]
async fn a_hashed_known_hosts_entry_is_understood() {
    let sshd = Sshd::start();
    drop(
        Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
            .await
            .unwrap(),
    );
    let hashed = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(sshd.known_hosts())
        .output()
        .unwrap();
    assert!(hashed.status.success());
    let text = std::fs::read_to_string(sshd.known_hosts()).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let session = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), false)
        .await
        .unwrap();
    assert_eq!(session.accepted, None);
    assert!(session.run("true", None).await.unwrap().success());
}

#[tokio::test]
async fn a_changed_host_key_is_refused_with_both_fingerprints_even_when_accepting_new_keys() {
    let mut sshd = Sshd::start();
    drop(
        Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
            .await
            .unwrap(),
    );
    let old = fingerprint(&sshd.dir.path().join("host_key.pub"));
    sshd.rekey();
    let new = fingerprint(&sshd.dir.path().join("other_host_key.pub"));
    let refused = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(
        matches!(refused, SshError::HostKey(HostKeyError::Changed { .. }))
            && text.contains(&old)
            && text.contains(&new)
            && text.contains("CHANGED"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_key_does_not_log_in_and_stdin_reaches_the_command_exactly() {
    let sshd = Sshd::start();
    let stranger = sshd.dir.path().join("stranger");
    keygen(&stranger);
    let denied = Session::open(
        sshd.target(),
        &sshd.known_hosts(),
        PrivateKey::File(stranger),
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(denied, SshError::Login { .. }) && denied.to_string().contains("could not log in"),
        "{denied}"
    );

    let session = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), false)
        .await
        .unwrap();
    let key_file = session.key_file().unwrap().to_path_buf();
    let private = key_file.parent().unwrap().to_path_buf();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The key and the control socket live in a 0700 directory named for this process.
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let name = private.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with(&format!("converge-ssh-{}-", std::process::id())),
            "{name}"
        );
    }
    let value = b"pa$$ 'w\"rd' with spaces\nand a second line\0 and a NUL";
    let out = session.run("converge_data", Some(value)).await.unwrap();
    assert_eq!(out.stdout.as_bytes(), value);
    // A command that reads stdin reads nothing of the script it is part of.
    let out = session.run("cat; echo after", None).await.unwrap();
    assert_eq!(out.stdout, "after\n");
    let failed = session.run("exit 7", None).await.unwrap();
    assert_eq!(failed.code, Some(7));
    drop(session);
    assert!(
        !key_file.exists() && !private.exists(),
        "the key file and its directory are removed with the session"
    );
}

/// A host's tools as scripts: `docker` (answering `version` with `server`, or failing as a user
/// outside the docker group does), `nginx`, `sudo` (allowing `allowed` commands) and `cloud-init`
/// (ending with `status`), each left out when `None`.
fn fake_tools(
    dir: &Path,
    docker: Option<&str>,
    nginx: bool,
    sudo_allows: Option<&[&str]>,
    cloud_init: Option<&str>,
) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    match docker {
        Some("noaccess") => write(
            "docker",
            "echo 'permission denied while trying to connect to the Docker daemon socket' >&2; exit 1\n".into(),
        ),
        Some(version) => write("docker", format!("echo {version}\n")),
        None => {}
    }
    if nginx {
        write("nginx", "echo 'nginx version: nginx/1.22.1' >&2\n".into());
    }
    if let Some(allowed) = sudo_allows {
        let cases: String = allowed
            .iter()
            .map(|c| format!("  \"-n -l {c}\") exit 0 ;;\n"))
            .collect();
        write(
            "sudo",
            format!("case \"$*\" in\n{cases}  *) exit 1 ;;\nesac\n"),
        );
    }
    if let Some(status) = cloud_init {
        write(
            "cloud-init",
            format!("[ \"$2\" = --wait ] && sleep 1\necho 'status: {status}'\n"),
        );
    }
}

#[tokio::test]
async fn first_contact_waits_for_ssh_and_cloud_init_then_finds_a_ready_host() {
    let tools = tempfile::tempdir().unwrap();
    let include = tempfile::tempdir().unwrap();
    let n = nginx(include.path());
    let allowed = nginx::root_commands(&n);
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    fake_tools(
        tools.path(),
        Some("27.5.1"),
        true,
        Some(&allowed),
        Some("done"),
    );
    let sshd = Sshd::start_with_path(Some(tools.path()));
    preflight::wait_for_ssh(&sshd.target(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let session = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let facts = preflight::check(&session, &deploy(), &n).await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for cloud-init"
    );
    assert_eq!(facts.docker, "27.5.1");
    assert_eq!(facts.nginx, "nginx version: nginx/1.22.1");
    assert_eq!(facts.cloud_init.as_deref(), Some("done"));

    // A host that never answers: the wait ends with the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nobody = converge::hosts::ssh::Target {
        address: HostAddress::try_from("127.0.0.1").unwrap(),
        port,
        user: deploy(),
    };
    let waited = preflight::wait_for_ssh(&nobody, std::time::Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(waited, PreflightError::NoSsh { .. }), "{waited}");
}

#[tokio::test]
async fn first_contact_names_every_missing_piece_with_its_fix() {
    let tools = tempfile::tempdir().unwrap();
    // Docker installed but not reachable, no nginx on the PATH, a sudo that allows nothing,
    // and a cloud-init that failed.
    fake_tools(
        tools.path(),
        Some("noaccess"),
        false,
        Some(&[]),
        Some("error"),
    );
    let sshd = Sshd::start_with_path(Some(tools.path()));
    let session = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
        .await
        .unwrap();
    // nginx run with a configuration of its own (`-c`), and an include directory that is not
    // there.
    let mut n = nginx(Path::new("/nonexistent/converge"));
    n.config = Some(HostPath::try_from("/etc/nginx/app.conf").unwrap());
    let err = preflight::check(&session, &deploy(), &n).await.unwrap_err();
    let text = err.to_string();
    let PreflightError::Missing { missing, .. } = &err else {
        panic!("{text}");
    };
    assert!(text.contains("cloud-init ended `error`"), "{text}");
    assert!(text.contains("sudo usermod -aG docker deploy"), "{text}");
    assert!(text.contains(&nginx::sudoers_line("deploy", &n)), "{text}");
    assert!(
        text.contains("`/usr/sbin/nginx -c /etc/nginx/app.conf -s reload`"),
        "{text}"
    );
    assert!(
        text.contains("nginx include directory /nonexistent/converge: create it"),
        "{text}"
    );
    // nginx is named only where the machine running the test has none in /usr/sbin either.
    let expected = if std::path::Path::new("/usr/sbin/nginx").exists() {
        4
    } else {
        5
    };
    assert_eq!(missing.len(), expected, "{missing:?}");
}

fn deploy() -> SshUser {
    SshUser::try_from("deploy").unwrap()
}

/// nginx settings with converge's include directory at `include`.
fn nginx(include: &Path) -> Nginx {
    Nginx {
        server_name: ServerName::try_from("app.test").unwrap(),
        listen: 80,
        server: true,
        tls: None,
        config: None,
        include_dir: HostPath::try_from(include.to_str().unwrap()).unwrap(),
        pid_file: HostPath::try_from("/run/nginx.pid").unwrap(),
        sticky: false,
        routes: Vec::new(),
    }
}

/// Whatever the login shell, converge sends only its own constant commands (`sh -s`, `docker
/// system dial-stdio`): scripts and their data travel on stdin. A ForceCommand gate here runs
/// only those two, and logs what was asked.
#[tokio::test]
async fn every_remote_command_is_one_of_converge_s_constants() {
    let gate_dir = tempfile::tempdir().unwrap();
    let log = gate_dir.path().join("asked");
    let gate = gate_dir.path().join("gate");
    std::fs::write(
        &gate,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$SSH_ORIGINAL_COMMAND\" >> {log}\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  'sh -s') exec sh -s ;;\n  'docker system dial-stdio') exec docker system dial-stdio ;;\n  *) echo \"refused: $SSH_ORIGINAL_COMMAND\" >&2; exit 99 ;;\nesac\n",
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sshd = Sshd::start_with_config(format!("ForceCommand {}\n", gate.display()));
    let session = Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
        .await
        .unwrap();
    let out = session
        .run(
            "printf '%s|' \"$(converge_data)\"",
            Some(b"it's $HOME; `x`"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "it's $HOME; `x`|");
    let ping = converge::hosts::engine::call(
        &session,
        "GET",
        "/_ping",
        None,
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!((ping.status, ping.body.as_slice()), (200, b"OK".as_slice()));
    let asked = std::fs::read_to_string(&log).unwrap();
    let mut kinds: Vec<&str> = asked.lines().collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, vec!["docker system dial-stdio", "sh -s"], "{asked}");
}

/// A recorded host line is converge's own: `[host]:port type base64`, three fields, whatever
/// ssh-keyscan printed as its host field.
#[tokio::test]
async fn recorded_host_keys_name_the_host_converge_checked() {
    let sshd = Sshd::start();
    drop(
        Session::open(sshd.target(), &sshd.known_hosts(), sshd.key(), true)
            .await
            .unwrap(),
    );
    let recorded = std::fs::read_to_string(sshd.known_hosts()).unwrap();
    for line in recorded.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[0], format!("[127.0.0.1]:{}", sshd.port));
    }
}
