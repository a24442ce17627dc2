//! A host on loopback for the host-app tests: OpenSSH's server on a free port with a generated
//! host key, letting the non-root `converge-deploy` user in (scripts/hosts.sh creates it, in the
//! docker group), an nginx of its own with a default site, and the sudoers line the README gives
//! for that nginx. Docker is the machine's engine, shared: every test uses app names of its own.
//! The test app image is built FROM scratch with Debian's busybox-static.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The deploy user the tests log in as.
pub const DEPLOY_USER: &str = "converge-deploy";

fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct loopback ports no other call in this process has handed out. The listeners
/// are held until all `N` are chosen (the kernel may hand a just-closed port out again: CI
/// once gave sshd and nginx the same one, and nginx's reload could not bind it).
fn free_ports<const N: usize>() -> [u16; N] {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut held = Vec::new();
    let mut ports = [0; N];
    for port in ports.iter_mut() {
        loop {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = listener.local_addr().unwrap().port();
            held.push(listener);
            if !given.contains(&p) {
                given.push(p);
                *port = p;
                break;
            }
        }
    }
    ports
}

/// Runs `cmd`; its stdout (a failure panics with what it printed).
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the test app as `converge-test/REPO:VERSION` (a repository per test: converge
/// prunes an app's repository down to `keep_images`).
pub fn app_image(repo: &str, version: &str) -> String {
    let tag = format!("converge-test/{repo}:{version}");
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostapp");
    for f in ["Dockerfile", "app", "alembic", "elspeth"] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (Debian's busybox-static; scripts/hosts.sh installs it)");
    run(Command::new("docker")
        .args(["build", "-q", "--build-arg"])
        .arg(format!("VERSION={version}"))
        .args(["-t", &tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0"));
    tag
}

/// Where converge keeps an app's backups on the test hosts (the deploy user's home, which
/// every test host shares: app names are unique per test).
pub fn backups_dir(app: &str) -> PathBuf {
    PathBuf::from(format!("/home/{DEPLOY_USER}/.converge/backups/{app}"))
}

/// PostgreSQL 15 from Debian's packages (tests/fixtures/postgres) on the Debian base
/// scripts/debian-base.sh builds, as `converge-test/postgres:15`; Docker's layer cache makes
/// every build after the first immediate.
pub fn postgres_image() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(&mut Command::new(repo.join("scripts/debian-base.sh")));
    let tag = "converge-test/postgres:15".to_string();
    run(Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(repo.join("tests/fixtures/postgres"))
        .env("DOCKER_BUILDKIT", "0"));
    tag
}

/// Redis from Debian's packages on the Debian base, tagged `converge-test/redis:7`.
pub fn redis_image() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(&mut Command::new(repo.join("scripts/debian-base.sh")));
    let tag = "converge-test/redis:7".to_string();
    run(Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(repo.join("tests/fixtures/redis"))
        .env("DOCKER_BUILDKIT", "0"));
    tag
}

/// One host: sshd + nginx on loopback, removed on drop (with the app's containers).
pub struct TestHost {
    /// Everything of this host: keys, sshd and nginx configuration, the include directory.
    pub dir: tempfile::TempDir,
    /// SSH port.
    pub ssh_port: u16,
    /// The port converge's server block listens on.
    pub http_port: u16,
    /// The port of the default site (Debian's, standing in).
    pub default_port: u16,
    sshd: Child,
    nginx_started: bool,
    sudoers: PathBuf,
    apps: std::sync::Mutex<Vec<String>>,
}

impl TestHost {
    /// Starts one. Needs root (sshd, nginx, sudoers.d), like the machine's own services.
    pub fn start() -> TestHost {
        TestHost::start_with_env(&[])
    }

    /// Starts one whose SSH sessions get `env` (sshd's `SetEnv`), e.g. where the host finds
    /// its instance metadata service.
    pub fn start_with_env(env: &[(&str, &str)]) -> TestHost {
        assert!(
            whoami::username().unwrap() == "root",
            "the host tests start sshd and nginx and write a sudoers file: run them as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let [ssh_port, http_port, default_port] = free_ports();
        lay_out(d, ssh_port, default_port, env);
        let mut host = TestHost {
            sshd: Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stderr(Stdio::null())
                .spawn()
                .expect("start /usr/sbin/sshd (scripts/hosts.sh installs it)"),
            sudoers: PathBuf::from(format!("/etc/sudoers.d/converge-test-{ssh_port}")),
            dir,
            ssh_port,
            http_port,
            default_port,
            nginx_started: false,
            apps: Default::default(),
        };
        run(Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(host.nginx_conf()));
        host.nginx_started = true;
        // The README's sudoers line, for this nginx.
        std::fs::write(
            &host.sudoers,
            format!(
                "{DEPLOY_USER} ALL=(root) NOPASSWD: /usr/sbin/nginx -c {c} -t, /usr/sbin/nginx -c {c} -s reload\n",
                c = host.nginx_conf().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &host.sudoers,
            std::os::unix::fs::PermissionsExt::from_mode(0o440),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", ssh_port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        host
    }

    /// nginx's main file.
    pub fn nginx_conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The deploy key's text.
    pub fn key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("client")).unwrap()
    }

    /// A directory for an app's volumes.
    pub fn data(&self, app: &str) -> PathBuf {
        let p = self.dir.path().join("data").join(app);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Notes an app whose containers, networks and backups are removed on drop; what an
    /// earlier (killed) run of the test left is removed now.
    pub fn owns(&self, app: &str) {
        // A run killed earlier may have left the app behind.
        remove_app(app);
        self.apps.lock().unwrap().push(app.to_string());
    }

    /// The `rollout.proxy` block for this host's nginx.
    pub fn proxy_yaml(&self, server_name: &str) -> String {
        let d = self.dir.path().display();
        format!(
            "{{ nginx: {{ server_name: {server_name}, listen: {}, config: {d}/nginx.conf, include_dir: {d}/converge, pid_file: {d}/nginx.pid }} }}",
            self.http_port
        )
    }

    /// GET `path` through nginx with `Host: server_name`: (status, body).
    pub fn get(&self, server_name: &str, path: &str) -> (u16, String) {
        http_get(self.http_port, server_name, path)
    }

    /// `docker inspect -f FORMAT NAME` ("" when it does not exist).
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = Command::new("docker")
            .args(["inspect", "-f", format, name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker exec NAME ARGS…`: what it printed (a failure panics with it).
    pub fn docker_exec(&self, name: &str, args: &[&str]) -> String {
        run(Command::new("docker").args(["exec", name]).args(args))
    }

    /// Names of the containers of `app`.
    pub fn containers(&self, app: &str) -> Vec<String> {
        let out = run(Command::new("docker").args([
            "ps",
            "-a",
            "--filter",
            &format!("label=converge.app={app}"),
            "--format",
            "{{.Names}} {{.State}}",
        ]));
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        if self.nginx_started {
            let _ = Command::new("/usr/sbin/nginx")
                .arg("-c")
                .arg(self.nginx_conf())
                .args(["-s", "stop"])
                .output();
        }
        let _ = std::fs::remove_file(&self.sudoers);
        for app in self.apps.lock().unwrap().iter() {
            remove_app(app);
        }
    }
}

/// Removes what a test app left on this machine's Docker and disk: its containers, both of its
/// networks (Docker has few address pools: leaked networks would exhaust them), its backups.
fn remove_app(app: &str) {
    let ids = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=converge.app={app}"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output();
    }
    let _ = Command::new("docker")
        .args(["network", "rm", &format!("converge-{app}")])
        .args([&format!("converge-{app}-live")])
        .output();
    let _ = std::fs::remove_dir_all(backups_dir(app));
    let _ = std::fs::remove_dir_all(format!("/etc/converge/{app}"));
}

/// Writes a host's files into `d`: the client and host keys, sshd's configuration (listening
/// on `ssh_port`, sessions getting `env`), converge's include directory owned by the deploy
/// user, and nginx's main file with a default site on `default_port`.
pub(crate) fn lay_out(d: &Path, ssh_port: u16, default_port: u16, env: &[(&str, &str)]) {
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let keygen = |path: &Path| {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path));
    };
    keygen(&d.join("client"));
    keygen(&d.join("host_key"));
    std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
    std::fs::set_permissions(
        d.join("authorized_keys"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    // One SetEnv line: sshd takes only the first of a keyword's lines.
    let set_env = if env.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("SetEnv {}\n", pairs.join(" "))
    };
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\nAllowUsers {DEPLOY_USER}\n{set_env}",
            d.join("host_key").display(),
            d.join("sshd.pid").display(),
            d.join("authorized_keys").display()
        ),
    )
    .unwrap();
    // nginx: converge's include directory belongs to the deploy user (README), beside a
    // default site that must keep working.
    let include = d.join("converge");
    std::fs::create_dir_all(&include).unwrap();
    std::fs::create_dir_all(d.join("temp")).unwrap();
    run(Command::new("chown").arg(DEPLOY_USER).arg(&include));
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nworker_processes 1;\nevents {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/temp/body;\n  proxy_temp_path {d}/temp/proxy;\n  fastcgi_temp_path {d}/temp/fastcgi;\n  uwsgi_temp_path {d}/temp/uwsgi;\n  scgi_temp_path {d}/temp/scgi;\n  include {d}/converge/*.conf;\n  server {{ listen 127.0.0.1:{default_port} default_server; location / {{ return 200 \"default site\\n\"; }} }}\n}}\n",
            d = d.display()
        ),
    )
    .unwrap();
}

/// One HTTP/1.0 GET to 127.0.0.1:port: (status, body); (0, error) when it failed.
pub fn http_get(port: u16, host: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_get_with_cookie(port, host, path, None);
    (status, body)
}

/// GET with an optional `Cookie` header: the status, the response's header lines and the body.
pub fn http_get_with_cookie(
    port: u16,
    host: &str,
    path: &str,
    cookie: Option<&str>,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new(), "connect failed".into());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{cookie}\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    (status, head.to_string(), body.to_string())
}

/// A client that sends GET / over one keep-alive connection after another until stopped, as a
/// browser would: a request that got no byte back on a reused connection (nginx closed it at a
/// reload) is sent again on a new one, as HTTP clients do for idempotent requests. Anything
/// else that is not a 200 is a failed request.
pub struct KeepAliveClient {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<ClientReport>>,
}

/// What the client saw.
#[derive(Debug, Default)]
pub struct ClientReport {
    /// Requests answered 200.
    pub ok: usize,
    /// Requests that failed (status, or error), with what was seen.
    pub failed: Vec<String>,
    /// Bodies in the order they changed (`["v1", "v2"]`: the version changed once).
    pub versions: Vec<String>,
    /// Keep-alive connections nginx closed between requests (retried on a new connection).
    pub reconnects: usize,
}

impl KeepAliveClient {
    /// Starts it against nginx on `port` with `Host: host`.
    pub fn start(port: u16, host: &str) -> KeepAliveClient {
        KeepAliveClient::start_at(port, host, "/")
    }

    /// Starts it against nginx on `port` with `Host: host`, asking for `path`.
    pub fn start_at(port: u16, host: &str, path: &str) -> KeepAliveClient {
        let path = path.to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let host = host.to_string();
        let handle = std::thread::spawn(move || {
            let mut report = ClientReport::default();
            let mut conn: Option<std::io::BufReader<std::net::TcpStream>> = None;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let reused = conn.is_some();
                if conn.is_none() {
                    match std::net::TcpStream::connect(("127.0.0.1", port)) {
                        Ok(s) => {
                            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                            conn = Some(std::io::BufReader::new(s));
                        }
                        Err(e) => {
                            report.failed.push(format!("connect: {e}"));
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    }
                }
                match keep_alive_get(conn.as_mut().unwrap(), &host, &path) {
                    Ok((200, body, keep)) => {
                        report.ok += 1;
                        let body = body.trim().to_string();
                        if report.versions.last() != Some(&body) {
                            report.versions.push(body);
                        }
                        if !keep {
                            conn = None;
                        }
                    }
                    Ok((status, body, _)) => {
                        report.failed.push(format!("{status}: {}", body.trim()));
                        conn = None;
                    }
                    Err(0) if reused => {
                        report.reconnects += 1;
                        conn = None;
                    }
                    Err(_) => {
                        report.failed.push("no answer".into());
                        conn = None;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            report
        });
        KeepAliveClient {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops it and returns what it saw.
    pub fn finish(mut self) -> ClientReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// One HTTP/1.1 GET of `path` on `conn`: (status, body, keep-alive), or Err(bytes read) when the
/// connection ended first.
fn keep_alive_get(
    conn: &mut std::io::BufReader<std::net::TcpStream>,
    host: &str,
    path: &str,
) -> Result<(u16, String, bool), usize> {
    use std::io::{BufRead, Read, Write};
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    if conn.get_mut().write_all(req.as_bytes()).is_err() {
        return Err(0);
    }
    let mut status_line = String::new();
    match conn.read_line(&mut status_line) {
        Ok(0) | Err(_) => return Err(0),
        Ok(_) => {}
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (mut length, mut keep) = (0usize, true);
    loop {
        let mut line = String::new();
        match conn.read_line(&mut line) {
            Ok(0) | Err(_) => return Err(status_line.len()),
            Ok(_) => {}
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower == "connection: close" {
            keep = false;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).map_err(|_| status_line.len())?;
    Ok((status, String::from_utf8_lossy(&body).into_owned(), keep))
}

/// Debian's docker-registry on a loopback port with basic auth (htpasswd, bcrypt), storage
/// in a directory of its own; stopped on drop.
pub struct TestRegistry {
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub server: String,
    child: Child,
    /// Its user.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl TestRegistry {
    /// Starts one that lets `user` in with `password`.
    pub fn start(user: &str, password: &str) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let htpasswd = run(Command::new("htpasswd").args(["-Bbn", user, password]));
        std::fs::write(d.join("htpasswd"), htpasswd).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {d}/data }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\nauth: {{ htpasswd: {{ realm: converge-test, path: {d}/htpasswd }} }}\n",
                d = d.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/docker-registry (scripts/hosts.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry {
            dir,
            server: format!("127.0.0.1:{port}"),
            child,
            user: user.into(),
            password: password.into(),
        }
    }

    /// Its configuration file (a mirror serves the same storage with it).
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// Pushes the local image `local` as `SERVER/REPO:TAG` (a throw-away docker login) and
    /// removes the pushed tag locally, so only a pull can bring it back.
    pub fn push(&self, local: &str, repo_tag: &str) -> String {
        let remote = format!("{}/{repo_tag}", self.server);
        let config = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let docker = || {
            let mut c = Command::new("docker");
            c.env("DOCKER_CONFIG", &config);
            c
        };
        let mut login = docker()
            .args([
                "login",
                "--username",
                &self.user,
                "--password-stdin",
                &self.server,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = login.stdin.take().unwrap();
            stdin.write_all(self.password.as_bytes()).unwrap();
        }
        let out = login.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        run(docker().args(["tag", local, &remote]));
        run(docker().args(["push", "-q", &remote]));
        run(docker().args(["rmi", &remote]));
        remote
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
