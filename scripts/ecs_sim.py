#!/usr/bin/env python3
"""A proxy in front of moto that answers ECS's deployment, task-set, target-health and
one-off-task questions as ECS would.

moto never runs a task: a service's `deployments` stay as they were at creation when
UpdateService changes its task definition, task sets report STEADY_STATE with no counts and
register no targets, and RunTask's tasks never stop. converge waits for all of those, so the
tests and the demo put this proxy between converge and moto. Everything else is forwarded
unchanged.

What it simulates (per task definition, by the images its containers run; see `rules`):
- ECS rolling deployments: CreateService / UpdateService with a new task definition start a
  PRIMARY deployment IN_PROGRESS (the one before becomes ACTIVE); after `after` seconds it is
  COMPLETED (the old ones drained away), FAILED with a reason (`fail`), FAILED and replaced by a
  new PRIMARY on the last completed task definition, as the circuit breaker's rollback does
  (`rollback`), or stays IN_PROGRESS (`never`).
- Task sets (EXTERNAL controller): STABILIZING with no running tasks until `after` seconds,
  then STEADY_STATE with runningCount = computedDesiredCount (`task_set: never` stays
  STABILIZING).
- DescribeTargetHealth of a target group a task set registers with: one target per desired
  task, `initial` until the task set is steady, then `healthy` (`targets: unhealthy` reports
  them unhealthy, `targets: none` lists none).
- RunTask / DescribeTasks / StopTask: a one-off task RUNNING until `after` seconds, then
  STOPPED with `exit_code` (0 unless a rule whose `command` matches the overridden command says
  otherwise; `task: never` keeps it running until StopTask).

Control: POST /__sim__/rules with {"after": SECONDS, "rules": [{"image": "SUBSTRING", ...}]}
(the first rule whose `image` occurs in one of the task definition's images, or whose `command`
occurs in a one-off task's command, applies); GET /__sim__/state shows what it holds.

Usage: ecs_sim.py --upstream http://127.0.0.1:PORT [--port 0]; prints `listening PORT`.
"""

import argparse
import http.client
import json
import math
import random
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SETTINGS = {"after": 0.0, "rules": []}
TASK_DEFINITIONS = {}  # ARN -> [images]
SERVICES = {}  # (cluster, service) -> {"desired": n, "deployments": [...], "external": bool}
TASK_SETS = {}  # task set ARN -> {...}
TASKS = {}  # task ARN -> {...}
UPSTREAM = None


def short(name):
    return (name or "").rsplit("/", 1)[-1]


def rule_for_images(images):
    for rule in SETTINGS["rules"]:
        needle = rule.get("image")
        if needle and any(needle in image for image in images):
            return rule
    return {}


def rule_for_task_definition(arn):
    return rule_for_images(TASK_DEFINITIONS.get(arn, []))


def after(rule):
    return float(rule.get("after", SETTINGS["after"]))


def new_deployment(task_definition, desired, now):
    return {
        "id": "ecs-svc/%019d" % random.randrange(10**18, 10**19),
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": desired,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": "FARGATE",
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": "ECS deployment %s in progress." % "ecs-svc",
    }


def advance(service, now):
    """Moves a service's PRIMARY deployment on, as time passes."""
    deployments = service["deployments"]
    for _ in range(3):
        primary = next((d for d in deployments if d["status"] == "PRIMARY"), None)
        if primary is None or primary["rolloutState"] != "IN_PROGRESS":
            return
        rule = rule_for_task_definition(primary["taskDefinition"])
        outcome = rule.get("deployment", "complete")
        if outcome == "never" or now - primary["createdAt"] < after(rule):
            return
        primary["updatedAt"] = now
        if outcome == "complete":
            primary.update(
                rolloutState="COMPLETED",
                rolloutStateReason="ECS deployment %s completed." % primary["id"],
                runningCount=primary["desiredCount"],
                pendingCount=0,
            )
            # The old deployments drain away; a failed one stays listed for a while, as on ECS.
            service["deployments"] = [primary] + [
                d for d in deployments if d is not primary and d["rolloutState"] == "FAILED"
            ]
            service["completed"] = primary["taskDefinition"]
            return
        reason = rule.get(
            "reason",
            "ECS deployment circuit breaker: tasks failed to start.",
        )
        primary.update(
            rolloutState="FAILED",
            rolloutStateReason=reason,
            runningCount=0,
            pendingCount=0,
            failedTasks=primary["desiredCount"],
        )
        if outcome == "rollback" and service.get("completed"):
            primary["status"] = "ACTIVE"
            back = new_deployment(service["completed"], service["desired"], now)
            back["rolloutStateReason"] = (
                "ECS deployment detected failure in %s; rolling back to %s."
                % (primary["id"], service["completed"])
            )
            deployments.insert(0, back)
            continue
        return


