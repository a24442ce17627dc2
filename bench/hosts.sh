#!/usr/bin/env bash
# Host-app benchmark (issue 15) against a host on loopback, set up as tests/hosts.rs sets one up:
# OpenSSH's server letting in the non-root converge-deploy user (scripts/hosts.sh), an nginx of
# its own with the sudoers line of docs/hosts.md, the machine's Docker Engine, and the FROM-scratch
# busybox test app. Needs root (sshd, nginx, sudoers.d). Prints, per run:
#   - seconds for `converge apply` of a new tag (blue/green: pull, new colour, health, a
#     migration hook, nginx switch, bake 1s, drain) and of a no-op (refresh and plan only);
#   - failed requests of a keep-alive client through nginx during each blue/green deploy (must
#     be 0), with the keep-alive connections nginx closed at the reload (resent, as clients do);
#   - the downtime `strategy: recreate` measured (old colour stopped → new one switched);
#   - seconds from the failing gate's decision to the old colour serving again.
# Usage: bench/hosts.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
[[ $EUID -eq 0 ]] || { echo "bench/hosts.sh starts sshd and nginx and writes a sudoers file: run it as root" >&2; exit 1; }
scripts/setup.sh
cargo build --quiet
converge="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/converge"
py=$PWD/.venv/bin/python
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d); chmod 0755 "$work"
ssh_port=$(free_port); http_port=$(free_port)
sudoers=/etc/sudoers.d/converge-bench-$ssh_port
cleanup() {
  [[ -n "${sshd_pid:-}" ]] && kill "$sshd_pid" 2>/dev/null
  /usr/sbin/nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true
  rm -f "$sudoers"
  ids=$(docker ps -aq --filter label=converge.app=bench); [[ -n "$ids" ]] && docker rm -f $ids >/dev/null
  docker network rm converge-bench >/dev/null 2>&1 || true
  rm -rf /etc/converge/bench "$work"
}
trap cleanup EXIT
# The app image, one tag per deploy (v1 … vN, and a "sour" one that fails behind the proxy).
cp tests/fixtures/hostapp/{Dockerfile,app,alembic,elspeth} /bin/busybox "$work/"
image() { DOCKER_BUILDKIT=0 docker build -q --build-arg "VERSION=$1" -t "converge-bench/app:$1" "$work" >/dev/null 2>&1; }
# The host.
ssh-keygen -q -t ed25519 -N "" -f "$work/client"; ssh-keygen -q -t ed25519 -N "" -f "$work/host_key"
cp "$work/client.pub" "$work/authorized_keys"; chmod 0644 "$work/authorized_keys"
printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin no\nAllowUsers converge-deploy\n' \
  "$ssh_port" "$work/host_key" "$work/sshd.pid" "$work/authorized_keys" >"$work/sshd_config"
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>/dev/null & sshd_pid=$!
mkdir -p "$work/converge" "$work/temp" "$work/data" && chown converge-deploy "$work/converge"
cat >"$work/nginx.conf" <<NGINX
pid $work/nginx.pid;
error_log $work/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/temp/body; proxy_temp_path $work/temp/proxy;
  fastcgi_temp_path $work/temp/fastcgi; uwsgi_temp_path $work/temp/uwsgi; scgi_temp_path $work/temp/scgi;
  include $work/converge/*.conf;
}
NGINX
/usr/sbin/nginx -c "$work/nginx.conf"
echo "converge-deploy ALL=(root) NOPASSWD: /usr/sbin/nginx -c $work/nginx.conf -t, /usr/sbin/nginx -c $work/nginx.conf -s reload" >"$sudoers"
chmod 0440 "$sudoers"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$ssh_port") 2>/dev/null && break; sleep 0.1; done
mkdir -p "$work/project/environments"
write_env() { # strategy
  cat >"$work/project/environments/bench.yaml" <<YAML
environment: bench
providers: {}
variables:
  deploy_key: { sensitive: true }
  tag: { default: v0 }
resources:
  app:
    type: host.app
    properties:
      name: bench
      hosts: [{ address: 127.0.0.1, port: $ssh_port, user: converge-deploy }]
      ssh: { known_hosts: known_hosts, private_key: "\${var.deploy_key}" }
      services:
        web:
          image: "converge-bench/app:\${var.tag}"
          port: 8080
          volumes: ["$work/data:/data"]
          health: { http: { path: /ready }, interval: 250ms, timeout: 10s }
      rollout:
        strategy: $1
        proxy: { nginx: { server_name: bench.test, listen: $http_port, config: $work/nginx.conf, include_dir: $work/converge, pid_file: $work/nginx.pid } }
        hooks:
          pre_traffic: [{ service: web, run: ["app", "migrate"] }]
        bake: 1s
        interval: 500ms
        health: { http: { path: /health, failures: 2 } }
        drain_timeout: 1s
        keep_previous: 0s
YAML
}
export CONVERGE_VAR_DEPLOY_KEY="$(cat "$work/client")" CONVERGE_ACTOR=bench NO_COLOR=1
c() { "$converge" --root "$work/project" "$@"; }
now() { date +%s.%N; }
secs() { "$py" -c "print(f'{$2 - $1:.2f}')"; }
# A keep-alive client through nginx, as tests/support/hosts.rs has one: prints "failed reconnects".
client() {
  "$py" - "$http_port" <<'PY' &
import http.client, sys, time, os, signal
port = int(sys.argv[1]); failed = reconnects = 0; stop = False
def done(*_):
    global stop; stop = True
signal.signal(signal.SIGTERM, done)
conn = None
while not stop:
    reused = conn is not None
    if conn is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": "bench.test"})
        r = conn.getresponse(); r.read()
        if r.status != 200: failed += 1; conn = None
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
        if reused: reconnects += 1
        else: failed += 1
        conn = None
    except Exception:
        failed += 1; conn = None
    time.sleep(0.005)
print(failed, reconnects, flush=True)
PY
}

write_env blue_green
image v0
c apply -e bench --auto-approve --accept-new-host-keys >/dev/null 2>&1
echo "blue/green deploy of a new tag (one host; migration hook, bake 1s, drain_timeout 1s)"
for run in $(seq "$runs"); do
  image "v$run"
  out=$(mktemp); client >"$out"; cpid=$!
  sleep 0.3
  start=$(now); c apply -e bench --auto-approve --var "tag=v$run" >/dev/null 2>&1; end=$(now)
  sleep 0.3; kill -TERM $cpid; wait $cpid 2>/dev/null || true
  read -r failed reconnects <"$out"; rm -f "$out"
  printf '  run %d: %ss, %s failed requests (%s keep-alive connections closed at the reload, resent)\n' "$run" "$(secs "$start" "$end")" "$failed" "$reconnects"
done
echo "no-op apply (same tag: read the host, plan, nothing to do)"
for run in $(seq "$runs"); do
  start=$(now); c apply -e bench --auto-approve --var "tag=v$runs" >/dev/null 2>&1; end=$(now)
  printf '  run %d: %ss\n' "$run" "$(secs "$start" "$end")"
done
echo "failing gate behind the proxy → old colour serving again (failures: 2, interval 500ms)"
image v-sour
for run in $(seq "$runs"); do
  set +e; c apply -e bench --auto-approve --var "tag=v-sour" >/dev/null 2>&1; code=$?; set -e
  seconds=$(c rollout status -e bench app --format json | "$py" -c 'import json,sys; d=json.load(sys.stdin); r=d[0] if isinstance(d,list) else d; r=r.get("rollouts",[r])[0] if isinstance(r,dict) and "rollouts" in r else r; print(r.get("rollback_seconds"))')
  printf '  run %d: exit %d, old colour serving %ss after the decision\n' "$run" "$code" "$seconds"
done
write_env recreate
echo "recreate downtime (old colour stopped → new one healthy and switched)"
for run in $(seq "$runs"); do
  image "r$run"
  line=$(c apply -e bench --auto-approve --var "tag=r$run" 2>&1 | grep -o 'recreate downtime [0-9.]*s' || echo "recreate downtime not reported")
  printf '  run %d: %s\n' "$run" "$line"
done
