#!/usr/bin/env bash
# Host-app benchmark (issues 15 and 23) against a host on loopback, set up as tests/hosts.rs sets
# one up (scripts/loopback-host.sh). Needs root (sshd, nginx, sudoers.d). Prints, per run:
#   - seconds for `converge apply` of a new tag (blue/green: pull, new colour, health, a
#     migration hook, nginx switch, bake 1s, drain) and of a no-op (refresh and plan only);
#   - failed requests of a keep-alive client through nginx during each blue/green deploy (must
#     be 0), with the keep-alive connections nginx closed at the reload (resent, as clients do);
#   - for a client opening a fresh connection per request at ~25 a second, how many answers
#     came from the old version after the first from the new one (the switch seen more than once);
#   - seconds for a canary of three steps (10/50/100, bake 1s each) and its failed requests;
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
# shellcheck source=scripts/loopback-host.sh
. scripts/loopback-host.sh
work=$(mktemp -d); chmod 0755 "$work"
trap 'loopback_host_stop bench; rm -rf "$work"' EXIT
loopback_host_start "$work/host"
ssh_port=$lh_ssh_port; http_port=$lh_http_port
proxy=${lh_proxy/SERVER_NAME/bench.test}
image() { loopback_app_image converge-bench/app "$1" 2>/dev/null; }
mkdir -p "$work/data"
mkdir -p "$work/project/environments"
write_env() { # strategy [extra rollout lines]
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
        proxy: $proxy${2:-}
        hooks:
          pre_traffic: [{ service: web, run: ["app", "migrate"] }]
        bake: 1s
        interval: 500ms
        health: { http: { path: /health, failures: 2 } }
        drain_timeout: 1s
        keep_previous: 0s
YAML
}
export CONVERGE_VAR_DEPLOY_KEY="$(cat "$lh_key")" CONVERGE_ACTOR=bench NO_COLOR=1
c() { "$converge" --root "$work/project" "$@"; }
now() { date +%s.%N; }
secs() { "$py" -c "print(f'{$2 - $1:.2f}')"; }
# shellcheck source=bench/lib.sh
. bench/lib.sh

# Fresh connections at ~25 requests a second through nginx (issue 23 §5): prints how many
# answers came from the old version after the first answer from the new one, and the requests
# that failed. Its arguments: the old and the new version.
fresh_client() {
  "$py" - "$http_port" "$1" "$2" <<'PY' &
import http.client, sys, time, signal
port, old, new = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen_new = False; old_after_new = failed = 0; stop = False
def done(*_):
    global stop; stop = True
signal.signal(signal.SIGTERM, done)
while not stop:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/", headers={"Host": "bench.test", "Connection": "close"})
        r = conn.getresponse(); body = r.read().decode().strip(); conn.close()
        if r.status != 200: failed += 1
        elif body == new: seen_new = True
        elif body == old and seen_new: old_after_new += 1
    except Exception:
        failed += 1
    time.sleep(0.04)
print(old_after_new, failed, flush=True)
PY
}

write_env blue_green
image v0
c apply -e bench --auto-approve --accept-new-host-keys >/dev/null 2>&1
echo "blue/green deploy of a new tag (one host; migration hook, bake 1s, drain_timeout 1s)"
for run in $(seq "$runs"); do
  image "v$run"
  out=$(mktemp); client bench.test >"$out"; cpid=$!
  fresh=$(mktemp); fresh_client "v$((run - 1))" "v$run" >"$fresh"; fpid=$!
  sleep 0.3
  start=$(now); c apply -e bench --auto-approve --var "tag=v$run" >/dev/null 2>&1; end=$(now)
  sleep 0.3; kill -TERM $cpid $fpid; wait $cpid $fpid 2>/dev/null || true
  read -r failed reconnects <"$out"; rm -f "$out"
  read -r flips fresh_failed <"$fresh"; rm -f "$fresh"
  printf '  run %d: %ss, %s failed requests (%s keep-alive connections closed at the reload, resent); fresh connections: %s answers from the old version after the first from the new, %s failed\n' \
    "$run" "$(secs "$start" "$end")" "$failed" "$reconnects" "$flips" "$fresh_failed"
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
write_env canary $'\n        steps: [10, 50, 100]'
echo "canary of three steps (10% → 50% → 100%, bake 1s each; migration hook)"
for run in $(seq "$runs"); do
  image "c$run"
  out=$(mktemp); client bench.test >"$out"; cpid=$!
  start=$(now); c apply -e bench --auto-approve --var "tag=c$run" >/dev/null 2>&1; end=$(now)
  kill -TERM $cpid; wait $cpid 2>/dev/null || true
  read -r failed reconnects <"$out"; rm -f "$out"
  printf '  run %d: %ss, %s failed requests (%s keep-alive connections closed at the reloads, resent)\n' "$run" "$(secs "$start" "$end")" "$failed" "$reconnects"
done
write_env recreate
echo "recreate downtime (old colour stopped → new one healthy and switched)"
for run in $(seq "$runs"); do
  image "r$run"
  line=$(c apply -e bench --auto-approve --var "tag=r$run" 2>&1 | grep -o 'recreate downtime [0-9.]*s' || echo "recreate downtime not reported")
  printf '  run %d: %s\n' "$run" "$line"
done