def task_set_view(ts, now):
    rule = rule_for_task_definition(ts["taskDefinition"])
    service = SERVICES.get(ts["service"], {"desired": 1})
    computed = int(math.ceil(service["desired"] * ts["scale"] / 100.0))
    steady = rule.get("task_set", "steady") != "never" and now - ts["created"] >= after(rule)
    return computed, steady, rule


def rewrite_task_set(raw, now):
    ts = TASK_SETS.get(raw.get("taskSetArn"))
    if ts is None:
        return
    computed, steady, _ = task_set_view(ts, now)
    raw["computedDesiredCount"] = computed
    raw["runningCount"] = computed if steady else 0
    raw["pendingCount"] = 0 if steady else computed
    raw["stabilityStatus"] = "STEADY_STATE" if steady else "STABILIZING"


def rewrite_service(raw, now):
    key = (short(raw.get("clusterArn")), raw.get("serviceName"))
    service = SERVICES.get(key)
    if service is None:
        return
    if raw.get("desiredCount") is not None:
        service["desired"] = raw["desiredCount"]
    for ts in raw.get("taskSets") or []:
        rewrite_task_set(ts, now)
    if service["external"]:
        return
    advance(service, now)
    raw["deployments"] = [dict(d) for d in service["deployments"]]
    primary = next((d for d in service["deployments"] if d["status"] == "PRIMARY"), None)
    if primary:
        raw["taskDefinition"] = primary["taskDefinition"]
    raw["runningCount"] = sum(d["runningCount"] for d in service["deployments"])
    raw["pendingCount"] = sum(d["pendingCount"] for d in service["deployments"])


def handle_json(operation, request, response):
    now = time.time()
    if operation == "RegisterTaskDefinition":
        arn = response.get("taskDefinition", {}).get("taskDefinitionArn")
        if arn:
            TASK_DEFINITIONS[arn] = [
                c.get("image", "") for c in request.get("containerDefinitions", [])
            ]
    elif operation == "CreateService":
        raw = response.get("service")
        if not raw:
            return
        key = (short(raw.get("clusterArn")), raw.get("serviceName"))
        external = (raw.get("deploymentController") or {}).get("type") == "EXTERNAL"
        if key not in SERVICES:
            service = {
                "desired": raw.get("desiredCount", 1),
                "external": external,
                "deployments": [],
                "completed": None,
            }
            if not external and raw.get("taskDefinition"):
                service["deployments"].append(
                    new_deployment(raw["taskDefinition"], service["desired"], now)
                )
            SERVICES[key] = service
        rewrite_service(raw, now)
    elif operation == "UpdateService":
        raw = response.get("service")
        if not raw:
            return
        key = (short(raw.get("clusterArn")), raw.get("serviceName"))
        service = SERVICES.get(key)
        if service is None:
            return
        if request.get("desiredCount") is not None:
            service["desired"] = request["desiredCount"]
        if not service["external"]:
            advance(service, now)
            wanted = request.get("taskDefinition")
            primary = next(
                (d for d in service["deployments"] if d["status"] == "PRIMARY"), None
            )
            if wanted and (
                primary is None
                or primary["taskDefinition"] != wanted
                or request.get("forceNewDeployment")
            ):
                for d in service["deployments"]:
                    if d["status"] == "PRIMARY":
                        d["status"] = "ACTIVE"
                service["deployments"].insert(
                    0, new_deployment(wanted, service["desired"], now)
                )
        rewrite_service(raw, now)
    elif operation == "DescribeServices":
        for raw in response.get("services") or []:
            rewrite_service(raw, now)
    elif operation == "DeleteService":
        raw = response.get("service") or {}
        SERVICES.pop((short(raw.get("clusterArn")), raw.get("serviceName")), None)
    elif operation == "CreateTaskSet":
        raw = response.get("taskSet")
        if not raw:
            return
        groups = [lb.get("targetGroupArn") for lb in request.get("loadBalancers") or []]
        scale = (request.get("scale") or {}).get("value", 100.0)
        TASK_SETS[raw["taskSetArn"]] = {
            "service": (short(request.get("cluster")), short(request.get("service"))),
            "taskDefinition": raw.get("taskDefinition"),
            "targetGroup": groups[0] if groups else None,
            "scale": float(scale),
            "created": now,
        }
        rewrite_task_set(raw, now)
    elif operation == "UpdateTaskSet":
        raw = response.get("taskSet") or {}
        ts = TASK_SETS.get(raw.get("taskSetArn"))
        if ts is not None and request.get("scale"):
            ts["scale"] = float(request["scale"].get("value", 100.0))
        rewrite_task_set(raw, now)
    elif operation == "DescribeTaskSets":
        for raw in response.get("taskSets") or []:
            rewrite_task_set(raw, now)
    elif operation == "DeleteTaskSet":
        raw = response.get("taskSet") or {}
        TASK_SETS.pop(raw.get("taskSetArn"), None)


