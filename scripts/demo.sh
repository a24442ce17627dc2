#!/usr/bin/env bash
# The demo: validate → plan → apply → plan (no changes) → an out-of-band change → drift →
# apply (repairs it) → a rolling deploy that ECS fails (apply exits 1, the old revision serves
# again) → audit → outputs → a moved resource → a plan a policy denies, on the example `dev`
# environment; then rollouts on `staging`
# (an ALB, the API under a canary, the worker under blue/green): one that succeeds and one
# rolled back by a failing health check; then the price table and a cost watch that names the
# rollout behind a bill spike; then, where the machine can (root, Docker, scripts/hosts.sh's sshd
# and nginx), an app on a loopback host: a canary through nginx that succeeds, one rolled back
# by the error rate nginx saw (with the webhook's message), and the app's history. AWS parts run
# against moto on loopback, with the embedded SQLite state in a
# scratch copy of the project. moto never runs a task, so scripts/ecs_sim.py sits in front of it
# and answers ECS's deployment, task-set and target-health questions as ECS would (each new
# revision is ready after 2 s; rules make one fail).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --quiet
converge="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/converge"

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_IAM_LOAD_MANAGED_POLICIES=true .venv/bin/moto_server -H 127.0.0.1 -p "$port" >/tmp/converge-demo-moto.log 2>&1 &
moto_pid=$!
.venv/bin/python scripts/ecs_sim.py --upstream "http://127.0.0.1:$port" --after 2 >/tmp/converge-demo-sim.out 2>&1 &
sim_pid=$!
work=$(mktemp -d)
hport=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/www" && echo ok >"$work/www/health"
.venv/bin/python -m http.server "$hport" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
health_pid=$!
trap 'kill $moto_pid $sim_pid $health_pid 2>/dev/null; rm -rf "$work"' EXIT
moto="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -fs "$moto/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 50); do grep -q listening /tmp/converge-demo-sim.out && break; sleep 0.2; done
sim="http://127.0.0.1:$(awk '/listening/ {print $2}' /tmp/converge-demo-sim.out)"
export AWS_ENDPOINT_URL="$sim" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true CONVERGE_ACTOR=demo

cp -r environments modules policies "$work/"
cd "$work"
step() { printf '\n\033[1m$ converge %s\033[0m\n' "$*"; }
network=$("$OLDPWD/.venv/bin/python" "$OLDPWD/scripts/moto-network.py")
read -ra vars <<<"$network"

step validate; "$converge" validate
step plan -e dev; set +e; "$converge" plan -e dev "${vars[@]}" --detailed-exitcode; echo "(exit $?: changes)"; set -e
step apply -e dev --auto-approve; "$converge" apply -e dev "${vars[@]}" --auto-approve
step plan -e dev; "$converge" plan -e dev "${vars[@]}" --detailed-exitcode; echo "(exit 0: no changes)"
echo; echo "# someone scales dev-worker to 5 tasks in the console..."
"$OLDPWD/.venv/bin/python" -c "import boto3; boto3.client('ecs').update_service(cluster='dev', service='dev-worker', desiredCount=5)"
step drift -e dev; set +e; "$converge" drift -e dev "${vars[@]}"; echo "(exit $?: drift)"; set -e
step apply -e dev --auto-approve; "$converge" apply -e dev "${vars[@]}" --auto-approve
step drift -e dev; "$converge" drift -e dev "${vars[@]}"
echo; echo "# v1.0.1 cannot start: ECS's deployment FAILS (the simulator says so), and apply says so too."
curl -fs -X POST --data '{"after": 2, "rules": [{"image": ":v1.0.1", "after": 2, "deployment": "fail", "reason": "ECS deployment circuit breaker: tasks failed to start (CannotPullContainerError)."}]}' "$sim/__sim__/rules" >/dev/null
step apply -e dev --var image_tag=v1.0.1 --auto-approve; set +e; "$converge" apply -e dev "${vars[@]}" --var image_tag=v1.0.1 --auto-approve; echo "(exit $?: the deployment failed; dev runs v1.0.0 again)"; set -e
curl -fs -X POST --data '{"after": 2}' "$sim/__sim__/rules" >/dev/null
step audit log -e dev; "$converge" audit log -e dev
step audit verify -e dev; "$converge" audit verify -e dev
step output -e dev; "$converge" output -e dev
step output -e dev api_repository --format raw; "$converge" output -e dev api_repository --format raw; echo
echo; echo "# A refactor: execution_role becomes task_execution_role, with a moved entry (Terraform's moved block):"
echo "# the plan moves it in state and retags it in place; nothing is deleted or created."
sed -i 's/\${execution_role\./${task_execution_role./; s/^  execution_role:/  task_execution_role:/' environments/dev.yaml
printf 'moved:\n  - { from: execution_role, to: task_execution_role }\n' >>environments/dev.yaml
step plan -e dev; "$converge" plan -e dev "${vars[@]}"
step apply -e dev --auto-approve; "$converge" apply -e dev "${vars[@]}" --auto-approve >/dev/null; "$converge" state list -e dev | grep execution_role
echo; echo "# Policy as code: policies/cost.rego denies any resource over \$500/month; 60 tasks each would be."
sed -i 's/desired_count: 1$/desired_count: 60/' environments/dev.yaml
step plan -e dev; set +e; "$converge" plan -e dev "${vars[@]}" | tail -4; echo "(exit ${PIPESTATUS[0]}: denied by policy)"; set -e
sed -i 's/desired_count: 60$/desired_count: 1/' environments/dev.yaml

