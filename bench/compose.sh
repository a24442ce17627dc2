#!/usr/bin/env bash
# Compose benchmark (issue 24) against a host on loopback (scripts/loopback-host.sh), the shape of
# examples/ghostworks: a web service behind nginx, a worker, PostgreSQL and Redis accessories in
# named volumes, all read from a docker-compose.yml. Needs root (sshd, nginx, sudoers.d). Prints:
#   - seconds of the first deploy (accessories started and healthy first, then web and worker),
#     of a no-op apply, and of a new web tag (blue/green) with its failed requests through nginx
#     (a keep-alive client; must be 0);
#   - seconds the Redis accessory was not healthy when its definition changed (replaced in place,
#     stopped gracefully, started again on its volume), polled every 100 ms.
# Usage: bench/compose.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
[[ $EUID -eq 0 ]] || { echo "bench/compose.sh starts sshd and nginx and writes a sudoers file: run it as root" >&2; exit 1; }
scripts/setup.sh
cargo build --quiet
converge="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/converge"
py=$PWD/.venv/bin/python
DOCKER_BUILDKIT=0 docker build -q -t converge-test/postgres:15 tests/fixtures/postgres >/dev/null 2>&1
DOCKER_BUILDKIT=0 docker build -q -t converge-test/redis:7 tests/fixtures/redis >/dev/null 2>&1
# shellcheck source=scripts/loopback-host.sh
. scripts/loopback-host.sh
work=$(mktemp -d); chmod 0755 "$work"
cleanup() {
  loopback_host_stop cbench
  docker volume rm -f cbench_pg cbench_cache >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
docker volume rm -f cbench_pg cbench_cache >/dev/null 2>&1 || true
loopback_host_start "$work/host"
ssh_port=$lh_ssh_port; http_port=$lh_http_port
proxy=${lh_proxy/SERVER_NAME/cbench.test}
image() { loopback_app_image converge-bench/capp "$1" 2>/dev/null; }
mkdir -p "$work/project/environments"
cat >"$work/project/environments/bench.yaml" <<YAML
environment: bench
providers: {}
variables:
  deploy_key: { sensitive: true }
  tag: { default: v0 }
  CACHE_MEMORY: { default: 256m }
resources:
  app:
    type: host.app
    properties:
      name: cbench
      hosts: [{ address: 127.0.0.1, port: $ssh_port, user: converge-deploy }]
      ssh: { known_hosts: known_hosts, private_key: "\${var.deploy_key}" }
      compose: { file: ../compose.yaml }
      rollout:
        proxy: $proxy
        bake: 1s
        interval: 500ms
        drain_timeout: 1s
        keep_previous: 0s
YAML
cat >"$work/project/compose.yaml" <<'YAML'
services:
  web:
    image: converge-bench/capp:${tag}
    ports: ["8080"]
    cap_drop: [ALL]
    healthcheck: { test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/ready"], interval: 250ms }
    depends_on: { db: { condition: service_healthy }, cache: { condition: service_healthy } }
  worker:
    image: converge-bench/capp:${tag}
    command: ["app", "work"]
    depends_on: { db: { condition: service_healthy } }
  db:
    image: converge-test/postgres:15
    volumes: [pg:/var/lib/postgresql/data]
    healthcheck: { test: pg_isready -U postgres, interval: 250ms, retries: 120 }
  cache:
    image: converge-test/redis:7
    command: redis-server --appendonly yes --protected-mode no --dir /data
    mem_limit: ${CACHE_MEMORY}
    volumes: [cache:/data]
    healthcheck: { test: ["CMD", "redis-cli", "ping"], interval: 250ms }
volumes:
  pg:
  cache:
YAML
export CONVERGE_VAR_DEPLOY_KEY="$(cat "$lh_key")" CONVERGE_ACTOR=bench NO_COLOR=1
c() { "$converge" --root "$work/project" "$@"; }
now() { date +%s.%N; }
secs() { "$py" -c "print(f'{$2 - $1:.2f}')"; }
# shellcheck source=bench/lib.sh
. bench/lib.sh
# Polls the cache's Docker health every 100 ms; prints the longest stretch it was not healthy.
health_poller() {
  "$py" - <<'PY' &
import subprocess, time, signal
stop = False; down_since = None; longest = 0.0
def done(*_):
    global stop; stop = True
signal.signal(signal.SIGTERM, done)
while not stop:
    r = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", "cbench-cache"], capture_output=True, text=True)
    healthy = r.returncode == 0 and r.stdout.strip() == "healthy"
    t = time.monotonic()
    if not healthy and down_since is None: down_since = t
    if healthy and down_since is not None:
        longest = max(longest, t - down_since); down_since = None
    time.sleep(0.1)
print(f"{longest:.2f}", flush=True)
PY
}

image v0
echo "first deploy from the compose file (db and cache healthy first, then web and worker)"
start=$(now); c apply -e bench --auto-approve --accept-new-host-keys >/dev/null 2>&1; end=$(now)
printf '  %ss\n' "$(secs "$start" "$end")"
echo "no-op apply (read the host, plan, nothing to do)"
for run in $(seq "$runs"); do
  start=$(now); c apply -e bench --auto-approve >/dev/null 2>&1; end=$(now)
  printf '  run %d: %ss\n' "$run" "$(secs "$start" "$end")"
done
echo "new web tag, blue/green (accessories untouched; bake 1s, drain_timeout 1s)"
for run in $(seq "$runs"); do
  image "v$run"
  out=$(mktemp); client cbench.test >"$out"; cpid=$!
  sleep 0.3
  start=$(now); c apply -e bench --auto-approve --var "tag=v$run" >/dev/null 2>&1; end=$(now)
  sleep 0.3; kill -TERM $cpid; wait $cpid 2>/dev/null || true
  read -r failed reconnects <"$out"; rm -f "$out"
  printf '  run %d: %ss, %s failed requests (%s keep-alive connections closed at the reload, resent)\n' "$run" "$(secs "$start" "$end")" "$failed" "$reconnects"
done
echo "the cache's definition changes (mem_limit): replaced in place; seconds it was not healthy"
for run in $(seq "$runs"); do
  out=$(mktemp); health_poller >"$out"; ppid_=$!
  start=$(now); c apply -e bench --auto-approve --var "tag=v$runs" --var "CACHE_MEMORY=$((256 + run))m" >/dev/null 2>&1; end=$(now)
  sleep 0.5; kill -TERM $ppid_; wait $ppid_ 2>/dev/null || true
  printf '  run %d: apply %ss, cache not healthy for %ss\n' "$run" "$(secs "$start" "$end")" "$(cat "$out")"; rm -f "$out"
done