def task_view(arn, now):
    task = TASKS[arn]
    rule = task["rule"]
    out = {
        "taskArn": arn,
        "clusterArn": task["cluster"],
        "taskDefinitionArn": task["taskDefinition"],
        "group": task["group"],
        "launchType": "FARGATE",
        "desiredStatus": "RUNNING",
        "lastStatus": "RUNNING",
        "createdAt": task["created"],
        "startedAt": task["created"],
        "overrides": task["overrides"],
        "containers": [],
    }
    stopped_by_rule = rule.get("task", "stop") != "never" and now - task["created"] >= after(rule)
    if task["stopped"] or stopped_by_rule:
        stopped_at = task["stopped"] or task["created"] + after(rule)
        out.update(desiredStatus="STOPPED", lastStatus="STOPPED", stoppedAt=stopped_at)
        if task["stopped"]:
            out["stopCode"] = "UserInitiated"
            out["stoppedReason"] = "Task stopped by user"
            code = 137
        else:
            out["stopCode"] = "EssentialContainerExited"
            out["stoppedReason"] = "Essential container in task exited"
            code = int(rule.get("exit_code", 0))
    else:
        code = None
    for name in task["containers"]:
        container = {"name": name, "lastStatus": out["lastStatus"], "taskArn": arn}
        if code is not None and name == task["container"]:
            container["exitCode"] = code
        elif code is not None:
            container["exitCode"] = 0
        out["containers"].append(container)
    return out


def rule_for_command(command):
    text = " ".join(command)
    for rule in SETTINGS["rules"]:
        needle = rule.get("command")
        if needle and needle in text:
            return rule
    return {}


def handle_task(operation, request):
    """RunTask, DescribeTasks and StopTask are answered here, never by moto."""
    now = time.time()
    if operation == "RunTask":
        overrides = request.get("overrides") or {"containerOverrides": []}
        container = None
        command = []
        for o in overrides.get("containerOverrides") or []:
            if o.get("command"):
                container, command = o.get("name"), o["command"]
        arn = "arn:aws:ecs:us-east-1:123456789012:task/%s/%032x" % (
            short(request.get("cluster")) or "default",
            random.getrandbits(128),
        )
        names = [c for c in [container] if c]
        TASKS[arn] = {
            "cluster": request.get("cluster"),
            "taskDefinition": request.get("taskDefinition"),
            "group": request.get("group") or "converge",
            "overrides": overrides,
            "container": container,
            "containers": names or ["app"],
            "command": command,
            "rule": rule_for_command(command),
            "created": now,
            "stopped": None,
        }
        return {"tasks": [task_view(arn, now)], "failures": []}
    if operation == "DescribeTasks":
        tasks, failures = [], []
        for arn in request.get("tasks") or []:
            if arn in TASKS:
                tasks.append(task_view(arn, now))
            else:
                failures.append({"arn": arn, "reason": "MISSING"})
        return {"tasks": tasks, "failures": failures}
    if operation == "StopTask":
        arn = request.get("task")
        if arn not in TASKS:
            return None
        if TASKS[arn]["stopped"] is None and task_view(arn, now)["lastStatus"] != "STOPPED":
            TASKS[arn]["stopped"] = now
        return {"task": task_view(arn, now)}
    return None


