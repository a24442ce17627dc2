#!/usr/bin/env bash
# Rollout latency benchmark against moto behind scripts/ecs_sim.py. The figures are dominated by
# polling intervals and API round trips, not by converge's own CPU, so it uses the debug build
# the tests share. Prints:
#   - seconds from an ECS deployment turning FAILED to `converge apply` exiting 1 with the
#     service back on its old revision (environments/dev.yaml, rolling, default interval 10s:
#     converge looks every interval, then waits for the old revision's deployment), per run;
#   - seconds from the failing health gate's decision to traffic restored, for the canary API of
#     environments/staging.yaml (the rollout record's rollback_seconds), per run.
#   - the same for the blue/green proxy of examples/falkordb-proxy (checks through its test
#     listener), per run.
# Usage: bench/rollouts.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
scripts/setup.sh
cargo build --quiet
converge="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/converge"
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
MOTO_IAM_LOAD_MANAGED_POLICIES=true .venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
sim_out=$(mktemp)
.venv/bin/python scripts/ecs_sim.py --upstream "http://127.0.0.1:$port" >"$sim_out" 2>&1 &
sim_pid=$!
work=$(mktemp -d)
hport=$(free_port)
mkdir -p "$work/www" && echo ok >"$work/www/health"
.venv/bin/python -m http.server "$hport" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
health_pid=$!
trap 'kill $moto_pid $sim_pid $health_pid 2>/dev/null; rm -rf "$work" "$sim_out"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 50); do grep -q listening "$sim_out" && break; sleep 0.2; done
sim="http://127.0.0.1:$(awk '/listening/ {print $2}' "$sim_out")"
export AWS_ENDPOINT_URL="$sim" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true CONVERGE_ACTOR=bench
root=$PWD
cp -r environments modules "$work/"
cd "$work"
read -ra vars <<<"$("$root/.venv/bin/python" "$root/scripts/moto-network.py")"
rules() { curl -fs -X POST --data "$1" "$sim/__sim__/rules" >/dev/null; }
now() { date +%s.%N; }

"$converge" apply -e dev "${vars[@]}" --auto-approve >/dev/null 2>&1
echo "ECS deployment FAILED → converge exit 1 (dev, rolling; the deployment fails 2 s after UpdateService)"
for run in $(seq "$runs"); do
  rules "{\"rules\": [{\"image\": \":bad$run\", \"after\": 2, \"deployment\": \"fail\"}]}"
  start=$(now)
  set +e; "$converge" apply -e dev "${vars[@]}" --var "image_tag=bad$run" --auto-approve >/dev/null 2>&1; code=$?; set -e
  end=$(now)
  printf '  run %d: exit %d, %.2fs from FAILED to exit\n' "$run" "$code" "$(.venv/bin/python -c "print($end - $start - 2)" 2>/dev/null || "$root/.venv/bin/python" -c "print($end - $start - 2)")"
done
rules '{}'

echo "failing health gate → traffic restored (staging API, canary 10% → 50% → 100%, interval 500ms, failures: 2)"
svars=("${vars[@]}" "--var=health_url=http://127.0.0.1:$hport/health" --var=rollout_bake=2s --var=rollout_interval=500ms)
"$converge" apply -e staging "${svars[@]}" --auto-approve >/dev/null 2>&1
for run in $(seq "$runs"); do
  rm -f "$work/www/health"
  set +e; "$converge" apply -e staging "${svars[@]}" --var "image_tag=broken$run" --auto-approve >/dev/null 2>&1; code=$?; set -e
  seconds=$("$converge" rollout status -e staging api.service --format json | "$root/.venv/bin/python" -c 'import json,sys; r=json.load(sys.stdin)["rollouts"][0]; print(r["rollback_seconds"])')
  printf '  run %d: exit %d, traffic restored %.3fs after the gate failed\n' "$run" "$code" "$seconds"
  echo ok >"$work/www/health"
done

echo "failing health gate → traffic restored (examples/falkordb-proxy staging, blue/green, checks through the test listener, interval 500ms, failures: 2)"
mkdir -p "$work/falkordb" && cp -r "$root/examples/falkordb-proxy/environments" "$root/examples/falkordb-proxy/modules" "$work/falkordb/"
read -ra fvars <<<"$(AWS_DEFAULT_REGION=us-east-2 "$root/.venv/bin/python" "$root/scripts/moto-network.py")"
fvars+=("--var=health_url=http://127.0.0.1:$hport/health" --var=bake=2s --var=interval=500ms --var=termination_wait=1s)
"$converge" --root "$work/falkordb" apply -e staging "${fvars[@]}" --auto-approve >/dev/null 2>&1
for run in $(seq "$runs"); do
  rm -f "$work/www/health"
  set +e; "$converge" --root "$work/falkordb" apply -e staging "${fvars[@]}" --var "image_tag=sha-bad$run" --auto-approve >/dev/null 2>&1; code=$?; set -e
  seconds=$("$converge" --root "$work/falkordb" rollout status -e staging proxy.service --format json | "$root/.venv/bin/python" -c 'import json,sys; r=json.load(sys.stdin)["rollouts"][0]; print(r["rollback_seconds"])')
  printf '  run %d: exit %d, traffic restored %.3fs after the gate failed\n' "$run" "$code" "$seconds"
  echo ok >"$work/www/health"
done
