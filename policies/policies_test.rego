# `converge policy test` runs these as `opa test` would.
package main

import rego.v1

test_a_person_cannot_apply_prod if {
	count(deny) == 1 with input as {"environment": "prod", "operation": "apply", "actor": "alice", "changes": []}
}

test_ci_may_apply_prod if {
	count(deny) == 0 with input as {"environment": "prod", "operation": "apply", "actor": "ci:alice", "changes": []}
}

test_anyone_may_plan_prod if {
	count(deny) == 0 with input as {"environment": "prod", "operation": "plan", "actor": "alice", "changes": []}
}

test_a_canary_step_of_50_is_denied_in_prod if {
	some d in deny_large_canary_step with input as {"environment": "prod", "changes": [
		{"address": "api", "after": {"rollout": {"strategy": "canary", "steps": [10, 50, 100]}}}
	]}
	d.address == "api"
}

test_steps_up_to_25_pass if {
	count(deny_large_canary_step) == 0 with input as {"environment": "prod", "changes": [
		{"address": "api", "after": {"rollout": {"strategy": "canary", "steps": [5, "pause", 25, 100]}}}
	]}
}

test_ssh_listener_is_denied if {
	count(deny_public_ssh) == 1 with input as {"changes": [
		{"address": "ssh", "kind": "aws.lb_listener", "action": "create", "after": {"port": 22}}
	]}
}

test_expensive_resource_is_denied if {
	count(deny_expensive) == 1 with input as {"changes": [
		{"address": "big", "cost": {"after_monthly": 900}}
	]}
}