TARGET_HEALTH = """<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <DescribeTargetHealthResult>
    <TargetHealthDescriptions>%s</TargetHealthDescriptions>
  </DescribeTargetHealthResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</DescribeTargetHealthResponse>"""

TARGET = """<member><Target><Id>10.0.%d.%d</Id><Port>%d</Port></Target><HealthCheckPort>%d</HealthCheckPort><TargetHealth><State>%s</State>%s</TargetHealth></member>"""


def target_health(form):
    group = form.get("TargetGroupArn", [None])[0]
    now = time.time()
    sets = [ts for ts in TASK_SETS.values() if ts["targetGroup"] == group]
    if not sets:
        return None
    members = []
    for n, ts in enumerate(sets):
        computed, steady, rule = task_set_view(ts, now)
        wanted = rule.get("targets", "healthy")
        if wanted == "none":
            continue
        state = ("unhealthy" if wanted == "unhealthy" else "healthy") if steady else "initial"
        reason = "" if state == "healthy" else "<Reason>Target.ResponseCodeMismatch</Reason>" if state == "unhealthy" else "<Reason>Elb.RegistrationInProgress</Reason>"
        for i in range(computed):
            members.append(TARGET % (n, i + 10, 8000, 8000, state, reason))
    return TARGET_HEALTH % "".join(members)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_PUT(self):
        self.route()

    def do_DELETE(self):
        self.route()

    def do_HEAD(self):
        self.route()

    def route(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__sim__/"):
            return self.control(body)
        target = self.headers.get("X-Amz-Target") or ""
        operation = target.rsplit(".", 1)[-1] if "ContainerService" in target else None
        if operation in ("RunTask", "DescribeTasks", "StopTask"):
            with LOCK:
                answer = handle_task(operation, json.loads(body or b"{}"))
            if answer is not None:
                return self.reply(200, json.dumps(answer).encode(), "application/x-amz-json-1.1")
        form = {}
        if not target and body:
            try:
                form = urllib.parse.parse_qs(body.decode())
            except UnicodeDecodeError:
                form = {}
        if form.get("Action", [None])[0] == "DescribeTargetHealth":
            with LOCK:
                answer = target_health(form)
            if answer is not None:
                return self.reply(200, answer.encode(), "text/xml")
        status, headers, payload = self.forward(body)
        if operation and status == 200:
            try:
                request, response = json.loads(body or b"{}"), json.loads(payload)
                with LOCK:
                    handle_json(operation, request, response)
                payload = json.dumps(response).encode()
            except ValueError:
                pass
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "text/plain")
        kept = [
            (k, v)
            for k, v in headers
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-type", "server", "date")
        ]
        self.reply(status, payload, content_type, kept)

    def forward(self, body):
        host = urllib.parse.urlparse(UPSTREAM)
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        out = (resp.status, resp.getheaders(), payload)
        conn.close()
        return out

    def control(self, body):
        if self.path == "/__sim__/rules" and self.command == "POST":
            settings = json.loads(body or b"{}")
            with LOCK:
                SETTINGS["after"] = float(settings.get("after", 0.0))
                SETTINGS["rules"] = list(settings.get("rules", []))
            return self.reply(200, b"{}", "application/json")
        if self.path == "/__sim__/state":
            with LOCK:
                state = {
                    "settings": SETTINGS,
                    "services": {"/".join(k): v for k, v in SERVICES.items()},
                    "task_sets": TASK_SETS,
                    "tasks": {k: {kk: vv for kk, vv in v.items() if kk != "rule"} for k, v in TASKS.items()},
                }
            return self.reply(200, json.dumps(state, default=str).encode(), "application/json")
        return self.reply(404, b"unknown control path", "text/plain")


def main():
    global UPSTREAM
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="moto's URL")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--after", type=float, default=0.0, help="default seconds to readiness")
    args = parser.parse_args()
    UPSTREAM = args.upstream.rstrip("/")
    SETTINGS["after"] = args.after
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    server.daemon_threads = True
    print("listening %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