echo; echo "# staging: an ALB; the API rolls out by canary (10% → 50% → 100%), the worker by blue/green."
echo "# The API's health gate probes a local endpoint; bakes are shortened to 2s for the demo."
svars=("${vars[@]}" "--var=health_url=http://127.0.0.1:$hport/health" --var=rollout_bake=2s --var=rollout_interval=500ms)
step apply -e staging --auto-approve; "$converge" apply -e staging "${svars[@]}" --auto-approve >/dev/null; echo "(created $("$converge" state list -e staging | wc -l) resources)"
step plan -e staging --var image_tag=v1.1.0; "$converge" plan -e staging "${svars[@]}" --var image_tag=v1.1.0
step apply -e staging --var image_tag=v1.1.0 --auto-approve; "$converge" apply -e staging "${svars[@]}" --var image_tag=v1.1.0 --auto-approve
echo; echo "# v1.2.0 is broken: its health endpoint stops answering 200."
rm "$work/www/health"
step apply -e staging --var image_tag=v1.2.0 --auto-approve; set +e; "$converge" apply -e staging "${svars[@]}" --var image_tag=v1.2.0 --auto-approve; echo "(exit $?: rolled back)"; set -e
step rollout status -e staging; "$converge" rollout status -e staging
step rollout history -e staging api.service; "$converge" rollout history -e staging api.service

echo; echo "# Cost: what the plan prices with, then a bill spike on the API the day of its v1.1.0 rollout."
echo "# (Cost Explorer's answer is injected into moto, which does not meter usage.)"
step prices show aws.ecs_service --region us-east-1; "$converge" prices show aws.ecs_service --region us-east-1
today=$(date -u +%F)
"$OLDPWD/.venv/bin/python" - "$today" <<'PY' | curl -fs -X POST -H 'content-type: application/json' --data-binary @- "$moto/moto-api/static/ce/cost-and-usage-results" >/dev/null
import datetime, json, sys
today = datetime.date.fromisoformat(sys.argv[1])
def day(d, api):
    g = lambda k, usd: {"Keys": [f"converge:address${k}"], "Metrics": {"UnblendedCost": {"Amount": f"{usd:.4f}", "Unit": "USD"}}}
    return {"TimePeriod": {"Start": str(d), "End": str(d + datetime.timedelta(days=1))}, "Total": {},
            "Groups": [g("api.service", api), g("worker.service", 4.10), g("alb", 0.54)], "Estimated": d == today}
