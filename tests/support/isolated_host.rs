//! A second host on the same machine, for the tests of apps on several hosts: its own network
//! and mount namespaces (util-linux's `unshare`), holding its own sshd, nginx and Docker Engine
//! (a `dockerd` with its own data root, vfs storage and bridge, inside the namespace: the
//! machine's engine and its `docker0` are never touched), and a mirror of the test registry (a
//! second `docker-registry` serving the same storage, so `127.0.0.1:PORT/…` images pull there
//! too). Inside the namespace its directory is mounted over the first host's and over
//! `/etc/converge`, so one `host.app`'s paths (nginx files, volumes, env files) are this host's
//! own files there. converge reaches its sshd, and the test its nginx, through forwarders on the
//! machine's loopback that connect from inside the namespace.

use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::hosts::{DEPLOY_USER, TestHost, TestRegistry, lay_out, run};

/// The second host: removed with everything it ran on drop.
pub struct IsolatedHost {
    /// Its files (mounted over the first host's directory inside its namespace).
    pub dir: tempfile::TempDir,
    /// SSH port on the machine's loopback (forwarded to its sshd on the same port inside).
    pub ssh_port: u16,
    /// A port on the machine's loopback forwarded to its nginx's `listen` port (the first
    /// host's, as the app says).
    pub http_port: u16,
    first_dir: PathBuf,
    holder: Child,
    children: Vec<Child>,
    stop: Arc<AtomicBool>,
}

/// A connection to `port` on the loopback of the network namespace of process `pid`.
fn connect_inside(pid: u32, port: u16) -> std::io::Result<TcpStream> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        TcpStream::connect(("127.0.0.1", port))
    })
    .join()
    .expect("the connecting thread")
}

/// Copies bytes both ways between `a` and `b` until each side is done.
fn pipe(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut &a, &mut &b);
        let _ = b.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut &b2, &mut &a2);
        let _ = a2.shutdown(Shutdown::Write);
    });
}

/// Accepts on `listener` (the machine's loopback) and connects each to `to` inside `pid`'s
/// network namespace, until `stop`.
fn forward(pid: u32, listener: TcpListener, to: u16, stop: Arc<AtomicBool>) {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((outside, _)) => {
                    outside.set_nonblocking(false).ok();
                    if let Ok(inner) = connect_inside(pid, to) {
                        pipe(outside, inner);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => break,
            }
        }
    });
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl IsolatedHost {
    /// Starts one that a `host.app` written for `first` (its nginx paths, volumes, listen
    /// port) also deploys to, pulling from `registry`. Needs root, as [`TestHost`] does.
    pub fn beside(first: &TestHost, registry: &TestRegistry) -> IsolatedHost {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let holder = Command::new("unshare")
            .args(["--mount", "--net", "--propagation", "private", "--fork"])
            .args(["--kill-child", "sleep", "infinity"])
            .spawn()
            .expect("util-linux's unshare");
        let pid = holder.id();
        let own_net = std::fs::read_link("/proc/self/ns/net").unwrap();
        wait_for("the namespace", || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != own_net)
        });
        let ssh = TcpListener::bind("127.0.0.1:0").unwrap();
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        let (ssh_port, http_port) = (
            ssh.local_addr().unwrap().port(),
            http.local_addr().unwrap().port(),
        );
        let socket = d.join("docker.sock");
        let docker_host = format!("unix://{}", socket.display());
        lay_out(&d, ssh_port, 8081, &[("DOCKER_HOST", &docker_host)]);
        // One app, one deploy key: the first host's.
        std::fs::copy(
            first.dir.path().join("client.pub"),
            d.join("authorized_keys"),
        )
        .unwrap();
        let etc = d.join("etc-converge");
        std::fs::create_dir_all(&etc).unwrap();
        run(Command::new("chown").arg(DEPLOY_USER).arg(&etc));
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let mut host = IsolatedHost {
            first_dir: first.dir.path().to_path_buf(),
            dir,
            ssh_port,
            http_port,
            holder,
            children: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        run(host.inside().args(["ip", "link", "set", "lo", "up"]));
        run(host
            .inside()
            .arg("mount")
            .arg("--bind")
            .arg(&d)
            .arg(&host.first_dir));
        run(host
            .inside()
            .arg("mount")
            .arg("--bind")
            .arg(&etc)
            .arg("/etc/converge"));
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        host.children.push(
            host.inside()
                .arg("/usr/sbin/dockerd")
                .arg("--config-file")
                .arg(d.join("daemon.json"))
                .arg("--data-root")
                .arg(d.join("docker"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("docker.pid"))
                .args(["-H", &docker_host, "--storage-driver", "vfs"])
                .args(["--iptables=false", "--log-level", "warn"])
                .arg(format!("--cgroup-parent=/converge-test-{ssh_port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("/usr/sbin/dockerd"),
        );
        host.children.push(
            host.inside()
                .arg("/usr/bin/docker-registry")
                .arg("serve")
                .arg(registry.config())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        host.children.push(
            host.inside()
                .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        run(host
            .inside()
            .arg("/usr/sbin/nginx")
            .arg("-c")
            .arg(host.first_dir.join("nginx.conf")));
        wait_for("its Docker Engine", || {
            host.docker()
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let registry_port: u16 = registry
            .server
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap();
        wait_for("its registry mirror", || {
            connect_inside(pid, registry_port).is_ok()
        });
        wait_for("its sshd", || connect_inside(pid, ssh_port).is_ok());
        forward(pid, ssh, ssh_port, host.stop.clone());
        forward(pid, http, first.http_port, host.stop.clone());
        host
    }

    /// A command run inside its namespaces.
    fn inside(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "-n", "--"]);
        c
    }

    /// The docker CLI for its engine.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(format!(
            "unix://{}",
            self.dir.path().join("docker.sock").display()
        ));
        c
    }

    /// Where the app's volume directory (the first host's `data(app)`) is on this host.
    pub fn data(&self, first: &TestHost, app: &str) -> PathBuf {
        let path = first.data(app);
        let p = self.dir.path().join(
            path.strip_prefix(&self.first_dir)
                .expect("under the first host"),
        );
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// GET `path` through its nginx with `Host: server_name`: (status, body).
    pub fn get(&self, server_name: &str, path: &str) -> (u16, String) {
        super::hosts::http_get(self.http_port, server_name, path)
    }

    /// `docker inspect -f FORMAT NAME` on its engine ("" when it does not exist).
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = self
            .docker()
            .args(["inspect", "-f", format, name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn stop_engine(&mut self) {
        let ids = self.docker().args(["ps", "-aq"]).output();
        if let Ok(ids) = ids {
            let ids = String::from_utf8_lossy(&ids.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
            }
        }
        let pid = std::fs::read_to_string(self.dir.path().join("docker.pid")).unwrap_or_default();
        if !pid.trim().is_empty() {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).output();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Path::new(&format!("/proc/{}", pid.trim())).exists() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for IsolatedHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self
            .inside()
            .arg("/usr/sbin/nginx")
            .arg("-c")
            .arg(self.first_dir.join("nginx.conf"))
            .args(["-s", "stop"])
            .output();
        self.stop_engine();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // dockerd made a cgroup per controller for its containers: empty now.
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let _ =
                    std::fs::remove_dir(c.path().join(format!("converge-test-{}", self.ssh_port)));
            }
        }
    }
}