days = [today - datetime.timedelta(days=i) for i in range(7, -1, -1)]
print(json.dumps({"results": [{"ResultsByTime": [day(d, 20.65 if d == today else 9.01) for d in days]}]}))
PY
step cost watch -e staging --day "$today"; set +e; "$converge" cost watch -e staging --day "$today"; echo "(exit $?: anomaly)"; set -e

echo; echo "# Apps on hosts: a host on loopback (sshd, nginx and Docker, as the tests set one up)."
if [[ $EUID -ne 0 ]] || ! docker info >/dev/null 2>&1 || [[ ! -x /usr/sbin/sshd || ! -x /usr/sbin/nginx || ! -x /bin/busybox ]]; then
  echo "(skipped: the host part needs root, a Docker Engine, and the sshd, nginx and busybox scripts/hosts.sh installs)"
  exit 0
fi
# shellcheck source=scripts/loopback-host.sh
. "$OLDPWD/scripts/loopback-host.sh"
trap 'loopback_host_stop shop; kill $moto_pid $sim_pid $health_pid ${hook_pid:-} ${client_pid:-} 2>/dev/null; rm -rf "$work"' EXIT
loopback_host_start "$work/host"
for tag in v1 v2 v3-errors; do loopback_app_image converge-demo/shop "$tag" 2>/dev/null; done
wport=$(loopback_free_port)
# A webhook receiver standing in for Slack: prints each message's text.
"$OLDPWD/.venv/bin/python" - "$wport" >"$work/webhook.log" 2>/dev/null <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        print(body["text"], flush=True)
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
hook_pid=$!
mkdir -p "$work/shop/environments"
cat >"$work/shop/environments/demo.yaml" <<YAML
environment: demo
providers: {}
variables:
  deploy_key: { sensitive: true }
  tag: { default: v1 }
resources:
  app:
    type: host.app
    properties:
      name: shop
      hosts: [{ address: 127.0.0.1, port: $lh_ssh_port, user: converge-deploy }]
      ssh: { known_hosts: known_hosts, private_key: "\${var.deploy_key}" }
      services:
        web:
          image: "converge-demo/shop:\${var.tag}"
          port: 8080
          health: { http: { path: /ready }, interval: 250ms, timeout: 10s }
      rollout:
        strategy: canary
        steps: [10, 50, 100]
        proxy: ${lh_proxy/SERVER_NAME/shop.test}
        bake: 3s
        interval: 500ms
        health:
          metrics: [{ name: error_rate, max: 0.05, for: 3s, min_requests: 5 }]
        notify: { webhook: "http://127.0.0.1:$wport/hook" }
        drain_timeout: 1s
YAML
export CONVERGE_VAR_DEPLOY_KEY="$(cat "$lh_key")"
shop() { "$converge" --root "$work/shop" -e demo "$@"; }
# Shoppers: requests through nginx all along (v3-errors answers /cgi-bin/flaky 500 every third time).
( while true; do curl -s -o /dev/null -H 'Host: shop.test' "http://127.0.0.1:$lh_http_port/cgi-bin/flaky" || true; sleep 0.02; done ) &
client_pid=$!
step apply -e demo --accept-new-host-keys --auto-approve; shop apply --accept-new-host-keys --auto-approve
step plan -e demo --var tag=v2; shop plan --var tag=v2
step apply -e demo --var tag=v2 --auto-approve; shop apply --var tag=v2 --auto-approve
echo "(nginx now sends every request to v2: $(curl -s -H 'Host: shop.test' "http://127.0.0.1:$lh_http_port/"))"
echo; echo "# v3-errors answers a third of its requests with 500: the error_rate gate rolls it back at 10%."
step apply -e demo --var tag=v3-errors --auto-approve; set +e; shop apply --var tag=v3-errors --auto-approve; echo "(exit $?: rolled back)"; set -e
echo "(nginx sends every request to v2 again: $(curl -s -H 'Host: shop.test' "http://127.0.0.1:$lh_http_port/"))"
echo; echo "# What the webhook received:"; sed 's/^/  /' "$work/webhook.log"
step rollout history -e demo app; shop rollout history app
